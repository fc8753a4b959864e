// The context head of the pretrained-encoder network: a linear classifier on the frozen encoder's stride-8
// and stride-16 features (and, for MobileNetV2, a stride-16 layer before the blocks nsfwjs re-trained), whose
// logits are bilinearly upsampled and added to the decoder's, which are gated to count where the read-out is
// unsure (built in pretrainedUNet.ts). It is fitted on whole images, not trained on crops:
// training/contextHeadFit.ts. Described in docs/engine.md ("The context head").
import type * as tfl from '@tensorflow/tfjs-layers';

/** Names of the context head's layers in a built network. */
export const CONTEXT_LAYERS = {
  s8: 'context_s8',
  s16: 'context_s16',
  s16b: 'context_s16b',
  sum16: 'context_s16_sum',
  up16: 'context_s16_up',
  sum: 'context_sum',
  up: 'context_up',
  probs: 'context_probs',
  squared: 'context_p2',
  gate: 'context_gate',
  gateSquared: 'context_gate2',
  gated: 'decoder_gated',
  logits: 'logits_sum',
} as const;

/** Whether a built network has the context head. */
export function hasContextHead(model: tfl.LayersModel): boolean {
  return model.layers.some((l) => l.name === CONTEXT_LAYERS.s8);
}
