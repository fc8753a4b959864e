// "MaskLoop: Show Model Report": the loss curves and validation metrics of every model version, as plain
// SVG plots built here (pure functions; the report webview runs no script).
import type { VersionManifest } from '../../protocol/modelTypes';
import { escapeHtml } from '../html';

export interface Series {
  name: string;
  colour: string;
  points: { x: number; y: number }[];
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

/** A line plot with axes, ticks and a legend, as an SVG string. */
export function linePlot(title: string, xLabel: string, series: Series[], yMax?: number): string {
  const W = 520;
  const H = 260;
  const L = 50;
  const R = 130;
  const T = 28;
  const B = 36;
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs, x0 + 1) : 1;
  const top = yMax ?? niceMax(ys.length ? Math.max(...ys) : 1);
  const sx = (x: number): number => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number): number => H - B - (Math.min(y, top) / top) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">`,
  ];
  parts.push(`<text x="${L}" y="18" class="t">${escapeHtml(title)}</text>`);
  parts.push(
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" class="ax"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" class="ax"/>`,
  );
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    parts.push(
      `<text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end" class="k">${+v.toPrecision(3)}</text><line x1="${L}" y1="${sy(v)}" x2="${W - R}" y2="${sy(v)}" class="g"/>`,
    );
  }
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const step = Math.max(1, Math.ceil(xTicks.length / 10));
  xTicks
    .filter((_, i) => i % step === 0)
    .forEach((x) => parts.push(`<text x="${sx(x)}" y="${H - B + 14}" text-anchor="middle" class="k">${x}</text>`));
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 4}" text-anchor="middle" class="k">${escapeHtml(xLabel)}</text>`);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"/>`);
    s.points.forEach((p) =>
      parts.push(
        `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2.5" fill="${s.colour}"><title>${escapeHtml(s.name)}: ${p.x}, ${p.y.toFixed(4)}</title></circle>`,
      ),
    );
    parts.push(
      `<rect x="${W - R + 10}" y="${T + i * 16}" width="10" height="10" fill="${s.colour}"/><text x="${W - R + 24}" y="${T + i * 16 + 9}" class="k">${escapeHtml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7'];

/** The report body: metric-per-version plot, loss curves of the last versions, and a table. */
export function reportBody(current: number | null, versions: VersionManifest[]): string {
  if (versions.length === 0)
    return '<p>No model versions yet. Save corrected masks and run "MaskLoop: Fine-tune Model on Corrected Masks".</p>';
  const sorted = [...versions].sort((a, b) => a.version - b.version);
  const metric = (key: string, name: string, colour: string): Series => ({
    name,
    colour,
    points: sorted
      .filter((v) => v.metricsAfter && typeof v.metricsAfter[key] === 'number')
      .map((v) => ({ x: v.version, y: v.metricsAfter![key] })),
  });
  const metricsPlot = linePlot(
    'Validation metrics after each fine-tune',
    'model version',
    [
      metric('miou', 'mIoU', PALETTE[0]),
      metric('boundaryIoU', 'boundary IoU', PALETTE[1]),
      metric('boundaryF', 'boundary F', PALETTE[2]),
    ],
    1,
  );
  const withHistory = sorted.filter((v) => v.history && v.history.length > 0).slice(-8);
  const lossPlot = linePlot(
    'Training loss per epoch',
    'epoch',
    withHistory.map((v, i) => ({
      name: `v${v.version}`,
      colour: PALETTE[i % PALETTE.length],
      points: v.history!.map((h) => ({ x: h.epoch, y: h.loss })),
    })),
  );
  const cell = (m: Record<string, number> | null | undefined, k: string): string =>
    m && typeof m[k] === 'number' ? m[k].toFixed(3) : '–';
  const rows = sorted
    .map(
      (v) =>
        `<tr${v.version === current ? ' class="cur"' : ''}><td>${v.version}${v.version === current ? ' (current)' : ''}</td><td>${v.parent ?? '–'}</td><td>${escapeHtml(v.createdAt)}</td><td>${v.accepted ? 'yes' : 'no'}</td><td>${cell(v.metricsBefore, 'miou')} → ${cell(v.metricsAfter, 'miou')}</td><td>${cell(v.metricsBefore, 'boundaryIoU')} → ${cell(v.metricsAfter, 'boundaryIoU')}</td><td>${v.train?.length ?? 0}/${v.validation?.length ?? 0}</td><td>${v.seconds !== undefined ? v.seconds.toFixed(1) : '–'}</td><td>${escapeHtml(v.backend)}</td><td>${escapeHtml(v.reason)}</td></tr>`,
    )
    .join('');
  return `<div class="plots">${metricsPlot}${lossPlot}</div>
<table><thead><tr><th>version</th><th>parent</th><th>created</th><th>accepted</th><th>mIoU before → after</th><th>boundary IoU before → after</th><th>train/val images</th><th>seconds</th><th>backend</th><th>reason</th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function reportHtml(cspSource: string, nonce: string, title: string, body: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}' ${cspSource}; img-src ${cspSource} data:">
<title>${escapeHtml(title)}</title>
<style nonce="${nonce}">
body { color: var(--vscode-foreground); background: var(--vscode-editor-background); font-family: var(--vscode-font-family); padding: 0 1em; }
svg { background: var(--vscode-editorWidget-background); margin: 0 1em 1em 0; }
svg .t { fill: var(--vscode-foreground); font-size: 13px; font-weight: 600; }
svg .k { fill: var(--vscode-descriptionForeground); font-size: 11px; }
svg .ax { stroke: var(--vscode-foreground); }
svg .g { stroke: var(--vscode-panel-border); stroke-dasharray: 2 3; }
table { border-collapse: collapse; } td, th { border: 1px solid var(--vscode-panel-border); padding: 2px 6px; text-align: left; }
tr.cur { font-weight: 600; }
</style></head><body><h2>${escapeHtml(title)}</h2>${body}</body></html>`;
}
