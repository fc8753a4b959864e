// "MaskLoop: Import Labels..." and "MaskLoop: Export Masks...": the formats of src/formats/ from the editor.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../../io/atomicWrite';
import { stemOf } from '../../io/datasetPairs';
import { exportMasks, importLabels, reportLines, type FormatReport } from '../../formats/formatFiles';
import { classListText, FORMATS, type FormatName } from '../../formats/formatTypes';
import { resolveMaskPath } from '../editor/maskPath';
import { readSettings, workspaceRootFor } from '../settings';
import type { ModelHub } from '../modelHub';
import { findWorkspaceImages } from './workspaceMasks';

const LABELS: Record<FormatName, string> = {
  coco: 'COCO (instances JSON: polygons and RLE)',
  labelme: 'labelme (one JSON per image)',
  voc: 'Pascal VOC (SegmentationClass palette PNGs)',
  yolo: 'YOLO segmentation (labels/*.txt + data.yaml)',
};

async function pickFormat(title: string): Promise<FormatName | undefined> {
  const pick = await vscode.window.showQuickPick(
    FORMATS.map((f) => ({ label: f, description: LABELS[f], format: f })),
    { title },
  );
  return pick?.format;
}

function logReport(hub: ModelHub, title: string, r: FormatReport): void {
  for (const line of reportLines(r, `${title}: ${r.written.length} file(s) written`)) hub.log(line);
}

/** Imports into the mask sidecars of the workspace's images (matched by file stem). */
export async function importLabelsCommand(hub: ModelHub): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder)
    return void vscode.window.showWarningMessage('Open a folder first: imported masks go beside its images.');
  const format = await pickFormat('Import labels from');
  if (!format) return;
  const wantsFile = format === 'coco';
  const source = (
    await vscode.window.showOpenDialog({
      title: `Import ${LABELS[format]}`,
      canSelectFiles: wantsFile || format === 'labelme',
      canSelectFolders: !wantsFile,
      defaultUri: folder.uri,
      filters: wantsFile ? { 'COCO JSON': ['json'] } : undefined,
    })
  )?.[0];
  if (!source) return;
  const settings = readSettings(folder.uri);
  const staging = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'maskloop-import-'));
  try {
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `MaskLoop: importing ${format}` },
      async (progress) =>
        importLabels({
          from: format,
          source: source.fsPath,
          outDir: staging,
          force: true,
          onProgress: (done, total, item) => progress.report({ message: `${done + 1}/${total} ${item}` }),
        }),
    );
    // The palette follows the workspace's classes: tell the person when the source brought others.
    const { reviewed, unlabelled } = await findWorkspaceImages();
    const byStem = new Map([...reviewed, ...unlabelled].map((p) => [stemOf(p.image), p]));
    let placed = 0;
    const existing: string[] = [];
    for (const file of report.written.filter((f) => f.endsWith('.png'))) {
      const target = byStem.get(stemOf(file));
      if (!target) {
        report.skipped.push({ item: path.basename(file), why: 'no image with this name in the workspace' });
        continue;
      }
      const maskFile = resolveMaskPath(
        settings.maskPath,
        target.image,
        workspaceRootFor(vscode.Uri.file(target.image)),
      );
      if (fs.existsSync(maskFile)) {
        existing.push(maskFile);
        continue;
      }
      await fs.promises.mkdir(path.dirname(maskFile), { recursive: true });
      await writeFileAtomic(maskFile, await fs.promises.readFile(file));
      placed++;
    }
    if (existing.length > 0) {
      const overwrite = 'Overwrite them';
      const pick = await vscode.window.showWarningMessage(
        `${existing.length} image(s) already have a saved mask.`,
        { modal: true, detail: 'Overwriting replaces a reviewed mask with the imported one.' },
        overwrite,
      );
      for (const maskFile of existing) {
        const stem = path.basename(maskFile).replace(/(\.mask)?\.png$/i, '');
        if (pick === overwrite) {
          await writeFileAtomic(maskFile, await fs.promises.readFile(path.join(staging, `${stem}.png`)));
          placed++;
        } else report.skipped.push({ item: maskFile, why: 'a saved mask exists (kept)' });
      }
    }
    const labels = path.join(staging, 'labels.txt');
    if (
      fs.existsSync(labels) &&
      settings.classes.map((c) => c.name).join('\n') !== report.classes.map((c) => c.name).join('\n')
    ) {
      hub.log(
        `the imported classes are: ${report.classes.map((c) => `${c.index} ${c.name}`).join(', ')}; set maskloop.classes (or labels.txt) to match. labels.txt:\n${classListText(report.classes)}`,
      );
    }
    logReport(hub, `import ${format} from ${source.fsPath}`, report);
    void vscode.window.showInformationMessage(
      `MaskLoop: imported ${placed} mask(s); ${report.skipped.length} item(s) skipped (see the MaskLoop output).`,
    );
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true });
  }
}

