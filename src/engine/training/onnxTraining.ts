// Training steps through onnxruntime: the network's forward pass in training mode, the segmentation loss and
// the gradients of every trainable weight written out as one ONNX graph, run by onnxruntime-node on both
// cores with native kernels. TF.js wasm computes the same step on one thread per gradient worker at about
// 5 GFLOP/s; this graph is built once per fine-tune from the layers model (frozen weights as constants,
// trainable ones as inputs), and each step feeds the crops and the current weights and reads back the loss,
// the gradients and the batch-norm statistics. The optimiser is TF.js's arithmetic (Adam, momentum or plain
// gradient descent) written out in JS on the weights as fed: the trainer holds them, their moments and the
// batch norms' moving averages from its first step and writes them into the model at `sync()`. Through TF.js
// ops, the optimiser and the averages took 15 ms of a 150 ms step here (about 100 small tensors per step). A
// fine-tune's arithmetic is that of the TF.js path to float rounding (tested: loss, gradients, batch
// statistics, the weights after SGD and momentum steps, Adam's arithmetic on the same gradients).
//
// What it covers: any network whose trainable part is stride-1 'same' convolutions (odd kernels), batch norm,
// ReLU, additions, multiplications, concatenations, zero padding and nearest 2x upsampling, ending in a
// softmax; frozen layers may be anything the inference export handles (strided and depthwise convolutions,
// bilinear upsampling). That is the pretrained-encoder network with its encoder frozen, the default on a CPU.
// A scratch network (its encoder trains, with strided convolutions), an unfrozen encoder stage, or decoder
// dropout train on TF.js: `buildTrainingGraph` says why not.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as Ort from 'onnxruntime-node';
import { BilinearUpsample } from '../network/bilinearUpsample';
import { IGNORE_INDEX } from '../../masks/maskImage';
import { Proto, floatTensor, int64Tensor, node, onnxModel, tensorValueInfo, type Attr } from '../inference/onnxProto';
import { unsupportedConv, type LayerLike } from '../inference/foldedGraph';
import { channelSoftmax, resizeAttrs } from '../inference/onnxExport';
import type { Crop } from './augment';

/** What the step's loss weighs (the segmentation loss of losses.ts plus L2 decay on the kernels). */
export interface TrainingLossWeights {
  dice: number;
  boundary: number;
}

interface LayerVar {
  name: string;
  trainable: boolean;
  read(): tf.Tensor;
}
type Layer = LayerLike & { weights: LayerVar[]; trainable: boolean };

/** A trainable variable fed to the graph, and where its gradient comes back. */
interface FedWeight {
  variable: tf.Variable;
  input: string;
  grad: string;
}

/** A batch norm's batch statistics, read back to move its averages as TF.js's layer does. */
interface BatchStats {
  layer: Layer;
  mean: string;
  variance: string;
  momentum: number;
}

export interface TrainingGraph {
  bytes: Uint8Array;
  batch: number;
  size: number;
  classes: number;
  weights: FedWeight[];
  stats: BatchStats[];
}

type Shape = [number, number, number, number];

class Unsupported extends Error {}

const BIG = 1e15;

/**
 * The training graph of `model` for batches of `batch` crops of `size` x `size`, with `trainable` the
 * variables to train (the optimiser's list), or the reason it cannot be built.
 */
export function buildTrainingGraph(
  model: tfl.LayersModel,
  trainable: tf.Variable[],
  batch: number,
  size: number,
  loss: TrainingLossWeights,
): TrainingGraph | { unsupported: string } {
  try {
    return build(model, trainable, batch, size, loss);
  } catch (err) {
    if (err instanceof Unsupported) return { unsupported: err.message };
    throw err;
  }
}

