// Preloaded into a runner by promises.mjs (`--import`): counts the promises the process creates,
// by the module that created each one (the innermost frame outside Node) and the innermost runner
// module on the stack. SIGUSR2 starts counting; a second SIGUSR2 stops and writes the counts as
// JSON to $PROMISE_COUNT_OUT.
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';

const DIST = process.env.PROMISE_COUNT_DIST;
const DETAIL = process.env.PROMISE_COUNT_DETAIL === '1';
const counts = new Map();
let on = false;
let total = 0;

const FRAME =
  /\((?:file:\/\/)?([^():]+(?::[^():]+)?):\d+:\d+\)$|at (?:async )?(?:file:\/\/)?([^\s():]+):\d+:\d+$/;

function owner(file) {
  const nm = file.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  return file.startsWith(DIST) ? file.slice(DIST.length) : file;
}

function where() {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const holder = {};
  Error.captureStackTrace(holder, where);
  Error.stackTraceLimit = limit;
  let creator;
  let runner;
  for (const line of holder.stack.split('\n').slice(2)) {
    const m = FRAME.exec(line.trim());
    const file = m?.[1] ?? m?.[2];
    if (!file || file.startsWith('node:') || file.endsWith('promise-hook.mjs')) continue;
    const o = owner(file);
    creator ??= DETAIL ? `${o} ${line.trim().replace(/^at /, '').split(' (')[0]}` : o;
    if (file.startsWith(DIST) && !file.includes('/node_modules/')) {
      runner = o;
      break;
    }
  }
  return `${runner ?? '(no runner frame)'} <- ${creator ?? '(node internals)'}`;
}

createHook({
  init(_id, type) {
    if (!on || type !== 'PROMISE') return;
    total++;
    const k = where();
    counts.set(k, (counts.get(k) ?? 0) + 1);
  },
}).enable();

process.on('SIGUSR2', () => {
  if (!on) {
    counts.clear();
    total = 0;
    on = true;
    return;
  }
  on = false;
  writeFileSync(process.env.PROMISE_COUNT_OUT, JSON.stringify({ total, counts: Object.fromEntries(counts) }));
});
