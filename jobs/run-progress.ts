import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../src/coordination/redis-client.js';

/** Live counters of one run, for progress bars and `rowsync status` (not for the report). */
export interface RunProgressCounts {
  readonly tablesPlanned: number;
  readonly tablesDone: number;
  readonly chunksPlanned: number;
  readonly chunksDone: number;
  readonly rowsCompared: number;
  readonly differences: number;
  /**
   * Why the run's chunks are held back right now (`source src: Threads_running 31 > maxLoad 25`);
   * absent when nothing waits. Written by every held-back chunk, so it stays fresh while they wait.
   */
  readonly waiting?: string;
}

type CountField = Exclude<keyof RunProgressCounts, 'waiting'>;
const FIELDS: readonly CountField[] = [
  'tablesPlanned', 'tablesDone', 'chunksPlanned', 'chunksDone', 'rowsCompared', 'differences',
];
const WAITING_FIELD = 'waiting';
/**
 * A waiting reason older than this is no longer shown: held-back chunks write it again at least every
 * 5 s (throttle.ts MAX_WAIT_MS) while they wait, and a chunk that goes ahead after waiting clears it.
 */
const WAITING_FRESH_MS = 15_000;
const TTL_SECONDS = 7 * 24 * 3600;
const MIN_CHUNKS_OBSERVED = 4;

/**
 * A Redis hash per run. Counters are incremented when a job finishes a step, so a retried job can
 * count twice: they drive a progress bar and an ETA, the report itself comes from job results.
 */
export class RunProgress {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  private key(runId: string): string {
    return `${this.prefix}:run-progress:${runId}`;
  }

  async add(runId: string, counts: Partial<Record<CountField, number>>): Promise<void> {
    const multi = this.redis.multi();
    this.addTo(multi, runId, counts);
    await multi.exec();
  }

  /**
   * Adds a compared chunk's counts and records whether it differed, in one round trip. Once most
   * chunks of that table seen so far differ (at least `MIN_CHUNKS_OBSERVED` of them),
   * `mostChunksDiffer` tells the next chunks to skip the checksum and diff by row hashes directly:
   * with drift spread over the whole table, checksumming first would scan every chunk twice.
   */
  async recordChunk(
    runId: string,
    tableKey: string,
    counts: Partial<Record<CountField, number>>,
    differing: boolean,
    scan?: { readonly rows: number; readonly ms: number },
  ): Promise<void> {
    const multi = this.redis.multi();
    this.addTo(multi, runId, counts);
    multi.hincrby(this.key(runId), `table:${tableKey}:checked`, 1);
    if (differing) multi.hincrby(this.key(runId), `table:${tableKey}:differing`, 1);
    if (scan) {
      // Sums the adaptive chunk planner turns into a rate (rows per ms of checksum scan).
      multi.hincrby(this.key(runId), `table:${tableKey}:scanRows`, Math.round(scan.rows));
      multi.hincrby(this.key(runId), `table:${tableKey}:scanUs`, Math.round(scan.ms * 1000));
    }
    await multi.exec();
  }

  /** Chunks of a table compared so far and the sums of their scans (see `recordChunk`). */
  async tableScans(runId: string, tableKey: string): Promise<{ checked: number; rows: number; ms: number }> {
    const [checked, rows, us] = await this.redis.hmget(
      this.key(runId), `table:${tableKey}:checked`, `table:${tableKey}:scanRows`, `table:${tableKey}:scanUs`,
    );
    return { checked: Number(checked ?? 0), rows: Number(rows ?? 0), ms: Number(us ?? 0) / 1000 };
  }

  /** Records why the run's chunks wait (see `RunProgressCounts.waiting`). */
  async setWaiting(runId: string, reason: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(runId), WAITING_FIELD, JSON.stringify({ reason, at: Date.now() }))
      .expire(this.key(runId), TTL_SECONDS)
      .exec();
  }

  async clearWaiting(runId: string): Promise<void> {
    await this.redis.hdel(this.key(runId), WAITING_FIELD);
  }

  private addTo(multi: ChainableCommander, runId: string, counts: Partial<Record<CountField, number>>): void {
    for (const [field, value] of Object.entries(counts)) if (value) multi.hincrby(this.key(runId), field, value);
    multi.expire(this.key(runId), TTL_SECONDS);
  }

  async mostChunksDiffer(runId: string, tableKey: string): Promise<boolean> {
    const [checked, differing] = await this.redis.hmget(this.key(runId), `table:${tableKey}:checked`, `table:${tableKey}:differing`);
    const seen = Number(checked ?? 0);
    return seen >= MIN_CHUNKS_OBSERVED && Number(differing ?? 0) * 2 > seen;
  }

  async read(runId: string): Promise<RunProgressCounts> {
    const values = await this.redis.hmget(this.key(runId), ...FIELDS, WAITING_FIELD);
    const counts = Object.fromEntries(FIELDS.map((field, index) => [field, Number(values[index] ?? 0)])) as Record<CountField, number>;
    const waiting = currentWaiting(values[FIELDS.length]);
    return waiting === undefined ? counts : { ...counts, waiting };
  }
}

/** The reason of a `waiting` field while it is fresh. */
function currentWaiting(value: string | null | undefined, now = Date.now()): string | undefined {
  if (!value) return undefined;
  try {
    const { reason, at } = JSON.parse(value) as { reason?: unknown; at?: unknown };
    return typeof reason === 'string' && typeof at === 'number' && now - at < WAITING_FRESH_MS ? reason : undefined;
  } catch {
    return undefined;
  }
}
