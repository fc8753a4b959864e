// `maskloop bench`: pre-label latency and fine-tune throughput on every backend that loads.
import { Command } from 'commander';
import { BACKEND_ORDER, type BackendName, type BackendReport } from '../../protocol/settings';
import { ModelClient, ModelRequestError } from '../../modelServer/modelClient';
import type { BenchResult } from '../../protocol/modelProtocol';
import type { FineTuneTiming } from '../../protocol/modelTypes';
import { UsageError, choiceArg, fmt, intArg, requiredInt, textArg } from '../cliContext';
import { common, withContext, type Opts } from '../options';

export function registerBenchCommand(program: Command): void {
  common(program.command('bench').description('pre-label latency and fine-tune throughput on this machine'), false)
    .option('--sizes <list>', 'image sizes, comma-separated (default 256,512,1024,4096)')
    .option('--repeats <n>', 'repeats per size (median reported; default 5)')
    .option('--train-steps <n>', 'timed training steps (default 5)')
    .option('--round <images>', 'images in the timed default fine-tune round (default 20; 0 skips it)')
    .option('--round-size <px>', "size of the round's generated images (default 512)")
    .option('--round-epochs <n>', "epochs of the round (default: the default fine-tune's)")
    .option('--round-crop <px>', "training crop size of the round (default: the default fine-tune's)")
    .option(
      '--round-threads <n>',
      "gradient threads of the round, 1 or 2 (default: the default fine-tune's, automatic)",
    )
    .option('--round-runtime <name>', "where the round's training steps run: auto (the default fine-tune's) or tfjs")
    .option('--train-crop <px>', "crop size of the timed training steps (default 256, the default fine-tune's)")
    .option(
      '--propagation <sizes>',
      'frame sizes WxH at which to time a propagation step, comma-separated (default 480x360,1920x1080; none skips it)',
    )
    .action(async (o: Opts) =>
      withContext(o, async (ctx) => {
        const roundImages = intArg('--round', o.round, 0) ?? 20;
        const roundSize = intArg('--round-size', o.roundSize, 32) ?? 512;
        const sizes = (textArg('--sizes', o.sizes) ?? '256,512,1024,4096')
          .split(',')
          .map((s) => requiredInt('--sizes', s.trim(), 16));
        const repeats = intArg('--repeats', o.repeats, 1) ?? 5;
        const trainSteps = intArg('--train-steps', o.trainSteps, 1) ?? 5;
        const propagationSizes = frameSizes(textArg('--propagation', o.propagation) ?? '480x360,1920x1080');
        // Every backend that loads, each in its own model process; a forced backend alone.
        const forced = textArg('--backend', o.backend) ?? process.env.MASKLOOP_BACKEND;
        const order: readonly BackendName[] = forced && forced !== 'auto' ? [forced as BackendName] : BACKEND_ORDER;
        const results: (BenchResult & { backendReport: BackendReport; sizesNote?: string })[] = [];
        const skipped: { backend: string; reason: string }[] = [];
        for (const backend of order) {
          const client = new ModelClient({ backend });
          try {
            const info = await client.request('info', {});
            // Pure JS is about 23x slower than wasm: beside faster backends it is measured on small work only.
            const reduced = backend === 'cpu' && order.length > 1;
            const roundEpochs = intArg('--round-epochs', o.roundEpochs, 1);
            const roundCrop = intArg('--round-crop', o.roundCrop, 16);
            const roundThreads = intArg('--round-threads', o.roundThreads, 1);
            const roundRuntime = choiceArg('--round-runtime', o.roundRuntime, ['auto', 'tfjs'] as const);
            const trainCrop = intArg('--train-crop', o.trainCrop, 16) ?? 256;
            const fineTuneRound =
              !reduced && roundImages > 0
                ? {
                    images: roundImages,
                    size: roundSize,
                    ...(roundEpochs ? { epochs: roundEpochs } : {}),
                    ...(roundCrop ? { cropSize: roundCrop } : {}),
                    ...(roundThreads ? { threads: roundThreads } : {}),
                    ...(roundRuntime ? { runtime: roundRuntime } : {}),
                  }
                : undefined;
            if (fineTuneRound && !ctx.json)
              process.stderr.write(
                `${backend}: timing the default fine-tune round on ${roundImages} generated ${roundSize}x${roundSize} images...\n`,
              );
            const r = await client.request('bench', {
              encoder: ctx.encoder,
              sizes: reduced ? sizes.filter((s) => s <= 256) : sizes,
              repeats: reduced ? 1 : repeats,
              trainSteps: reduced ? 1 : trainSteps,
              cropSize: reduced ? 32 : trainCrop,
              batchSize: 2,
              fineTuneRound,
              // Optical flow and fusion run in JS and WebAssembly whatever the backend: timed once.
              ...(results.length === 0 ? { propagationSizes } : {}),
            });
            results.push({
              ...r,
              backendReport: info.backend,
              sizesNote: reduced ? 'pure-JS backend: sizes up to 256, one training step on 32x32 crops' : undefined,
            });
          } catch (err) {
            skipped.push({
              backend,
              reason: (err instanceof Error ? err.message : String(err)).split('\n')[0].replace(/^Error: /, ''),
            });
          } finally {
            client.dispose();
          }
        }
        if (results.length === 0)
          throw new ModelRequestError(
            'input',
            `no backend could run the benchmark: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`,
          );
        const os = await import('node:os');
        const machine = {
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model ?? 'unknown',
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          node: process.version,
        };
        // The fastest backend's figures at the top level, every backend's in `backends`.
        ctx.out({ ...results[0], machine, backends: results, skipped });
        ctx.say(`machine: ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}`);
        for (const s of skipped) ctx.say(`skipped ${s.backend}: ${s.reason}`);
        for (const r of results) {
          ctx.say(
            `backend ${r.backend} (${r.backendReport.label}), encoder ${r.encoder}, ${r.parameters} parameters (${r.trainableParameters} trained)${r.sizesNote ? ` [${r.sizesNote}]` : ''}`,
          );
          ctx.say(`  pre-labels with ${r.inference.runtime}: ${r.inference.reason}`);
          for (const s of Object.keys(r.prelabelMs))
            ctx.say(`  pre-label ${s}x${s}: ${r.prelabelMs[s]} ms median (${r.prelabelGflops[s]} GFLOP/s)`);
          const step = (t: BenchResult['train'] | NonNullable<BenchResult['trainTwoThreads']>): string =>
            `${t.medianStepMs} ms per step of ${t.batchSize}x${t.cropSize}^2 crops, ${t.cropsPerSecond} crops/s (${t.gflops} GFLOP/s)`;
          ctx.say(`  training, one thread: ${step(r.train)}`);
          if (r.train.encoderForwardMs !== null)
            ctx.say(`    of which the frozen encoder's forward pass: ${r.train.encoderForwardMs} ms`);
          if (r.trainTwoThreads)
            ctx.say(
              `  training, two threads: ${step(r.trainTwoThreads)}; ${(r.train.medianStepMs / r.trainTwoThreads.medianStepMs).toFixed(2)}x`,
            );
          if (r.trainOnnx) {
            ctx.say(
              `  training through onnxruntime: ${step(r.trainOnnx)}; ${(r.train.medianStepMs / r.trainOnnx.medianStepMs).toFixed(2)}x one thread${r.trainTwoThreads ? `, ${(r.trainTwoThreads.medianStepMs / r.trainOnnx.medianStepMs).toFixed(2)}x two` : ''}`,
            );
            if (r.trainOnnx.encoderForwardMs !== null)
              ctx.say(`    of which the frozen encoder's forward pass (alone): ${r.trainOnnx.encoderForwardMs} ms`);
          }
          for (const [size, ms] of Object.entries(r.propagationMs ?? {}))
            ctx.say(`  propagation step ${size} (following the previous frame): ${ms} ms median`);
          ctx.say(`  peak RSS of the model process: ${r.peakRssMiB} MiB`);
          const f = r.fineTuneRound;
          if (f) {
            ctx.say(
              `  default fine-tune round: ${f.images} images of ${f.size}x${f.size}, crops ${f.cropSize}x${f.cropSize} (${f.trainImages} train / ${f.validationImages} held out), ${f.epochs} epochs, ${f.steps} steps in ${f.seconds} s; peak RSS ${f.peakRssMiB} MiB`,
            );
            ctx.say(
              `    held-out pixels to correct ${fmt(f.changedFractionBefore)} -> ${fmt(f.changedFractionAfter)}, boundary IoU ${fmt(f.boundaryIoUBefore)} -> ${fmt(f.boundaryIoUAfter)}`,
            );
            const t = f.timing;
            ctx.say(
              `    ${f.threads}; context head ${t.contextHead.toFixed(1)} s, training steps ${t.training.toFixed(1)} s, validation ${t.validation.toFixed(1)} s, pixel head ${t.pixelHead.toFixed(1)} s, check ${t.check.toFixed(1)} s`,
            );
            const split = trainingSplit(t, f.steps, r, f.threads.startsWith('onnxruntime') ? 'onnxruntime' : 'tfjs');
            if (split) ctx.say(`    training steps: ${split}`);
          }
        }
      }),
    );
}

