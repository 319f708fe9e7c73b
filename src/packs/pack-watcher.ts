import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Logger } from '@nestjs/common';

/** What the watcher calls back into (the PackRegistry). */
export interface PackChangeSink {
  /** Polls every source; must skip a pack whose previous poll has not finished. */
  check(): Promise<unknown>;
  changed(tenant: string, pack: string): Promise<void>;
}

export interface WatchTarget {
  tenant: string;
  pack: string;
  paths: string[];
}

const DEBOUNCE_MS = 150;

/**
 * Notices new pack versions: a poll on an interval (every source, cheap probes) plus filesystem
 * events for local sources, debounced so a file written in several steps triggers one reload.
 * The file's folder is watched rather than the file, because publishing by rename replaces the
 * inode a file watch would hold.
 */
export class PackWatcher {
  private readonly logger = new Logger(PackWatcher.name);
  private timer?: NodeJS.Timeout;
  private readonly fsWatchers: FSWatcher[] = [];
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly sink: PackChangeSink,
    private readonly intervalMs: number,
    private readonly targets: WatchTarget[],
  ) {}

  start(): void {
    if (this.intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.intervalMs);
      this.timer.unref();
    }
    for (const t of this.targets) for (const p of t.paths) void this.watchPath(t, p);
    this.logger.log(
      { intervalMs: this.intervalMs, paths: this.targets.flatMap((t) => t.paths) },
      'watching pack sources',
    );
  }

  describe(): { intervalMs: number; paths: string[] } {
    return { intervalMs: this.intervalMs, paths: this.targets.flatMap((t) => t.paths) };
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const w of this.fsWatchers) w.close();
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  // Ticks may overlap: the sink skips a pack whose previous poll is still running, so one slow
  // source does not hold back the polls of the others.
  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.sink.check();
    } catch (e) {
      this.logger.error({ err: (e as Error).message }, 'pack check failed');
    }
  }

  private async watchPath(t: WatchTarget, p: string): Promise<void> {
    try {
      const isDir = (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
      const dir = isDir ? p : path.dirname(p);
      const name = path.basename(p);
      const w = watch(dir, { recursive: isDir, persistent: false }, (_event, file) => {
        if (!isDir && file !== null && file !== name) return;
        this.schedule(t);
      });
      w.on('error', (e) =>
        this.logger.warn(
          { tenant: t.tenant, pack: t.pack, path: p, err: e.message },
          'filesystem watch failed; polling only',
        ),
      );
      this.fsWatchers.push(w);
    } catch (e) {
      this.logger.warn(
        { tenant: t.tenant, pack: t.pack, path: p, err: (e as Error).message },
        'cannot watch pack path; polling only',
      );
    }
  }

  private schedule(t: WatchTarget): void {
    if (this.stopped) return;
    const key = `${t.tenant}/${t.pack}`;
    const prev = this.pending.get(key);
    if (prev) clearTimeout(prev);
    const timer = setTimeout(() => {
      this.pending.delete(key);
      this.sink
        .changed(t.tenant, t.pack)
        .catch((e: Error) =>
          this.logger.error({ tenant: t.tenant, pack: t.pack, err: e.message }, 'pack reload failed'),
        );
    }, DEBOUNCE_MS);
    timer.unref();
    this.pending.set(key, timer);
  }
}
