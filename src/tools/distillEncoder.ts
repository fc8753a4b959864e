// Distils the ResNet-style encoder shipped in models/encoders/distilled-resnet/ from the shipped MobileNetV2's
// multi-scale features. Run: bash scripts/fetch-photos.sh --distill && npm run distill-encoder [-- options]
//
// The student is the engine's residual basic blocks (stem at stride 2, one block at each of strides 2, 4, 8,
// two at 16; widths 16, 32, 64, 128). On random crops of photographs (several scales, flips, colour jitter),
// a 1x1 convolution from each student feature map must predict the teacher's feature map at the same stride,
// standardised per channel; the loss is their mean squared error. Only the student is written: in the
// segmentation network its feature maps feed the decoder's 1x1 skip convolutions directly. The photographs
// are KDE's wallpapers (plasma-workspace-wallpapers); two are held out to measure how much of the teacher's
// features the student explains (R^2) on photographs it never saw. Everything is seeded; the data order and
// initialisation are the same on every run, the floating-point results are those of the backend it ran on.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { resolveBackend } from '../engine/backends';
import { featureStats } from '../engine/network/featureStats';
import { normalizePixel } from '../engine/network/networkInput';
import { buildFoldedEncoder, ENCODERS, findEncoderFolder, loadShippedEncoder } from '../engine/network/pretrainedUNet';
import { Builder, countParameters } from '../engine/network/resUNet';
import { SeededRandom } from '../masks/seededRandom';

const STUDENT_WIDTHS = [16, 32, 64, 128];

/** The student: the engine's residual basic blocks, features named as `ENCODERS['distilled-resnet'].features`. */
export function buildStudentEncoder(seed: number): tfl.LayersModel {
  const b = new Builder({
    numClasses: 2,
    stemWidth: STUDENT_WIDTHS[0],
    stageWidths: STUDENT_WIDTHS,
    blocksPerStage: 1,
    residual: true,
    bnMomentum: 0.99,
    seed,
  });
  const input = tfl.input({ shape: [null, null, 3], name: 'image' });
  let x = b.relu(b.bn(b.conv(input, STUDENT_WIDTHS[0], 3, 2, 'rn_stem_conv'), 'rn_stem_bn'), 'rn_stem_relu');
  const features: tfl.SymbolicTensor[] = [];
  x = b.block(x, STUDENT_WIDTHS[0], 1, 'rn_s1_b1');
  features.push(x);
  x = b.block(x, STUDENT_WIDTHS[1], 2, 'rn_s2_b1');
  features.push(x);
  x = b.block(x, STUDENT_WIDTHS[2], 2, 'rn_s3_b1');
  features.push(x);
  x = b.block(x, STUDENT_WIDTHS[3], 2, 'rn_s4_b1');
  x = b.block(x, STUDENT_WIDTHS[3], 1, 'rn_s4_b2');
  features.push(x);
  const model = tfl.model({ inputs: input, outputs: features, name: 'distilled_resnet_encoder' });
  const names = model.outputs.map((o) => o.name.split('/')[0]);
  if (names.join() !== ENCODERS['distilled-resnet'].features.join())
    throw new Error(`student features ${names.join()} are not the shipped names`);
  return model;
}

interface Photo {
  name: string;
  sha256: string;
  /** The photograph at several scales (shorter side 1080, 720, 540, 360, 270 px for a 1920x1080 image). */
  levels: { width: number; height: number; data: Uint8Array }[];
}

async function loadPhotos(dir: string): Promise<Photo[]> {
  const files = fs
    .readdirSync(dir)
    .filter((f) => /\.(jpe?g|png)$/i.test(f))
    .sort();
  if (files.length < 3)
    throw new Error(`${dir}: ${files.length} photographs; run bash scripts/fetch-photos.sh --distill`);
  const photos: Photo[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    const bytes = fs.readFileSync(file);
    const meta = await sharp(bytes).metadata();
    const base = 1080 / Math.min(meta.width ?? 1, meta.height ?? 1);
    const levels = [];
    for (const s of [1, 1.5, 2, 3, 4]) {
      const width = Math.round(((meta.width ?? 1) * base) / s);
      const { data, info } = await sharp(bytes)
        .removeAlpha()
        .toColourspace('srgb')
        .resize(width)
        .raw()
        .toBuffer({ resolveWithObject: true });
      levels.push({
        width: info.width,
        height: info.height,
        data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      });
    }
    photos.push({ name: f, sha256: createHash('sha256').update(bytes).digest('hex'), levels });
  }
  return photos;
}

