import type { Runtime } from '../../jobs/runtime.js';
import { createDatabase } from '../dialect/create-database.js';
import type { Database } from '../dialect/dialect.js';
import { redactSecrets } from '../logging/logger.js';

/** One dependency's answer: `redis`, or `connections.<name>` for a configured database. */
export interface HealthCheck {
  readonly name: string;
  readonly ok: boolean;
  /** How long it took to answer (or to give up). */
  readonly ms: number;
  readonly error?: string;
}

/** `GET /healthz`'s body: `ok`, or `unavailable` with the names of what did not answer. */
export interface HealthReport {
  readonly status: 'ok' | 'unavailable';
  readonly unreachable: readonly string[];
  readonly checks: readonly HealthCheck[];
}

export interface HealthOptions {
  /** A dependency that has not answered within this long is unreachable (ms). @defaultValue 2000 */
  readonly timeoutMs?: number;
}

/**
 * Whether this process can reach what it needs: Redis (PING on the runtime's own connection) and
 * every configured database (`SELECT 1`), each within `timeoutMs`.
 *
 * Databases are asked on a connection of their own (one per configured connection, opened on the
 * first check), not through the runtime's pools: a pool busy with long chunk queries, or a
 * `maxConcurrentQueries` cap whose slots are all taken, would make a healthy server look down. A check
 * still running from an earlier request (a server that neither answers nor refuses) is joined, not
 * repeated, so a hung server costs one pending query however often /healthz is asked.
 */
export class HealthChecker {
  private readonly timeoutMs: number;
  private readonly databases = new Map<string, Database>();
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly runtime: Runtime,
    options: HealthOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  async check(): Promise<HealthReport> {
    const connections = Object.keys(this.runtime.config.connections);
    const checks = await Promise.all([
      this.probe('redis', () => this.pingRedis()),
      ...connections.map((name) => this.probe(`connections.${name}`, () => this.database(name).execute('SELECT 1').then(() => undefined))),
    ]);
    const unreachable = checks.filter((check) => !check.ok).map((check) => check.name);
    return { status: unreachable.length === 0 ? 'ok' : 'unavailable', unreachable, checks };
  }

  async close(): Promise<void> {
    const databases = [...this.databases.values()];
    this.databases.clear();
    await Promise.all(databases.map((database) => database.close().catch(() => undefined)));
  }

  private async pingRedis(): Promise<void> {
    const { redis } = this.runtime;
    // The runtime's connection retries forever (BullMQ needs that), and a command sent while it is
    // down waits in ioredis's offline queue: a connection that was lost fails the check at once; one
    // still connecting (a process that just started) is given the timeout to get ready.
    if (redis.status === 'reconnecting' || redis.status === 'close' || redis.status === 'end') {
      throw new Error(`not connected (connection ${redis.status})`);
    }
    if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
    await redis.ping();
  }

  private database(name: string): Database {
    let database = this.databases.get(name);
    if (!database) {
      const connection = this.runtime.config.connections[name]!;
      database = createDatabase({ connectionName: name, url: connection.url, poolSize: 1 });
      this.databases.set(name, database);
    }
    return database;
  }

  private async probe(name: string, ask: () => Promise<void>): Promise<HealthCheck> {
    const startedAt = Date.now();
    let running = this.pending.get(name);
    if (!running) {
      running = Promise.resolve().then(ask);
      this.pending.set(name, running);
      const done = () => {
        if (this.pending.get(name) === running) this.pending.delete(name);
      };
      running.then(done, done);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
      return { name, ok: true, ms: Date.now() - startedAt };
    } catch (error) {
      return { name, ok: false, ms: Date.now() - startedAt, error: redactSecrets(error instanceof Error ? error.message : String(error)) };
    } finally {
      clearTimeout(timer);
    }
  }
}
