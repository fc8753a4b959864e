// The click tool's state (key K): positive and negative clicks and a box, numbered prompts to the host, and
// the candidates it sends back, one of which is shown until accepted or discarded. Apart from the DOM, so it
// can be tested alone.
import type { Box } from '../../src/masks/maskDiff';
import type { Point } from '../../src/masks/rasterTools';
import type { Viewport } from './viewport';
import type { MaskImage } from '../../src/masks/maskImage';
import type { ClickCandidateData, WebviewToHost } from '../../src/protocol/editorProtocol';

export interface ClickPoint {
  x: number;
  y: number;
  positive: boolean;
}

/** Screen pixels a press must travel to be a box rather than a click. */
export const BOX_DRAG_PX = 5;

export class ClickSession {
  points: ClickPoint[] = [];
  box: { x0: number; y0: number; x1: number; y1: number } | null = null;
  refine = false;
  candidates: ClickCandidateData[] = [];
  chosen = 0;
  /** Number of the last prompt sent; results of earlier ones are dropped. */
  seq = 0;
  waiting = false;
  /** The model process's number of the answer shown. */
  answer: number | null = null;
  /** The first candidate is the model's suggested region (ClickPromptParams.suggested). */
  fromSuggestion = false;

  get active(): boolean {
    return this.points.length > 0 || this.box !== null;
  }

  get candidate(): ClickCandidateData | null {
    return this.candidates[this.chosen] ?? null;
  }

  addPoint(p: ClickPoint, refine = false): void {
    if (this.points.length === 0 && !this.box) this.refine = refine;
    this.points.push(p);
  }

  setBox(a: { x: number; y: number }, b: { x: number; y: number }): void {
    this.box = { x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y), x1: Math.max(a.x, b.x), y1: Math.max(a.y, b.y) };
  }

  /** The prompt message for what is there now (a new number). */
  prompt(activeClass: number): Extract<WebviewToHost, { type: 'clickPrompt' }> {
    this.seq++;
    this.waiting = true;
    return {
      type: 'clickPrompt',
      seq: this.seq,
      points: this.points.map((p) => ({ ...p })),
      ...(this.box ? { box: { ...this.box } } : {}),
      refine: this.refine,
      activeClass,
      ...(this.answer !== null && this.candidates.length > 0
        ? { continueFrom: { answer: this.answer, candidate: this.chosen } }
        : {}),
    };
  }

  /** The host's answer: taken when it is the latest prompt's (and the session was not cleared since). */
  result(seq: number, candidates: ClickCandidateData[], answer: number | null = null, fromSuggestion = false): boolean {
    if (seq !== this.seq || !this.active) return false;
    this.waiting = false;
    this.answer = answer;
    this.fromSuggestion = fromSuggestion;
    this.candidates = candidates;
    this.chosen = 0;
    return true;
  }

  nextCandidate(): void {
    if (this.candidates.length > 0) this.chosen = (this.chosen + 1) % this.candidates.length;
  }

  clear(): void {
    this.points = [];
    this.box = null;
    this.refine = false;
    this.candidates = [];
    this.chosen = 0;
    this.waiting = false;
    this.answer = null;
    this.fromSuggestion = false;
  }

  /** The info bar's text. */
  describe(): string {
    if (!this.active) return 'Click the object (Shift+click or right-click: not the object; drag: a box)';
    const c = this.candidate;
    const what = `${this.points.length} click(s)${this.box ? ' and a box' : ''}${this.refine ? ', refining the region' : ''}`;
    if (this.waiting && !c) return `${what}: segmenting...`;
    if (!c) return `${what}: no candidate`;
    const source =
      this.fromSuggestion && this.chosen === 0 ? "the model's suggested region" : `predicted IoU ${c.score.toFixed(2)}`;
    return `${what}: candidate ${this.chosen + 1} of ${this.candidates.length} (${source}); Enter or A accepts, Tab the next, Esc discards`;
  }
}

/** Paints the candidate's pixels with `value` into the mask; `box` grows to hold what changed. */
export function paintCandidate(mask: MaskImage, candidate: Uint8Array, value: number, box: Box): void {
  const w = mask.width;
  for (let i = 0; i < candidate.length; i++) {
    if (!candidate[i] || mask.data[i] === value) continue;
    mask.data[i] = value;
    const x = i % w;
    const y = (i - x) / w;
    if (x < box.x0) box.x0 = x;
    if (y < box.y0) box.y0 = y;
    if (x + 1 > box.x1) box.x1 = x + 1;
    if (y + 1 > box.y1) box.y1 = y + 1;
  }
}

/** A candidate as a class map (the class where it is, 0 elsewhere), to draw as suggestions are drawn. */
export function candidateClassMap(candidate: Uint8Array, value: number): Uint8Array {
  const out = new Uint8Array(candidate.length);
  for (let i = 0; i < candidate.length; i++) if (candidate[i]) out[i] = value;
  return out;
}

/** A press of the click tool: a click, or a box when it travels (`moved`). Screen position at its start. */
export interface ClickPress {
  start: Point;
  sx: number;
  sy: number;
  current: Point;
  moved: boolean;
  negative: boolean;
  refine: boolean;
}

/** Draws the clicks (green: the object, red: not), the box, and a box being dragged, in screen pixels. */
export function drawClickMarks(
  ctx: CanvasRenderingContext2D,
  view: Viewport,
  session: ClickSession,
  press: ClickPress | null,
): void {
  const at = (p: { x: number; y: number }): [number, number] => [
    p.x * view.scale + view.offsetX,
    p.y * view.scale + view.offsetY,
  ];
  const rect = (a: { x: number; y: number }, b: { x: number; y: number }, dashed: boolean): void => {
    const [x0, y0] = at(a);
    const [x1, y1] = at(b);
    ctx.setLineDash(dashed ? [6, 4] : []);
    ctx.strokeStyle = '#ffd700';
    ctx.lineWidth = 2;
    ctx.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
    ctx.setLineDash([]);
  };
  if (session.box) rect({ x: session.box.x0, y: session.box.y0 }, { x: session.box.x1, y: session.box.y1 }, false);
  if (press?.moved && !press.negative) rect(press.start, press.current, true);
  for (const p of session.points) {
    const [x, y] = at(p);
    ctx.beginPath();
    ctx.arc(x, y, 5, 0, Math.PI * 2);
    ctx.fillStyle = p.positive ? '#2ecc40' : '#ff4136';
    ctx.fill();
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1.5;
    ctx.stroke();
  }
}
