import { SingleBar, Presets } from 'cli-progress';
import type { ProgressEvent } from '../protocol/modelProtocol';

/**
 * Progress on stderr: a live bar on a terminal, one plain line per epoch otherwise, nothing with --json
 * (stdout stays machine-readable either way).
 */
export class ProgressReporter {
  private bar: SingleBar | undefined;
  private barTotal = 0;
  private readonly tty: boolean;

  constructor(private readonly quiet: boolean) {
    this.tty = Boolean(process.stderr.isTTY) && !quiet;
  }

  handle = (event: ProgressEvent): void => {
    if (this.quiet) return;
    switch (event.type) {
      case 'fineTune': {
        const p = event.progress;
        const total = p.epochs * p.steps;
        const value = (p.epoch - 1) * p.steps + p.step;
        if (this.tty) {
          this.ensure(total, 'fine-tune');
          this.bar?.update(value, {
            info: `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)}${p.val ? ` val bIoU ${p.val.boundaryIoU.toFixed(3)}` : ''} eta ${Math.round(p.etaSeconds)}s`,
          });
        } else if (p.phase === 'validate') {
          process.stderr.write(
            `epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(4)}${p.val ? `, validation mIoU ${p.val.miou.toFixed(3)}, boundary IoU ${p.val.boundaryIoU.toFixed(3)}` : ''}\n`,
          );
        }
        break;
      }
      case 'prepare':
      case 'tiles':
        if (this.tty) {
          this.ensure(event.total, event.type === 'tiles' ? 'tiles' : 'images');
          this.bar?.update(event.done, { info: event.type === 'prepare' ? event.message : '' });
        }
        break;
      default: {
        const never: never = event;
        void never;
      }
    }
  };

  private ensure(total: number, label: string): void {
    if (this.bar && this.barTotal === total) return;
    this.stop();
    this.bar = new SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {info}`,
        stream: process.stderr,
        clearOnComplete: true,
        hideCursor: true,
      },
      Presets.shades_classic,
    );
    this.barTotal = total;
    this.bar.start(total, 0, { info: '' });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
    this.barTotal = 0;
  }
}
