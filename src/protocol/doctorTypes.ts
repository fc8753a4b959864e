// What `maskloop doctor` and "MaskLoop: Check GPU" report: one line per backend. Types only.
import type { BackendName } from './settings';

export interface DoctorLine {
  name: BackendName | 'onnxruntime';
  /** Its package (and binary for this platform) is present. */
  installed: boolean;
  /** Its binary loaded. */
  loads: boolean;
  /** It can run maskloop's networks here. */
  usable: boolean;
  /** What was found: the adapter or version when usable, the exact reason when not. */
  reason: string;
  /** What to do about it ('' when nothing). */
  fix: string;
  /** The WebGPU adapter, when one was found (usable or not). */
  adapter?: {
    vendor: string;
    architecture: string;
    device: string;
    description: string;
    software: boolean;
    limits: Record<string, number>;
  };
  /** Seconds of a 512x512 pre-label and of one training step (2 crops of 256x256), when timed. */
  timing?: { preLabel: number; step?: number };
}

export interface DoctorReport {
  platform: string;
  node: string;
  napi: string;
  cpus: string;
  /** The backend the automatic choice takes. */
  selected: BackendName;
  selectedLabel: string;
  lines: DoctorLine[];
}
