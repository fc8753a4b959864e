// The encoder choices, without TensorFlow: the CLI and the extension host name them too.

/**
 * 'mobilenetv2': the shipped pretrained MobileNetV2 under the residual decoder; 'distilled-resnet': the shipped
 * ResNet-style encoder distilled from it; 'scratch': the residual encoder from random weights.
 */
export type EncoderKind = 'scratch' | 'mobilenetv2' | 'distilled-resnet';
export type PretrainedEncoderKind = Exclude<EncoderKind, 'scratch'>;

export const ENCODER_KINDS: readonly EncoderKind[] = ['mobilenetv2', 'distilled-resnet', 'scratch'];

/** The encoder a new model starts from unless the person chooses (`maskloop.encoder`, `--encoder`). */
export const DEFAULT_ENCODER: EncoderKind = 'mobilenetv2';

export function isEncoderKind(v: unknown): v is EncoderKind {
  return ENCODER_KINDS.includes(v as EncoderKind);
}