function build(
  model: tfl.LayersModel,
  trainable: tf.Variable[],
  batch: number,
  size: number,
  lossWeights: TrainingLossWeights,
): TrainingGraph {
  const layers = model.layers as unknown as Layer[];
  const nodes: Proto[] = [];
  const inits: Proto[] = [];
  const graphInputs: Proto[] = [];
  const graphOutputs: Proto[] = [];
  const fed: FedWeight[] = [];
  const stats: BatchStats[] = [];
  const trainableSet = new Set(trainable);
  let uid = 0;
  const fresh = (base: string): string => `${base}#${uid++}`;
  const add = (op: string, inputs: string[], outputs: string[], attrs: Attr[] = []): void => {
    nodes.push(node(op, inputs, outputs, fresh(op), attrs));
  };
  const constants = new Map<string, string>();
  const scalar = (v: number): string => {
    const key = `c/${v}`;
    if (!constants.has(key)) {
      constants.set(key, key);
      inits.push(floatTensor(key, [], Float32Array.of(v)));
    }
    return key;
  };
  const ints = (values: number[]): string => {
    const key = `i/${values.join(',')}`;
    if (!constants.has(key)) {
      constants.set(key, key);
      inits.push(int64Tensor(key, values));
    }
    return key;
  };
  const op1 = (op: string, inputs: string[], attrs: Attr[] = []): string => {
    const out = fresh(`${op}_out`);
    add(op, inputs, [out], attrs);
    return out;
  };

  // Forward: every tensor by its layer's name (channels first), with its static shape and whether it depends
  // on a trainable weight ("live": only live tensors get gradients).
  const tensor = new Map<string, string>();
  const shapes = new Map<string, Shape>();
  const live = new Map<string, boolean>();
  const alias = new Map<string, string>();
  const nameOf = (l: LayerLike): string => alias.get(l.name) ?? l.name;
  const inputsOf = (l: Layer): string[] => (l.inboundNodes[0]?.inboundLayers ?? []).map(nameOf);
  /** Backward steps, in forward order; run in reverse. */
  const backward: (() => void)[] = [];
  const grads = new Map<string, string[]>();
  const addGrad = (t: string, g: string): void => {
    grads.set(t, [...(grads.get(t) ?? []), g]);
  };
  const gradOf = (t: string): string | null => {
    const list = grads.get(t);
    if (!list || list.length === 0) return null;
    return list.length === 1 ? list[0] : op1('Sum', list);
  };
  /** A layer's weight: a graph input when it trains, else a constant; transposed to ONNX's layout by `perm`. */
  const weightInput = (w: LayerVar, perm: number[] | null = null): string => {
    const v = w.read() as tf.Variable;
    const base = `w/${w.name}`;
    if (trainableSet.has(v)) {
      graphInputs.push(tensorValueInfo(base, v.shape));
      fed.push({ variable: v, input: base, grad: `g/${w.name}` });
    } else {
      inits.push(floatTensor(base, v.shape, v.dataSync() as Float32Array));
    }
    return perm ? op1('Transpose', [base], [{ name: 'perm', ints: perm }]) : base;
  };
  const trains = (w: LayerVar | undefined): boolean => !!w && trainableSet.has(w.read() as tf.Variable);

  let output = '';
  for (const layer of layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const ins = inputsOf(layer);
    const name = layer.name;
    const anyLive = ins.some((i) => live.get(i));
    const set = (t: string, shape: Shape, isLive: boolean): void => {
      tensor.set(name, t);
      shapes.set(name, shape);
      live.set(name, isLive);
      output = name;
    };
    const x = ins.length ? tensor.get(ins[0])! : '';
    const xs = ins.length ? shapes.get(ins[0])! : ([0, 0, 0, 0] as Shape);
    if (cls === 'InputLayer') {
      graphInputs.push(tensorValueInfo('image', [batch, size, size, 3]));
      add('Transpose', ['image'], ['image_nchw'], [{ name: 'perm', ints: [0, 3, 1, 2] }]);
      set('image_nchw', [batch, 3, size, size], false);
      continue;
    }
    if (cls === 'Dropout') {
      if (((cfg.rate as number) ?? 0) > 0 && anyLive) throw new Unsupported(`dropout in ${name} trains on TF.js`);
      alias.set(name, ins[0]);
      continue;
    }
    if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const depthwise = cls === 'DepthwiseConv2D';
      if (unsupportedConv(cfg, depthwise))
        throw new Unsupported(`layer ${name}: a convolution option the training graph does not handle`);
      const [kernelVar, biasVar] = layer.weights;
      const kernel = kernelVar.read();
      const [kh, kw] = kernel.shape as [number, number];
      const strides = cfg.strides as [number, number];
      const pad = cfg.padding as 'same' | 'valid';
      const kernelTrains = trains(kernelVar);
      const biasTrains = trains(biasVar);
      const isLive = anyLive || kernelTrains || biasTrains;
      if (isLive && (depthwise || strides.some((s) => s !== 1) || pad !== 'same' || kh % 2 === 0 || kw % 2 === 0))
        throw new Unsupported(`layer ${name} trains but is not a stride-1 'same' convolution with an odd kernel`);
      const W = weightInput(kernelVar, depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1]);
      const B = biasVar ? weightInput(biasVar) : null;
      const cout = depthwise ? xs[1] : (kernel.shape[3] as number);
      const attrs: Attr[] = [
        { name: 'kernel_shape', ints: [kh, kw] },
        { name: 'strides', ints: strides },
        { name: 'group', i: depthwise ? xs[1] : 1 },
        pad === 'same' ? { name: 'auto_pad', s: 'SAME_UPPER' } : { name: 'pads', ints: [0, 0, 0, 0] },
      ];
      const y = op1('Conv', B ? [x, W, B] : [x, W], attrs);
      const out: Shape =
        pad === 'same'
          ? [batch, cout, Math.ceil(xs[2] / strides[0]), Math.ceil(xs[3] / strides[1])]
          : [batch, cout, Math.floor((xs[2] - kh) / strides[0]) + 1, Math.floor((xs[3] - kw) / strides[1]) + 1];
      set(y, out, isLive);
      if (isLive) {
        const [xName, xLive] = [x, live.get(ins[0]) ?? false];
        const cin = xs[1];
        const [H, Wd] = [xs[2], xs[3]];
        const ph = (kh - 1) / 2;
        const pw = (kw - 1) / 2;
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return;
          if (kernelTrains) {
            // dW[co, ci, a, b] = sum over n, y, x of dY[n, co, y, x] X[n, ci, y + a - ph, x + b - pw].
            const gT = op1('Reshape', [
              op1('Transpose', [g], [{ name: 'perm', ints: [1, 0, 2, 3] }]),
              ints([cout, -1]),
            ]);
            const xT = op1('Transpose', [xName], [{ name: 'perm', ints: [1, 0, 2, 3] }]);
            let dW: string;
            if (kh === 1 && kw === 1) {
              dW = op1('Gemm', [gT, op1('Reshape', [xT, ints([cin, -1])])], [{ name: 'transB', i: 1 }]);
            } else {
              const xp = op1('Pad', [xT, ints([0, 0, ph, pw, 0, 0, ph, pw])], [{ name: 'mode', s: 'constant' }]);
              const taps: string[] = [];
              for (let a = 0; a < kh; a++)
                for (let b = 0; b < kw; b++) {
                  const s = op1('Slice', [xp, ints([a, b]), ints([a + H, b + Wd]), ints([2, 3])]);
                  const m = op1('Gemm', [gT, op1('Reshape', [s, ints([cin, -1])])], [{ name: 'transB', i: 1 }]);
                  taps.push(op1('Unsqueeze', [m, ints([2])]));
                }
              dW = op1('Concat', taps, [{ name: 'axis', i: 2 }]);
            }
            // [co, ci, kh * kw] -> TF.js's [kh, kw, ci, co].
            const onnx = op1('Reshape', [dW, ints([cout, cin, kh, kw])]);
            add('Transpose', [onnx], [`g/${kernelVar.name}`], [{ name: 'perm', ints: [2, 3, 1, 0] }]);
          }
          if (biasVar && biasTrains)
            add('ReduceSum', [g, ints([0, 2, 3])], [`g/${biasVar.name}`], [{ name: 'keepdims', i: 0 }]);
          if (xLive) {
            // dX = conv(dY, W flipped in space, in and out swapped), same padding.
            const wt = op1('Transpose', [W], [{ name: 'perm', ints: [1, 0, 2, 3] }]);
            const flipped =
              kh === 1 && kw === 1
                ? wt
                : op1('Slice', [wt, ints([kh - 1, kw - 1]), ints([-BIG, -BIG]), ints([2, 3]), ints([-1, -1])]);
            addGrad(
              ins[0],
              op1(
                'Conv',
                [g, flipped],
                [
                  { name: 'kernel_shape', ints: [kh, kw] },
                  { name: 'pads', ints: [ph, pw, ph, pw] },
                ],
              ),
            );
          }
        });
      }
      continue;
    }
    if (cls === 'BatchNormalization') {
      const axis = cfg.axis as number;
      if (axis !== -1 && axis !== 3) throw new Unsupported(`batch norm ${name}: axis ${axis}`);
      const eps = cfg.epsilon as number;
      let k = 0;
      const gammaVar = cfg.scale !== false ? layer.weights[k++] : undefined;
      const betaVar = cfg.center !== false ? layer.weights[k++] : undefined;
      const C = xs[1];
      const chan = (t: string): string => op1('Reshape', [t, ints([1, C, 1, 1])]);
      const gamma = gammaVar ? chan(weightInput(gammaVar)) : null;
      const beta = betaVar ? chan(weightInput(betaVar)) : null;
      // Training mode, as TF.js's layer with training: true: the batch's mean and (biased) variance.
      const axes: Attr = { name: 'axes', ints: [0, 2, 3] };
      const mean = op1('ReduceMean', [x], [axes]);
      const xc = op1('Sub', [x, mean]);
      const variance = op1('ReduceMean', [op1('Mul', [xc, xc])], [axes]);
      const inv = op1('Reciprocal', [op1('Sqrt', [op1('Add', [variance, scalar(eps)])])]);
      const xhat = op1('Mul', [xc, inv]);
      let y = gamma ? op1('Mul', [xhat, gamma]) : xhat;
      if (beta) y = op1('Add', [y, beta]);
      const meanOut = `stats/${name}/mean`;
      const varOut = `stats/${name}/variance`;
      add('Reshape', [mean, ints([C])], [meanOut]);
      add('Reshape', [variance, ints([C])], [varOut]);
      graphOutputs.push(tensorValueInfo(meanOut, [C]), tensorValueInfo(varOut, [C]));
      stats.push({ layer, mean: meanOut, variance: varOut, momentum: cfg.momentum as number });
      const gammaTrains = trains(gammaVar);
      const betaTrains = trains(betaVar);
      const isLive = anyLive || gammaTrains || betaTrains;
      set(y, xs, isLive);
      if (isLive) {
        const xLive = live.get(ins[0]) ?? false;
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return;
          const sumAxes = ints([0, 2, 3]);
          if (betaVar && betaTrains)
            add('ReduceSum', [g, sumAxes], [`g/${betaVar.name}`], [{ name: 'keepdims', i: 0 }]);
          const gx = op1('Mul', [g, xhat]);
          if (gammaVar && gammaTrains)
            add('ReduceSum', [gx, sumAxes], [`g/${gammaVar.name}`], [{ name: 'keepdims', i: 0 }]);
          if (xLive) {
            // dX = gamma / sigma (dY - mean(dY) - xhat mean(dY xhat)).
            const centred = op1('Sub', [
              op1('Sub', [g, op1('ReduceMean', [g], [axes])]),
              op1('Mul', [xhat, op1('ReduceMean', [gx], [axes])]),
            ]);
            addGrad(ins[0], op1('Mul', [centred, gamma ? op1('Mul', [inv, gamma]) : inv]));
          }
        });
      }
      continue;
    }
    if (cls === 'ReLU') {
      const maxValue = cfg.maxValue as number | null | undefined;
      if (maxValue != null && maxValue !== 6) throw new Unsupported(`ReLU ${name}: max value ${maxValue}`);
      const y = maxValue === 6 ? op1('Clip', [x, scalar(0), scalar(6)]) : op1('Relu', [x]);
      const isLive = anyLive;
      set(y, xs, isLive);
      if (isLive)
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return;
          // TF.js: dy where 0 < x (and x <= 6 for ReLU6).
          let mask = op1('Greater', [x, scalar(0)]);
          if (maxValue === 6) mask = op1('And', [mask, op1('LessOrEqual', [x, scalar(6)])]);
          addGrad(ins[0], op1('Where', [mask, g, scalar(0)]));
        });
      continue;
    }
    if (cls === 'ZeroPadding2D') {
      if (cfg.dataFormat === 'channels_first') throw new Unsupported(`padding ${name}: channels first`);
      const [[top, bottom], [left, right]] = cfg.padding as [[number, number], [number, number]];
      const y = op1('Pad', [x, ints([0, 0, top, left, 0, 0, bottom, right])], [{ name: 'mode', s: 'constant' }]);
      set(y, [batch, xs[1], xs[2] + top + bottom, xs[3] + left + right], anyLive);
      if (anyLive)
        backward.push(() => {
          const g = gradOf(name);
          if (g) addGrad(ins[0], op1('Slice', [g, ints([top, left]), ints([top + xs[2], left + xs[3]]), ints([2, 3])]));
        });
      continue;
    }
    if (cls === 'Add') {
      const y = op1(
        'Sum',
        ins.map((i) => tensor.get(i)!),
      );
      set(y, xs, anyLive);
      if (anyLive)
        backward.push(() => {
          const g = gradOf(name);
          if (g) for (const i of ins) if (live.get(i)) addGrad(i, g);
        });
      continue;
    }
    if (cls === 'Multiply') {
      if (ins.length !== 2) throw new Unsupported(`multiply ${name}: ${ins.length} inputs`);
      const [a, b] = ins.map((i) => tensor.get(i)!);
      const y = op1('Mul', [a, b]);
      set(y, xs, anyLive);
      if (anyLive)
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return;
          if (live.get(ins[0])) addGrad(ins[0], op1('Mul', [g, b]));
          if (live.get(ins[1])) addGrad(ins[1], op1('Mul', [g, a]));
        });
      continue;
    }
    if (cls === 'Concatenate') {
      if (cfg.axis !== -1 && cfg.axis !== 3) throw new Unsupported(`concatenate ${name}: axis ${String(cfg.axis)}`);
      const y = op1(
        'Concat',
        ins.map((i) => tensor.get(i)!),
        [{ name: 'axis', i: 1 }],
      );
      const widths = ins.map((i) => shapes.get(i)![1]);
      set(y, [batch, widths.reduce((s, w) => s + w, 0), xs[2], xs[3]], anyLive);
      if (anyLive)
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return;
          const parts = ins.map((i) => fresh(`split_${i}`));
          add('Split', [g, ints(widths)], parts, [{ name: 'axis', i: 1 }]);
          ins.forEach((i, k) => {
            if (live.get(i)) addGrad(i, parts[k]);
          });
        });
      continue;
    }
    if (cls === 'UpSampling2D' || cls === BilinearUpsample.className) {
      const bilinear = cls !== 'UpSampling2D';
      if (!bilinear && ((cfg.interpolation ?? 'nearest') !== 'nearest' || cfg.dataFormat === 'channels_first'))
        throw new Unsupported(`upsampling ${name}: options`);
      const [sh, sw] = bilinear ? [cfg.factor as number, cfg.factor as number] : (cfg.size as [number, number]);
      if (bilinear && anyLive) throw new Unsupported(`bilinear upsampling ${name} trains`);
      const scales = fresh('scales');
      inits.push(floatTensor(scales, [4], Float32Array.from([1, 1, sh, sw])));
      const y = op1('Resize', [x, '', scales], resizeAttrs(bilinear ? 'bilinear' : 'nearest'));
      set(y, [batch, xs[1], xs[2] * sh, xs[3] * sw], anyLive);
      if (anyLive)
        backward.push(() => {
          const g = gradOf(name);
          if (!g) return; // Nearest: each input pixel fed an sh x sw block; its gradient is the block's sum.
          const blocks = op1('Reshape', [g, ints([batch, xs[1], xs[2], sh, xs[3], sw])]);
          addGrad(ins[0], op1('ReduceSum', [blocks, ints([3, 5])], [{ name: 'keepdims', i: 0 }]));
        });
      continue;
    }
    if (cls === 'Softmax') {
      if (cfg.axis !== -1 && cfg.axis !== 3 && cfg.axis !== undefined)
        throw new Unsupported(`softmax ${name}: axis ${String(cfg.axis)}`);
      // Written out as the inference export writes it (onnxruntime's Softmax over axis 1 is slow).
      const y = fresh('softmax_out');
      channelSoftmax(x, y, fresh('Softmax'), ints([1])).forEach((n) => nodes.push(n));
      set(y, xs, anyLive);
      continue;
    }
    throw new Unsupported(`layer ${name} (${cls}) is not in the training graph`);
  }

  const outLayer = (model.outputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  const outName = nameOf(outLayer);
  if (outName !== output || outLayer.getClassName() !== 'Softmax')
    throw new Unsupported('the network does not end in its softmax');
  if (layers.some((l) => l !== outLayer && l.getClassName() === 'Softmax' && live.get(nameOf(l))))
    throw new Unsupported('a softmax before the output trains');
  const [, K] = shapes.get(outName)!;
  const P = tensor.get(outName)!;

  // The segmentation loss of losses.ts (cross-entropy, soft Dice, boundary-band cross-entropy; ignore pixels
  // out of all three), and its gradient with respect to the probabilities, written out.
  graphInputs.push(
    tensorValueInfo('onehot', [batch, K, size, size]),
    tensorValueInfo('valid', [batch, 1, size, size]),
    tensorValueInfo('band', [batch, 1, size, size]),
  );
  const all = ints([0, 1, 2, 3]);
  const perClass = ints([0, 2, 3]);
  const sum = (t: string, axes: string, keep = 0): string =>
    op1('ReduceSum', [t, axes], [{ name: 'keepdims', i: keep }]);
  const clipped = op1('Clip', [P, scalar(1e-7), scalar(1)]);
  const logp = op1('Log', [clipped]);
  const ce = op1('Neg', [sum(op1('Mul', ['onehot', logp]), ints([1]), 1)]);
  const nValid = op1('Max', [sum('valid', all), scalar(1)]);
  const bandValid = op1('Mul', ['band', 'valid']);
  const nBand = op1('Max', [sum(bandValid, all), scalar(1)]);
  const ceMean = op1('Div', [sum(op1('Mul', [ce, 'valid']), all), nValid]);
  const bandMean = op1('Div', [sum(op1('Mul', [ce, bandValid]), all), nBand]);
  const pv = op1('Mul', [P, 'valid']);
  const inter = sum(op1('Mul', [pv, 'onehot']), perClass, 1);
  const denom1 = op1('Add', [op1('Add', [sum(pv, perClass, 1), sum('onehot', perClass, 1)]), scalar(1)]);
  const num1 = op1('Add', [op1('Mul', [inter, scalar(2)]), scalar(1)]);
  const dice = op1('Div', [num1, denom1]);
  const diceLoss = op1('Sub', [scalar(1), op1('ReduceMean', [dice], [{ name: 'keepdims', i: 0 }])]);
  add(
    'Sum',
    [ceMean, op1('Mul', [diceLoss, scalar(lossWeights.dice)]), op1('Mul', [bandMean, scalar(lossWeights.boundary)])],
    ['loss'],
  );
  graphOutputs.push(tensorValueInfo('loss', []));
  // d/dP: the log's 1/P where the clip passes it (1e-7 <= P <= 1, as TF.js's clipByValue gradient), times
  // each pixel's weight; the Dice term's per-class derivative.
  const pass = op1(
    'Cast',
    [op1('And', [op1('GreaterOrEqual', [P, scalar(1e-7)]), op1('LessOrEqual', [P, scalar(1)])])],
    [{ name: 'to', i: 1 }],
  );
  const pixelWeight = op1('Add', [
    op1('Div', ['valid', nValid]),
    op1('Mul', [op1('Div', [bandValid, nBand]), scalar(lossWeights.boundary)]),
  ]);
  const dCe = op1('Neg', [op1('Mul', [op1('Div', [op1('Mul', ['onehot', pass]), clipped]), pixelWeight])]);
  const dDiceClass = op1('Sub', [
    op1('Div', [op1('Mul', ['onehot', scalar(2)]), denom1]),
    op1('Div', [num1, op1('Mul', [denom1, denom1])]),
  ]);
  const dDice = op1('Mul', [op1('Mul', [dDiceClass, 'valid']), scalar(-lossWeights.dice / K)]);
  const dP = op1('Add', [dCe, dDice]);
  // Softmax: dZ = P (dP - sum over classes of dP P).
  const dZ = op1('Mul', [P, op1('Sub', [dP, sum(op1('Mul', [dP, P]), ints([1]), 1)])]);
  const softmaxIn = inputsOf(outLayer as Layer)[0];
  if (live.get(softmaxIn)) addGrad(softmaxIn, dZ);
  for (let i = backward.length - 1; i >= 0; i--) backward[i]();
  if (fed.length === 0) throw new Unsupported('nothing trains');
  for (const f of fed) graphOutputs.push(tensorValueInfo(f.grad, f.variable.shape));
  const g = new Proto().string(2, 'maskloop-training');
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  graphInputs.forEach((t) => g.message(11, t));
  graphOutputs.forEach((t) => g.message(12, t));
  return { bytes: onnxModel(g), batch, size, classes: K, weights: fed, stats };
}

