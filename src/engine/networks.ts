// Which network a new model gets, and how a network config becomes a layers model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { buildPretrainedUNet, findEncoderFolder, loadShippedEncoder, PRETRAINED_NETWORK, PRETRAINED_PROVENANCE } from './pretrainedUNet';
import type { EncoderKind } from './encoderKind';
import { buildResUNet, DEFAULT_NETWORK, type NetworkConfig } from './resUNet';

/** The network config of a new model with this encoder. */
export function networkFor(encoder: EncoderKind, numClasses: number): NetworkConfig {
  return encoder === 'mobilenetv2' ? { ...PRETRAINED_NETWORK, numClasses } : { ...DEFAULT_NETWORK, encoder: 'scratch', numClasses };
}

/** Builds a network from its config: the pretrained encoder's weights are read from the shipped files. */
export async function buildNetwork(config: NetworkConfig): Promise<tfl.LayersModel> {
  if ((config.encoder ?? 'scratch') === 'scratch') return buildResUNet(config);
  const encoder = await loadShippedEncoder();
  try {
    return buildPretrainedUNet(config, encoder);
  } finally {
    encoder.dispose();
  }
}

/** What a new model's encoder weights are, for its metadata: the source and the SHA-256 of the shipped file. */
export function encoderProvenance(config: NetworkConfig): string {
  if ((config.encoder ?? 'scratch') === 'scratch') return 'residual basic blocks, random initialisation (He normal)';
  const expected = JSON.parse(fs.readFileSync(path.join(findEncoderFolder(), 'expected-features.json'), 'utf8')) as { weightsSha256: string };
  return `${PRETRAINED_PROVENANCE}; weights.bin sha256 ${expected.weightsSha256}`;
}
