// The gradient peer's thread (engine/training/gradientPeer.ts): its own TF.js on the model process's backend,
// a copy of the network built from its topology, and per step the gradients of its share of the batch.
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '../engine/network/bilinearUpsample';
import { resolveBackend } from '../engine/backends';
import { networkWeights, type PeerReply, type PeerRequest } from '../engine/training/gradientPeer';
import { stepLossFunction } from '../engine/training/trainStep';

let model: tfl.LayersModel | null = null;
/** The copy's weights in the order both sides share (networkWeights). */
let weights: tfl.LayerVariable[] = [];

function reply(m: PeerReply, transfer: ArrayBuffer[] = []): void {
  parentPort?.postMessage(m, transfer);
}

async function handle(m: PeerRequest): Promise<void> {
  switch (m.type) {
    case 'init': {
      await resolveBackend(m.backend);
      model = await tfl.models.modelFromJSON({ modelTopology: m.topology as tf.io.ModelJSON['modelTopology'] });
      weights = networkWeights(model);
      const shapes = weights.map((w) => w.shape.map((d) => d ?? 0).join('x'));
      const expected = m.shapes.map((s) => s.join('x'));
      if (shapes.join(',') !== expected.join(','))
        throw new Error(`the copy's weights (${shapes.length}) do not line up with the network's (${expected.length})`);
      reply({ type: 'ready' });
      return;
    }
    case 'step': {
      if (!model) throw new Error('step before init');
      const net = model;
      m.write.index.forEach((i, k) => {
        const w = weights[i];
        const t = tf.tensor(m.write.values[k], w.read().shape);
        w.write(t);
        t.dispose();
      });
      // The network's freezing can change between steps (a full fine-tune unfreezes the encoder stage by stage).
      const wanted = new Set(m.trainable);
      weights.forEach((w, i) => ((w.read() as tf.Variable).trainable = wanted.has(i)));
      const vars = m.trainable.map((i) => weights[i].read() as tf.Variable);
      const kernels = m.trainable.filter((i) => weights[i].name.includes('kernel')).map((i) => weights[i].read());
      const lossFn = stepLossFunction(net, kernels, m.crops, m.size, m.weights);
      const { value, grads } = tf.variableGrads(lossFn.loss, vars);
      lossFn.dispose();
      const loss = (await value.data())[0];
      // A variable the loss does not reach has no gradient: sent empty, as the optimiser then skips it.
      const out = await Promise.all(
        vars.map(async (v) => (grads[v.name] ? Float32Array.from(await grads[v.name].data()) : new Float32Array(0))),
      );
      tf.dispose([value, ...Object.values(grads)]);
      const reported = m.report.map((i) => Float32Array.from(weights[i].read().dataSync() as Float32Array));
      reply(
        { type: 'grads', id: m.id, loss, grads: out, reported, tensors: tf.memory().numTensors },
        [...out, ...reported].map((a) => a.buffer as ArrayBuffer),
      );
      return;
    }
    default: {
      const never: never = m;
      throw new Error(`unknown request ${String((never as { type: string }).type)}`);
    }
  }
}

// One request at a time: the peer sends the next step only after this one's answer.
parentPort?.on('message', (m: PeerRequest) => {
  handle(m).catch((err: unknown) => reply({ type: 'error', message: (err as Error).message }));
});
