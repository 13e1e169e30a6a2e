import type { RedisClient } from '../src/coordination/redis-client.js';
import type { KeyDifferences } from '../src/reconcile/range-differ.js';
import type { TableShape } from '../src/dialect/types.js';
import { encodeValue } from '../src/sync/portable-json.js';

/** How long a run's key list is kept for the command that asked for it (it reads it at the run's end). */
const KEEP_SECONDS = 7 * 24 * 3600;

/** One differing key as `--print-keys` prints it: a JSON line. */
export interface DifferingKeyLine {
  readonly table: string;
  readonly target: string;
  /** `missing`: only the source has the row; `extra`: only the target; `changed`: both, different. */
  readonly kind: 'missing' | 'extra' | 'changed';
  /** Key column name -> value (bytes as `{ "$bytes": base64 }`, big numbers as strings). */
  readonly key: Readonly<Record<string, unknown>>;
}

/**
 * The differing keys of a run, for `rowsync reconcile --print-keys` (what pt-table-sync's `--print`
 * and data-diff's row listing give): the chunk jobs append them to a Redis list, at most the run's
 * limit of them in all, and the command reads them when the run has finished. Nothing is recorded
 * for runs that did not ask.
 */
export class RunKeyLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** Asks the chunks of `runId` to record up to `limit` differing keys (before the run is enqueued). */
  async enable(runId: string, limit: number): Promise<void> {
    await this.redis.set(this.key(runId, 'limit'), String(limit), 'EX', KEEP_SECONDS);
  }

  /** Appends a chunk's differing keys, as far as the run's limit allows; a no-op for other runs. */
  async record(runId: string, table: string, target: string, shape: TableShape, differences: KeyDifferences): Promise<void> {
    const total = differences.missing.length + differences.extra.length + differences.changed.length;
    if (total === 0) return;
    const limit = Number(await this.redis.get(this.key(runId, 'limit')));
    if (!limit) return;
    const after = await this.redis.incrby(this.key(runId, 'count'), total);
    await this.redis.expire(this.key(runId, 'count'), KEEP_SECONDS);
    const room = Math.min(total, limit - (after - total));
    if (room <= 0) return;
    const names = shape.keyIndexes.map((index) => shape.columns[index]!.name);
    const lines: string[] = [];
    for (const kind of ['missing', 'extra', 'changed'] as const) {
      for (const tuple of differences[kind]) {
        if (lines.length >= room) break;
        const key = Object.fromEntries(names.map((name, index) => [name, encodeValue(tuple[index]!)]));
        lines.push(JSON.stringify({ table, target, kind, key } satisfies DifferingKeyLine));
      }
    }
    await this.redis.rpush(this.key(runId, 'list'), ...lines);
    await this.redis.expire(this.key(runId, 'list'), KEEP_SECONDS);
  }

  /** The recorded lines (at most the limit) and how many differing keys the run found in all. */
  async read(runId: string): Promise<{ readonly lines: string[]; readonly found: number }> {
    const [lines, found] = await Promise.all([this.redis.lrange(this.key(runId, 'list'), 0, -1), this.redis.get(this.key(runId, 'count'))]);
    return { lines, found: Number(found ?? 0) };
  }

  private key(runId: string, part: 'limit' | 'count' | 'list'): string {
    return `${this.prefix}:run-keys:${runId}:${part}`;
  }
}
