// A network's forward through onnxruntime in two graphs: its frozen pretrained encoder, whose feature maps of
// each window are kept in an EncoderCache while the encoder's weights stay the same, and the rest of the
// network (decoder, context head, softmax) on them, exported again for every set of weights. A fine-tune
// validates the same images after several epochs with new decoder weights and the same frozen encoder: the
// encoder then runs once per image. The decoder at full resolution is most of a forward pass: a 480x368
// window took 37-65 ms on kept maps here, against 54-81 ms through the whole network.
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as Ort from 'onnxruntime-node';
import type { RgbImage } from '../../masks/maskImage';
import { encoderLayerNames, encoderOutputNames } from '../network/pretrainedUNet';
import { disposeGraph, foldGraph, type FoldedGraph, type FoldedOp } from './foldedGraph';
import { tensorsHash, weightsHash } from './foldedInference';
import { exportOnnxOutputs, featureName, type FeaturePort } from './onnxExport';
import { inferenceOrt, matchesTf, sessionOptions, type WindowForward } from './onnxInference';

/** A folded graph cut in two: the ops that compute `cut` (and nothing after it), and the others. */
export interface GraphSplit {
  /** The ops that `cut` needs, in the graph's order. */
  head: FoldedOp[];
  /** Every other op, in the graph's order. */
  tail: FoldedOp[];
  /** The head's tensors that the tail reads, in the graph's order. */
  frontier: string[];
}

function opInputs(op: FoldedOp): string[] {
  return 'inputs' in op ? op.inputs : [op.input];
}

/**
 * Cuts a folded graph after the tensors `cut`: the head computes them and everything they need, the tail the
 * rest. Null when a name of `cut` is no op's output, or when the graph's outputs are in the head.
 */
export function splitGraph(graph: FoldedGraph, cut: readonly string[]): GraphSplit | null {
  const produced = new Set(graph.ops.map((op) => op.output));
  if (cut.length === 0 || !cut.every((n) => produced.has(n))) return null;
  const needed = new Set(cut);
  const inHead = new Set<FoldedOp>();
  for (let i = graph.ops.length - 1; i >= 0; i--) {
    const op = graph.ops[i];
    if (!needed.has(op.output)) continue;
    inHead.add(op);
    for (const input of opInputs(op)) needed.add(input);
  }
  const head = graph.ops.filter((op) => inHead.has(op));
  const tail = graph.ops.filter((op) => !inHead.has(op));
  const headOutputs = new Set(head.map((op) => op.output));
  if (graph.outputs.some((o) => headOutputs.has(o))) return null;
  const read = new Set(tail.flatMap(opInputs));
  const frontier = head.map((op) => op.output).filter((n) => read.has(n));
  return { head, tail, frontier };
}

interface Features {
  data: Float32Array;
  dims: number[];
}

interface EncoderSession {
  key: number;
  session: Ort.InferenceSession;
}

interface DecoderSession {
  hash: number;
  /** Null: these weights' composed forward did not match TF.js (the caller predicts as before). */
  run: WindowForward | null;
  session: Ort.InferenceSession | null;
}

/**
 * The encoder's feature maps of windows of images, by window (`windowKey`), kept up to `maxBytes` while the
 * encoder's weights stay the same, with the onnxruntime sessions that computed and read them. One per
 * fine-tune: `release` frees it all.
 */
export class EncoderCache {
  private encoder: EncoderSession | null = null;
  private decoder: DecoderSession | null = null;
  private readonly features = new Map<string, Features[]>();
  private readonly ids = new WeakMap<RgbImage, number>();
  private nextId = 0;
  private bytes = 0;
  /** Encoder passes run, and those answered from the cache (for tests and reports). */
  readonly counts = { encoded: 0, reused: 0 };

  constructor(readonly maxBytes: number) {}

  /** The key of a window of an image (the same image object gets the same key). */
  windowKey(image: RgbImage, x0: number, y0: number, w: number, h: number): string {
    let id = this.ids.get(image);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(image, id);
    }
    return `${id}:${x0},${y0},${w}x${h}`;
  }

  /** Bytes of feature maps held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /** Frees the sessions and the feature maps. */
  async release(): Promise<void> {
    this.clear();
    const sessions = [this.encoder?.session, this.decoder?.session ?? undefined];
    this.encoder = null;
    this.decoder = null;
    for (const s of sessions) await s?.release();
  }

  private clear(): void {
    this.features.clear();
    this.bytes = 0;
  }

  /** @internal The encoder session for weights `key`: a new one drops the maps of the previous weights. */
  async encoderFor(key: number, create: () => Promise<Ort.InferenceSession>): Promise<Ort.InferenceSession> {
    if (this.encoder?.key === key) return this.encoder.session;
    const old = this.encoder;
    this.encoder = null;
    this.clear();
    await old?.session.release();
    this.encoder = { key, session: await create() };
    return this.encoder.session;
  }

  /**
   * @internal The decoder's forward of the whole network's weights `hash` if it is the one held (null: it was
   * refused for them), else undefined.
   */
  decoderOf(hash: number): WindowForward | null | undefined {
    return this.decoder?.hash === hash ? this.decoder.run : undefined;
  }

  /** @internal Holds a new decoder session, releasing the previous one. */
  async setDecoder(d: DecoderSession): Promise<void> {
    const old = this.decoder;
    this.decoder = d;
    await old?.session?.release();
  }

  /** @internal Feature maps of a window, computed by `encode` unless held; held while they fit. */
  async featuresOf(key: string | undefined, encode: () => Promise<Features[]>): Promise<Features[]> {
    const hit = key === undefined ? undefined : this.features.get(key);
    if (hit) {
      this.counts.reused++;
      return hit;
    }
    const f = await encode();
    this.counts.encoded++;
    const size = f.reduce((a, m) => a + m.data.byteLength, 0);
    if (key !== undefined && this.bytes + size <= this.maxBytes) {
      this.features.set(key, f);
      this.bytes += size;
    }
    return f;
  }
}