/** The graph's label inputs from a batch of crops: one-hot classes, valid pixels and the boundary band. */
export function labelInputs(
  crops: Crop[],
  size: number,
  classes: number,
): { image: Float32Array; onehot: Float32Array; valid: Float32Array; band: Float32Array } {
  const area = size * size;
  const image = new Float32Array(crops.length * area * 3);
  const onehot = new Float32Array(crops.length * classes * area);
  const valid = new Float32Array(crops.length * area);
  const band = new Float32Array(crops.length * area);
  crops.forEach((c, n) => {
    image.set(c.x, n * area * 3);
    band.set(c.band, n * area);
    for (let i = 0; i < area; i++) {
      const label = c.y[i];
      if (label === IGNORE_INDEX || label < 0 || label >= classes) continue;
      valid[n * area + i] = 1;
      onehot[(n * classes + label) * area + i] = 1;
    }
  });
  return { image, onehot, valid, band };
}

/**
 * The optimiser of the steps through onnxruntime, as TF.js's `train.adam(learningRate)` (beta 0.9 and 0.999,
 * the backend's epsilon), `train.momentum(learningRate, momentum)` or `train.sgd(learningRate)` compute it.
 */
export type StepOptimizer =
  | { kind: 'adam'; learningRate: number }
  | { kind: 'momentum'; learningRate: number; momentum: number }
  | { kind: 'sgd'; learningRate: number };

