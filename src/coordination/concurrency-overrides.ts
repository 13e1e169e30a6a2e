import type { WorkersConfig } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { RedisClient } from './redis-client.js';

/** Job kinds whose per-process concurrency is configured (`workers.concurrency.<kind>`) and can be overridden. */
export const JOB_KINDS = ['table', 'chunk', 'apply', 'cdc'] as const satisfies readonly (keyof WorkersConfig['concurrency'])[];
export type JobKind = (typeof JOB_KINDS)[number];
/** Compiles only while JOB_KINDS lists every kind of `workers.concurrency`. */
export const JOB_KINDS_COMPLETE: [Exclude<keyof WorkersConfig['concurrency'], JobKind>] extends [never] ? true : never = true;

/** The same bound as `workers.concurrency.<kind>` in the config. */
export const MAX_CONCURRENCY = 256;

export type ConcurrencyOverride = Partial<Record<JobKind, number>>;

/**
 * Cluster-wide concurrency overrides, set at run time (`rowsync concurrency set chunk 8`): one
 * Redis hash under the prefix, field = job kind, value = jobs at once per worker process. Worker
 * processes read it every few seconds and apply it without a restart (workers/concurrency-watcher.ts);
 * an override stays until it is reset, so processes started later follow it too.
 */
export class ConcurrencyOverrides {
  readonly key: string;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
  ) {
    this.key = `${prefix}:concurrency`;
  }

  /** The overrides in force; a field that is not a kind or not a valid number (written by hand) is ignored. */
  async read(): Promise<ConcurrencyOverride> {
    const fields = await this.redis.hgetall(this.key);
    const overrides: ConcurrencyOverride = {};
    for (const kind of JOB_KINDS) {
      const value = Number(fields[kind]);
      if (Number.isInteger(value) && value >= 1 && value <= MAX_CONCURRENCY) overrides[kind] = value;
    }
    return overrides;
  }

  async set(kind: JobKind, concurrency: number): Promise<void> {
    await this.redis.hset(this.key, kind, String(concurrency));
  }

  /** Removes one kind's override, or every override. */
  async reset(kind?: JobKind): Promise<void> {
    if (kind) await this.redis.hdel(this.key, kind);
    else await this.redis.del(this.key);
  }
}

/** A job kind as typed on the command line; anything else is a usage error naming the argument. */
export function parseJobKind(value: string): JobKind {
  if ((JOB_KINDS as readonly string[]).includes(value)) return value as JobKind;
  throw new ConfigError(`<kind>: unknown job kind '${value}' (kinds: ${JOB_KINDS.join(', ')})`, { subject: '<kind>' });
}

/** A concurrency as typed on the command line: a whole number from 1 to MAX_CONCURRENCY. */
export function parseConcurrency(value: string): number {
  const parsed = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > MAX_CONCURRENCY) {
    throw new ConfigError(`<n>: expected a whole number from 1 to ${MAX_CONCURRENCY}, got '${value}'`, { subject: '<n>' });
  }
  return parsed;
}
