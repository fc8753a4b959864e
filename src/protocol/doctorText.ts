// The doctor's report as lines of text, for `maskloop doctor` and the "MaskLoop: Check GPU" output. Pure.
import type { DoctorReport } from './doctorTypes';

export function doctorText(r: DoctorReport): string[] {
  const out = [
    `${r.platform}, Node ${r.node} (N-API ${r.napi}), ${r.cpus}`,
    `automatic choice: ${r.selectedLabel} [${r.selected}]`,
  ];
  for (const l of r.lines) {
    const state = l.usable
      ? 'usable'
      : l.loads
        ? 'loads, not usable'
        : l.installed
          ? 'installed, does not load'
          : 'not installed';
    out.push(`${l.name}: ${state}: ${l.reason}`);
    if (l.fix) out.push(`  fix: ${l.fix}`);
    if (l.adapter) {
      const lim = l.adapter.limits;
      out.push(
        `  adapter: ${l.adapter.description || l.adapter.device} (vendor ${l.adapter.vendor || '?'}, ${l.adapter.architecture || '?'}${l.adapter.software && l.adapter.architecture !== 'software' ? ', software' : ''}); max buffer ${Math.round((lim.maxBufferSize ?? 0) / 2 ** 20)} MiB, workgroup ${lim.maxComputeInvocationsPerWorkgroup ?? '?'} invocations`,
      );
    }
    if (l.timing)
      out.push(
        `  timed: 512x512 pre-label ${l.timing.preLabel.toFixed(2)} s${l.timing.step !== undefined ? `, one training step (2 crops of 256x256) ${l.timing.step.toFixed(2)} s` : ''}`,
      );
  }
  return out;
}