const [BETA1, BETA2] = [0.9, 0.999];

/** The optimiser a fine-tune's settings ask for (fineTune.ts makes the same one in TF.js for its TF.js path). */
export function stepOptimizer(settings: { optimizer: 'adam' | 'sgd'; learningRate: number }): StepOptimizer {
  return settings.optimizer === 'adam'
    ? { kind: 'adam', learningRate: settings.learningRate }
    : { kind: 'momentum', learningRate: settings.learningRate, momentum: 0.9 };
}

/**
 * TF.js's optimiser arithmetic on plain arrays: `apply` moves each weight array by its gradient as
 * `optimizer.applyGradients` moves the variables (Adam with its bias-corrected moments and the backend's
 * epsilon; momentum without Nesterov; plain SGD).
 */
export class WeightOptimizer {
  private readonly first: Float32Array[];
  private readonly second: Float32Array[];
  /** Adam's running powers of beta (TF.js's accBeta1 and accBeta2). */
  private beta1Power = BETA1;
  private beta2Power = BETA2;

  constructor(
    readonly optimizer: StepOptimizer,
    sizes: readonly number[],
    private readonly epsilon: number,
  ) {
    this.first = sizes.map((n) => new Float32Array(n));
    this.second = optimizer.kind === 'adam' ? sizes.map((n) => new Float32Array(n)) : [];
  }

