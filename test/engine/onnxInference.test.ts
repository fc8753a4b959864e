import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { resolveBackend } from '../../src/engine/backends';
import { disposeGraph, foldGraph } from '../../src/engine/inference/foldedGraph';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { exportOnnx } from '../../src/engine/inference/onnxExport';
import {
  inferenceReport,
  ortMissingBinary,
  setGpuBackend,
  onnxWindowForward,
  releaseOnnx,
  setInferenceChoice,
} from '../../src/engine/inference/onnxInference';
import { DEFAULT_NETWORK, buildResUNet } from '../../src/engine/network/resUNet';
import { predictImage } from '../../src/engine/inference/tiledPredict';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';
import { perturb } from './perturb';

async function maxDiff(model: tfl.LayersModel, session: ort.InferenceSession, h: number, w: number): Promise<number> {
  const x = tf.randomUniform([1, h, w, 3], -1, 1, 'float32', 9) as tf.Tensor4D;
  const ref = model.predict(x) as tf.Tensor;
  const expected = await ref.data();
  const out = await session.run({ image: new ort.Tensor('float32', (await x.data()) as Float32Array, [1, h, w, 3]) });
  const got = out.probs.data as Float32Array;
  assert.deepEqual(out.probs.dims, ref.shape, 'channels-last output of the same shape');
  let d = 0;
  for (let i = 0; i < expected.length; i++) d = Math.max(d, Math.abs(expected[i] - got[i]));
  tf.dispose([x, ref]);
  return d;
}

test('the ONNX export of every network gives what TF.js gives (onnxruntime-node)', async () => {
  await resolveBackend('auto');
  const networks: [string, tfl.LayersModel][] = [
    [
      'pretrained encoder (depthwise convs, ReLU6, zero padding, added skips, context head: bilinear upsampling, gate)',
      await buildNetwork(networkFor('mobilenetv2', 3)),
    ],
    [
      'distilled ResNet encoder (strided same convs, projection shortcuts)',
      await buildNetwork(networkFor('distilled-resnet', 3)),
    ],
    [
      'scratch residual U-Net (strided same convs, concatenated skips)',
      buildResUNet({ ...DEFAULT_NETWORK, numClasses: 4, stageWidths: [16, 32, 48] }),
    ],
    [
      'pretrained encoder, plain decoder with dropout (the ablations: no shortcuts, dropout an identity)',
      await buildNetwork(networkFor('mobilenetv2', 3, { residual: false, decoderDropout: 0.2 })),
    ],
  ];
  for (const [what, model] of networks) {
    perturb(model);
    const graph = foldGraph(model);
    assert.ok(graph, `${what}: folds`);
    const bytes = await exportOnnx(graph, model.outputs[0].shape[3] as number);
    disposeGraph(graph);
    const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    // Sizes that are multiples of 16 but not square, and one with more rows than columns.
    for (const [h, w] of [
      [48, 80],
      [96, 32],
    ]) {
      const d = await maxDiff(model, session, h, w);
      assert.ok(d < 1e-4, `${what}, ${h}x${w}: onnxruntime differs from TF.js by ${d}`);
    }
    await session.release();
    model.dispose();
  }
});

test('pre-labels through onnxruntime equal those through TF.js, and the runtime says which runs', async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 3));
  perturb(model);
  const { image } = syntheticSample({ width: 200, height: 136, numClasses: 3, seed: 4 });
  const tiles = { stride: 16, tileSize: 128, overlap: 64, margin: 16 };
  try {
    setInferenceChoice('auto');
    assert.ok(await onnxWindowForward(model), 'onnxruntime-node is installed and the exported model passes its check');
    assert.equal(inferenceReport().runtime, 'onnxruntime');
    const viaOnnx = await predictImage(model, image, tiles);
    setInferenceChoice('tfjs');
    assert.equal(await onnxWindowForward(model), null);
    assert.equal(inferenceReport().runtime, 'tfjs');
    const viaTf = await predictImage(model, image, tiles);
    let differ = 0;
    for (let i = 0; i < viaTf.classMap.length; i++) if (viaTf.classMap[i] !== viaOnnx.classMap[i]) differ++;
    // Ties between classes may break either way at float rounding; nothing more.
    assert.ok(differ <= 2, `${differ} pixels differ between the runtimes`);
    let conf = 0;
    for (let i = 0; i < viaTf.confidence.length; i++)
      conf = Math.max(conf, Math.abs(viaTf.confidence[i] - viaOnnx.confidence[i]));
    assert.ok(conf <= 1, `confidence differs by ${conf}/255`);
  } finally {
    setInferenceChoice('auto');
    await releaseOnnx(model);
    model.dispose();
  }
});

test('new weights are exported and checked again', async () => {
  await resolveBackend('auto');
  const model = await buildNetwork(networkFor('mobilenetv2', 2));
  perturb(model);
  const first = await onnxWindowForward(model);
  assert.equal(await onnxWindowForward(model), first, 'the same weights reuse the session');
  const head = model.getLayer('head');
  head.setWeights(head.getWeights().map((w) => tf.mul(w, -2)));
  const second = await onnxWindowForward(model);
  assert.ok(second && second !== first, 'changed weights get a new export');
  const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
  const ref = await (model.predict(x) as tf.Tensor).data();
  const got = await second((await x.data()) as Float32Array, 32, 32);
  let d = 0;
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - got[i]));
  assert.ok(d < 1e-4, `the new export follows the new weights (difference ${d})`);
  await releaseOnnx(model);
  model.dispose();
});

test('a platform onnxruntime-node ships no binary for is named, and the fallback with it', () => {
  assert.equal(ortMissingBinary(), null, 'this platform has its binary');
  assert.equal(ortMissingBinary('linux', 'x64'), null);
  assert.equal(
    ortMissingBinary('darwin', 'x64'),
    'onnxruntime-node has no binary for darwin-x64, so pre-labels run on TF.js (WebAssembly)',
  );
});

test('on a GPU backend the network pre-labels on TF.js there, and the report says why', () => {
  setGpuBackend('webgpu');
  try {
    const r = inferenceReport();
    assert.equal(r.runtime, 'tfjs');
    assert.match(r.reason, /the network runs on the GPU \(webgpu\)/);
  } finally {
    setGpuBackend(null);
  }
  assert.equal(inferenceReport().runtime, 'onnxruntime');
});
