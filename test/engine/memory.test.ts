import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { resolveBackend } from '../../src/engine/backends';
import { DEFAULT_FINE_TUNE, fineTune } from '../../src/engine/training/fineTune';
import { releaseFolded } from '../../src/engine/inference/foldedInference';
import { buildNetwork, networkFor } from '../../src/engine/network/networks';
import { releaseOnnx } from '../../src/engine/inference/onnxInference';
import { networkStride } from '../../src/engine/network/resUNet';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';

/** Bytes the backend has taken from the system: the wasm heap (which never shrinks), else tensor bytes. */
function backendBytes(): number {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 ? wasm.HEAPU8.buffer.byteLength : tf.memory().numBytes;
}

// Memory is bounded: many fine-tune steps leak no tensors, and once warm the wasm heap stops growing
// (what it reaches once it keeps, so a leak in a registered kernel would show here as growth).
for (const encoder of ['mobilenetv2', 'scratch'] as const)
  test(`many training steps (${encoder} encoder): no leaked tensors, and the heap stops growing after warm-up`, async () => {
    const backend = await resolveBackend('auto');
    const samples = [0, 1].map((i) => ({
      id: `m${i}`,
      ...syntheticSample({ width: 64, height: 64, numClasses: 3, seed: 40 + i }),
    }));
    const net = networkFor(encoder, 3);
    const model = await buildNetwork(net);
    const tiles = { stride: networkStride(net), tileSize: 512, overlap: 128, margin: 32 };
    const tensorsBefore = tf.memory().numTensors;
    const heapAt = new Map<number, number>();
    // The process's resident memory too (informational: native onnxruntime buffers are outside the wasm heap).
    const rssAt = new Map<number, number>();
    const steps = Number(process.env.MASKLOOP_MEMORY_STEPS ?? 300);
    // Measured here: the heap settles by about step 100 (allocator warm-up), then stays flat through 600 steps.
    const settled = 120;
    await fineTune(
      model,
      [samples[0]],
      [samples[1]],
      { ...DEFAULT_FINE_TUNE, epochs: 1, stepsPerEpoch: steps, cropSize: 32, batchSize: 2, patience: 5 },
      tiles,
      {
        onProgress: (p) => {
          if (p.phase === 'train') {
            heapAt.set(p.step, backendBytes());
            rssAt.set(p.step, process.memoryUsage().rss);
          }
        },
      },
    );
    // Validation predictions keep the model's folded inference weights (or onnxruntime session) cached; they go with the model.
    releaseFolded(model);
    await releaseOnnx(model);
    const tensorsAfter = tf.memory().numTensors;
    if (process.env.MASKLOOP_MEMORY_TRACE)
      process.stdout.write(
        `# heap by step: ${[...heapAt]
          .filter(([k]) => k % 20 === 0)
          .map(([k, v]) => `${k}:${(v / 2 ** 20).toFixed(0)}`)
          .join(' ')}\n`,
      );
    const warm = heapAt.get(settled)!;
    const end = heapAt.get(steps)!;
    process.stdout.write(
      `# memory on ${backend.backend}, ${encoder} encoder: heap ${(warm / 2 ** 20).toFixed(1)} MiB after ${settled} steps, ${(end / 2 ** 20).toFixed(1)} MiB after ${steps}; resident ${(rssAt.get(settled)! / 2 ** 20).toFixed(0)} -> ${(rssAt.get(steps)! / 2 ** 20).toFixed(0)} MiB; tensors ${tensorsBefore} -> ${tensorsAfter}\n`,
    );
    assert.equal(tensorsAfter, tensorsBefore, 'every tensor a fine-tune makes is disposed (the model keeps its own)');
    for (const [step, bytes] of heapAt)
      if (step >= settled)
        assert.equal(
          bytes,
          warm,
          `the heap grew from ${warm} to ${bytes} bytes between step ${settled} and step ${step}`,
        );
    assert.equal(end, warm);
    model.dispose();
  });
