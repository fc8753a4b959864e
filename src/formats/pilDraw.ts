// Filled polygons and rectangles pixel for pixel as Pillow draws them (ImageDraw.polygon / rectangle with
// fill, as labelme's shape_to_mask and labelme2voc call them; Pillow 12.3, src/libImaging/Draw.c): vertices
// truncated to integers, a scan line per row with the edges' crossings in single precision, Pillow's joining
// of corners, and its rounding of each span's ends. Written from the algorithm's description in Pillow's
// source (MIT-CMU licence); tests compare it with masks drawn by Pillow itself (test/fixtures/pil/README.md).
import type { MaskImage } from '../masks/maskImage';

const f32 = Math.fround;

interface Edge {
  x0: number;
  y0: number;
  xmin: number;
  ymin: number;
  xmax: number;
  ymax: number;
  /** Single-precision slope dx/dy (0 for a horizontal edge). */
  dx: number;
}

function edge(x0: number, y0: number, x1: number, y1: number): Edge {
  return {
    x0,
    y0,
    xmin: Math.min(x0, x1),
    xmax: Math.max(x0, x1),
    ymin: Math.min(y0, y1),
    ymax: Math.max(y0, y1),
    dx: y0 === y1 ? 0 : f32(f32(x1 - x0) / (y1 - y0)),
  };
}

/** C's (int) of a double: truncation toward zero. */
const cInt = (v: number): number => Math.trunc(v);
/** C's roundf: half away from zero. */
const roundf = (v: number): number => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
/** Pillow's ROUND_UP and ROUND_DOWN of a float: away from and toward zero at halves (the + 0.5F in single precision). */
const roundUp = (v: number): number => (v >= 0 ? Math.floor(f32(v + 0.5)) : -Math.floor(Math.abs(v) + 0.5));
const roundDown = (v: number): number => (v >= 0 ? Math.ceil(f32(v - 0.5)) : -Math.ceil(Math.abs(v) - 0.5));

/** Where an edge crosses row y, in single precision as Pillow computes it. */
const crossing = (e: Edge, y: number): number => f32(f32((y - e.y0) * e.dx) + e.x0);

function hline(mask: MaskImage, x0: number, y: number, x1: number, value: number): void {
  if (y < 0 || y >= mask.height) return;
  if (x0 < 0) x0 = 0;
  else if (x0 >= mask.width) return;
  if (x1 < 0) return;
  if (x1 >= mask.width) x1 = mask.width - 1;
  if (x0 <= x1) mask.data.fill(value, y * mask.width + x0, y * mask.width + x1 + 1);
}

/**
 * Which Pillow's corner joining: 'pillow12' (10.x on, as revised in 11.2: what labelme users get from a current
 * install) or 'pillow9' (9.x, e.g. Debian 12's python3-pil 9.4, which the tests compare with pixel for pixel).
 */
export type PillowVariant = 'pillow12' | 'pillow9';

/** Pillow's scan-line fill of an edge list (polygon_generic, no transparency). */
function fillEdges(mask: MaskImage, edges: Edge[], value: number, variant: PillowVariant): void {
  if (edges.length === 0) return;
  let ymin = mask.height - 1;
  let ymax = 0;
  const table: Edge[] = [];
  for (const e of edges) {
    ymin = Math.min(ymin, e.ymin);
    ymax = Math.max(ymax, e.ymax);
    if (e.ymin === e.ymax) {
      hline(mask, e.xmin, e.ymin, e.xmax, value);
      continue;
    }
    table.push(e);
  }
  ymin = Math.max(0, ymin);
  ymax = Math.min(mask.height, ymax);
  for (let y = ymin; y <= ymax; y++) {
    const xx: number[] = [];
    for (let i = 0; i < table.length; i++) {
      const current = table[i];
      if (y < current.ymin || y > current.ymax) continue;
      xx.push(crossing(current, y));
      const j = xx.length;
      if (y === current.ymax && y < ymax) {
        // Needed to draw consistent polygons (Pillow's words): the crossing counts twice.
        xx.push(xx[j - 1]);
      } else if (variant === 'pillow9') {
        if (current.dx !== 0 && roundf(xx[j - 1]) === xx[j - 1]) joinCornerPillow9(table, i, current, xx, y, ymax);
      } else if ((y === current.ymin || y === current.ymax) && current.dx !== 0) {
        // Connect discontiguous corners.
        for (let k = 0; k < i; k++) {
          const other = table[k];
          if ((y !== other.ymin && y !== other.ymax) || other.dx === 0) continue;
          if (roundf(xx[j - 1]) !== roundf(crossing(other, y))) continue;
          const offset = y === current.ymax ? -1 : 1;
          const adjacent = crossing(current, y + offset);
          if (y + offset >= other.ymin && y + offset <= other.ymax) {
            const adjacentOther = crossing(other, y + offset);
            if (xx[j - 1] > f32(adjacent + 1) && xx[j - 1] > f32(adjacentOther + 1))
              xx[j - 1] = f32(roundf(Math.max(adjacent, adjacentOther)) + 1);
            else if (xx[j - 1] < f32(adjacent - 1) && xx[j - 1] < f32(adjacentOther - 1))
              xx[j - 1] = f32(roundf(Math.min(adjacent, adjacentOther)) - 1);
            break;
          }
        }
      }
    }
    xx.sort((a, b) => a - b);
    for (let i = 1; i < xx.length; i += 2) hline(mask, roundUp(xx[i - 1]), y, roundDown(xx[i]), value);
  }
}

