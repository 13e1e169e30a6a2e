import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config, PipelineConfig, WritePolicyConfig } from '../src/config/index.js';
import { findPipeline } from '../src/config/index.js';
import { KeyLeases } from '../src/coordination/key-leases.js';
import { countQueries, limitDatabase } from '../src/coordination/limited-database.js';
import { createRedisClient, type RedisClient } from '../src/coordination/redis-client.js';
import { RedisSemaphore } from '../src/coordination/redis-semaphore.js';
import { createDatabase } from '../src/dialect/create-database.js';
import type { Database } from '../src/dialect/dialect.js';
import { buildTablePair, type TablePair } from '../src/dialect/table-pair.js';
import { ConfigError, SchemaError } from '../src/errors/index.js';
import type { Logger } from '../src/logging/logger.js';
import { ThrottledWarning } from '../src/logging/throttled-warning.js';
import { syncKeys, type CustomResolver, type SyncRequest, type SyncResult } from '../src/sync/sync-keys.js';
import {
  asSyncResult, syncBidirectional, type BidirectionalConflict, type BidirectionalPolicyName, type BidirectionalRequest,
} from '../src/sync/bidirectional-sync.js';
import { createSyncStateStore, type SyncStateStore } from '../src/dialect/sync-state.js';
import type { ConflictRecord, KeyTuple, TableSchema } from '../src/dialect/types.js';
import { RowsyncQueues } from './queues.js';
import { RunProgress } from './run-progress.js';
import { RunKeyLog } from './run-keys.js';

/** A table pair as a job needs it: both databases and both shapes. */
export interface TableContext {
  readonly pipeline: PipelineConfig;
  readonly source: Database;
  readonly target: Database;
  readonly pair: TablePair;
}

/** How long an introspected table pair is reused before it is read again (schema changes). */
const PAIR_TTL_MS = 60_000;

/**
 * Everything a worker process shares between jobs: config, Redis, queues, one pool per database,
 * introspected table pairs. Jobs stay stateless: every job carries its pipeline, table and target,
 * and a fresh process rebuilds all of this on demand.
 */
export class Runtime {
  /** One server or a Redis Cluster (`redis.cluster`); BullMQ duplicates it for its blocking workers. */
  readonly redis: RedisClient;
  readonly queues: RowsyncQueues;
  readonly progress: RunProgress;
  /** Per-key leases: whoever syncs keys holds theirs (see key-leases.ts). */
  readonly keyLeases: KeyLeases;
  /** The differing keys of runs that asked for them (`--print-keys`). */
  readonly runKeys: RunKeyLog;
  /** Set by close(): connections that end from now on were closed on purpose. */
  closing = false;
  /** Connection errors of Redis, from every client and queue: one line per 10 s at most. */
  readonly redisErrors: ThrottledWarning;
  private readonly databases = new Map<string, Database>();
  private readonly pairs = new Map<string, { at: number; context: Promise<TableContext> }>();
  private readonly resolvers = new Map<string, Promise<CustomResolver>>();
  private readonly syncStates = new Map<string, SyncStateStore>();

  constructor(
    readonly config: Config,
    readonly logger: Logger,
  ) {
    // BullMQ workers need maxRetriesPerRequest null on their blocking connections.
    this.redis = createRedisClient(config.redis, { maxRetriesPerRequest: null, lazyConnect: false });
    this.redisErrors = new ThrottledWarning(logger, 'redis connection error: retrying');
    this.redis.on('error', (error: Error) => this.redisErrors.report(error));
    this.queues = new RowsyncQueues(config, this.redis, (error) => this.redisErrors.report(error));
    this.progress = new RunProgress(this.redis, config.redis.prefix);
    this.keyLeases = new KeyLeases(this.redis, config.redis.prefix);
    this.runKeys = new RunKeyLog(this.redis, config.redis.prefix);
  }

  pipeline(name: string): PipelineConfig {
    return findPipeline(this.config, name);
  }

  /** The pool of a configured connection, capped across processes when `maxConcurrentQueries` is set. */
  database(name: string): Database {
    let database = this.databases.get(name);
    if (!database) {
      const connection = this.config.connections[name];
      if (!connection) throw new ConfigError(`unknown connection '${name}'`, { subject: `connections.${name}` });
      database = countQueries(createDatabase({ connectionName: name, url: connection.url, poolSize: connection.poolSize }));
      if (connection.maxConcurrentQueries) {
        const semaphore = new RedisSemaphore(this.redis, `${this.config.redis.prefix}:db-slots:${name}`, {
          limit: connection.maxConcurrentQueries,
        });
        database = limitDatabase(database, semaphore);
      }
      this.databases.set(name, database);
    }
    return database;
  }

