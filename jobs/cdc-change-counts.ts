import type { RedisClient } from '../src/coordination/redis-client.js';
import type { SyncResult } from '../src/sync/sync-keys.js';
import type { CdcBatchPayload } from './cdc-batch.job.js';

/**
 * Durable counts of the changes CDC has applied, per pipeline and link (the stream's source side and
 * the target it syncs to), written by the worker that applied a batch part, whichever process that
 * is: the library's `syncStats()` (total changes, changes in the last hour, last change time) reads
 * them, so they count every worker's work, survive restarts and are the same for every reader of
 * them. Prometheus counters (instruments.ts) cannot answer this: they are per process and start at 0.
 *
 * - `<prefix>:cdc-changes:<pipeline>`: a hash, per link `<from>><target>:changes` (keys synced),
 *   `:written` (rows inserted, updated or deleted), `:lastAt` (when the last part was applied) and
 *   `:lastCommittedAt` (the source commit time of that part). Never expires: a total since the start.
 * - `<prefix>:cdc-changes-minute:<pipeline>:<minute>`: a hash per minute (ms since the epoch,
 *   floored), field `<from>><target>` = keys synced in that minute, expiring an hour and a minute
 *   after the minute began: at most 61 small keys per pipeline, trimmed by Redis itself.
 */

export const cdcChangesKey = (prefix: string, pipeline: string) => `${prefix}:cdc-changes:${pipeline}`;
export const cdcChangesMinuteKey = (prefix: string, pipeline: string, minute: number) => `${prefix}:cdc-changes-minute:${pipeline}:${minute}`;

/** The window of `changesLastHour`. */
export const RECENT_CHANGES_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** A stream's source side and one of the targets it syncs to (connection names have no '>' or ':'). */
const linkOf = (from: string, target: string) => `${from}>${target}`;

/** Keys of a batch part (every table's). */
export function keysInPart(payload: Pick<CdcBatchPayload, 'tables'>): number {
  return payload.tables.reduce((sum, [, keys]) => sum + keys.length, 0);
}

/** Adds an applied batch part to its pipeline's counts (one round trip). */
export async function recordCdcChanges(
  redis: RedisClient,
  prefix: string,
  payload: Pick<CdcBatchPayload, 'pipeline' | 'from' | 'target' | 'committedAt' | 'tables'>,
  result: Pick<SyncResult, 'inserted' | 'updated' | 'deleted'>,
  at = Date.now(),
): Promise<void> {
  const keys = keysInPart(payload);
  const link = linkOf(payload.from, payload.target);
  const totals = cdcChangesKey(prefix, payload.pipeline);
  const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
  const bucket = cdcChangesMinuteKey(prefix, payload.pipeline, minute);
  await redis
    .multi()
    .hincrby(totals, `${link}:changes`, keys)
    .hincrby(totals, `${link}:written`, result.inserted + result.updated + result.deleted)
    .hset(totals, `${link}:lastAt`, String(at), `${link}:lastCommittedAt`, String(payload.committedAt))
    .hincrby(bucket, link, keys)
    .pexpireat(bucket, minute + RECENT_CHANGES_MS + MINUTE_MS)
    .exec();
}

/** One link's counts. Times are ms since the epoch; undefined before its first applied part. */
export interface LinkChangeCounts {
  readonly from: string;
  readonly target: string;
  /** Keys synced since CDC first ran (each applied part counts its keys once). */
  readonly changes: number;
  /** Keys synced in the last hour (by the minute: up to a minute more). */
  readonly changesLastHour: number;
  /** Rows inserted, updated or deleted by those syncs (a key already equal writes nothing). */
  readonly written: number;
  readonly lastChangeAt: number | undefined;
  /** When the source committed the last applied change. */
  readonly lastCommittedAt: number | undefined;
}

/** Every link's counts of a pipeline (links that never applied a part are absent). */
export async function readCdcChanges(redis: RedisClient, prefix: string, pipeline: string, now = Date.now()): Promise<LinkChangeCounts[]> {
  const lastMinute = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const multi = redis.multi().hgetall(cdcChangesKey(prefix, pipeline));
  for (let minute = lastMinute - RECENT_CHANGES_MS + MINUTE_MS; minute <= lastMinute; minute += MINUTE_MS) {
    multi.hgetall(cdcChangesMinuteKey(prefix, pipeline, minute));
  }
  const replies = ((await multi.exec()) ?? []).map(([error, value]) => {
    if (error) throw error;
    return (value ?? {}) as Record<string, string>;
  });
  const [totals = {}, ...minutes] = replies;
  const recent = new Map<string, number>();
  for (const bucket of minutes) for (const [link, count] of Object.entries(bucket)) recent.set(link, (recent.get(link) ?? 0) + Number(count));
  const links = new Set([...Object.keys(totals).map((field) => field.slice(0, field.lastIndexOf(':'))), ...recent.keys()]);
  const time = (text: string | undefined) => (text === undefined ? undefined : Number(text));
  return [...links].sort().map((link) => {
    const [from = '', target = ''] = link.split('>');
    return {
      from,
      target,
      changes: Number(totals[`${link}:changes`] ?? 0),
      changesLastHour: recent.get(link) ?? 0,
      written: Number(totals[`${link}:written`] ?? 0),
      lastChangeAt: time(totals[`${link}:lastAt`]),
      lastCommittedAt: time(totals[`${link}:lastCommittedAt`]),
    };
  });
}
