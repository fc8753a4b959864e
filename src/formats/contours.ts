// Exact contours of label regions: loops along pixel edges, vertices on pixel corners, so filling them again
// (even-odd, sampled at pixel centres) gives back exactly the same pixels. Optional simplification.
import { labelRegion, type Point, type Selection } from '../masks/rasterTools';
import type { MaskImage } from '../masks/maskImage';

/** One connected region (4-connected) of one class: its outer loop and its holes. */
export interface Region {
  classIndex: number;
  outer: Point[];
  holes: Point[][];
  /** Pixels in the region. */
  area: number;
  box: { x0: number; y0: number; x1: number; y1: number };
  /** The region's pixels (full-image, row-major). */
  selection: Selection;
}

/** Shoelace area; positive for outer loops (clockwise on screen, y down), negative for holes. */
export function signedArea(loop: Point[]): number {
  let a = 0;
  for (let i = 0; i < loop.length; i++) {
    const p = loop[i];
    const q = loop[(i + 1) % loop.length];
    a += p.x * q.y - q.x * p.y;
  }
  return a / 2;
}

/**
 * The boundary loops of a binary region (row-major `inside`, inside only within `box`). Edges are walked with
 * the region on the right; where two pixels touch only at a corner, the walk turns right, so diagonal
 * neighbours stay apart (4-connectivity, as the rest of maskloop).
 */
export function traceLoops(
  inside: Uint8Array,
  width: number,
  height: number,
  box = { x0: 0, y0: 0, x1: width, y1: height },
): Point[][] {
  const W1 = width + 1;
  const at = (x: number, y: number): boolean =>
    x >= 0 && y >= 0 && x < width && y < height && inside[y * width + x] === 1;
  // Edges as (from corner, direction): direction 0 = +x, 1 = +y, 2 = -x, 3 = -y.
  const out = new Map<number, number[]>();
  const add = (x: number, y: number, dir: number): void => {
    const key = y * W1 + x;
    const list = out.get(key);
    if (list) list.push(dir);
    else out.set(key, [dir]);
  };
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0; x < box.x1; x++) {
      if (!at(x, y)) continue;
      if (!at(x, y - 1)) add(x, y, 0);
      if (!at(x + 1, y)) add(x + 1, y, 1);
      if (!at(x, y + 1)) add(x + 1, y + 1, 2);
      if (!at(x - 1, y)) add(x, y + 1, 3);
    }
  }
  const DX = [1, 0, -1, 0];
  const DY = [0, 1, 0, -1];
  const loops: Point[][] = [];
  const take = (key: number, dir: number): void => {
    const list = out.get(key)!;
    list.splice(list.indexOf(dir), 1);
    if (list.length === 0) out.delete(key);
  };
  // Start keys in row-major order, so output is deterministic.
  const starts = [...out.keys()].sort((a, b) => a - b);
  const choose = (dir: number, options: number[]): number => {
    const right = (dir + 1) % 4;
    return options.includes(right) ? right : options.includes(dir) ? dir : options[0];
  };
  for (const start of starts) {
    while (out.has(start)) {
      const first = out.get(start)![0];
      const loop: Point[] = [];
      let key = start;
      let dir = first;
      for (;;) {
        take(key, dir);
        let x = key % W1;
        let y = (key - x) / W1;
        x += DX[dir];
        y += DY[dir];
        key = y * W1 + x;
        const options = out.get(key) ?? [];
        // Back at the start, and the turn rule pairs this arrival with the first edge: the loop is closed.
        if (key === start && choose(dir, [...options, first]) === first) {
          if (first !== dir) loop.push({ x, y });
          break;
        }
        if (options.length === 0) throw new Error('contour tracing lost its way (an open boundary)');
        const next = choose(dir, options);
        if (next !== dir) loop.push({ x, y });
        dir = next;
      }
      loops.push(removeCollinear(loop));
    }
  }
  return loops;
}

function removeCollinear(loop: Point[]): Point[] {
  if (loop.length < 4) return loop;
  const out: Point[] = [];
  for (let i = 0; i < loop.length; i++) {
    const a = loop[(i - 1 + loop.length) % loop.length];
    const b = loop[i];
    const c = loop[(i + 1) % loop.length];
    if ((b.x - a.x) * (c.y - b.y) - (b.y - a.y) * (c.x - b.x) !== 0) out.push(b);
  }
  return out;
}

/**
 * A corner loop (pixel edges, region on the right) moved half a pixel toward the pixels it should fill (`side`:
 * the region on its right, or on its left for a hole) and into pixel-centre coordinates (pixel x at x, not
 * x + 0.5): its vertices are the centres of the boundary pixels. Pillow, and so labelme, fills a polygon with
 * its edge pixels, so such a loop fills exactly the pixels the corner loop encloses. Needs axis-aligned edges
 * (an unsimplified loop).
 */
