// What MaskLoop says where it cannot run (a browser extension host: VS Code for the web). Pure text, no imports.

export const WEB_NOTICE =
  'MaskLoop cannot run in VS Code for the web: its model runs in Node.js, which a browser does not have.';

export const WEB_NOTICE_DETAIL =
  'Open this folder in VS Code on your computer, or through Remote-SSH, WSL, a Dev Container or GitHub ' +
  'Codespaces with MaskLoop installed there (Extensions view: "Install in ..."). Your images and masks are not ' +
  'touched here.';

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** The mask editor's page in a browser extension host: the notice and the way forward, no script. */
export function webNoticeHtml(imageName: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<title>MaskLoop</title>
<style>body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 2em; max-width: 48em; }</style>
</head>
<body>
<h2 id="web-notice">${escape(WEB_NOTICE)}</h2>
<p>${escape(WEB_NOTICE_DETAIL)}</p>
<p>${imageName ? `${escape(imageName)} can be viewed with VS Code's image preview (Reopen Editor With...).` : ''}</p>
</body>
</html>
`;
}
