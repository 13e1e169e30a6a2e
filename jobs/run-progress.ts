import type { Redis } from 'ioredis';

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
    for (const [field, value] of Object.entries(counts)) if (value) multi.hincrby(this.key(runId), field, value);
    multi.expire(this.key(runId), TTL_SECONDS);
    await multi.exec();
  }

  async read(runId: string): Promise<RunProgressCounts> {
    const values = await this.redis.hmget(this.key(runId), ...FIELDS);
    return Object.fromEntries(FIELDS.map((field, index) => [field, Number(values[index] ?? 0)])) as unknown as RunProgressCounts;
  }
}
