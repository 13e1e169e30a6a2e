import type { RedisClient } from '../src/coordination/redis-client.js';

/**
 * The last hour of CDC lag per stream and target, for the board's overview chart. The readers'
 * status hash holds only the latest lag; this keeps samples in one Redis sorted set per (stream,
 * target), scored by sample time, trimmed to the window on every write and expiring with it, so it
 * stays bounded (360 samples per target at one per 10 s) whatever the number of readers or restarts.
 */

/** How far back the series goes. */
export const LAG_HISTORY_MS = 3_600_000;
/**
 * How often a reader samples its lag. Readers publish their status every ~200 ms; one sample in 50
 * is plenty for a one-hour chart and keeps each write path's Redis traffic negligible.
 */
export const LAG_SAMPLE_EVERY_MS = 10_000;
/** More samples than this in one series are dropped oldest first (two leaders after a failover). */
const MAX_SAMPLES = 2 * (LAG_HISTORY_MS / LAG_SAMPLE_EVERY_MS);

export interface LagSample {
  /** When it was taken, ms since the epoch. */
  readonly at: number;
  readonly lagMs: number;
}

export const cdcLagHistoryKey = (prefix: string, stream: string, target: string) => `${prefix}:cdc-lag:${stream}:${target}`;

/** Appends one sample per target of a stream, and drops what fell out of the window. */
export async function recordLagSamples(
  redis: RedisClient,
  prefix: string,
  stream: string,
  samples: readonly { readonly target: string; readonly lagMs: number }[],
  at = Date.now(),
): Promise<void> {
  if (samples.length === 0) return;
  const multi = redis.multi();
  for (const { target, lagMs } of samples) {
    const key = cdcLagHistoryKey(prefix, stream, target);
    // The member carries the time too: equal lags at different times must stay distinct samples.
    multi.zadd(key, at, `${at}:${Math.max(0, Math.round(lagMs))}`);
    multi.zremrangebyscore(key, '-inf', `(${at - LAG_HISTORY_MS}`);
    multi.zremrangebyrank(key, 0, -(MAX_SAMPLES + 1));
    multi.pexpire(key, LAG_HISTORY_MS);
  }
  await multi.exec();
}

/** The samples of the last hour (up to `now`), oldest first. */
export async function readLagHistory(redis: RedisClient, prefix: string, stream: string, target: string, now = Date.now()): Promise<LagSample[]> {
  const members = await redis.zrangebyscore(cdcLagHistoryKey(prefix, stream, target), now - LAG_HISTORY_MS, now);
  return members.map((member) => {
    const [at, lagMs] = member.split(':');
    return { at: Number(at), lagMs: Number(lagMs) };
  });
}

/**
 * Throttles a reader's frequent status reports to one lag sample per `everyMs` per stream. Only a
 * streaming reader's lag is a measurement: a standby or stopped reader reports none.
 */
export class LagSampler {
  private readonly lastSampleAt = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly everyMs = LAG_SAMPLE_EVERY_MS,
  ) {}

  async offer(status: {
    readonly stream: string;
    readonly state: string;
    readonly targets: readonly { readonly target: string; readonly lagMs: number }[];
    readonly updatedAt: number;
  }): Promise<void> {
    if (status.state !== 'streaming' || status.targets.length === 0) return;
    const last = this.lastSampleAt.get(status.stream);
    if (last !== undefined && status.updatedAt - last < this.everyMs) return;
    this.lastSampleAt.set(status.stream, status.updatedAt);
    await recordLagSamples(this.redis, this.prefix, status.stream, status.targets, status.updatedAt);
  }
}