/** A batch of random crops: photograph, scale, position, horizontal flip, brightness/contrast jitter. */
function sampleBatch(photos: Photo[], rng: SeededRandom, batch: number, crop: number): tf.Tensor4D {
  const xs = new Float32Array(batch * crop * crop * 3);
  for (let b = 0; b < batch; b++) {
    const p = photos[rng.int(0, photos.length)];
    const level = p.levels[rng.int(0, p.levels.length)];
    const x0 = rng.int(0, level.width - crop + 1);
    const y0 = rng.int(0, level.height - crop + 1);
    const flip = rng.next() < 0.5;
    const brightness = rng.range(-0.1, 0.1) * 127.5;
    const contrast = 1 + rng.range(-0.1, 0.1);
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        const sx = x0 + (flip ? crop - 1 - x : x);
        const si = ((y0 + y) * level.width + sx) * 3;
        const o = ((b * crop + y) * crop + x) * 3;
        for (let c = 0; c < 3; c++)
          xs[o + c] = normalizePixel(
            Math.max(0, Math.min(255, (level.data[si + c] - 127.5) * contrast + 127.5 + brightness)),
          );
      }
    }
  }
  return tf.tensor4d(xs, [batch, crop, crop, 3]);
}

interface Standardiser {
  mean: tf.Tensor1D[];
  std: tf.Tensor1D[];
}

/** Per-channel mean and standard deviation of the teacher's features over training crops (std floored at 0.05). */
function teacherStatistics(
  teacher: tfl.LayersModel,
  photos: Photo[],
  rng: SeededRandom,
  batches: number,
  batch: number,
  crop: number,
): Standardiser {
  const sums: tf.Tensor1D[] = [];
  const squares: tf.Tensor1D[] = [];
  let n = 0;
  for (let k = 0; k < batches; k++) {
    const x = sampleBatch(photos, rng, batch, crop);
    const outs = teacher.predict(x) as tf.Tensor4D[];
    outs.forEach((o, i) => {
      const s = tf.sum(o, [0, 1, 2]) as tf.Tensor1D;
      const q = tf.sum(tf.square(o), [0, 1, 2]) as tf.Tensor1D;
      if (k === 0) {
        sums.push(s);
        squares.push(q);
      } else {
        const [ps, pq] = [sums[i], squares[i]];
        sums[i] = tf.add(ps, s);
        squares[i] = tf.add(pq, q);
        tf.dispose([ps, pq, s, q]);
      }
    });
    n += outs.map((o) => o.shape[0] * o.shape[1] * o.shape[2])[0];
    tf.dispose([x, ...outs]);
  }
  // n counts the stride-2 map's positions; each map's own count is n / 4^i.
  const mean = sums.map((s, i) => tf.div(s, n / 4 ** i) as tf.Tensor1D);
  const std = squares.map((q, i) =>
    tf.tidy(() => tf.maximum(tf.sqrt(tf.relu(tf.sub(tf.div(q, n / 4 ** i), tf.square(mean[i])))), 0.05) as tf.Tensor1D),
  );
  tf.dispose([...sums, ...squares]);
  return { mean, std };
}

function standardise(outs: tf.Tensor4D[], st: Standardiser): tf.Tensor4D[] {
  return outs.map((o, i) => tf.div(tf.sub(o, st.mean[i]), st.std[i]) as tf.Tensor4D);
}

/** How much of the teacher's standardised features the student's projections explain, per stride, on fixed crops. */
function explained(
  student: tfl.LayersModel,
  teacher: tfl.LayersModel,
  adaptors: tf.Variable[][],
  st: Standardiser,
  crops: tf.Tensor4D[],
): number[] {
  const sse = [0, 0, 0, 0];
  const sst = [0, 0, 0, 0];
  for (const x of crops) {
    tf.tidy(() => {
      const targets = standardise(teacher.predict(x) as tf.Tensor4D[], st);
      const preds = project(student.predict(x) as tf.Tensor4D[], adaptors);
      targets.forEach((t, i) => {
        sse[i] += tf.sum(tf.square(tf.sub(preds[i], t))).dataSync()[0];
        sst[i] += tf.sum(tf.square(tf.sub(t, tf.mean(t, [0, 1, 2])))).dataSync()[0];
      });
    });
  }
  return sse.map((e, i) => 1 - e / sst[i]);
}

function project(features: tf.Tensor4D[], adaptors: tf.Variable[][]): tf.Tensor4D[] {
  return features.map(
    (f, i) => tf.add(tf.conv2d(f, adaptors[i][0] as tf.Tensor4D, 1, 'same'), adaptors[i][1]) as tf.Tensor4D,
  );
}

