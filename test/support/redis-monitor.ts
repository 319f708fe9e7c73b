import net from 'node:net';

/** One command Redis's MONITOR reported. */
export interface MonitoredCommand {
  /** The server's time, as MONITOR prints it (`1796538408.034508`). */
  time: string;
  /** The client's address (`127.0.0.1:43656`), or `lua` for a command a script ran. */
  source: string;
  /** The command and its arguments, unescaped. */
  args: string[];
}

export interface RedisMonitor {
  /** Closes the MONITOR connection; rejects if Redis refused it (an error reply). */
  stop(): Promise<void>;
}

/**
 * Watches every command Redis runs (MONITOR), read off a plain socket, one reply line per command.
 * Not ioredis's `monitor()`: on a server busy with other suites' scripts its reply queue loses
 * step ("Command queue state error"), which it throws where no test can catch it, and when it fails
 * while starting, the connection it opened stays open. Resolves once Redis has acknowledged MONITOR,
 * so every command sent after it is seen.
 */
export function monitorRedis(url: string, onCommand: (c: MonitoredCommand) => void): Promise<RedisMonitor> {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`monitorRedis needs a redis:// URL, not ${u.protocol}`);
  const socket = net.connect(Number(u.port || 6379), u.hostname || '127.0.0.1');
  socket.setEncoding('utf8');
  let failed: Error | undefined;
  let rest = '';
  return new Promise((resolve, reject) => {
    let started = false;
    const fail = (e: Error) => {
      failed ??= e;
      if (!started) {
        socket.destroy();
        reject(e);
      }
    };
    socket.on('error', fail);
    socket.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\r\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('-')) {
          fail(new Error(`Redis refused MONITOR: ${line.slice(1)}`));
          continue;
        }
        if (line === '+OK' && !started) {
          started = true;
          resolve({
            stop: () => {
              socket.destroy();
              return failed ? Promise.reject(failed) : Promise.resolve();
            },
          });
          continue;
        }
        const c = parseMonitorLine(line);
        if (c) onCommand(c);
      }
    });
    const auth = [u.username, u.password].filter(Boolean).map(decodeURIComponent);
    if (auth.length > 0) socket.write(resp('AUTH', ...auth));
    socket.write(resp('MONITOR'));
  });
}

/** `+<time> [<db> <source>] "arg" "arg" …` into its parts; undefined for any other line. */
export function parseMonitorLine(line: string): MonitoredCommand | undefined {
  const head = /^\+(\d+\.\d+) \[\d+ ([^\]]+)\] /.exec(line);
  if (!head) return undefined;
  const args: string[] = [];
  let i = head[0].length;
  while (i < line.length) {
    if (line[i] !== '"') return undefined;
    let arg = '';
    for (i++; i < line.length && line[i] !== '"'; i++) {
      if (line[i] !== '\\') {
        arg += line[i];
        continue;
      }
      // Redis's escapes (sdscatrepr): \\ \" \n \r \t \a \b and \xHH.
      const e = line[++i];
      if (e === 'x') {
        arg += String.fromCharCode(Number.parseInt(line.slice(i + 1, i + 3), 16));
        i += 2;
      } else arg += ESCAPES[e!] ?? e;
    }
    args.push(arg);
    i += 2; // the closing quote and the space
  }
  return { time: head[1]!, source: head[2]!, args };
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b' };

function resp(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}
