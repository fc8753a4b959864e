import * as fs from 'node:fs';
import { parseClassList, type ClassList } from '../masks/classList';
import { InputError } from '../masks/inputError';

/** Reads and parses a class list file (labelme's labels.txt convention). */
export async function readClassList(file: string): Promise<ClassList> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(file, `cannot read the class list (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseClassList(text, file);
}