  apply(values: Float32Array[], grads: readonly Float32Array[]): void {
    const opt = this.optimizer;
    values.forEach((v, k) => {
      const g = grads[k];
      const m = this.first[k];
      if (opt.kind === 'adam') {
        const s = this.second[k];
        const [c1, c2] = [1 - this.beta1Power, 1 - this.beta2Power];
        for (let i = 0; i < v.length; i++) {
          m[i] = m[i] * BETA1 + g[i] * (1 - BETA1);
          s[i] = s[i] * BETA2 + g[i] * g[i] * (1 - BETA2);
          v[i] += (m[i] / c1 / (Math.sqrt(s[i] / c2) + this.epsilon)) * -opt.learningRate;
        }
      } else if (opt.kind === 'momentum') {
        for (let i = 0; i < v.length; i++) {
          m[i] = opt.momentum * m[i] + g[i];
          v[i] += -opt.learningRate * m[i];
        }
      } else {
        for (let i = 0; i < v.length; i++) v[i] += -opt.learningRate * g[i];
      }
    });
    this.beta1Power *= BETA1;
    this.beta2Power *= BETA2;
  }
}

/** What the trainer holds from its first step: the fed weights, their optimiser, the batch norms' averages. */
interface TrainerState {
  values: Float32Array[];
  optimizer: WeightOptimizer;
  moving: { mean: Float32Array; variance: Float32Array }[];
}