/**
 * The round's training steps split into data preparation (making the crops), the frozen encoder's forward
 * passes (the steps times the encoder's forward pass on a batch, timed alone on the runtime the steps ran on)
 * and the rest (decoder forward and backward, loss, optimiser); null when the round did not time its crops.
 */
export function trainingSplit(
  t: FineTuneTiming,
  steps: number,
  r: Pick<BenchResult, 'train' | 'trainOnnx'>,
  runtime: 'onnxruntime' | 'tfjs',
): string | null {
  if (t.crops === undefined) return null;
  const encoderMs = runtime === 'onnxruntime' ? r.trainOnnx?.encoderForwardMs : r.train.encoderForwardMs;
  const parts = [`data preparation ${t.crops.toFixed(1)} s`];
  if (encoderMs !== null && encoderMs !== undefined) {
    const encoder = (steps * encoderMs) / 1000;
    parts.push(
      `encoder forward about ${encoder.toFixed(1)} s (${steps} x ${encoderMs} ms)`,
      `decoder forward and backward, loss and optimiser about ${Math.max(0, t.training - t.crops - encoder).toFixed(1)} s`,
    );
  } else parts.push(`network ${(t.training - t.crops).toFixed(1)} s`);
  return parts.join(', ');
}

/** `--propagation`: WxH sizes, or "none". */
export function frameSizes(text: string): { width: number; height: number }[] {
  if (text.trim() === 'none') return [];
  return text.split(',').map((part) => {
    const m = /^\s*(\d+)x(\d+)\s*$/.exec(part);
    const width = m ? Number(m[1]) : NaN;
    const height = m ? Number(m[2]) : NaN;
    if (!m || width < 16 || height < 16 || width > 8192 || height > 8192)
      throw new UsageError(
        `--propagation: "${part.trim()}" is not a frame size: write WIDTHxHEIGHT, 16 to 8192 each (e.g. 480x360), or none`,
      );
    return { width, height };
  });
}
