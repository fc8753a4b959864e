// Reproduces the pretrained encoder shipped in models/encoders/mobilenetv2/ from the npm package nsfwjs@4.4.0
// (MIT). Run: node scripts/extract-encoder.mjs [outDir]
//
// nsfwjs ships a Keras MobileNetV2 (ImageNet weights, then its blocks 11-16 and its head fine-tuned as an
// image classifier; blocks 0-10 kept trainable:false) as a TF.js layers model whose weights are stored
// uint8-quantized in base64 inside a JS module. This script downloads that exact tarball from the npm
// registry (integrity checked), keeps the layers up to block_13_expand_relu, frees the input size, and writes
// a TF.js layers model (float32 weights, dequantized) whose outputs are the expand-ReLU features at strides
// 2, 4, 8 and 16. It also records the features' statistics on a fixed input, which a test compares with
// what the shipped files give.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');

const PACKAGE = 'nsfwjs@4.4.0';
const INTEGRITY = 'sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2RvkwPtp0R8Aa7dc+MA==';
const LAST_LAYER = 'block_13_expand_relu';
const FEATURE_LAYERS = ['block_1_expand_relu', 'block_3_expand_relu', 'block_6_expand_relu', 'block_13_expand_relu'];

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(process.argv[2] ?? path.join(root, 'models', 'encoders', 'mobilenetv2'));

function fetchPackage() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-encoder-'));
  const name = execFileSync('npm', ['pack', PACKAGE, '--silent', '--pack-destination', dir], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  const tarball = path.join(dir, name);
  const digest = `sha512-${createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;
  if (digest !== INTEGRITY) throw new Error(`${tarball}: integrity ${digest} is not the pinned ${INTEGRITY}`);
  execFileSync('tar', ['xzf', tarball, '-C', dir]);
  return path.join(dir, 'package');
}

/** The fixed input of the feature check: smooth colour gradients and a disc, values in [-1, 1]. */
function fixedInput(size = 64) {
  const data = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inDisc = (x - size * 0.6) ** 2 + (y - size * 0.4) ** 2 < (size * 0.25) ** 2;
      const o = (y * size + x) * 3;
      data[o] = inDisc ? 0.8 : (x / size) * 2 - 1;
      data[o + 1] = inDisc ? -0.6 : (y / size) * 2 - 1;
      data[o + 2] = Math.sin((x + 2 * y) / 5) * 0.5;
    }
  }
  return tf.tensor4d(data, [1, size, size, 3]);
}

/** Mean, standard deviation and maximum of each feature map, and the fraction of positive values. */
function featureStats(outputs) {
  return outputs.map((t) => {
    const v = t.dataSync();
    let sum = 0;
    let sq = 0;
    let max = -Infinity;
    let pos = 0;
    for (const x of v) {
      sum += x;
      sq += x * x;
      if (x > max) max = x;
      if (x > 0) pos++;
    }
    const mean = sum / v.length;
    return {
      shape: t.shape,
      mean,
      std: Math.sqrt(Math.max(0, sq / v.length - mean * mean)),
      max,
      positive: pos / v.length,
    };
  });
}

async function main() {
  const pkg = fetchPackage();
  const json = require(path.join(pkg, 'dist/models/mobilenet_v2/model.min.js'));
  const shard = require(path.join(pkg, 'dist/models/mobilenet_v2/group1-shard1of1.min.js'));
  const base64 = typeof shard === 'string' ? shard : shard.default;
  const bytes = Buffer.from(base64, 'base64');
  const topology = structuredClone(json.modelTopology);
  const config = topology.model_config.config;
  const end = config.layers.findIndex((l) => l.name === LAST_LAYER);
  if (end < 0) throw new Error(`${LAST_LAYER} not in the nsfwjs topology`);
  config.layers = config.layers.slice(0, end + 1);
  config.layers[0].config.batch_input_shape = [null, null, null, 3];
  config.output_layers = FEATURE_LAYERS.map((n) => [n, 0, 0]);
  config.name = 'mobilenetv2_encoder';
  delete topology.training_config;
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const source = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: topology,
      weightSpecs: specs,
      weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    }),
    { strict: false },
  );
  // Rebuilt from the same topology so the saved weights are exactly this model's, in float32.
  const saved = await source.save(
    tf.io.withSaveHandler(async (artifacts) => {
      fs.mkdirSync(outDir, { recursive: true });
      const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const modelJson = {
        format: 'layers-model',
        generatedBy: `maskloop scripts/extract-encoder.mjs from ${PACKAGE}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      for (const [file, data] of [
        ['weights.bin', weights],
        ['model.json', JSON.stringify(modelJson)],
      ]) {
        const tmp = path.join(outDir, `.${file}.tmp`);
        fs.writeFileSync(tmp, data);
        fs.renameSync(tmp, path.join(outDir, file));
      }
      return {
        modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.length },
      };
    }),
  );
  const input = fixedInput();
  fs.writeFileSync(path.join(outDir, 'fixed-input.bin'), Buffer.from(input.dataSync().buffer));
  const outputs = source.predict(input);
  const expected = {
    source: PACKAGE,
    integrity: INTEGRITY,
    featureLayers: FEATURE_LAYERS,
    input: {
      file: 'fixed-input.bin',
      shape: input.shape,
      made: 'fixedInput(64) of scripts/extract-encoder.mjs, float32 little-endian',
    },
    stats: featureStats(outputs),
    weightsSha256: createHash('sha256')
      .update(fs.readFileSync(path.join(outDir, 'weights.bin')))
      .digest('hex'),
  };
  fs.writeFileSync(path.join(outDir, 'expected-features.json'), `${JSON.stringify(expected, null, 2)}\n`);
  fs.copyFileSync(path.join(pkg, 'LICENSE'), path.join(outDir, 'LICENSE.nsfwjs'));
  console.log(
    `wrote ${outDir}: ${source.countParams()} parameters, ${saved.modelArtifactsInfo.weightDataBytes} bytes of weights`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
