// Test helper: a network with non-trivial weights where a fresh one has trivial ones, so an export or a cut
// of the graph that drops or mixes up a weight shows in its outputs.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { CONTEXT_LAYERS } from '../../src/engine/network/contextHead';

/** Non-trivial weights everywhere a fresh network has trivial ones: batch-norm statistics, the zero head and the context head's read-outs. */
export function perturb(model: tfl.LayersModel): void {
  let seed = 1;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'BatchNormalization') {
      layer.setWeights(
        layer
          .getWeights()
          .map((w, i) =>
            i === 3
              ? tf.randomUniform(w.shape, 0.5, 2, 'float32', seed++)
              : tf.randomUniform(w.shape, -0.5, 0.5, 'float32', seed++),
          ),
      );
    } else if (
      layer.name === 'head' ||
      layer.name === CONTEXT_LAYERS.s8 ||
      layer.name === CONTEXT_LAYERS.s16 ||
      layer.name === CONTEXT_LAYERS.s16b
    ) {
      layer.setWeights(layer.getWeights().map((w) => tf.randomUniform(w.shape, -0.3, 0.3, 'float32', seed++)));
    }
  }
}
