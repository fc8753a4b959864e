// What every webview page of the extension needs: a fresh nonce for its CSP, and escaped text.
import * as crypto from 'node:crypto';

export function nonce(): string {
  return crypto.randomBytes(16).toString('base64');
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
