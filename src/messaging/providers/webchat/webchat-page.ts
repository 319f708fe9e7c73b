import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The prebuilt `botframework-webchat` bundle (`dist/webchat.js`: React, Adaptive Cards and Web
 * Chat in one file), served from node_modules so the page needs no CDN. The package's `exports`
 * hide `dist/`, so its folder is found from its entry point.
 */
export function webchatBundlePath(): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve('botframework-webchat'));
  for (let i = 0; i < 6; i++) {
    const pkg = path.join(dir, 'package.json');
    if (
      existsSync(pkg) &&
      (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'botframework-webchat'
    ) {
      return path.join(dir, 'dist', 'webchat.js');
    }
    dir = path.dirname(dir);
  }
  throw new Error('botframework-webchat is not installed (npm install botframework-webchat)');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface PageOptions {
  title: string;
  /** Path of the channel's page, e.g. `/webchat/demo/dev/default/web`. */
  base: string;
  nonce: string;
  accent: string;
}

/**
 * A phone-first chat page: full-height Web Chat under a slim header, safe-area aware, the send
 * box always in reach. The page asks its channel for a token (the secret never reaches the
 * browser) and points Web Chat's Direct Line at the runner itself.
 */
export function renderPage(o: PageOptions): string {
  const title = escapeHtml(o.title);
  const accent = /^#[0-9a-fA-F]{3,8}$/.test(o.accent) ? o.accent : '#0f766e';
  const config = JSON.stringify({ base: o.base, accent }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="${accent}">
<link rel="icon" href="data:,">
<title>${title}</title>
<style>
  html, body { height: 100%; margin: 0; }
  body { display: flex; flex-direction: column; background: #eef2f3; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { flex: none; display: flex; align-items: center; gap: 10px; padding: 12px 16px; padding-top: max(12px, env(safe-area-inset-top));
    background: ${accent}; color: #fff; font-size: 17px; font-weight: 600; box-shadow: 0 1px 3px rgba(0,0,0,.2); }
  header .dot { width: 10px; height: 10px; border-radius: 50%; background: #a7f3d0; }
  main { flex: 1; min-height: 0; display: flex; justify-content: center; }
  #webchat { width: 100%; max-width: 760px; height: 100%; background: #fff; padding-bottom: env(safe-area-inset-bottom); box-sizing: border-box; }
  #webchat .error { padding: 24px; color: #7f1d1d; }
  @media (min-width: 800px) { main { padding: 16px 0; } #webchat { border-radius: 12px; overflow: hidden; box-shadow: 0 2px 12px rgba(0,0,0,.12); } }
</style>
</head>
<body>
<header><span class="dot" aria-hidden="true"></span><span>${title}</span></header>
<main><div id="webchat" role="main" aria-label="${title}"></div></main>
<script src="/webchat/assets/webchat.js"></script>
<script nonce="${o.nonce}">
(async function () {
  var cfg = ${config};
  var el = document.getElementById('webchat');
  try {
    var res = await fetch(cfg.base + '/token', { method: 'POST' });
    if (!res.ok) throw new Error('token request answered ' + res.status);
    var info = await res.json();
    var directLine = window.WebChat.createDirectLine({ token: info.token, domain: location.origin + cfg.base + '/v3/directline' });
    window.WebChat.renderWebChat({
      directLine: directLine,
      userID: 'web_' + Math.random().toString(36).slice(2, 12),
      username: 'You',
      locale: navigator.language || 'en-US',
      styleOptions: {
        accent: cfg.accent,
        hideUploadButton: true,
        botAvatarInitials: 'G',
        bubbleBorderRadius: 14,
        bubbleFromUserBorderRadius: 14,
        bubbleFromUserBackground: cfg.accent,
        bubbleFromUserTextColor: '#ffffff',
        bubbleFromUserBorderWidth: 0,
        bubbleBorderWidth: 0,
        bubbleBackground: '#f1f5f9',
        sendBoxHeight: 52,
        suggestedActionLayout: 'flow',
        rootHeight: '100%',
        rootWidth: '100%'
      }
    }, el);
    var box = el.querySelector('input, textarea');
    if (box) box.focus();
  } catch (e) {
    el.innerHTML = '<p class="error"></p>';
    el.firstChild.textContent = 'Chat unavailable: ' + e.message;
  }
})();
</script>
</body>
</html>
`;
}
