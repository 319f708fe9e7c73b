/**
 * Whether a nats-server of `version` deletes unacknowledged messages of interest-retention streams
 * when it starts. Before 2.9.16, start-up purged every such stream below the lowest ack floor of
 * its consumers, but skipped consumers that had not acknowledged anything yet (a floor of 0): the
 * unacknowledged messages of a consumer that had just been made (a partition's new owner, a
 * partition whose first messages were still running) went with the purge. Fixed upstream in
 * 2.9.16 (nats-server commit 5cabc365d, "Rework check for orphan msgs on startup"). Debian 12
 * ships 2.9.10. False for a version it cannot read.
 */
export function purgesUnackedOnRestart(version: string | undefined): boolean {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version ?? '');
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (major !== 2) return major < 2;
  if (minor !== 9) return minor < 9;
  return patch < 16;
}