/** Pillow 9's corner joining: it writes the join into the crossing list at the other edge's index, as 9.x does. */
function joinCornerPillow9(table: Edge[], i: number, current: Edge, xx: number[], y: number, ymax: number): void {
  const j = xx.length;
  for (let k = 0; k < i; k++) {
    const other = table[k];
    if ((current.dx > 0 && other.dx <= 0) || (current.dx < 0 && other.dx >= 0)) continue;
    if (!(
      ((y === current.ymin && y === other.ymin) || (y === current.ymax && y === other.ymax)) &&
      xx[j - 1] === crossing(other, y)
    ))
      continue;
    const offset = y === ymax ? -1 : 1;
    const adjacent = crossing(current, y + offset);
    const adjacentOther = crossing(other, y + offset);
    const joined =
      y === current.ymax
        ? current.dx > 0
          ? f32(Math.max(adjacent, adjacentOther) + 1)
          : f32(Math.min(adjacent, adjacentOther) - 1)
        : current.dx > 0
          ? f32(Math.min(adjacent, adjacentOther))
          : f32(Math.max(adjacent, adjacentOther) + 1);
    // Past the crossings found so far the slot is written over before it is read: the write is lost.
    if (k < j) xx[k] = joined;
    return;
  }
}

/** Paints `value` where Pillow's ImageDraw.polygon(points, fill=...) would draw, on a mask of the image's size. */
export function pilFillPolygon(
  mask: MaskImage,
  points: readonly { x: number; y: number }[],
  value: number,
  variant: PillowVariant = 'pillow12',
): void {
  const xy = points.flatMap((p) => [cInt(p.x), cInt(p.y)]);
  const count = points.length;
  const edges: Edge[] = [];
  let i = 0;
  for (; i < count - 1; i++) {
    const [x0, y0, x1, y1] = [xy[i * 2], xy[i * 2 + 1], xy[i * 2 + 2], xy[i * 2 + 3]];
    if (y0 === y1 && i !== 0 && y0 === xy[i * 2 - 1]) {
      // A horizontal edge right after another extends it.
      const last = edges[edges.length - 1];
      if (x1 > x0 && x0 > xy[i * 2 - 2]) {
        last.xmax = x1;
        continue;
      } else if (x1 < x0 && x0 < xy[i * 2 - 2]) {
        last.xmin = x1;
        continue;
      }
    }
    edges.push(edge(x0, y0, x1, y1));
  }
  if (count > 0 && (xy[i * 2] !== xy[0] || xy[i * 2 + 1] !== xy[1]))
    edges.push(edge(xy[i * 2], xy[i * 2 + 1], xy[0], xy[1]));
  fillEdges(mask, edges, value, variant);
}

/**
 * Paints `value` where Pillow's ImageDraw.rectangle([a, b], fill=...) would draw: corners truncated to integers,
 * both included. Pillow refuses corners given in the wrong order; they are put in order here.
 */
export function pilFillRectangle(
  mask: MaskImage,
  a: { x: number; y: number },
  b: { x: number; y: number },
  value: number,
): void {
  const x0 = cInt(Math.min(a.x, b.x));
  const x1 = cInt(Math.max(a.x, b.x));
  let y0 = cInt(Math.min(a.y, b.y));
  let y1 = cInt(Math.max(a.y, b.y));
  if (y0 < 0) y0 = 0;
  else if (y0 >= mask.height) return;
  if (y1 < 0) return;
  if (y1 > mask.height) y1 = mask.height;
  for (let y = y0; y <= y1; y++) hline(mask, x0, y, x1, value);
}

/** Pillow's ROUND_UP and ROUND_DOWN of a double (its + 0.5F promoted to double). */
const roundUpD = (v: number): number => (v >= 0 ? Math.floor(v + 0.5) : -Math.floor(Math.abs(v) + 0.5));
const roundDownD = (v: number): number => (v >= 0 ? Math.ceil(v - 0.5) : -Math.ceil(Math.abs(v) - 0.5));

/**
 * Paints `value` where Pillow's ImageDraw.line(points, width=...) would draw (width > 1: each segment a filled
 * quadrilateral, no joints), as labelme draws `line` and `linestrip` shapes (width 10).
 */
