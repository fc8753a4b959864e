// A tiny encoder/decoder pair in SAM's ONNX layout, for tests: the encoder averages the normalised image over
// 4x4 blocks (the "embedding"); the decoder's three candidates are a disc of radius R (input pixels) around the
// first point (inverted for a negative click), the bright part of the image, and the mask prompt as given.
// Their predicted IoUs are fixed: 0.9, 0.5, 0.3. Written with the engine's own ONNX writer.
import {
  Proto,
  floatTensor,
  int64Tensor,
  node,
  onnxModel,
  tensorValueInfo,
} from '../../src/engine/inference/onnxProto';

export const FIXTURE_INPUT = 64;
export const FIXTURE_GRID = 16;
export const FIXTURE_RADIUS = 12;

/**
 * The encoder. `sam2`: SAM 2's layout as samexporter writes it: the input `image`, three outputs
 * (`image_embed`, the same pooling, and `high_res_feats_0` / `high_res_feats_1` at 2x and 4x its resolution).
 */
export function samFixtureEncoder(options: { outputName?: string; sam2?: boolean } = {}): Uint8Array {
  const out = options.sam2 ? 'image_embed' : (options.outputName ?? 'image_embeddings');
  const input = options.sam2 ? 'image' : 'input_image';
  const g = new Proto().string(2, 'sam_fixture_encoder');
  const pool = (to: string, k: number): void => {
    g.message(
      1,
      node('AveragePool', [input], [to], `pool_${to}`, [
        { name: 'kernel_shape', ints: [k, k] },
        { name: 'strides', ints: [k, k] },
      ]),
    );
  };
  pool(out, 4);
  if (options.sam2) {
    pool('high_res_feats_0', 1);
    pool('high_res_feats_1', 2);
  }
  g.message(11, tensorValueInfo(input, [1, 3, FIXTURE_INPUT, FIXTURE_INPUT]));
  g.message(12, tensorValueInfo(out, [1, 3, FIXTURE_GRID, FIXTURE_GRID]));
  if (options.sam2) {
    g.message(12, tensorValueInfo('high_res_feats_0', [1, 3, FIXTURE_INPUT, FIXTURE_INPUT]));
    g.message(12, tensorValueInfo('high_res_feats_1', [1, 3, FIXTURE_INPUT / 2, FIXTURE_INPUT / 2]));
  }
  return onnxModel(g);
}

/**
 * The decoder. `sam2`: SAM 2's inputs (`image_embed`, `high_res_feats_0`, `high_res_feats_1`, the prompts; no
 * `orig_im_size`) and outputs (`masks`, `iou_predictions`); the high-resolution features are read (their mean,
 * times zero, joins the second candidate) so the graph needs them fed.
 */
