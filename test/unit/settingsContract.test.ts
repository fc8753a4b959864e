// package.json's contributed settings carry their defaults and bounds for VS Code's settings UI; the code reads
// the same values from src/protocol/settings.ts. This test keeps the two in agreement.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_ENCODER } from '../../src/protocol/encoderKind';
import { BACKEND_ORDER, DEFAULT_FINE_TUNE, EDITOR_DEFAULTS, MIN_CROP_SIZE } from '../../src/protocol/settings';

interface Property {
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
}
const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Property> } | { properties: Record<string, Property> }[] };
};
const groups = Array.isArray(pkg.contributes.configuration)
  ? pkg.contributes.configuration
  : [pkg.contributes.configuration];
const props: Record<string, Property> = Object.assign({}, ...groups.map((g) => g.properties));

test('the contributed settings have the defaults and bounds the code uses', () => {
  assert.equal(props['maskloop.maskOpacity'].default, EDITOR_DEFAULTS.maskOpacity);
  assert.equal(props['maskloop.wandTolerance'].default, EDITOR_DEFAULTS.wandTolerance);
  assert.equal(props['maskloop.fineTune.epochs'].default, DEFAULT_FINE_TUNE.epochs);
  assert.equal(props['maskloop.fineTune.learningRate'].default, DEFAULT_FINE_TUNE.learningRate);
  assert.equal(props['maskloop.fineTune.batchSize'].default, DEFAULT_FINE_TUNE.batchSize);
  assert.equal(props['maskloop.fineTune.boundaryLossWeight'].default, DEFAULT_FINE_TUNE.boundaryWeight);
  assert.equal(props['maskloop.fineTune.pixelHead'].default, DEFAULT_FINE_TUNE.pixelHead);
  assert.equal(props['maskloop.fineTune.threads'].default, DEFAULT_FINE_TUNE.gradientThreads);
  assert.equal(props['maskloop.fineTune.cropSize'].minimum, MIN_CROP_SIZE);
  assert.equal(props['maskloop.encoder'].default, DEFAULT_ENCODER);
  assert.deepEqual(props['maskloop.backend'].enum, ['auto', ...BACKEND_ORDER]);
});
