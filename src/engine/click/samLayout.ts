// Which SAM-family ONNX pair a person brought, read from the graphs' inputs and outputs (as samexporter and
// X-AnyLabeling name them: `*.encoder.onnx` + `*.decoder.onnx`), or why it cannot be used. Pure: the runtime
// hands in the names and shapes it read.
//
// Supported:
// - SAM (ViT-B/L/H) and MobileSAM, the official export and samexporter's: an encoder taking [1, 3, S, S] (a
//   normalised image, its longest side resized to S and padded) or [H, W, 3] (exported with its own
//   preprocessing); one output, the image embedding. A decoder taking that embedding, point_coords,
//   point_labels, mask_input, has_mask_input and (usually) orig_im_size; giving masks, iou_predictions and
//   perhaps low_res_masks.
// - SAM 2 / 2.1 as samexporter exports them: an encoder taking [1, 3, S, S] (the image stretched to S x S)
//   and giving high_res_feats_0, high_res_feats_1 and image_embed; a decoder taking those three and the same
//   prompt inputs (orig_im_size optional).
// Anything else (SAM 2's video predictor, SAM 3's text prompts, EfficientSAM's batched layout) is refused
// with what was found and what is expected.

/** A graph input or output: its name and shape (numbers fixed, strings named free dims; [] when unknown). */
export interface GraphValue {
  name: string;
  shape: readonly (number | string)[];
}

export interface GraphIo {
  inputs: GraphValue[];
  outputs: GraphValue[];
}

/** The prompt inputs a decoder may take besides the encoder's outputs. */
export const PROMPT_INPUTS = ['point_coords', 'point_labels', 'mask_input', 'has_mask_input', 'orig_im_size'] as const;
export type PromptInput = (typeof PROMPT_INPUTS)[number];

export interface SamLayout {
  kind: 'sam' | 'sam2';
  /** The encoder's input and how to fill it. */
  encoderInput: string;
  /** 'padded': longest side resized to `inputSize`, padded at the right and bottom (SAM); 'stretched': resized to `inputSize` x `inputSize` (SAM 2); 'raw': [H, W, 3] pixels, the graph resizes itself. */
  preprocess: 'padded' | 'stretched' | 'raw';
  inputSize: number;
  /** Encoder outputs kept as the image's embedding. */
  embeddings: string[];
  /** Which encoder output each of the decoder's embedding inputs takes (decoder input -> encoder output). */
  feeds: Record<string, string>;
  /** Prompt inputs the decoder takes. */
  promptInputs: PromptInput[];
  /** Side of mask_input (the low-resolution mask grid), 256 for every known export. */
  maskInputSize: number;
  /** Decoder outputs: the candidate masks' logits and their predicted IoU; the low-resolution logits if given. */
  masks: string;
  scores: string;
  lowResMasks: string | null;
}

/** The usual encoder input side when the graph leaves it free. */
export const DEFAULT_SAM_INPUT = 1024;

function describe(io: GraphIo): string {
  const list = (vs: GraphValue[]): string =>
    vs.map((v) => `${v.name}${v.shape.length ? `[${v.shape.join(',')}]` : ''}`).join(', ') || 'none';
  return `inputs ${list(io.inputs)}; outputs ${list(io.outputs)}`;
}

const fixed = (d: number | string | undefined): number | null => (typeof d === 'number' && d > 0 ? d : null);