export function samFixtureDecoder(options: { withoutLabels?: boolean; sam2?: boolean } = {}): Uint8Array {
  const embed = options.sam2 ? 'image_embed' : 'image_embeddings';
  const n = FIXTURE_GRID;
  const cell = FIXTURE_INPUT / n;
  const grid = new Float32Array(n * n * 2);
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) {
      grid[(y * n + x) * 2] = (x + 0.5) * cell;
      grid[(y * n + x) * 2 + 1] = (y + 0.5) * cell;
    }
  const g = new Proto().string(2, 'sam_fixture_decoder');
  const nodes = [
    node('Slice', ['point_coords', 'zero3', 'one_one_two', 'axes3'], ['p0'], 'first_point'),
    node('Reshape', ['p0', 'shape_p'], ['p'], 'point_shape'),
    node('Sub', ['grid', 'p'], ['d'], 'offset'),
    node('Mul', ['d', 'd'], ['d2'], 'square'),
    node('ReduceSum', ['d2', 'axis3'], ['dist2'], 'dist2', [{ name: 'keepdims', i: 1 }]),
    node('Sub', ['r2', 'dist2'], ['disc_hw'], 'disc'),
    node('Reshape', ['disc_hw', 'shape_plane'], ['disc_plane'], 'disc_plane'),
    node('Slice', ['point_labels', 'zero2', 'one_one', 'axes2'], ['l0'], 'first_label'),
    node('Reshape', ['l0', 'shape_scalar4'], ['l'], 'label_shape'),
    node('Mul', ['l', 'two'], ['l2'], 'label_twice'),
    node('Sub', ['l2', 'one'], ['sign'], 'label_sign'),
    node('Mul', ['disc_plane', 'sign'], ['c0'], 'signed_disc'),
    node('ReduceMean', [embed], [options.sam2 ? 'c1_embed' : 'c1'], 'brightness', [
      { name: 'axes', ints: [1] },
      { name: 'keepdims', i: 1 },
    ]),
    node('Mul', ['mask_input', 'has_mask_input'], ['c2'], 'region'),
    node('Concat', ['c0', 'c1', 'c2'], ['low_res_masks'], 'candidates', [{ name: 'axis', i: 1 }]),
    node('Identity', ['low_res_masks'], ['masks'], 'masks'),
    node('Identity', ['ious'], ['iou_predictions'], 'ious'),
  ];
  if (options.sam2)
    nodes.push(
      node('ReduceMean', ['high_res_feats_0'], ['hr0'], 'hr0_mean', [{ name: 'keepdims', i: 0 }]),
      node('ReduceMean', ['high_res_feats_1'], ['hr1'], 'hr1_mean', [{ name: 'keepdims', i: 0 }]),
      node('Add', ['hr0', 'hr1'], ['hr'], 'hr_sum'),
      node('Mul', ['hr', 'zero'], ['hr_zero'], 'hr_zero'),
      node('Add', ['c1_embed', 'hr_zero'], ['c1'], 'brightness_sam2'),
    );
  if (options.withoutLabels) {
    // The label slice reads a constant instead: the graph has no point_labels input.
    nodes[7] = node('Identity', ['const_label'], ['l0'], 'first_label');
  }
  nodes.forEach((x) => g.message(1, x));
  const inits = [
    floatTensor('grid', [1, n, n, 2], grid),
    int64Tensor('zero3', [0, 0, 0]),
    int64Tensor('one_one_two', [1, 1, 2]),
    int64Tensor('axes3', [0, 1, 2]),
    int64Tensor('shape_p', [1, 1, 1, 2]),
    int64Tensor('axis3', [3]),
    floatTensor('r2', [], Float32Array.of(FIXTURE_RADIUS * FIXTURE_RADIUS)),
    int64Tensor('shape_plane', [1, 1, n, n]),
    int64Tensor('zero2', [0, 0]),
    int64Tensor('one_one', [1, 1]),
    int64Tensor('axes2', [0, 1]),
    int64Tensor('shape_scalar4', [1, 1, 1, 1]),
    floatTensor('two', [], Float32Array.of(2)),
    floatTensor('one', [], Float32Array.of(1)),
    floatTensor('ious', [1, 3], Float32Array.of(0.9, 0.5, 0.3)),
  ];
  if (options.withoutLabels) inits.push(floatTensor('const_label', [1, 1], Float32Array.of(1)));
  if (options.sam2) inits.push(floatTensor('zero', [], Float32Array.of(0)));
  inits.forEach((t) => g.message(5, t));
  g.message(11, tensorValueInfo(embed, [1, 3, n, n]));
  if (options.sam2) {
    g.message(11, tensorValueInfo('high_res_feats_0', [1, 3, FIXTURE_INPUT, FIXTURE_INPUT]));
    g.message(11, tensorValueInfo('high_res_feats_1', [1, 3, FIXTURE_INPUT / 2, FIXTURE_INPUT / 2]));
  }
  g.message(11, tensorValueInfo('point_coords', [1, 'points', 2]));
  if (!options.withoutLabels) g.message(11, tensorValueInfo('point_labels', [1, 'points']));
  g.message(11, tensorValueInfo('mask_input', [1, 1, n, n]));
  g.message(11, tensorValueInfo('has_mask_input', [1]));
  if (!options.sam2) g.message(11, tensorValueInfo('orig_im_size', [2]));
  g.message(12, tensorValueInfo('masks', [1, 3, n, n]));
  g.message(12, tensorValueInfo('iou_predictions', [1, 3]));
  if (!options.sam2) g.message(12, tensorValueInfo('low_res_masks', [1, 3, n, n]));
  return onnxModel(g);
}
