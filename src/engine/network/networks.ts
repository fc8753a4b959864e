// Which network a new model gets, and how a network config becomes a layers model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  buildPretrainedUNet,
  ENCODERS,
  findEncoderFolder,
  loadShippedEncoder,
  PRETRAINED_NETWORK,
} from './pretrainedUNet';
import type { EncoderKind } from '../../protocol/encoderKind';
import { buildResUNet, DEFAULT_NETWORK, type NetworkConfig, type NetworkOptions } from './resUNet';

/** The network config of a new model with this encoder (and options): both shipped encoders get the same decoder. */
export function networkFor(encoder: EncoderKind, numClasses: number, options: NetworkOptions = {}): NetworkConfig {
  const base =
    encoder === 'scratch' ? { ...DEFAULT_NETWORK, encoder: 'scratch' as const } : { ...PRETRAINED_NETWORK, encoder };
  return { ...base, ...options, numClasses };
}

/** Builds a network from its config: a pretrained encoder's weights are read from the shipped files. */
export async function buildNetwork(config: NetworkConfig): Promise<tfl.LayersModel> {
  const kind = config.encoder ?? 'scratch';
  if (kind === 'scratch') return buildResUNet(config);
  const encoder = await loadShippedEncoder(findEncoderFolder(kind));
  try {
    return buildPretrainedUNet(config, encoder);
  } finally {
    encoder.dispose();
  }
}

/** What a new model's encoder weights are, for its metadata: the source and the SHA-256 of the shipped file. */
export function encoderProvenance(config: NetworkConfig): string {
  const kind = config.encoder ?? 'scratch';
  if (kind === 'scratch') return 'residual basic blocks, random initialisation (He normal)';
  const expected = JSON.parse(
    fs.readFileSync(path.join(findEncoderFolder(kind), 'expected-features.json'), 'utf8'),
  ) as { weightsSha256: string };
  return `${ENCODERS[kind].provenance}; weights.bin sha256 ${expected.weightsSha256}`;
}