/**
 * A loaded training graph and its optimiser. From its first step it holds the trainable weights and the batch
 * norms' moving averages; `sync()` writes them into the model (before anything reads the model: a validation,
 * a snapshot, the end of training).
 */
export class OnnxTrainer {
  private state: TrainerState | null = null;

  private constructor(
    private readonly o: typeof Ort,
    private readonly session: Ort.InferenceSession,
    readonly graph: TrainingGraph,
    readonly optimizer: StepOptimizer,
  ) {}

  static async create(
    o: typeof Ort,
    graph: TrainingGraph,
    options: Ort.InferenceSession.SessionOptions,
    optimizer: StepOptimizer,
  ): Promise<OnnxTrainer> {
    return new OnnxTrainer(o, await o.InferenceSession.create(graph.bytes, options), graph, optimizer);
  }

  private async load(): Promise<TrainerState> {
    const values: Float32Array[] = [];
    for (const w of this.graph.weights) values.push(Float32Array.from((await w.variable.data()) as Float32Array));
    const moving: TrainerState['moving'] = [];
    for (const s of this.graph.stats) {
      const [mean, variance] = s.layer.weights.slice(-2);
      moving.push({
        mean: Float32Array.from((await mean.read().data()) as Float32Array),
        variance: Float32Array.from((await variance.read().data()) as Float32Array),
      });
    }
    const optimizer = new WeightOptimizer(
      this.optimizer,
      values.map((v) => v.length),
      tf.backend().epsilon(),
    );
    return { values, optimizer, moving };
  }

