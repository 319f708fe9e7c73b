#!/usr/bin/env node
// Checks the repository's Markdown (README, docs/, examples/, test fixtures' READMEs): every
// relative link points at a file or directory that exists, every `#anchor` at a heading of the
// target page (GitHub's slugs), and no prose names a `*.md` page that is not in the repository.
// External links (http, mailto) are not fetched: CI has no network. Run by `npm run lint`.
// Exit 0: all good; 1: broken links (one line each, file:line: ...).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', '.cache', 'coverage']);
/** Generated, gitignored output (test runs write pages there). */
const SKIP_PATHS = new Set(['test/artifacts', 'bench/results']);

function markdownFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      const sub = path.join(dir, e.name);
      if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.') && !SKIP_PATHS.has(path.relative(root, sub)))
        out.push(...markdownFiles(sub));
    } else if (e.name.endsWith('.md')) {
      out.push(path.join(dir, e.name));
    }
  }
  return out;
}

/** The page's lines with fenced code blocks blanked and inline code removed (links there are examples). */
function proseLines(text) {
  let fence;
  return text.split('\n').map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1];
      else if (m[1].startsWith(fence)) fence = undefined;
      return '';
    }
    return fence === undefined ? line.replace(/(`+)[^`]*?\1/g, '``') : '';
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(file) {
  const anchors = new Set();
  const seen = new Map();
  let fence = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (fence) continue;
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of readFileSync(file, 'utf8').matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(m[1]);
  return anchors;
}

const anchorCache = new Map();
function hasAnchor(file, anchor) {
  if (!anchorCache.has(file)) anchorCache.set(file, anchorsOf(file));
  return anchorCache.get(file).has(decodeURIComponent(anchor).toLowerCase());
}

const LINK = /!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
const REF_DEF = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/;
const MD_MENTION = /(?<![\w/.-])([A-Za-z0-9_][\w./-]*\.md)\b/g;

export function checkFile(file) {
  const problems = [];
  const rel = path.relative(root, file);
  const lines = proseLines(readFileSync(file, 'utf8'));
  const checkTarget = (target, lineNo) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return; // http:, https:, mailto:
    const [pathPart, anchor] = target.split('#', 2);
    const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(pathPart));
    if (!existsSync(resolved)) {
      problems.push(`${rel}:${lineNo}: link to '${target}': ${path.relative(root, resolved)} does not exist`);
      return;
    }
    if (anchor && resolved.endsWith('.md') && statSync(resolved).isFile() && !hasAnchor(resolved, anchor)) {
      problems.push(
        `${rel}:${lineNo}: link to '${target}': no heading '#${anchor}' in ${path.relative(root, resolved)}`,
      );
    }
  };
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    const linked = new Set();
    for (const m of line.matchAll(LINK)) {
      checkTarget(m[1], lineNo);
      linked.add(m[1].split('#')[0]);
    }
    const def = REF_DEF.exec(line);
    if (def) {
      checkTarget(def[1], lineNo);
      linked.add(def[1].split('#')[0]);
    }
    // A page named in prose ("see ARCHITECTURE.md") must exist too, next to this page or at the root.
    const prose = line.replace(LINK, '').replace(/https?:\/\/\S+/g, '');
    for (const m of prose.matchAll(MD_MENTION)) {
      const name = m[1];
      if (linked.has(name)) continue;
      if (existsSync(path.resolve(path.dirname(file), name)) || existsSync(path.resolve(root, name)))
        continue;
      problems.push(`${rel}:${lineNo}: names '${name}', which is not in the repository`);
    }
  });
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = markdownFiles(root);
  const problems = files.flatMap(checkFile);
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(
      `check-links: ${problems.length} broken link${problems.length === 1 ? '' : 's'} in ${files.length} Markdown files`,
    );
    process.exit(1);
  }
  console.log(`check-links: ${files.length} Markdown files, all relative links resolve`);
}
