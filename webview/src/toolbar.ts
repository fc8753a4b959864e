// The mask editor's toolbar and class palette: buttons, sliders and swatches, rebuilt from the editor's state
// whenever it changes. What they do is the editor's (the actions passed in).
import type { ClassInfo } from '../../src/masks/classList';
import type { WebviewToHost } from '../../src/protocol/editorProtocol';
import { el } from './dom';
import { TOOL_ICONS, TOOL_LABELS, type LayerToggle, type Tool } from './keymap';

/** The part of the editor's state the toolbar shows. */
export interface ToolbarState {
  tool: Tool;
  brushSize: number;
  activeClass: number;
  opacity: number;
  tolerance: number;
  showMask: boolean;
  showSuggestion: boolean;
  showImage: boolean;
  showConfidence: boolean;
}

export interface ToolbarActions {
  setTool(tool: Tool): void;
  setBrushSize(size: number): void;
  setTolerance(tolerance: number): void;
  setOpacity(opacity: number): void;
  toggle(layer: LayerToggle): void;
  setClass(index: number): void;
  post(message: WebviewToHost): void;
  fit(): void;
  actualSize(): void;
  /** Gives the keyboard back to the canvas after a button click. */
  focus(): void;
}

export function renderToolbar(
  toolbar: HTMLElement,
  palette: HTMLElement,
  s: ToolbarState,
  classes: ClassInfo[],
  act: ToolbarActions,
): void {
  const button = (
    label: string,
    icon: string,
    onClick: () => void,
    pressed?: boolean,
    testId?: string,
  ): HTMLButtonElement => {
    const b = el('button', { title: label, ariaLabel: label, className: 'tb' + (pressed ? ' on' : '') }, [
      el('span', { className: `codicon codicon-${icon}` }),
    ]);
    if (pressed !== undefined) b.setAttribute('aria-pressed', String(pressed));
    if (testId) b.dataset.action = testId;
    b.addEventListener('click', () => {
      onClick();
      act.focus();
    });
    return b;
  };
  const slider = (min: number, max: number, value: number, label: string, title = label): HTMLInputElement =>
    el('input', { type: 'range', min: String(min), max: String(max), value: String(value), title, ariaLabel: label });
  const tools = (Object.keys(TOOL_LABELS) as Tool[]).map((t) =>
    button(TOOL_LABELS[t], TOOL_ICONS[t], () => act.setTool(t), s.tool === t, `tool-${t}`),
  );
  const size = slider(1, 200, s.brushSize, 'Brush size', 'Brush size ([ and ])');
  size.addEventListener('input', () => act.setBrushSize(Number(size.value)));
  const sizeLabel = el('span', { className: 'size-label', textContent: `${s.brushSize}px` });
  const tol = slider(0, 128, s.tolerance, 'Magic wand tolerance');
  tol.addEventListener('input', () => act.setTolerance(Number(tol.value)));
  const opacity = slider(0, 100, Math.round(s.opacity * 100), 'Mask opacity');
  opacity.addEventListener('input', () => act.setOpacity(Number(opacity.value) / 100));
  const toggle = (key: LayerToggle, label: string, icon: string): HTMLButtonElement =>
    button(label, icon, () => act.toggle(key), s[key], key);
  toolbar.replaceChildren(
    ...tools,
    el('span', { className: 'sep' }),
    el('label', { className: 'slider' }, ['Size ', size, sizeLabel]),
    el('label', { className: 'slider' }, ['Tolerance ', tol]),
    el('label', { className: 'slider' }, ['Opacity ', opacity]),
    el('span', { className: 'sep' }),
    toggle('showImage', 'Show image (I)', 'file-media'),
    toggle('showMask', 'Show mask (M)', 'layers'),
    toggle('showSuggestion', 'Show suggestion (S)', 'lightbulb'),
    toggle('showConfidence', 'Show model confidence (C)', 'pulse'),
    el('span', { className: 'sep' }),
    button(
      'Accept suggestion (A); Alt+click accepts one region',
      'check',
      () => act.post({ type: 'accept' }),
      undefined,
      'accept',
    ),
    button('Reject suggestion (R)', 'close', () => act.post({ type: 'reject' }), undefined, 'reject'),
    button('Predict again', 'refresh', () => act.post({ type: 'predict' }), undefined, 'predict'),
    el('span', { className: 'sep' }),
    button('Fit to view (F)', 'screen-full', () => act.fit(), undefined, 'fit'),
    button('Actual size 1:1 (O)', 'zoom-in', () => act.actualSize(), undefined, 'actual-size'),
  );
  palette.replaceChildren(
    ...classes
      .filter((c) => c.index > 0)
      .map((c, i) => {
        const on = c.index === s.activeClass;
        const b = el(
          'button',
          { className: 'swatch' + (on ? ' on' : ''), title: `${c.name} (${i + 1})`, role: 'radio' },
          [el('span', { className: 'chip' }), c.name],
        );
        b.setAttribute('aria-checked', String(on));
        b.dataset.classIndex = String(c.index);
        (b.firstChild as HTMLElement).style.background = c.color;
        b.addEventListener('click', () => act.setClass(c.index));
        return b;
      }),
  );
}
