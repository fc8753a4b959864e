// `npm run test:desktop`: the same extension in VS Code desktop, downloaded by @vscode/test-electron. Needs
// internet, so it is not part of `npm test` on machines without it (the code-server suite is).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { writeSampleData } from '../../src/cli/demo';

async function main(): Promise<void> {
  const root = path.resolve(__dirname, '..', '..');
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-desktop-'));
  await writeSampleData(workspace, 3, 96, 7);
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, '.vscode', 'settings.json'),
    JSON.stringify({ 'maskloop.fineTune.epochs': 1, 'maskloop.fineTune.cropSize': 64 }),
  );
  await runTests({
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(__dirname, 'suite.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust'],
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
