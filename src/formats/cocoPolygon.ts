// COCO polygons rasterised as pycocotools does it (maskApi.c, rleFrPoly, which annToMask and every COCO
// evaluation use): the polygon is scaled by 5 and walked point by point, each column crossing of the walk
// toggles the mask from a row on (rounded as pycocotools rounds), and the toggles become a column-major run
// length code. Written from the algorithm's description; tests compare it with masks pycocotools made
// (test/fixtures/coco/README.md).

/** Run lengths (column-major, starting with a run of 0s) of one polygon `xy` (x0, y0, x1, y1, ...) on an h x w image. */
export function cocoPolygonCounts(xy: readonly number[], h: number, w: number): number[] {
  const scale = 5;
  const k = xy.length >> 1;
  // C's (int)(v + .5): truncation toward zero.
  const x = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[(j % k) * 2] + 0.5));
  const y = Array.from({ length: k + 1 }, (_, j) => Math.trunc(scale * xy[(j % k) * 2 + 1] + 0.5));
  // Dense points along the upsampled boundary.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let [xs, xe, ys, ye] = [x[j], x[j + 1], y[j], y[j + 1]];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) [xs, xe, ys, ye] = [xe, xs, ye, ys];
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // Where the walk crosses from one column to the next: a toggle at (column, first row inside).
  const toggles: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    toggles.push(xd * h + yd);
  }
  toggles.push(h * w);
  toggles.sort((a, b) => a - b);
  // Differences, then zero-length runs merged into their neighbours, as pycocotools merges them.
  let p = 0;
  const a = toggles.map((t) => {
    const d = t - p;
    p = t;
    return d;
  });
  const counts: number[] = [a[0]];
  for (let j = 1; j < a.length;) {
    if (a[j] > 0) counts.push(a[j++]);
    else {
      j++;
      if (j < a.length) counts[counts.length - 1] += a[j++];
    }
  }
  return counts;
}