  /** Introspects a table on the pipeline's source and a target (cached for a minute). */
  async tableContext(pipelineName: string, table: string, targetName: string): Promise<TableContext> {
    const key = `${pipelineName}\u0000${table}\u0000${targetName}`;
    const cached = this.pairs.get(key);
    if (cached && Date.now() - cached.at < PAIR_TTL_MS) return cached.context;
    const context = (async () => {
      const pipeline = this.pipeline(pipelineName);
      const source = this.database(pipeline.source);
      const target = this.database(targetName);
      // A table entry may name the table differently on the targets, filter its rows, leave columns out.
      const entry = pipeline.tableOptions[table];
      const [sourceSchema, targetSchema] = await describeBothSides(
        source.describeTable(table),
        target.describeTable(entry?.targetName ?? table, entry?.targetSchema),
      );
      const pair = buildTablePair(source, sourceSchema, target, targetSchema, {
        ...(entry ? { excludeColumns: entry.excludeColumns } : {}),
        ...(entry?.where !== undefined ? { sourceFilter: entry.where } : {}),
        ...(entry?.targetWhere !== undefined ? { targetFilter: entry.targetWhere } : {}),
      });
      // A filter either engine refuses fails here, before any chunk reads or writes with it (the
      // source's first, so the message names the side that is wrong there).
      await source.checkFilter(pair.source);
      await target.checkFilter(pair.target);
      return { pipeline, source, target, pair };
    })();
    this.pairs.set(key, { at: Date.now(), context });
    context.catch(() => this.pairs.delete(key));
    return context;
  }

  /**
   * What `syncKeys` needs for one table pair. `for: 'reconcile'` writes by the reconcile settings
   * (the pipeline's write policy with `reconcile.*` overrides, `deleteExtra`); `for: 'cdc'` by the
   * pipeline's write policy, and a row the source no longer has is always deleted at the target:
   * `deleteExtra` is about rows only the target ever had, and a change event proves the source had it.
   */
  async syncRequest(context: TableContext, dryRun: boolean, purpose: 'reconcile' | 'cdc' = 'reconcile'): Promise<SyncRequest> {
    const { pipeline, source, target, pair } = context;
    const { policy, resolver } = await this.writePolicy(context, purpose);
    return {
      pipeline: pipeline.name,
      source,
      target,
      pair,
      dryRun,
      policy: {
        conflict: policy.conflict,
        conflictColumn: policy.conflictColumn,
        deleteExtra: purpose === 'reconcile' ? pipeline.reconcile.deleteExtra : true,
        ...(resolver ? { resolver } : {}),
      },
      recordConflicts: (records) => target.recordConflicts(records),
    };
  }

  /**
   * The sync of a table pair, as every job calls it: `syncKeys` (one-way), or `syncBidirectional` for
   * a bidirectional pipeline; both report a `SyncResult`.
   */
  async keySync(context: TableContext, dryRun: boolean, purpose: 'reconcile' | 'cdc' = 'reconcile'): Promise<(keys: readonly KeyTuple[]) => Promise<SyncResult>> {
    if (context.pipeline.mode === 'bidirectional') {
      const request = await this.bidirectionalRequest(context, dryRun, purpose);
      return async (keys) => asSyncResult(await syncBidirectional(request, keys));
    }
    const request = await this.syncRequest(context, dryRun, purpose);
    return (keys) => syncKeys(request, keys);
  }

  /** What `syncBidirectional` needs for one table pair: side A = the source, side B = the one target. */
  async bidirectionalRequest(context: TableContext, dryRun: boolean, purpose: 'reconcile' | 'cdc' = 'reconcile'): Promise<BidirectionalRequest> {
    const { pipeline, source, target, pair } = context;
    const { policy, resolver } = await this.writePolicy(context, purpose);
    return {
      pipeline: pipeline.name,
      a: source,
      b: target,
      pair,
      dryRun,
      policy: {
        // The config admits only the bidirectional policies for a bidirectional pipeline.
        conflict: policy.conflict as BidirectionalPolicyName,
        conflictColumn: policy.conflictColumn,
        priority: policy.priority === pipeline.source ? 'a' : 'b',
        ...(resolver ? { resolver } : {}),
      },
      state: this.syncState(target.connectionName),
      recordConflicts: (conflicts) => target.recordConflicts(conflicts.map(conflictRecordOf)),
    };
  }

  /**
   * The write policy a sync follows: reconcile's (the pipeline's with `reconcile.*` overrides) or the
   * pipeline's own (CDC), with the table's resolver loaded when it is `custom`.
   */
  private async writePolicy(context: TableContext, purpose: 'reconcile' | 'cdc'): Promise<{ policy: WritePolicyConfig; resolver: CustomResolver | undefined }> {
    const { pipeline, pair } = context;
    const policy = purpose === 'reconcile' ? pipeline.reconcile : pipeline.write;
    const field = purpose === 'reconcile' ? `pipelines.${pipeline.name}.reconcile.resolvers` : `pipelines.${pipeline.name}.resolvers`;
    return { policy, resolver: policy.conflict === 'custom' ? await this.resolver(policy.resolvers, field, pair.source.table) : undefined };
  }