  /**
   * One optimiser step on the crops: the gradients plus L2 decay (`weightDecay`) on the weights in `decayed`,
   * applied by the optimiser; each batch norm's moving averages moved by the batch's statistics as TF.js's layer
   * moves them in training. Returns the batch's loss, the decay term included.
   */
  async step(crops: Crop[], decayed: ReadonlySet<tf.Tensor>, weightDecay: number): Promise<number> {
    this.state ??= await this.load();
    const st = this.state;
    const r = await this.run(crops, st.values);
    let l2 = 0;
    this.graph.weights.forEach((w, k) => {
      if (weightDecay <= 0 || !decayed.has(w.variable)) return;
      const [g, v] = [r.grads[k], st.values[k]];
      for (let i = 0; i < g.length; i++) {
        g[i] += weightDecay * v[i];
        l2 += v[i] * v[i];
      }
    });
    st.optimizer.apply(st.values, r.grads);
    this.graph.stats.forEach((s, k) => {
      const decay = 1 - s.momentum;
      for (const [moving, batch] of [
        [st.moving[k].mean, r.stats[k].mean],
        [st.moving[k].variance, r.stats[k].variance],
      ] as const)
        for (let i = 0; i < moving.length; i++) moving[i] -= (moving[i] - batch[i]) * decay;
    });
    return r.loss + (weightDecay / 2) * l2;
  }