export async function exportMasksCommand(hub: ModelHub): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) return void vscode.window.showWarningMessage('Open a folder first.');
  const format = await pickFormat('Export masks to');
  if (!format) return;
  const imagesDir = (
    await vscode.window.showOpenDialog({
      title: 'Folder of images to export',
      canSelectFolders: true,
      canSelectFiles: false,
      defaultUri: folder.uri,
    })
  )?.[0];
  if (!imagesDir) return;
  const dest =
    format === 'coco'
      ? await vscode.window.showSaveDialog({
          title: 'COCO annotations file',
          defaultUri: vscode.Uri.joinPath(folder.uri, 'annotations.json'),
          filters: { JSON: ['json'] },
        })
      : (
          await vscode.window.showOpenDialog({
            title: `Folder for the ${format} export`,
            canSelectFolders: true,
            canSelectFiles: false,
            canSelectMany: false,
            defaultUri: folder.uri,
          })
        )?.[0];
  if (!dest) return;
  const settings = readSettings(imagesDir);
  const masksDir = path.dirname(
    resolveMaskPath(settings.maskPath, path.join(imagesDir.fsPath, 'image.png'), workspaceRootFor(imagesDir)),
  );
  const classesFile = path.join(os.tmpdir(), `maskloop-classes-${process.pid}.txt`);
  await writeFileAtomic(classesFile, classListText(settings.classes));
  try {
    const run = (force: boolean): Thenable<FormatReport> =>
      vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `MaskLoop: exporting ${format}` },
        (progress) =>
          exportMasks({
            to: format,
            imagesDir: imagesDir.fsPath,
            masksDir,
            dest: dest.fsPath,
            classesFile,
            tolerance: 0,
            force,
            onProgress: (done, total, item) => progress.report({ message: `${done + 1}/${total} ${item}` }),
          }),
      );
    let report = await run(false).then(undefined, async (err: Error) => {
      if (!/already exists/.test(err.message)) throw err;
      const overwrite = 'Overwrite';
      if ((await vscode.window.showWarningMessage(`${dest.fsPath} exists.`, { modal: true }, overwrite)) !== overwrite)
        throw new Error('cancelled: the file exists');
      return run(true);
    });
    const clashes = report.skipped.filter((s) => /already exists/.test(s.why));
    if (clashes.length > 0) {
      const overwrite = 'Overwrite';
      if (
        (await vscode.window.showWarningMessage(
          `${clashes.length} file(s) already exist in ${dest.fsPath}.`,
          { modal: true },
          overwrite,
        )) === overwrite
      )
        report = await run(true);
    }
    logReport(hub, `export ${format} to ${dest.fsPath}`, report);
    const notes = report.notes.length ? ` ${report.notes.join('; ')}.` : '';
    void vscode.window.showInformationMessage(
      `MaskLoop: exported ${format}: ${report.written.length} file(s) written, ${report.skipped.length} skipped.${notes}`,
    );
  } finally {
    await fs.promises.rm(classesFile, { force: true });
  }
}
