// ONNX export of a folded graph (foldedGraph.ts), written directly as protobuf bytes (no protobuf library):
// the same ops, weights and shapes as the TF.js path, for onnxruntime-node. The graph takes and returns
// channels-last tensors, as the engine does: one Transpose at each end, convolutions in between run NCHW.
// The protobuf is written by onnxProto.ts.
import * as tf from '@tensorflow/tfjs-core';
import type { FoldedGraph, FoldedOp } from './foldedGraph';
import { Proto, floatTensor, int64Tensor, node, onnxModel, tensorValueInfo, type Attr } from './onnxProto';

/**
 * ONNX Resize's attributes for TF.js's upsamplings: resizeNearestNeighbor (no align corners, no half-pixel
 * centres: source = floor(dst / scale)) and the context head's bilinear one (half-pixel centres; both clamp at
 * the border).
 */
export function resizeAttrs(mode: 'nearest' | 'bilinear'): Attr[] {
  return mode === 'bilinear'
    ? [
        { name: 'mode', s: 'linear' },
        { name: 'coordinate_transformation_mode', s: 'half_pixel' },
      ]
    : [
        { name: 'mode', s: 'nearest' },
        { name: 'coordinate_transformation_mode', s: 'asymmetric' },
        { name: 'nearest_mode', s: 'floor' },
      ];
}

/** A float tensor value [N, H, W, C] with free N, H, W. */
function valueInfo(name: string, channels: number): Proto {
  return tensorValueInfo(name, ['batch', 'height', 'width', channels]);
}

/** TF.js filter [kh, kw, cin, cout] as ONNX [cout, cin, kh, kw]; a depthwise one [kh, kw, c, 1] as [c, 1, kh, kw]. */
async function onnxFilter(op: Extract<FoldedOp, { kind: 'conv' }>): Promise<{ dims: number[]; values: Float32Array }> {
  const f = op.depthwise ? tf.transpose(op.filter, [2, 3, 0, 1]) : tf.transpose(op.filter, [3, 2, 0, 1]);
  try {
    return { dims: f.shape, values: await read(f) };
  } finally {
    f.dispose();
  }
}