/** The layout of an encoder/decoder pair, or an error message naming what does not fit. */
export function samLayout(encoder: GraphIo, decoder: GraphIo): SamLayout | { error: string } {
  const refuse = (why: string): { error: string } => ({
    error: `${why}. Supported: SAM, MobileSAM and SAM 2/2.1 encoder/decoder pairs as samexporter or X-AnyLabeling export them. The encoder has ${describe(encoder)}. The decoder has ${describe(decoder)}.`,
  });
  if (encoder.inputs.length !== 1) return refuse(`the encoder takes ${encoder.inputs.length} inputs, not one image`);
  const input = encoder.inputs[0];
  const names = new Set(encoder.outputs.map((o) => o.name));
  const sam2 = names.has('high_res_feats_0') && names.has('high_res_feats_1') && names.has('image_embed');
  let preprocess: SamLayout['preprocess'];
  let inputSize = DEFAULT_SAM_INPUT;
  if (input.shape.length === 3) {
    if (sam2) return refuse('a SAM 2 encoder must take [1, 3, S, S]');
    if (fixed(input.shape[2]) !== 3) return refuse(`the encoder's input ${input.name} is not [H, W, 3]`);
    preprocess = 'raw';
  } else if (input.shape.length === 4) {
    if (fixed(input.shape[1]) !== 3) return refuse(`the encoder's input ${input.name} does not have 3 channels first`);
    const h = fixed(input.shape[2]);
    const w = fixed(input.shape[3]);
    if (h !== null && w !== null && h !== w) return refuse(`the encoder's input is ${h}x${w}, not square`);
    inputSize = h ?? w ?? DEFAULT_SAM_INPUT;
    preprocess = sam2 ? 'stretched' : 'padded';
  } else {
    return refuse(`the encoder's input ${input.name} has rank ${input.shape.length || 'unknown'}, not 3 or 4`);
  }
  if (!sam2 && encoder.outputs.length !== 1)
    return refuse(
      `the encoder gives ${encoder.outputs.length} outputs; SAM's gives one embedding, SAM 2's high_res_feats_0, high_res_feats_1 and image_embed`,
    );
  const embeddings = sam2 ? ['image_embed', 'high_res_feats_0', 'high_res_feats_1'] : [encoder.outputs[0].name];
  const promptInputs: PromptInput[] = [];
  const others: string[] = [];
  for (const i of decoder.inputs) {
    if ((PROMPT_INPUTS as readonly string[]).includes(i.name)) promptInputs.push(i.name as PromptInput);
    else others.push(i.name);
  }
  // SAM 2: each encoder output goes to the decoder input of its name. SAM: the one embedding goes to the
  // decoder's one other input, whatever the two are called (exports name them differently).
  const feeds: Record<string, string> = {};
  if (sam2) {
    for (const name of others)
      if (!embeddings.includes(name))
        return refuse(`the decoder takes ${name}, which is neither an encoder output nor a prompt input`);
    const unfed = embeddings.filter((e) => !others.includes(e));
    if (unfed.length > 0) return refuse(`the decoder does not take the encoder's ${unfed.join(', ')}`);
    for (const e of embeddings) feeds[e] = e;
  } else {
    if (others.length !== 1)
      return refuse(
        others.length === 0
          ? 'the decoder takes no image embedding'
          : `the decoder takes ${others.join(', ')} besides its prompt inputs, where SAM's takes one image embedding`,
      );
    feeds[others[0]] = embeddings[0];
  }
  for (const needed of ['point_coords', 'point_labels'] as const)
    if (!promptInputs.includes(needed)) return refuse(`the decoder has no ${needed} input`);
  if (promptInputs.includes('mask_input') !== promptInputs.includes('has_mask_input'))
    return refuse('the decoder takes only one of mask_input and has_mask_input');
  const maskInput = decoder.inputs.find((i) => i.name === 'mask_input');
  const maskInputSize = fixed(maskInput?.shape[3]) ?? inputSize / 4;
  const out = (name: string): GraphValue | undefined => decoder.outputs.find((o) => o.name === name);
  const masks = out('masks');
  const scores = out('iou_predictions') ?? out('scores') ?? out('iou_scores');
  if (!masks || !scores) return refuse('the decoder gives no masks and iou_predictions outputs');
  return {
    kind: sam2 ? 'sam2' : 'sam',
    encoderInput: input.name,
    preprocess,
    inputSize,
    embeddings,
    feeds,
    promptInputs,
    maskInputSize,
    masks: masks.name,
    scores: scores.name,
    lowResMasks: out('low_res_masks')?.name ?? null,
  };
}
