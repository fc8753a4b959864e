// The mask editor's HTML: a strict CSP (no inline code, nonce'd script), assets through asWebviewUri.
import * as vscode from 'vscode';
import { escapeHtml, nonce } from '../html';

export function editorHtml(webview: vscode.Webview, extensionUri: vscode.Uri, version: string): string {
  const asset = (...parts: string[]): string =>
    `${webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, ...parts)).toString()}?v=${encodeURIComponent(version)}`;
  const n = nonce();
  const csp = [
    "default-src 'none'",
    `img-src ${webview.cspSource} data: blob:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${n}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('dist', 'media', 'codicon.css')}">
<link rel="stylesheet" href="${asset('media', 'editor.css')}">
<title>Mask editor</title>
</head>
<body>
<div id="app"></div>
<script nonce="${n}" src="${asset('dist', 'webview.js')}"></script>
</body>
</html>`;
}

/** Shown instead of the editor when the image (or its mask) cannot be opened. */
export function errorHtml(webview: vscode.Webview, extensionUri: vscode.Uri, file: string, reason: string): string {
  const css = webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', 'editor.css')).toString();
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${webview.cspSource}">
<link rel="stylesheet" href="${css}">
<title>Cannot open</title>
</head>
<body>
<div class="error" role="alert" data-error="true">
<h2>MaskLoop cannot open this image</h2>
<p><code>${escapeHtml(file)}</code></p>
<p>${escapeHtml(reason)}</p>
<p>Nothing was written. Use "Reopen Editor With..." to see it in another editor.</p>
</div>
</body>
</html>`;
}