/** A tensor's values, read asynchronously: GPU backends cannot read synchronously under Node. */
async function read(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/**
 * The ONNX model bytes of a folded graph with `channels` output channels. The graph input and output are
 * channels-last [N, H, W, C] float tensors named "image" and "probs"; H and W must be multiples of the
 * network's stride, as for the TF.js path.
 */
/**
 * Softmax over the channels (axis 1) of an NCHW tensor, as elementwise nodes: exp(x - max) / sum. onnxruntime's
 * Softmax kernel took 22-30 ms for each of the network's two at 480x368 (half of a 95 ms forward here),
 * over axis 1 or, transposed, over the last axis alike; its Exp and reductions are vectorised and threaded.
 * `axes` names an int64 initializer holding [1] (ReduceSum's axes).
 */
export function channelSoftmax(input: string, output: string, name: string, axes: string): Proto[] {
  const t = (s: string): string => `${output}/${s}`;
  return [
    // Opset 13: ReduceMax takes its axes as an attribute, ReduceSum as an input.
    node('ReduceMax', [input], [t('max')], `${name}/max`, [
      { name: 'axes', ints: [1] },
      { name: 'keepdims', i: 1 },
    ]),
    node('Sub', [input, t('max')], [t('shifted')], `${name}/shift`),
    node('Exp', [t('shifted')], [t('exp')], `${name}/exp`),
    node('ReduceSum', [t('exp'), axes], [t('sum')], `${name}/sum`, [{ name: 'keepdims', i: 1 }]),
    node('Div', [t('exp'), t('sum')], [output], name),
  ];
}

export async function exportOnnx(graph: FoldedGraph, channels: number): Promise<Uint8Array> {
  return exportOnnxOutputs(graph, [{ tensor: graph.output, name: 'probs', channels }]);
}

/** A tensor of a folded graph (by its name there) as a channels-last graph output [N, H, W, channels] under `name`. */
export interface GraphOutput {
  tensor: string;
  name: string;
  channels: number;
}

/**
 * A tensor of a folded graph passed from one exported graph into another (splitForward.ts): channels first, as
 * onnxruntime computes it, without a transpose at either end; named `featureName(tensor)` in both graphs.
 */
export interface FeaturePort {
  tensor: string;
  channels: number;
}

/** The ONNX name of a feature port: the tensor's own name inside an exported graph. */
export function featureName(tensor: string): string {
  return `t/${tensor}`;
}

/**
 * The ONNX model bytes of a folded graph with the given outputs: each the tensor of a layer (by its name in
 * the graph), channels-last [N, H, W, channels] under `name`. The input is "image", as for `exportOnnx`.
 * `part`, when given, exports only its ops (a part of the graph, in the graph's order): the tensors it reads
 * from outside other than the image are `part.inputs`, and `part.features` are further outputs.
 */
export async function exportOnnxOutputs(
  graph: FoldedGraph,
  outputs: GraphOutput[],
  part?: { ops: FoldedOp[]; inputs: FeaturePort[]; features: FeaturePort[] },
): Promise<Uint8Array> {
  const g = new Proto().string(2, 'maskloop');
  const nodes: Proto[] = [];
  const inits: Proto[] = [];
  const ops = part?.ops ?? graph.ops;
  // Tensor names inside the graph are the layer names under "t/" (a layer may be called "probs"), channels first.
  // A feature port is that tensor itself, as a graph input or output: an Identity between the two made
  // onnxruntime 1.30 drop the tensor its other consumers read when it removed the Identity.
  const cf = (n: string): string => (n === graph.input ? 'image_nchw' : featureName(n));
  nodes.push(node('Transpose', ['image'], ['image_nchw'], 'to_nchw', [{ name: 'perm', ints: [0, 3, 1, 2] }]));
  for (const op of ops) {
    switch (op.kind) {
      case 'conv': {
        const { dims, values } = await onnxFilter(op);
        inits.push(floatTensor(`${op.output}/W`, dims, values));
        const inputs = [cf(op.input), `${op.output}/W`];
        if (op.bias) {
          inits.push(floatTensor(`${op.output}/B`, [dims[0]], await read(op.bias)));
          inputs.push(`${op.output}/B`);
        }
        const [kh, kw] = [op.filter.shape[0], op.filter.shape[1]];
        const convOut = op.activation === 'linear' ? cf(op.output) : `${cf(op.output)}/conv`;
        const attrs: Attr[] = [
          { name: 'kernel_shape', ints: [kh, kw] },
          { name: 'strides', ints: op.strides },
          { name: 'group', i: op.depthwise ? op.filter.shape[2] : 1 },
          // TF's 'same' puts the odd extra pixel of padding at the end, as SAME_UPPER does.
          op.pad === 'same' ? { name: 'auto_pad', s: 'SAME_UPPER' } : { name: 'pads', ints: [0, 0, 0, 0] },
        ];
        nodes.push(node('Conv', inputs, [convOut], `${op.output}/Conv`, attrs));
        if (op.activation === 'relu') nodes.push(node('Relu', [convOut], [cf(op.output)], `${op.output}/Relu`));
        if (op.activation === 'relu6')
          nodes.push(node('Clip', [convOut, 'zero', 'six'], [cf(op.output)], `${op.output}/Clip`));
        break;
      }
      case 'batchNorm': {
        const n = op.mean.shape[0];
        const scale = op.gamma ? await read(op.gamma) : new Float32Array(n).fill(1);
        const bias = op.beta ? await read(op.beta) : new Float32Array(n);
        inits.push(
          floatTensor(`${op.output}/scale`, [n], scale),
          floatTensor(`${op.output}/bias`, [n], bias),
          floatTensor(`${op.output}/mean`, [n], await read(op.mean)),
          floatTensor(`${op.output}/var`, [n], await read(op.variance)),
        );
        nodes.push(
          node(
            'BatchNormalization',
            [cf(op.input), `${op.output}/scale`, `${op.output}/bias`, `${op.output}/mean`, `${op.output}/var`],
            [cf(op.output)],
            op.output,
            [{ name: 'epsilon', f: op.epsilon }],
          ),
        );
        break;
      }
      case 'relu':
        nodes.push(node('Relu', [cf(op.input)], [cf(op.output)], op.output));
        break;
      case 'relu6':
        nodes.push(node('Clip', [cf(op.input), 'zero', 'six'], [cf(op.output)], op.output));
        break;
      case 'softmax':
        nodes.push(...channelSoftmax(cf(op.input), cf(op.output), op.output, 'channel_axis'));
        break;
      case 'pad':
        inits.push(int64Tensor(`${op.output}/pads`, [0, 0, op.top, op.left, 0, 0, op.bottom, op.right]));
        nodes.push(
          node('Pad', [cf(op.input), `${op.output}/pads`], [cf(op.output)], op.output, [
            { name: 'mode', s: 'constant' },
          ]),
        );
        break;
      case 'add':
        nodes.push(node('Sum', op.inputs.map(cf), [cf(op.output)], op.output));
        break;
      case 'mul':
        nodes.push(node('Mul', op.inputs.map(cf), [cf(op.output)], op.output));
        break;
      case 'concat':
        nodes.push(node('Concat', op.inputs.map(cf), [cf(op.output)], op.output, [{ name: 'axis', i: 1 }]));
        break;
      case 'upsample':
        inits.push(floatTensor(`${op.output}/scales`, [4], Float32Array.from([1, 1, op.scale[0], op.scale[1]])));
        // TF.js resizeNearestNeighbor (no align corners, no half-pixel centres): source = floor(dst / scale).
        // The context head's bilinear upsampling has half-pixel centres (clamped at the border in both).
        nodes.push(
          node('Resize', [cf(op.input), '', `${op.output}/scales`], [cf(op.output)], op.output, resizeAttrs(op.mode)),
        );
        break;
    }
  }
  if (ops.some((op) => op.kind === 'softmax')) inits.push(int64Tensor('channel_axis', [1]));
  // Clip's bounds, when a ReLU6 needs them (an unused initializer makes onnxruntime warn).
  if (ops.some((op) => op.kind === 'relu6' || (op.kind === 'conv' && op.activation === 'relu6'))) {
    inits.push(floatTensor('zero', [], Float32Array.of(0)), floatTensor('six', [], Float32Array.of(6)));
  }
  for (const o of outputs)
    nodes.push(
      node('Transpose', [cf(o.tensor)], [o.name], `to_nhwc/${o.name}`, [{ name: 'perm', ints: [0, 2, 3, 1] }]),
    );
  nodes.forEach((n) => g.message(1, n));
  inits.forEach((t) => g.message(5, t));
  g.message(11, valueInfo('image', 3));
  for (const i of part?.inputs ?? []) g.message(11, featureInfo(i));
  for (const o of outputs) g.message(12, valueInfo(o.name, o.channels));
  for (const f of part?.features ?? []) g.message(12, featureInfo(f));
  return onnxModel(g);
}

/** A feature port's value info [N, C, H, W]: its own free height and width (ports differ in stride). */
function featureInfo(p: FeaturePort): Proto {
  const name = featureName(p.tensor);
  return tensorValueInfo(name, ['batch', p.channels, `${name}:height`, `${name}:width`]);
}
