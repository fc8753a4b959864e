// The pixel head's perceptron through onnxruntime-node (pixelHead.ts computes the same in plain JS on one
// thread): the head's weights written as a small ONNX graph (log, standardise, MatMul, ReLU, MatMul, softmax)
// that reads a band's features and the network's probabilities at once and runs on both cores with native
// kernels. Each head's graph is checked against the JS forward on fixed inputs when it is built; a mismatch, or
// no onnxruntime, keeps the JS path. The band's features come from pixelFeaturesOnnx.ts (smoothings native).
import type * as Ort from 'onnxruntime-node';
import type { RgbImage } from '../../masks/maskImage';
import type { PixelHeadWeights } from '../../protocol/modelTypes';
import { SeededRandom } from '../../masks/seededRandom';
import { Proto, floatTensor, node, onnxModel, tensorValueInfo } from './onnxProto';
import { inferenceChoice, loadOrt, sessionOptions } from './onnxInference';
import { BAND_ROWS, applyPixelHead, bandInputs, headForwardRaw } from './pixelHead';
import { pixelFeaturesFast, type FeaturesOf } from './pixelFeaturesOnnx';

/** Largest difference from the JS forward tolerated in a head's check (probabilities). */
export const HEAD_ONNX_TOLERANCE = 1e-4;

/**
 * A band's features (planar: features x pixels) and the network's probabilities there (pixels x classes) in,
 * the head's class probabilities (pixels x classes) out.
 */
export type HeadRunner = (features: Float32Array, network: Float32Array, pixels: number) => Promise<Float32Array>;

/** Floor of a probability before its log (as pixelHead.ts's headInput floors it). */
const PROB_FLOOR = 1e-4;

/**
 * The ONNX model bytes of a pixel head: inputs "features" [features, pixels] (planar, as pixelFeatures gives
 * them) and "network" [pixels, classes] (the network's probabilities); each pixel's input is its features and
 * the log of its floored probabilities, as headInput computes it; output "probs" [pixels, classes].
 */
export function pixelHeadOnnx(head: PixelHeadWeights): Uint8Array {
  const g = new Proto().string(2, 'maskloop-pixel-head');
  const { inputs, hidden, classes } = head;
  const inits = [
    floatTensor('floor', [], Float32Array.of(PROB_FLOOR)),
    floatTensor('mean', [inputs], Float32Array.from(head.mean)),
    floatTensor('scale', [inputs], Float32Array.from(head.scale)),
    floatTensor('w1', [inputs, hidden], Float32Array.from(head.w1)),
    floatTensor('b1', [hidden], Float32Array.from(head.b1)),
    floatTensor('w2', [hidden, classes], Float32Array.from(head.w2)),
    floatTensor('b2', [classes], Float32Array.from(head.b2)),
  ];
  const nodes = [
    node('Transpose', ['features'], ['per_pixel'], 'features/Transpose', [{ name: 'perm', ints: [1, 0] }]),
    node('Max', ['network', 'floor'], ['floored'], 'network/Max'),
    node('Log', ['floored'], ['log_probs'], 'network/Log'),
    node('Concat', ['per_pixel', 'log_probs'], ['x'], 'inputs', [{ name: 'axis', i: 1 }]),
    node('Sub', ['x', 'mean'], ['centred'], 'centre'),
    node('Mul', ['centred', 'scale'], ['standard'], 'standardise'),
    node('MatMul', ['standard', 'w1'], ['h1'], 'hidden/MatMul'),
    node('Add', ['h1', 'b1'], ['h1b'], 'hidden/Add'),
    node('Relu', ['h1b'], ['h1r'], 'hidden/Relu'),
    node('MatMul', ['h1r', 'w2'], ['logits0'], 'out/MatMul'),
    node('Add', ['logits0', 'b2'], ['logits'], 'out/Add'),
    node('Softmax', ['logits'], ['probs'], 'out/Softmax', [{ name: 'axis', i: 1 }]),
  ];
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  g.message(11, tensorValueInfo('features', [inputs - classes, 'pixels']));
  g.message(11, tensorValueInfo('network', ['pixels', classes]));
  g.message(12, tensorValueInfo('probs', ['pixels', classes]));
  return onnxModel(g);
}

interface Built {
  run: HeadRunner;
  release: () => Promise<void>;
}

/** Sessions of the heads used last, newest last: a model process holds one or two models at a time. */
const sessions = new Map<PixelHeadWeights, Promise<Built | null>>();
const KEEP_SESSIONS = 4;
let lastProblem = '';

/** Why the last head built fell back to JS ('' when it did not). */
export function headOnnxProblem(): string {
  return lastProblem;
}

