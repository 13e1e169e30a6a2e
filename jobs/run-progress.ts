import type { ChainableCommander, Redis } from 'ioredis';

/** Live counters of one run, for progress bars and `rowsync status` (not for the report). */
export interface RunProgressCounts {
  readonly tablesPlanned: number;
  readonly tablesDone: number;
  readonly chunksPlanned: number;
  readonly chunksDone: number;
  readonly rowsCompared: number;
  readonly differences: number;
}

const FIELDS: readonly (keyof RunProgressCounts)[] = [
  'tablesPlanned', 'tablesDone', 'chunksPlanned', 'chunksDone', 'rowsCompared', 'differences',
];
const TTL_SECONDS = 7 * 24 * 3600;
const MIN_CHUNKS_OBSERVED = 4;

/**
 * A Redis hash per run. Counters are incremented when a job finishes a step, so a retried job can
 * count twice: they drive a progress bar and an ETA, the report itself comes from job results.
 */
export class RunProgress {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(runId: string): string {
    return `${this.prefix}:run-progress:${runId}`;
  }

  async add(runId: string, counts: Partial<RunProgressCounts>): Promise<void> {
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
  async recordChunk(runId: string, tableKey: string, counts: Partial<RunProgressCounts>, differing: boolean): Promise<void> {
    const multi = this.redis.multi();
    this.addTo(multi, runId, counts);
    multi.hincrby(this.key(runId), `table:${tableKey}:checked`, 1);
    if (differing) multi.hincrby(this.key(runId), `table:${tableKey}:differing`, 1);
    await multi.exec();
  }

  private addTo(multi: ChainableCommander, runId: string, counts: Partial<RunProgressCounts>): void {
    for (const [field, value] of Object.entries(counts)) if (value) multi.hincrby(this.key(runId), field, value);
    multi.expire(this.key(runId), TTL_SECONDS);
  }

  async mostChunksDiffer(runId: string, tableKey: string): Promise<boolean> {
    const [checked, differing] = await this.redis.hmget(this.key(runId), `table:${tableKey}:checked`, `table:${tableKey}:differing`);
    const seen = Number(checked ?? 0);
    return seen >= MIN_CHUNKS_OBSERVED && Number(differing ?? 0) * 2 > seen;
  }

  async read(runId: string): Promise<RunProgressCounts> {
    const values = await this.redis.hmget(this.key(runId), ...FIELDS);
    return Object.fromEntries(FIELDS.map((field, index) => [field, Number(values[index] ?? 0)])) as unknown as RunProgressCounts;
  }
}
