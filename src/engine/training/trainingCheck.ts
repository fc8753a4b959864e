// After a fine-tune: does the new version reproduce the masks it was trained on? A version that suggests
// (almost) nothing where its own training masks hold objects learned nothing, whatever validation says (with
// few images there may be no validation at all, and "held at zero" passes a comparison). Pure: unit-tested.
import { IGNORE_INDEX, type MaskImage } from '../../masks/maskImage';
import type { TrainingFit } from '../../protocol/modelTypes';

export type { TrainingFit };

/** Below this share of object pixels there is nothing to miss: the check passes. */
const MIN_OBJECT_SHARE = 0.001;
/** A version that finds less than this share of its training images' object pixels learned nothing... */
const MIN_OBJECT_RECALL = 0.1;
/** ...as does one whose suggestions on them save less than this share of the work of painting from nothing. */
const MIN_SAVING = 0.2;

/**
 * Judges a fine-tuned version by its suggestions on its own training images (`pairs`: the true mask and the
 * suggestion). What it knows of the fine-tune names the likely cause: the training loss of the first and last
 * epoch, when there were epochs, and whether only the context head was fitted (the fast fine-tune).
 */
export function trainingCheck(
  pairs: readonly { truth: MaskImage; suggestion: MaskImage }[],
  how: { loss?: { first: number; last: number }; contextOnly?: boolean; pixelHead?: boolean } = {},
): TrainingFit {
  const { loss } = how;
  let changed = 0;
  let empty = 0;
  let objects = 0;
  let found = 0;
  for (const { truth, suggestion } of pairs) {
    let labelled = 0;
    let wrong = 0;
    let fg = 0;
    for (let i = 0; i < truth.data.length; i++) {
      const t = truth.data[i];
      if (t === IGNORE_INDEX) continue;
      labelled++;
      const p = suggestion.data[i];
      if (p !== t) wrong++;
      if (t !== 0) {
        fg++;
        if (p !== 0) found++;
      }
    }
    objects += fg;
    changed += labelled === 0 ? 0 : wrong / labelled;
    empty += labelled === 0 ? 0 : fg / labelled;
  }
  const n = pairs.length;
  const fit = {
    images: n,
    changedFraction: n ? changed / n : 0,
    emptyFraction: n ? empty / n : 0,
    objectRecall: objects ? found / objects : 1,
  };
  const pc = (v: number): string => `${(100 * v).toFixed(1)}%`;
  const figures = `on its ${n} training image(s) its suggestions need ${pc(fit.changedFraction)} of pixels changed (an empty suggestion: ${pc(fit.emptyFraction)}) and find ${pc(fit.objectRecall)} of the object pixels`;
  if (n === 0 || fit.emptyFraction < MIN_OBJECT_SHARE)
    return {
      ...fit,
      learnedNothing: false,
      reason:
        n === 0
          ? 'no training images checked'
          : `the training masks hold almost no objects (${pc(fit.emptyFraction)} of pixels)`,
    };
  const learnedNothing =
    fit.objectRecall < MIN_OBJECT_RECALL || fit.changedFraction > (1 - MIN_SAVING) * fit.emptyFraction;
  if (!learnedNothing) return { ...fit, learnedNothing, reason: figures };
  const causes: string[] = [];
  // On ISBI EM membranes the fast fine-tune found 16% of the membrane pixels of its own training sections.
  if (how.contextOnly)
    causes.push(
      how.pixelHead
        ? 'the quick fine-tune fits only a linear read-out of 8-pixel cells and the pixel head, not the decoder: run the full fine-tune (epochs above 0)'
        : 'the quick fine-tune fits only a linear read-out of 8-pixel cells, which cannot draw thin or small structures: run the full fine-tune (epochs above 0)',
    );
  if (loss && loss.last > 0.8 * loss.first)
    causes.push(
      `the training loss hardly fell (${loss.first.toFixed(3)} -> ${loss.last.toFixed(3)}): try another learning rate (--lr / maskloop.fineTune.learningRate) or more epochs`,
    );
  if (fit.emptyFraction < 0.05)
    causes.push(
      `the objects are small (${pc(fit.emptyFraction)} of the labelled pixels): label more images that show them`,
    );
  causes.push(
    'check that each mask matches its image (maskloop eval --images ... --masks ... on the training images shows it)',
  );
  return {
    ...fit,
    learnedNothing,
    reason: `learned nothing: ${figures}. Likely: ${causes.join('; ')}. The version is kept aside; --force (or a fine-tune after more masks) makes one current`,
  };
}
