// What the info bar says of the suggestion: where it came from, or why there is none.
import { assertNever, type SuggestionState } from '../../src/protocol/editorProtocol';

export function suggestionText(s: SuggestionState, showConfidence: boolean): string {
  switch (s.state) {
    case 'ready': {
      const model = `model version ${s.modelVersion}${s.trained ? '' : ' (untrained)'}`;
      const taught = s.learnedPairs ? `, as ${s.learnedPairs + 1} saved frames taught` : '';
      const source = !s.follows
        ? `Suggested by ${model}`
        : s.modelVersion === 0
          ? `Following ${s.follows}${taught} (no model yet)`
          : `Following ${s.follows}${taught}, refined by ${model}`;
      const file = s.file ? ` (pre-labelled: ${s.file})` : '';
      const noConfidence = showConfidence && !s.confidence ? '; no confidence for a pre-labelled suggestion' : '';
      const refining = s.refining ? '; improving it from the saved frames before it…' : '';
      return `${source}${file}${noConfidence}${refining}`;
    }
    case 'pending':
      return s.message;
    case 'none':
      return s.reason;
    case 'error':
      return `Suggestion failed: ${s.message}`;
    default:
      return assertNever(s);
  }
}
