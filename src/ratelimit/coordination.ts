/** Redis when asked, or (`auto`) when sessions are in Redis: several replicas must share claims and buckets. */
export function usesRedisCoordination(cfg: {
  GREENTIC_COORDINATION: string;
  GREENTIC_SESSIONS: string;
}): boolean {
  return (
    cfg.GREENTIC_COORDINATION === 'redis' ||
    (cfg.GREENTIC_COORDINATION === 'auto' && cfg.GREENTIC_SESSIONS === 'redis')
  );
}
