// Where an image's mask sidecar lives, from the `maskloop.maskPath` template. Pure; no VS Code.
import * as path from 'node:path';

export const DEFAULT_MASK_TEMPLATE = '${dir}/${stem}.mask.png';

/** Variables: ${dir} (the image's folder), ${stem} (name without extension), ${ext} (with the dot), ${workspaceFolder}, ${relDir} (the image's folder relative to the workspace folder). */
export function resolveMaskPath(template: string, image: string, workspaceFolder?: string): string {
  const dir = path.dirname(image);
  const ext = path.extname(image);
  const stem = path.basename(image, ext);
  const ws = workspaceFolder ?? dir;
  const relDir = path.relative(ws, dir) || '.';
  const out = template.replace(/\$\{(\w+)\}/g, (whole, name: string) => {
    switch (name) {
      case 'dir':
        return dir;
      case 'stem':
        return stem;
      case 'ext':
        return ext;
      case 'workspaceFolder':
        return ws;
      case 'relDir':
        return relDir;
      default:
        throw new Error(`maskloop.maskPath: unknown variable ${whole} in "${template}"`);
    }
  });
  if (!out.toLowerCase().endsWith('.png'))
    throw new Error(`maskloop.maskPath must name a .png file; "${template}" gives ${out}`);
  const resolved = path.resolve(ws, out);
  if (resolved === path.resolve(image))
    throw new Error(`maskloop.maskPath "${template}" would overwrite the image ${image} itself`);
  return resolved;
}

/** True for files that are masks or suggestions, not images to label (so they are never offered for labelling). */
export function isMaskFile(file: string, template: string = DEFAULT_MASK_TEMPLATE): boolean {
  const base = path.basename(file).toLowerCase();
  if (base.endsWith('.mask.png') || base.endsWith('.suggestion.png')) return true;
  // A template like `${workspaceFolder}/masks/${stem}.png` puts masks in a folder of their own.
  const suffix = template.split('${stem}')[1];
  if (suffix && suffix !== '.png' && base.endsWith(suffix.toLowerCase())) return true;
  const folderTemplate = template.split('${stem}')[0];
  if (!folderTemplate.includes('${dir}') && folderTemplate.length > 0) {
    const marker = folderTemplate.replace(/\$\{\w+\}/g, '').replace(/^[/\\]+|[/\\]+$/g, '');
    if (marker && file.split(/[/\\]/).slice(0, -1).join('/').endsWith(marker.split(/[/\\]/).join('/'))) return true;
  }
  return false;
}

/** Where `maskloop: Pre-label Folder` writes an unreviewed suggestion for an image. */
export function suggestionPathFor(maskPath: string): string {
  return maskPath.replace(/(\.mask)?\.png$/i, '.suggestion.png');
}