export function pixelCentreLoop(loop: Point[], side: 'right' | 'left'): Point[] {
  const sign = side === 'right' ? 1 : -1;
  const normal = (a: Point, b: Point): Point => {
    // The unit normal to the right of the walk a -> b on screen (y down): (-dy, dx), or to its left.
    const dx = Math.sign(b.x - a.x);
    const dy = Math.sign(b.y - a.y);
    return { x: -dy * sign, y: dx * sign };
  };
  return loop.map((b, i) => {
    const a = loop[(i - 1 + loop.length) % loop.length];
    const c = loop[(i + 1) % loop.length];
    const n1 = normal(a, b);
    const n2 = normal(b, c);
    // Corners turn by a right angle: both edges move by half a pixel, so the corner moves by both halves.
    const perpendicular = n1.x * n2.x + n1.y * n2.y === 0;
    const ox = perpendicular ? (n1.x + n2.x) / 2 : n1.x / 2;
    const oy = perpendicular ? (n1.y + n2.y) / 2 : n1.y / 2;
    return { x: b.x + ox - 0.5, y: b.y + oy - 0.5 };
  });
}

/** Douglas-Peucker on a closed loop; tolerance in pixels (0 keeps every corner). */
export function simplifyLoop(loop: Point[], tolerance: number): Point[] {
  if (tolerance <= 0 || loop.length <= 4) return loop;
  // Split at the two mutually farthest-apart vertices (first and the one farthest from it).
  let far = 0;
  let best = -1;
  for (let i = 1; i < loop.length; i++) {
    const d = (loop[i].x - loop[0].x) ** 2 + (loop[i].y - loop[0].y) ** 2;
    if (d > best) {
      best = d;
      far = i;
    }
  }
  const keep = new Uint8Array(loop.length);
  keep[0] = 1;
  keep[far] = 1;
  const stack: [number, number][] = [
    [0, far],
    [far, loop.length],
  ];
  while (stack.length) {
    const [i, j] = stack.pop()!;
    const a = loop[i];
    const b = loop[j % loop.length];
    let maxD = -1;
    let idx = -1;
    for (let k = i + 1; k < j; k++) {
      const p = loop[k];
      const len = Math.hypot(b.x - a.x, b.y - a.y);
      const d =
        len === 0
          ? Math.hypot(p.x - a.x, p.y - a.y)
          : Math.abs((b.x - a.x) * (a.y - p.y) - (a.x - p.x) * (b.y - a.y)) / len;
      if (d > maxD) {
        maxD = d;
        idx = k;
      }
    }
    if (idx >= 0 && maxD > tolerance) {
      keep[idx] = 1;
      stack.push([i, idx], [idx, j]);
    }
  }
  const out = loop.filter((_, i) => keep[i]);
  return out.length >= 3 ? out : loop;
}

/**
 * Every 4-connected region of every class in a mask (background 0 excluded; ignore 255 included as its own
 * class), with exact outer loop and holes, largest bounding box first (so a region inside another's hole
 * comes after it). `place` moves each exact loop before simplification (pixelCentreLoop for labelme).
 */
export function maskRegions(
  mask: MaskImage,
  tolerance = 0,
  place: (loop: Point[], side: 'right' | 'left') => Point[] = (loop) => loop,
): Region[] {
  const seen = new Uint8Array(mask.width * mask.height);
  const regions: Region[] = [];
  for (let i = 0; i < mask.data.length; i++) {
    const c = mask.data[i];
    if (c === 0 || seen[i]) continue;
    const x = i % mask.width;
    const y = (i - x) / mask.width;
    const sel = labelRegion(mask, { x, y });
    const { x0, y0, x1, y1 } = sel.box;
    for (let yy = y0; yy < y1; yy++)
      for (let xx = x0; xx < x1; xx++) if (sel.inside[yy * mask.width + xx]) seen[yy * mask.width + xx] = 1;
    const loops = traceLoops(sel.inside, mask.width, mask.height, sel.box);
    const outerLoops = loops.filter((l) => signedArea(l) > 0);
    const holes = loops.filter((l) => signedArea(l) < 0);
    // A 4-connected region has exactly one outer loop.
    const outer = outerLoops.sort((a, b) => signedArea(b) - signedArea(a))[0];
    regions.push({
      classIndex: c,
      outer: simplifyLoop(place(outer, 'right'), tolerance),
      holes: holes.map((h) => simplifyLoop(place(h, 'left'), tolerance)),
      area: sel.count,
      box: sel.box,
      selection: sel,
    });
  }
  const boxArea = (r: Region): number => (r.box.x1 - r.box.x0) * (r.box.y1 - r.box.y0);
  return regions.sort((a, b) => boxArea(b) - boxArea(a));
}
