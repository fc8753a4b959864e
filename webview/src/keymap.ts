// The mask editor's keys: which key does what, apart from the DOM so that it can be read (and tested) at a glance.
// Keys with Ctrl, Cmd or Alt are VS Code's (save, undo, Alt+Left/Right to the previous/next image).

export type Tool = 'brush' | 'eraser' | 'polygon' | 'wand' | 'click';

export const TOOL_LABELS: Record<Tool, string> = {
  brush: 'Brush (B)',
  eraser: 'Eraser (E)',
  polygon: 'Polygon / lasso (P)',
  wand: 'Magic wand fill (W)',
  click: 'Click to segment (K): click the object, Shift+click what is not, drag a box',
};

export const TOOL_ICONS: Record<Tool, string> = {
  brush: 'edit',
  eraser: 'clear-all',
  polygon: 'primitive-square',
  wand: 'sparkle',
  click: 'target',
};

const TOOL_KEYS: Record<string, Tool> = { b: 'brush', e: 'eraser', p: 'polygon', w: 'wand', k: 'click' };

export type LayerToggle = 'showMask' | 'showSuggestion' | 'showImage' | 'showConfidence';

const LAYER_KEYS: Record<string, LayerToggle> = {
  m: 'showMask',
  s: 'showSuggestion',
  i: 'showImage',
  c: 'showConfidence',
};

export type KeyAction =
  | { kind: 'tool'; tool: Tool }
  | { kind: 'brushSize'; grow: boolean }
  /** The nth foreground class of the palette (1-9). */
  | { kind: 'class'; nth: number }
  | { kind: 'accept' }
  | { kind: 'reject' }
  | { kind: 'fit' }
  | { kind: 'actualSize' }
  | { kind: 'toggle'; layer: LayerToggle }
  | { kind: 'zoom'; factor: number }
  | { kind: 'closePolygon' }
  | { kind: 'cancel' }
  | { kind: 'dropVertex' }
  /** Click tool: paint the shown candidate, show the next one. */
  | { kind: 'acceptClick' }
  | { kind: 'nextCandidate' };

/**
 * What a key (KeyboardEvent.key, without Ctrl, Cmd or Alt) does, given the active tool, whether a polygon
 * is being drawn and whether the click tool shows a candidate; null: nothing (the key is left to VS Code).
 */
export function keyAction(key: string, tool: Tool, polygonOpen: boolean, clickShown = false): KeyAction | null {
  const clicking = tool === 'click' && clickShown;
  const k = key.toLowerCase();
  if (TOOL_KEYS[k]) return { kind: 'tool', tool: TOOL_KEYS[k] };
  if (LAYER_KEYS[k]) return { kind: 'toggle', layer: LAYER_KEYS[k] };
  if (/^[1-9]$/.test(k)) return { kind: 'class', nth: Number(k) };
  switch (k) {
    case '[':
      return { kind: 'brushSize', grow: false };
    case ']':
      return { kind: 'brushSize', grow: true };
    case 'a':
      return clicking ? { kind: 'acceptClick' } : { kind: 'accept' };
    case 'r':
      return { kind: 'reject' };
    case 'f':
      return { kind: 'fit' };
    case 'o':
      return { kind: 'actualSize' };
    case '+':
    case '=':
      return { kind: 'zoom', factor: 1.25 };
    case '-':
      return { kind: 'zoom', factor: 0.8 };
    case 'enter':
      return tool === 'polygon' ? { kind: 'closePolygon' } : clicking ? { kind: 'acceptClick' } : null;
    case 'tab':
      return clicking ? { kind: 'nextCandidate' } : null;
    case 'escape':
      return { kind: 'cancel' };
    case 'backspace':
      return polygonOpen ? { kind: 'dropVertex' } : null;
    default:
      return null;
  }
}