/** Writes a layers model as model.json + weights.bin (float32), each through a temporary file and a rename. */
async function saveEncoder(model: tfl.LayersModel, outDir: string, generatedBy: string): Promise<number> {
  let bytes = 0;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.mkdirSync(outDir, { recursive: true });
      const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      bytes = weights.length;
      const modelJson = {
        format: 'layers-model',
        generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      for (const [file, data] of [
        ['weights.bin', weights],
        ['model.json', JSON.stringify(modelJson)],
      ] as const) {
        const tmp = path.join(outDir, `.${file}.tmp`);
        fs.writeFileSync(tmp, data);
        fs.renameSync(tmp, path.join(outDir, file));
      }
      return {
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.length },
      };
    }),
  );
  return bytes;
}

function writeJson(file: string, value: unknown): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      photos: { type: 'string', default: path.join('.cache', 'photos', 'distill') },
      out: { type: 'string', default: ENCODERS['distilled-resnet'].folder },
      steps: { type: 'string', default: '2400' },
      batch: { type: 'string', default: '8' },
      crop: { type: 'string', default: '128' },
      lr: { type: 'string', default: '0.002' },
      seed: { type: 'string', default: '1' },
      'held-out': { type: 'string', default: '2' },
      backend: { type: 'string', default: 'wasm' },
    },
  });
  const steps = Number(values.steps);
  const batch = Number(values.batch);
  const crop = Number(values.crop);
  const lr = Number(values.lr);
  const seed = Number(values.seed);
  const heldOutCount = Number(values['held-out']);
  const backend = await resolveBackend(values.backend as 'wasm');
  const start = Date.now();
  const photos = await loadPhotos(values.photos as string);
  // The held-out photographs, spread evenly over the sorted list.
  const heldOutIndices = Array.from({ length: heldOutCount }, (_, k) =>
    Math.round(((k + 1) * photos.length) / (heldOutCount + 1)),
  );
  const heldOut = photos.filter((_, i) => heldOutIndices.includes(i));
  const train = photos.filter((p) => !heldOut.includes(p));
  const teacherFolder = findEncoderFolder('mobilenetv2');
  const shipped = await loadShippedEncoder(teacherFolder);
  const teacher = buildFoldedEncoder(shipped, 'mobilenetv2');
  shipped.dispose();
  const rng = new SeededRandom(seed);
  const st = teacherStatistics(teacher, train, rng, 16, batch, crop);
  const student = buildStudentEncoder(seed);
  const teacherChannels = teacher.outputs.map((o) => o.shape[3] as number);
  const adaptors = STUDENT_WIDTHS.map((w, i) => [
    tf.variable(
      tf.randomNormal([1, 1, w, teacherChannels[i]], 0, Math.sqrt(1 / w), 'float32', seed * 100 + i),
      true,
      `adaptor${i}_kernel`,
    ),
    tf.variable(tf.zeros([teacherChannels[i]]), true, `adaptor${i}_bias`),
  ]);
  const evalRng = new SeededRandom(seed + 1000);
  const heldOutCrops = Array.from({ length: 8 }, () => sampleBatch(heldOut, evalRng, batch, crop));
  const trainCrops = Array.from({ length: 8 }, () => sampleBatch(train, evalRng, batch, crop));
  const optimizer = tf.train.adam(lr);
  const variables = [...student.trainableWeights.map((w) => w.read() as tf.Variable), ...adaptors.flat()];
  const curve: { step: number; loss: number; seconds: number }[] = [];
  let lossSum = 0;
  const trainStart = Date.now();
  process.stdout.write(
    `distilling on ${backend.backend}: ${train.length} photographs (${heldOut.length} held out: ${heldOut.map((p) => p.name).join(', ')}), ${steps} steps of ${batch} crops of ${crop} px; student ${countParameters(student).total} parameters\n`,
  );
  for (let step = 1; step <= steps; step++) {
    // Linear warm-up over 50 steps, then cosine decay to zero.
    const rate = step <= 50 ? (lr * step) / 50 : lr * 0.5 * (1 + Math.cos((Math.PI * (step - 50)) / (steps - 50)));
    (optimizer as unknown as { learningRate: number }).learningRate = rate;
    const x = sampleBatch(train, rng, batch, crop);
    const targets = tf.tidy(() => standardise(teacher.predict(x) as tf.Tensor4D[], st));
    const lossT = optimizer.minimize(
      () => {
        const preds = project(student.apply(x, { training: true }) as tf.Tensor4D[], adaptors);
        return tf.div(
          tf.addN(preds.map((p, i) => tf.mean(tf.square(tf.sub(p, targets[i]))))),
          preds.length,
        ) as tf.Scalar;
      },
      true,
      variables,
    );
    const loss = lossT ? (await lossT.data())[0] : NaN;
    tf.dispose([x, ...targets, lossT as tf.Tensor]);
    if (!Number.isFinite(loss)) throw new Error(`the distillation loss became ${loss} at step ${step}`);
    lossSum += loss;
    if (step % 25 === 0 || step === steps) {
      const seconds = (Date.now() - trainStart) / 1000;
      curve.push({ step, loss: lossSum / (step % 25 === 0 ? 25 : step % 25), seconds });
      process.stdout.write(
        `step ${step}/${steps}: loss ${(lossSum / (step % 25 === 0 ? 25 : step % 25)).toFixed(4)}, ${(seconds / step).toFixed(2)} s/step, ${Math.round((seconds / step) * (steps - step))} s left\n`,
      );
      lossSum = 0;
    }
  }
  const r2HeldOut = explained(student, teacher, adaptors, st, heldOutCrops);
  const r2Train = explained(student, teacher, adaptors, st, trainCrops);
  process.stdout.write(
    `R^2 of the teacher's features (strides 2, 4, 8, 16): held out ${r2HeldOut.map((v) => v.toFixed(3)).join(' ')}; training photographs ${r2Train.map((v) => v.toFixed(3)).join(' ')}\n`,
  );
  const outDir = path.resolve(values.out as string);
  const bytes = await saveEncoder(student, outDir, 'maskloop npm run distill-encoder (src/tools/distillEncoder.ts)');
  // The same fixed input as the MobileNetV2 files: the test checks the loaded features against these statistics.
  const teacherExpected = JSON.parse(fs.readFileSync(path.join(teacherFolder, 'expected-features.json'), 'utf8')) as {
    input: { file: string; shape: [number, number, number, number] };
    weightsSha256: string;
  };
  fs.copyFileSync(path.join(teacherFolder, teacherExpected.input.file), path.join(outDir, 'fixed-input.bin'));
  const raw = fs.readFileSync(path.join(outDir, 'fixed-input.bin'));
  const fixed = tf.tensor4d(
    new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)),
    teacherExpected.input.shape,
  );
  const features = student.predict(fixed) as tf.Tensor[];
  writeJson(path.join(outDir, 'expected-features.json'), {
    source: 'npm run distill-encoder',
    featureLayers: ENCODERS['distilled-resnet'].features,
    input: {
      file: 'fixed-input.bin',
      shape: teacherExpected.input.shape,
      made: "the MobileNetV2 encoder's fixed input (scripts/extract-encoder.mjs), float32 little-endian",
    },
    stats: features.map((f) => ({ shape: f.shape, ...featureStats(f.dataSync()) })),
    weightsSha256: createHash('sha256')
      .update(fs.readFileSync(path.join(outDir, 'weights.bin')))
      .digest('hex'),
  });
  writeJson(path.join(outDir, 'distill-report.json'), {
    teacher: {
      encoder: 'mobilenetv2',
      weightsSha256: teacherExpected.weightsSha256,
      features: ENCODERS.mobilenetv2.features,
    },
    student: {
      widths: STUDENT_WIDTHS,
      features: ENCODERS['distilled-resnet'].features,
      parameters: countParameters(student).total,
      weightBytes: bytes,
    },
    photographs: {
      source: 'Debian plasma-workspace-wallpapers 4:5.27.5-2 (bash scripts/fetch-photos.sh --distill)',
      train: train.map((p) => ({ name: p.name, sha256: p.sha256 })),
      heldOut: heldOut.map((p) => ({ name: p.name, sha256: p.sha256 })),
    },
    settings: {
      steps,
      batch,
      crop,
      learningRate: lr,
      schedule: '50-step linear warm-up, then cosine decay',
      seed,
      scales: 'shorter side 1080, 720, 540, 360, 270 px',
      augmentation: 'horizontal flip, brightness and contrast +-10%',
      loss: 'mean squared error of 1x1 projections against per-channel standardised teacher features, averaged over the 4 strides',
    },
    result: { explainedVarianceHeldOut: r2HeldOut, explainedVarianceTrain: r2Train, curve },
    machine: { backend: backend.backend, node: process.version, seconds: (Date.now() - start) / 1000 },
  });
  fs.copyFileSync(path.join(teacherFolder, 'LICENSE.nsfwjs'), path.join(outDir, 'LICENSE.nsfwjs'));
  process.stdout.write(
    `wrote ${outDir}: ${countParameters(student).total} parameters, ${bytes} bytes of weights, in ${((Date.now() - start) / 1000).toFixed(0)} s\n`,
  );
  tf.dispose([fixed, ...features, ...heldOutCrops, ...trainCrops, ...st.mean, ...st.std, ...adaptors.flat()]);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