export function pilWideLine(
  mask: MaskImage,
  points: readonly { x: number; y: number }[],
  width: number,
  value: number,
  variant: PillowVariant = 'pillow12',
): void {
  for (let i = 0; i + 1 < points.length; i++) {
    const [x0, y0, x1, y1] = [cInt(points[i].x), cInt(points[i].y), cInt(points[i + 1].x), cInt(points[i + 1].y)];
    const dx = x1 - x0;
    const dy = y1 - y0;
    if (dx === 0 && dy === 0) {
      hline(mask, x0, y0, x0, value);
      continue;
    }
    const big = Math.sqrt(dx * dx + dy * dy);
    const small = (width - 1) / 2;
    const ratioMax = roundUpD(small) / big;
    const ratioMin = roundDownD(small) / big;
    const dxmin = roundDownD(ratioMin * dy);
    const dxmax = roundDownD(ratioMax * dy);
    const dymin = roundDownD(ratioMin * dx);
    const dymax = roundDownD(ratioMax * dx);
    const v = [
      [x0 - dxmin, y0 + dymax],
      [x1 - dxmin, y1 + dymax],
      [x1 + dxmax, y1 - dymin],
      [x0 + dxmax, y0 - dymin],
    ];
    fillEdges(
      mask,
      v.map((p, k) => edge(p[0], p[1], v[(k + 1) % 4][0], v[(k + 1) % 4][1])),
      value,
      variant,
    );
  }
}

/** One quarter of an ellipse on Pillow's doubled grid (quarter_state in Draw.c); integer arithmetic, as there. */
class Quarter {
  finished = false;
  private cx = 0;
  private cy = 0;
  private ex = 0;
  private ey = 0;
  private a2 = 0n;
  private b2 = 0n;
  private a2b2 = 0n;

  constructor(a: number, b: number) {
    if (a < 0 || b < 0) {
      this.finished = true;
      return;
    }
    [this.cx, this.cy, this.ex, this.ey] = [a, b % 2, a % 2, b];
    this.a2 = BigInt(a) * BigInt(a);
    this.b2 = BigInt(b) * BigInt(b);
    this.a2b2 = this.a2 * this.b2;
  }

  private delta(x: number, y: number): bigint {
    const d = this.a2 * BigInt(y) * BigInt(y) + this.b2 * BigInt(x) * BigInt(x) - this.a2b2;
    return d < 0n ? -d : d;
  }

  /** The next point, or null when the quarter is done. */
  next(): [number, number] | null {
    if (this.finished) return null;
    const out: [number, number] = [this.cx, this.cy];
    if (this.cx === this.ex && this.cy === this.ey) {
      this.finished = true;
      return out;
    }
    let nx = this.cx;
    let ny = this.cy + 2;
    let nd = this.delta(nx, ny);
    if (nx > 1) {
      let d = this.delta(this.cx - 2, this.cy + 2);
      if (nd > d) {
        nx = this.cx - 2;
        ny = this.cy + 2;
        nd = d;
      }
      d = this.delta(this.cx - 2, this.cy);
      if (nd > d) {
        nx = this.cx - 2;
        ny = this.cy;
      }
    }
    this.cx = nx;
    this.cy = ny;
    return out;
  }
}

/**
 * Paints `value` where Pillow's ImageDraw.ellipse([x0, y0, x1, y1], fill=...) would draw (ellipseNew in
 * Draw.c: the bounding box truncated to integers, two quarter walks on a doubled grid, horizontal spans), as
 * labelme draws `circle` and `point` shapes.
 */
export function pilFillEllipse(
  mask: MaskImage,
  box: { x0: number; y0: number; x1: number; y1: number },
  value: number,
): void {
  const [x0, y0] = [cInt(box.x0), cInt(box.y0)];
  const a = cInt(box.x1) - x0;
  const b = cInt(box.y1) - y0;
  if (a < 0 || b < 0) return;
  const width = a + b;
  // ellipse_init
  const outer = new Quarter(a, b);
  const first = outer.next();
  if (width < 1 || !first) return;
  let [pr, py] = first;
  let finished = false;
  const inner = new Quarter(a - 2 * (width - 1), b - 2 * (width - 1));
  const leftmost = a % 2;
  let pl = leftmost;
  const span = (l: number, y: number, r: number): void =>
    hline(mask, x0 + Math.trunc((l + a) / 2), y0 + Math.trunc((y + b) / 2), x0 + Math.trunc((r + a) / 2), value);
  // ellipse_next, its four buffered spans per step drawn at once (the order does not matter for a fill).
  while (!finished) {
    const y = py;
    let l = pl;
    const r = pr;
    let p = outer.next();
    while (p && p[1] <= y) p = outer.next();
    if (!p) finished = true;
    else [pr, py] = p;
    let q = inner.next();
    while (q && q[1] <= y) {
      l = q[0];
      q = inner.next();
    }
    pl = q ? q[0] : leftmost;
    if ((l > 0 || l < r) && y > 0) span(l === 0 ? 2 : l, y, r);
    if (y > 0) span(-r, y, -l);
    if (l > 0 || l < r) span(l === 0 ? 2 : l, -y, r);
    span(-r, -y, -l);
  }
}