  /** Writes the weights and the moving averages the steps reached into the model's variables. */
  sync(): void {
    const st = this.state;
    if (!st) return;
    this.graph.weights.forEach((w, k) => {
      const t = tf.tensor(st.values[k], w.variable.shape);
      w.variable.assign(t);
      t.dispose();
    });
    this.graph.stats.forEach((s, k) => {
      const [mean, variance] = s.layer.weights.slice(-2);
      for (const [variable, values] of [
        [mean, st.moving[k].mean],
        [variance, st.moving[k].variance],
      ] as const) {
        const t = tf.tensor(values, variable.read().shape);
        (variable as unknown as { write(t: tf.Tensor): void }).write(t);
        t.dispose();
      }
    });
  }

  /**
   * The step's segmentation loss (no weight decay), each fed variable's gradient at `values` (in the graph's
   * weights' order), each batch norm's statistics.
   */
  async run(
    crops: Crop[],
    values: readonly Float32Array[],
  ): Promise<{
    loss: number;
    grads: Float32Array[];
    stats: { mean: Float32Array; variance: Float32Array }[];
  }> {
    const { batch, size, classes } = this.graph;
    if (crops.length !== batch) throw new Error(`the training graph takes ${batch} crops, got ${crops.length}`);
    const { image, onehot, valid, band } = labelInputs(crops, size, classes);
    const T = this.o.Tensor;
    const feeds: Record<string, Ort.Tensor> = {
      image: new T('float32', image, [batch, size, size, 3]),
      onehot: new T('float32', onehot, [batch, classes, size, size]),
      valid: new T('float32', valid, [batch, 1, size, size]),
      band: new T('float32', band, [batch, 1, size, size]),
    };
    this.graph.weights.forEach((w, k) => (feeds[w.input] = new T('float32', values[k], w.variable.shape)));
    const out = await this.session.run(feeds);
    return {
      loss: (out.loss.data as Float32Array)[0],
      grads: this.graph.weights.map((w) => out[w.grad].data as Float32Array),
      stats: this.graph.stats.map((s) => ({
        mean: out[s.mean].data as Float32Array,
        variance: out[s.variance].data as Float32Array,
      })),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * One optimiser step through the training graph (`OnnxTrainer.step`), with L2 decay on `kernels`; the model's
 * variables take the result at the trainer's `sync()`.
 */
export async function onnxStep(
  trainer: OnnxTrainer,
  kernels: tf.Tensor[],
  weightDecay: number,
  crops: Crop[],
): Promise<number> {
  return trainer.step(crops, new Set(kernels), weightDecay);
}

/**
 * Whether this fine-tune's steps can run through onnxruntime, and why not: onnxruntime-node loads, TF.js
 * runs on the CPU (wasm or plain JS; a GPU backend trains there), nothing forces TF.js, and the network's
 * trainable part is one the training graph covers (`buildTrainingGraph`, tried here on the real weights).
 */
export function onnxTrainingPlan(
  model: tfl.LayersModel,
  trainable: tf.Variable[],
  settings: { trainingRuntime: 'auto' | 'tfjs'; encoderStages: number; batchSize: number },
  size: number,
  loss: TrainingLossWeights,
  env: { backend: string; inference: string; ort: typeof Ort | null; ortError: string },
): { ok: true } | { ok: false; reason: string } {
  if (settings.trainingRuntime === 'tfjs') return { ok: false, reason: 'TF.js, as set' };
  if (env.inference === 'tfjs') return { ok: false, reason: 'TF.js: MASKLOOP_INFERENCE=tfjs' };
  if (env.backend !== 'wasm' && env.backend !== 'cpu')
    return { ok: false, reason: `TF.js on ${env.backend}: onnxruntime runs on the CPU only` };
  if (!env.ort) return { ok: false, reason: `TF.js: onnxruntime-node does not load (${env.ortError})` };
  if (settings.encoderStages > 0) return { ok: false, reason: 'TF.js: the encoder trains (--encoder-stages)' };
  const graph = buildTrainingGraph(model, trainable, settings.batchSize, size, loss);
  if ('unsupported' in graph) return { ok: false, reason: `TF.js: ${graph.unsupported}` };
  return { ok: true };
}