async function build(
  head: PixelHeadWeights,
  o: typeof Ort,
  reference: (x: Float32Array, pixels: number) => Float32Array,
): Promise<Built | null> {
  // A band's buffers are tens of MiB: not kept in an arena between images.
  const session = await o.InferenceSession.create(pixelHeadOnnx(head), sessionOptions(false));
  const features = head.inputs - head.classes;
  const run: HeadRunner = async (planar, network, pixels) => {
    const out = await session.run({
      features: new o.Tensor('float32', planar, [features, pixels]),
      network: new o.Tensor('float32', network, [pixels, head.classes]),
    });
    return out.probs.data as Float32Array;
  };
  // The check: the same fixed inputs through both (features around the head's own mean and spread, random
  // probabilities, some below the floor).
  const pixels = 64;
  const rng = new SeededRandom(17);
  const planar = new Float32Array(features * pixels);
  for (let i = 0; i < planar.length; i++) {
    const j = Math.floor(i / pixels);
    const spread = head.scale[j] > 0 ? 1 / head.scale[j] : 1;
    planar[i] = head.mean[j] + rng.range(-2, 2) * spread;
  }
  const network = new Float32Array(pixels * head.classes);
  for (let p = 0; p < pixels; p++) {
    let total = 0;
    for (let c = 0; c < head.classes; c++) total += network[p * head.classes + c] = rng.range(0, 1) ** 6;
    for (let c = 0; c < head.classes; c++) network[p * head.classes + c] /= total;
  }
  const planes = Array.from({ length: features }, (_, j) => planar.subarray(j * pixels, (j + 1) * pixels));
  const expected = reference(bandInputs(planes, network, 0, pixels, head.classes), pixels);
  const got = await run(planar, network, pixels);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(expected[i] - got[i]));
  if (!(diff <= HEAD_ONNX_TOLERANCE) || got.length !== expected.length) {
    lastProblem = `the pixel head's ONNX graph differs from its JS forward by ${diff} (tolerance ${HEAD_ONNX_TOLERANCE}): the head runs in JS`;
    await session.release();
    return null;
  }
  lastProblem = '';
  return { run, release: () => session.release() };
}

/**
 * The onnxruntime runner of a head, or null (onnxruntime not installed or not chosen, a session that could not
 * be made, or a failed check: then the caller runs the JS forward). `reference` is the JS forward on raw
 * interleaved inputs (as bandInputs writes them) that the check compares with (by default the head's own,
 * headForwardRaw). Built once per head.
 */
export async function headOnnxRunner(
  head: PixelHeadWeights,
  reference?: (x: Float32Array, pixels: number) => Float32Array,
): Promise<HeadRunner | null> {
  if (inferenceChoice() === 'tfjs') return null;
  const o = loadOrt();
  if (!o) return null;
  let built = sessions.get(head);
  if (built) {
    // Most recently used goes last.
    sessions.delete(head);
    sessions.set(head, built);
  } else {
    built = build(head, o, reference ?? headForwardRaw(head)).catch((err: unknown) => {
      lastProblem = `the pixel head's ONNX graph could not run (${(err as Error).message}): the head runs in JS`;
      return null;
    });
    sessions.set(head, built);
    while (sessions.size > KEEP_SESSIONS) {
      const [oldest, entry] = sessions.entries().next().value as [PixelHeadWeights, Promise<Built | null>];
      sessions.delete(oldest);
      void entry.then((b) => b?.release());
    }
  }
  return (await built)?.run ?? null;
}

/** The head's JS forward as a HeadRunner (planar features, as the ONNX graph reads them). */
function jsRunner(head: PixelHeadWeights): HeadRunner {
  const forward = headForwardRaw(head);
  return (planar, network, pixels) => {
    const planes = Array.from({ length: planar.length / pixels }, (_, j) =>
      planar.subarray(j * pixels, (j + 1) * pixels),
    );
    return Promise.resolve(forward(bandInputs(planes, network, 0, pixels, head.classes), pixels));
  };
}

/**
 * The head on a whole image, as applyPixelHead (pixelHead.ts) computes it: through onnxruntime when it runs the
 * head's graph, band by band (the features' smoothings and the perceptron native), else in JS. `featuresOf`
 * gives each band's features (keptFeatures: those an earlier step computed of this image).
 */
export async function runPixelHead(
  head: PixelHeadWeights,
  image: RgbImage,
  probs: Float32Array,
  featuresOf: FeaturesOf = pixelFeaturesFast,
): Promise<Float32Array> {
  const found = await headOnnxRunner(head);
  // Without onnxruntime: the JS forward, on the features given (applyPixelHead computes the filter features itself).
  if (!found && featuresOf === pixelFeaturesFast) return applyPixelHead(head, image, probs);
  const runner = found ?? jsRunner(head);
  const { width: W, height: H } = image;
  const k = head.classes;
  const out = new Float32Array(W * H * k);
  for (let y0 = 0; y0 < H; y0 += BAND_ROWS) {
    const y1 = Math.min(H, y0 + BAND_ROWS);
    const pixels = (y1 - y0) * W;
    const planes = await featuresOf(image, y0, y1);
    const planar = new Float32Array(planes.length * pixels);
    planes.forEach((plane, j) => planar.set(plane, j * pixels));
    out.set(await runner(planar, probs.subarray(y0 * W * k, y1 * W * k), pixels), y0 * W * k);
  }
  return out;
}