  /** The sync state of bidirectional pipelines, kept in side B's database. */
  syncState(connection: string): SyncStateStore {
    let store = this.syncStates.get(connection);
    if (!store) {
      store = createSyncStateStore(this.database(connection));
      this.syncStates.set(connection, store);
    }
    return store;
  }

  /** Forgets a cached table pair (its schema changed, or a write found it out of date). */
  forgetTable(pipelineName: string, table: string, targetName: string): void {
    this.pairs.delete(`${pipelineName}\u0000${table}\u0000${targetName}`);
  }

  /** Loads the `conflict: custom` resolver module of a table (its default export). */
  private resolver(resolvers: Readonly<Record<string, string>>, fieldPrefix: string, table: string): Promise<CustomResolver> {
    const field = `${fieldPrefix}.${table}`;
    const modulePath = resolvers[table];
    const key = `${field}\u0000${modulePath ?? ''}`;
    let loaded = this.resolvers.get(key);
    if (!loaded) {
      if (!modulePath) throw new ConfigError(`${field}: missing (conflict is 'custom')`, { subject: field });
      const base = this.config.file ? path.dirname(this.config.file) : process.cwd();
      const file = path.resolve(base, modulePath);
      // The file's mtime in the URL: Node caches a module (and a failed import) per URL, so a resolver
      // fixed on disk is loaded again when its jobs are retried, without restarting the worker.
      const version = existsSync(file) ? statSync(file).mtimeMs : 0;
      loaded = import(`${pathToFileURL(file).href}?mtime=${version}`).then(
        (module: { default?: unknown }) => {
          if (typeof module.default !== 'function') {
            throw new ConfigError(`${field}: ${modulePath} has no default export function`, { subject: field });
          }
          return module.default as CustomResolver;
        },
        // Not found, a syntax error, an exception at load: no retry of the job can fix it, so it is a
        // configuration error (the job fails at once with this cause) rather than a retried one.
        (error: unknown) => {
          throw new ConfigError(`${field}: cannot load ${modulePath}: ${error instanceof Error ? error.message : String(error)}`, { subject: field, cause: error });
        },
      );
      this.resolvers.set(key, loaded);
      loaded.catch(() => this.resolvers.delete(key));
    }
    return loaded;
  }

  /**
   * Closes queues, pools and Redis. `queriesTimeoutMs`: after a shutdown handed running jobs back,
   * their queries may never end (a pool's close waits for them); past this long the pools are left
   * to the process's exit, which ends their connections.
   */
  async close(options: { readonly queriesTimeoutMs?: number } = {}): Promise<void> {
    this.closing = true;
    await this.queues.close();
    const pools = Promise.all([...this.databases.values()].map((database) => database.close()));
    if (options.queriesTimeoutMs === undefined) await pools;
    else await Promise.race([pools, new Promise((resolve) => setTimeout(resolve, options.queriesTimeoutMs).unref())]);
    this.databases.clear();
    await this.redis.quit().catch(() => undefined);
  }
}

/**
 * Both sides' schemas, read at once. A side that lacks its table is named as the source or the
 * target; when both lack it, the message says so (the source's problem first: a table missing on
 * the source is a config mistake, one missing only on the target is drift to create).
 */
async function describeBothSides(source: Promise<TableSchema>, target: Promise<TableSchema>): Promise<[TableSchema, TableSchema]> {
  const [sourceResult, targetResult] = await Promise.allSettled([source, target]);
  const sideError = (side: 'source' | 'target', error: unknown): unknown =>
    error instanceof SchemaError && error.code === 'TABLE_NOT_FOUND'
      ? new SchemaError('TABLE_NOT_FOUND', `${side}: ${error.message}`, { ...(error.subject ? { subject: error.subject } : {}), cause: error })
      : error;
  if (sourceResult.status === 'rejected') {
    const sourceError = sideError('source', sourceResult.reason);
    if (targetResult.status === 'rejected' && sourceError instanceof SchemaError && sourceError.code === 'TABLE_NOT_FOUND') {
      const targetError = sideError('target', targetResult.reason);
      if (targetError instanceof SchemaError && targetError.code === 'TABLE_NOT_FOUND') {
        throw new SchemaError('TABLE_NOT_FOUND', `missing on both sides: ${sourceError.message}; ${targetError.message}`, {
          ...(sourceError.subject ? { subject: sourceError.subject } : {}),
        });
      }
    }
    throw sourceError;
  }
  if (targetResult.status === 'rejected') throw sideError('target', targetResult.reason);
  return [sourceResult.value, targetResult.value];
}

/** A bidirectional conflict as a row of side B's `rowsync_conflicts` (source = side A, target = side B). */
function conflictRecordOf(conflict: BidirectionalConflict): ConflictRecord {
  return {
    pipeline: conflict.pipeline,
    table: conflict.table,
    key: conflict.key,
    sourceRow: conflict.rowA,
    targetRow: conflict.rowB,
    kind: conflict.kind,
    policy: conflict.policy,
    outcome: conflict.outcome,
  };
}
