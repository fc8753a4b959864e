// The typed protocol between the extension host (which owns each mask document) and the mask editor webview
// (which renders and edits). Both sides import this file. Pixels travel as typed arrays, never number[].

import type { MaskDiff } from '../masks/maskDiff';
import type { Point } from '../masks/rasterTools';

export interface EditorClass {
  index: number;
  name: string;
  /** #rrggbb */
  color: string;
}

export interface EditorSettings {
  classes: EditorClass[];
  /** 0..1 */
  maskOpacity: number;
  /** Magic wand colour tolerance, 0..255. */
  wandTolerance: number;
  /** Why there is no model in the loop (restricted workspace, no model yet), or null. */
  modelNotice: string | null;
}

export interface SuggestionData {
  modelVersion: number;
  trained: boolean;
  classMap: Uint8Array;
  /** Per-pixel confidence of the predicted class, 0..255; null for a suggestion read from a pre-label file. */
  confidence: Uint8Array | null;
  /** Where the suggestion came from when not from a live prediction (a `*.suggestion.png`). */
  file?: string;
  /** The neighbouring frame whose reviewed mask the suggestion follows (carried along the optical flow). */
  follows?: string;
  /** Pairs of saved frames the sequence head learnt from, when it read the carried mask; absent or 0: none. */
  learnedPairs?: number;
  /**
   * A quick suggestion from the two nearest saved frames, shown while the model process still learns from the
   * longer run of saved frames; the refined one replaces it unless the mask was edited meanwhile.
   */
  refining?: boolean;
}

/** Frame `index + 1` of `count`. */
export interface FramePosition {
  index: number;
  count: number;
}

export type SuggestionState =
  | { state: 'none'; reason: string }
  | { state: 'pending'; message: string }
  | ({ state: 'ready' } & SuggestionData)
  | { state: 'error'; message: string };

/** A click-segmentation candidate: 1 inside, 0 outside, width x height of the image; its predicted IoU. */
export interface ClickCandidateData {
  mask: Uint8Array;
  score: number;
  area: number;
}

/** Click segmentation's state, as the info bar says it. */
export type ClickState =
  | { state: 'unavailable'; reason: string }
  | { state: 'preparing'; message: string }
  | { state: 'ready'; message: string }
  | { state: 'error'; message: string };

export type HostToWebview =
  | {
      type: 'init';
      fileName: string;
      width: number;
      height: number;
      rgba: Uint8Array;
      mask: Uint8Array;
      settings: EditorSettings;
      /** The image's place among its folder's images in natural name order; null when it is alone. */
      frame: FramePosition | null;
    }
  /** Write one side of a diff into the webview's mask: host-made edits, undo and redo. */
  | { type: 'applyDiff'; diff: MaskDiff; side: 'before' | 'after' }
  /** The whole mask changed (revert, reload from disk, resync). */
  | { type: 'replaceMask'; mask: Uint8Array; reason: string }
  | { type: 'suggestion'; suggestion: SuggestionState }
  | { type: 'settings'; settings: EditorSettings }
  | { type: 'saved'; maskFile: string }
  /** Click segmentation's candidates for the prompt numbered `seq`, best predicted IoU first. */
  | {
      type: 'clickResult';
      seq: number;
      candidates: ClickCandidateData[];
      seconds: number;
      /** The model process's number for this answer (a next prompt continues from it). */
      answer: number;
      /** The first candidate is the model's suggested region under the first click (the decoder's answer next). */
      fromSuggestion?: boolean;
    }
  | { type: 'clickState'; click: ClickState };

export type WebviewToHost =
  | { type: 'ready' }
  /** One stroke, fill or polygon: becomes one undoable edit in VS Code. */
  | { type: 'edit'; label: string; diff: MaskDiff }
  /** Accept the whole suggestion, or (with a seed) the one connected region under it. */
  | { type: 'accept'; seed?: Point }
  | { type: 'reject' }
  | { type: 'predict' }
  /**
   * Click segmentation: the clicks and box so far, numbered (only the latest prompt's result is shown). With
   * `refine`, the region of the mask's class under the first click is given to the model to refine.
   */
  | {
      type: 'clickPrompt';
      seq: number;
      points: { x: number; y: number; positive: boolean }[];
      box?: { x0: number; y0: number; x1: number; y1: number };
      refine: boolean;
      activeClass: number;
      /** The answer shown when this click was made and its candidate chosen: the decoder continues from it. */
      continueFrom?: { answer: number; candidate: number };
    }
  | { type: 'log'; level: 'info' | 'error'; message: string };

/** Exhaustiveness guard for switches over message unions. */
export function assertNever(value: never): never {
  throw new Error(`unexpected message ${JSON.stringify(value)}`);
}
