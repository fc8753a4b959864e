// What the info bar says while a suggestion is on its way: pure, so the host's wording is tested without VS Code.
import * as path from 'node:path';
import type { ProgressEvent } from '../../protocol/modelProtocol';

/**
 * The pending suggestion's message for a progress event of its predict request (`follows`: the saved frame it
 * follows, if any), or null for events that change nothing there. A large image is predicted in tiles; a frame
 * that follows a run of saved frames first carries the pairs the model process has not kept and fits what they
 * teach, which takes seconds the person should see.
 */
export function pendingMessage(event: ProgressEvent, follows?: string): string | null {
  switch (event.type) {
    case 'tiles':
      return `The model is predicting… tile ${event.done}/${event.total}`;
    case 'prepare': {
      const step = event.total > 1 ? ` (${event.done + 1}/${event.total})` : '';
      const frame = follows ? ` ${path.basename(follows)}` : ' the neighbouring frame';
      return `Following${frame}: ${event.message}${step}…`;
    }
    case 'fineTune':
      return null;
    default: {
      const never: never = event;
      return never;
    }
  }
}