/** The ports through which the two graphs of a split pass the encoder's maps, channels-first. */
function frontierPorts(model: tfl.LayersModel, split: GraphSplit): FeaturePort[] {
  return split.frontier.map((tensor) => ({ tensor, channels: model.getLayer(tensor).outputShape[3] as number }));
}

/**
 * The frozen pretrained encoder of `model` alone as an ONNX graph (its feature maps channels-first, as the
 * decoder graph and the training graph read them), with the output names; null for a network without one or
 * with a layer the export does not know.
 */
export async function encoderOnnx(model: tfl.LayersModel): Promise<{ bytes: Uint8Array; names: string[] } | null> {
  const cut = encoderOutputNames(model);
  if (!cut) return null;
  return withSplit(model, cut, async (graph, split, ports) => ({
    bytes: await exportOnnxOutputs(graph, [], { ops: split.head, inputs: [], features: ports }),
    names: ports.map((p) => featureName(p.tensor)),
  }));
}

/**
 * Folds `model`, cuts its graph after `cut` and gives `use` the graph, the cut and its ports; the folded
 * graph is freed after. Null where the network does not fold or the cut does not split it.
 */
async function withSplit<T>(
  model: tfl.LayersModel,
  cut: readonly string[],
  use: (graph: FoldedGraph, split: GraphSplit, ports: FeaturePort[]) => Promise<T | null>,
): Promise<T | null> {
  const graph = foldGraph(model);
  if (!graph) return null;
  try {
    const split = splitGraph(graph, cut);
    return split ? await use(graph, split, frontierPorts(model, split)) : null;
  } finally {
    disposeGraph(graph);
  }
}

/**
 * The network's forward through onnxruntime as encoder and decoder graphs, whose encoder passes `cache` keeps
 * by window key; null where it does not apply (onnxruntime not chosen or not installed, no pretrained encoder,
 * an encoder layer being trained, a layer the export does not know) or the composed forward does not match
 * TF.js: the caller then predicts as before.
 */
export async function splitWindowForward(model: tfl.LayersModel, cache: EncoderCache): Promise<WindowForward | null> {
  const o = inferenceOrt();
  const cut = encoderOutputNames(model);
  if (!o || !cut) return null;
  const encoderLayers = encoderLayerNames(model).map((n) => model.getLayer(n));
  if (encoderLayers.some((l) => l.trainable)) return null;
  const hash = await weightsHash(model);
  const held = cache.decoderOf(hash);
  if (held !== undefined) return held;
  return withSplit(model, cut, async (graph, split, ports) => {
    const names = ports.map((p) => featureName(p.tensor));
    const key = await tensorsHash(encoderLayers.flatMap((l) => l.getWeights()));
    const encoder = await cache.encoderFor(key, async () =>
      o.InferenceSession.create(
        await exportOnnxOutputs(graph, [], { ops: split.head, inputs: [], features: ports }),
        sessionOptions(true),
      ),
    );
    const channels = (model.outputs[0].shape[3] as number | null) ?? 0;
    const decoderBytes = await exportOnnxOutputs(graph, [{ tensor: graph.output, name: 'probs', channels }], {
      ops: split.tail,
      inputs: ports,
      features: [],
    });
    // Both sessions with a memory arena: they live for one fine-tune and see one window size per image, and
    // without an arena the decoder's full-resolution activations were faulted in afresh at every run (a
    // street frame's decoder pass 144 ms against 57 ms).
    const decoder = await o.InferenceSession.create(decoderBytes, sessionOptions(true));
    const run: WindowForward = async (x, height, width, windowKey) => {
      const image = new o.Tensor('float32', x, [1, height, width, 3]);
      const features = await cache.featuresOf(windowKey, async () => {
        const out = await encoder.run({ image });
        return names.map((n) => ({ data: out[n].data as Float32Array, dims: [...out[n].dims] }));
      });
      const feeds: Record<string, Ort.Tensor> = { image };
      names.forEach((n, i) => (feeds[n] = new o.Tensor('float32', features[i].data, features[i].dims)));
      const out = await decoder.run(feeds);
      return out.probs.data as Float32Array;
    };
    if (!(await matchesTf(model, run))) {
      await decoder.release();
      await cache.setDecoder({ hash, run: null, session: null });
      return null;
    }
    await cache.setDecoder({ hash, run, session: decoder });
    return run;
  });
}
