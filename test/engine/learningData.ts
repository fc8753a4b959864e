// The engine's learning test data and settings, shared by the scratch and pretrained-encoder learning tests.
import { DEFAULT_FINE_TUNE, type FineTuneSettings } from '../../src/engine/training/fineTune';
import type { TrainSample } from '../../src/engine/training/validation';
import { syntheticSample } from '../../src/synthetic/syntheticShapes';

/** n generated 96x96 two-class samples, seeds from `from` on. */
export function learningSamples(from: number, n: number): TrainSample[] {
  return Array.from({ length: n }, (_, i) => {
    const { image, mask } = syntheticSample({ width: 96, height: 96, numClasses: 2, seed: from + i });
    return { id: `s${from + i}`, image, mask };
  });
}

/** 12 epochs of 10 steps on 4 crops of 64x64: the learning test's fine-tune. */
export const LEARNING_SETTINGS: FineTuneSettings = {
  ...DEFAULT_FINE_TUNE,
  epochs: 12,
  stepsPerEpoch: 10,
  cropSize: 64,
  batchSize: 4,
  learningRate: 3e-3,
  patience: 12,
};
