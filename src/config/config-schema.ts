import { z } from 'zod';

/**
 * The configuration file's contract (documented in the README). Every default is here, once.
 * Parsing happens in `load-config.ts`; the parsed result is frozen and passed everywhere as `Config`.
 */

const positiveInt = (max = 1_000_000_000) => z.number().int().min(1).max(max);

export const COMPARE_MODES = ['checksum', 'field_by_field', 'timestamp'] as const;
export const CONFLICT_POLICIES = ['source_wins', 'target_wins', 'timestamp', 'priority', 'merge', 'manual', 'custom'] as const;
/** Policies of a bidirectional pipeline (`source_wins` / `target_wins` there are `priority`). */
export const BIDIRECTIONAL_POLICIES = ['timestamp', 'priority', 'merge', 'manual', 'custom'] as const;
export const PIPELINE_MODES = ['one-way', 'bidirectional'] as const;
export const CDC_MODES = ['binlog', 'logical', 'polling'] as const;

export type CompareMode = (typeof COMPARE_MODES)[number];
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];
export type CdcMode = (typeof CDC_MODES)[number];

const connectionSchema = z.union([
  z.string().min(1),
  z.strictObject({
    url: z.string().min(1),
    /** Connections one process opens to this server. @defaultValue 4 */
    poolSize: positiveInt(1000).optional(),
    /**
     * Concurrent queries all rowsync processes together may run on this server (a Redis-held
     * semaphore); unset means only the per-process pool bounds it.
     */
    maxConcurrentQueries: positiveInt(10_000).optional(),
  }),
]);

/**
 * The write policy: how every write to a target decides between the source's and the target's row.
 * It belongs to the pipeline (reconcile, CDC and bidirectional sync all write through it); the same
 * keys under `reconcile` override it for reconcile runs only.
 */
const writePolicyShape = {
  /** What a write does when the target row exists and differs. @defaultValue 'source_wins' */
  conflict: z.enum(CONFLICT_POLICIES).optional(),
  /** Column whose newer value wins when `conflict` is 'timestamp'. @defaultValue 'updated_at' */
  conflictColumn: z.string().min(1).optional(),
  /** Per-table resolver module paths (relative to the config file) when `conflict` is 'custom'. */
  resolvers: z.record(z.string(), z.string().min(1)).optional(),
  /** Keys per sync (one target transaction). @defaultValue 500 */
  applyBatchSize: positiveInt(10_000).optional(),
  /** The connection whose row wins a conflict when `conflict` is 'priority' (bidirectional). */
  priority: z.string().min(1).optional(),
};

export const WRITE_POLICY_DEFAULTS = {
  conflict: 'source_wins' as ConflictPolicy,
  conflictColumn: 'updated_at',
  resolvers: {} as Readonly<Record<string, string>>,
  applyBatchSize: 500,
  priority: undefined as string | undefined,
};

const reconcileSchema = z.strictObject({
  /** Cron expression (node-cron, 5 or 6 fields) for `rowsync scheduler`; unset: never scheduled. */
  schedule: z.string().min(1).optional(),
  /** IANA time zone of `schedule`. @defaultValue the process's time zone */
  timezone: z.string().min(1).optional(),
  /**
   * Rows per chunk job (keyset pagination on the source). With `chunkTimeMs` on, the size of the
   * first chunks, adapted from there. Setting it without `chunkTimeMs` fixes the size (adaptation off).
   * @defaultValue 10000
   */
  chunkSize: positiveInt(1_000_000).optional(),
  /**
   * Adaptive chunks: sizes follow the measured checksum time so that a chunk's scan takes about this
   * long (ms), between 1,000 and 100,000 rows (or chunkSize when it lies outside). 0: fixed chunkSize.
   * @defaultValue 500, or 0 when chunkSize is set
   */
  chunkTimeMs: z.number().int().min(0).max(600_000).optional(),
  /**
   * Before each chunk, the load of the source and the target (MySQL/MariaDB `Threads_running`,
   * PostgreSQL active backends) is read; above this, the chunk waits. false: never.
   * @defaultValue 25
   */
  maxLoad: z.union([positiveInt(1_000_000), z.literal(false)], { error: 'expected a whole number >= 1 or false' }).default(25),
  /**
   * Chunks that write wait while one of these replica connections lags more than `seconds`.
   * Unset: replicas are not watched.
   */
  maxReplicaLag: z
    .strictObject({
      seconds: z.number().min(0).max(86_400),
      replicas: z.array(z.string().min(1)).min(1),
    })
    .optional(),
  /** How rows are compared. @defaultValue 'checksum' */
  compare: z.enum(COMPARE_MODES).default('checksum'),
  /** Column compared when `compare` is 'timestamp'. @defaultValue 'updated_at' */
  timestampColumn: z.string().min(1).default('updated_at'),
  /** Reconcile-only overrides of the pipeline's write policy (defaults: the pipeline's). */
  ...writePolicyShape,
  /** Delete rows only the target has. @defaultValue true */
  deleteExtra: z.boolean().default(true),
  /** Attempts per chunk and apply job before it stays failed. @defaultValue 5 */
  attempts: positiveInt(100).default(5),
  /** First retry delay (exponential backoff). @defaultValue 1000 */
  backoffMs: z.number().int().min(0).max(3_600_000).default(1000),
});

const cdcSchema = z.strictObject({
  /** `binlog` (MySQL/MariaDB), `logical` (PostgreSQL) or `polling` (triggers). @defaultValue the source engine's log */
  mode: z.enum(CDC_MODES).optional(),
  /** Most changed keys per batch (one job per target). @defaultValue 1000 */
  batchSize: positiveInt(100_000).default(1000),
  /** A batch is cut at the first transaction end after this long, full or not (ms). @defaultValue 100 */
  batchWindowMs: z.number().int().min(0).max(60_000).default(100),
  /** Idle streams report (PostgreSQL: emit) a heartbeat this often (ms). @defaultValue 10000 */
  heartbeatMs: z.number().int().min(100).max(3_600_000).default(10_000),
  /** Binlog reader's replica server id, unique per MySQL server. @defaultValue derived from the pipeline name */
  serverId: z.number().int().min(1).max(4_294_967_295).optional(),
  /** Polling: how often an empty change table is read again (ms). @defaultValue 500 */
  pollIntervalMs: z.number().int().min(10).max(600_000).default(500),
  /** Batches queued and not yet applied per target before reading pauses (backpressure). @defaultValue 16 */
  maxInFlightBatches: positiveInt(10_000).default(16),
  /** Attempts per batch before it moves to the dead-letter queue. @defaultValue 5 */
  attempts: positiveInt(100).default(5),
  /** First retry delay of a batch (exponential backoff, ms). @defaultValue 1000 */
  backoffMs: z.number().int().min(0).max(3_600_000).default(1000),
  /** Reconcile every table on a first start without checkpoint (the initial snapshot). @defaultValue true */
  initialReconcile: z.boolean().default(true),
});

/** A table entry as an object: the table's shape on the targets, and which rows and columns count. */
const tableEntrySchema = z.strictObject({
  /** The table on the source. */
  name: z.string().min(1),
  /** Its name on the targets. @defaultValue name */
  targetName: z.string().min(1).optional(),
  /**
   * The schema (PostgreSQL) or database (MySQL/MariaDB) holding it on the targets.
   * @defaultValue the target connection's own
   */
  targetSchema: z.string().min(1).optional(),
  /**
   * Only rows for which this SQL condition is true are compared and written, on both sides (trusted:
   * pasted into every read, in parentheses). @defaultValue every row
   */
  where: z.string().min(1).optional(),
  /** The condition on the targets, when it must be written differently there (another engine). @defaultValue where */
  targetWhere: z.string().min(1).optional(),
  /** Columns neither compared nor written (not key columns; a target-only column may be named). */
  excludeColumns: z.array(z.string().min(1)).optional(),
});

const pipelineSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected letters, digits, _ . - (starting with a letter or digit)'),
  source: z.string().min(1),
  targets: z.array(z.string().min(1)).min(1),
  /**
   * 'one-way': the source's rows are copied to the targets. 'bidirectional': the source (side A)
   * and its one target (side B) both take writes; changes flow both ways. @defaultValue 'one-way'
   */
  mode: z.enum(PIPELINE_MODES).default('one-way'),
  /**
   * Tables to keep equal, each a source table name or an entry object (`tableEntrySchema`); omitted:
   * every table of the source that has a primary key.
   */
  tables: z
    .array(z.union([z.string().min(1), tableEntrySchema], { error: 'expected a table name or an object with "name"' }))
    .min(1)
    .optional(),
  ...writePolicyShape,
  reconcile: reconcileSchema.default(() => reconcileSchema.parse({})),
  cdc: cdcSchema.optional(),
});

const workersSchema = z.strictObject({
  /** Concurrent jobs per worker process, per job kind. */
  concurrency: z
    .strictObject({
      /** @defaultValue 2 */
      table: positiveInt(256).default(2),
      /** @defaultValue 4 */
      chunk: positiveInt(256).default(4),
      /** Jobs per worker across all apply lanes. @defaultValue 4 */
      apply: positiveInt(256).default(4),
      /** CDC batches at once per worker process. @defaultValue 4 */
      cdc: positiveInt(256).default(4),
    })
    .default({ table: 2, chunk: 4, apply: 4, cdc: 4 }),
  /**
   * Apply lanes: keys are routed by hash(table, key) mod lanes; each lane runs one job at a time
   * across all workers, which gives per-key mutual exclusion. Changing it while jobs are queued is
   * safe (sync is idempotent) but loses the exclusion for the keys in flight.
   * @defaultValue 8
   */
  lanes: positiveInt(1024).default(8),
  /**
   * Job lock duration. A worker killed with -9 releases its jobs after at most lockDuration +
   * stalledInterval (measured: ~4 s with 5000/2000, ~60 s with BullMQ's defaults).
   * @defaultValue 5000
   */
  lockDurationMs: z.number().int().min(1000).max(600_000).default(5000),
  /** @defaultValue 2000 */
  stalledIntervalMs: z.number().int().min(500).max(600_000).default(2000),
  /**
   * On SIGTERM a process stops taking jobs and lets its active ones finish for at most this long;
   * what is still running then is handed back to the queue for another worker (ms). The default
   * leaves a margin inside Kubernetes' 30 s grace period. @defaultValue 25000
   */
  shutdownTimeoutMs: z.number().int().min(0).max(3_600_000).default(25_000),
});

const boardSchema = z.strictObject({
  /** @defaultValue '127.0.0.1' */
  host: z.string().min(1).default('127.0.0.1'),
  /** @defaultValue 3000 */
  port: z.number().int().min(1).max(65535).default(3000),
});

/** Port of the metrics server when neither `metrics.port` nor `--metrics-port` names one (OpenTelemetry's Prometheus exporter port). */
export const DEFAULT_METRICS_PORT = 9464;

/**
 * `GET /metrics` (Prometheus) and `GET /healthz` of every long-running process (worker, scheduler,
 * cdc, start, board). One process per host may use the default port; give the others their own
 * (`--metrics-port`), or 0 for any free one.
 */
const metricsSchema = z.strictObject({
  /** Serve them at all (`--metrics-port off` also turns them off). @defaultValue true */
  enabled: z.boolean().default(true),
  /**
   * Listen address. Loopback by default, like the board: neither endpoint has authentication, and
   * a scraper on another host needs `0.0.0.0` (or the host's address) set on purpose.
   * @defaultValue '127.0.0.1'
   */
  host: z.string().min(1).default('127.0.0.1'),
  /**
   * Listen port; 0: any free port (logged). A port set here (or by flag or ROWSYNC_METRICS_PORT)
   * that is taken fails the command; the default one taken only logs a warning. @defaultValue 9464
   */
  port: z.number().int().min(0).max(65535).optional(),
});

export const configSchema = z.strictObject({
  redis: z
    .strictObject({
      /** One Redis server (not used when `cluster` is set). @defaultValue 'redis://127.0.0.1:6379' */
      url: z.string().min(1).default('redis://127.0.0.1:6379'),
      /**
       * Key prefix of every queue, lock and semaphore. May hold one hash tag (`{rowsync}`), which a
       * cluster requires (see redis-settings.ts). @defaultValue 'rowsync' ('{rowsync}' with `cluster`)
       */
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9_.-]*(\{[A-Za-z0-9_.-]+\}[A-Za-z0-9_.-]*)?$/, 'expected letters, digits, _ . - and at most one {hash tag}')
        .min(1)
        .default('rowsync'),
      /** Redis Cluster: startup nodes (`redis://host:port`; a few masters suffice), instead of `url`. */
      cluster: z.array(z.string().min(1)).min(1).optional(),
    })
    .default({ url: 'redis://127.0.0.1:6379', prefix: 'rowsync' }),
  connections: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, _ . -'), connectionSchema),
  pipelines: z.array(pipelineSchema).min(1),
  workers: workersSchema.default(() => workersSchema.parse({})),
  board: boardSchema.default({ host: '127.0.0.1', port: 3000 }),
  metrics: metricsSchema.default({ enabled: true, host: '127.0.0.1' }),
});

export type ConfigInput = z.input<typeof configSchema>;
export type TableEntryInput = z.output<typeof tableEntrySchema>;
type ParsedConfig = z.output<typeof configSchema>;

export interface ConnectionConfig {
  readonly name: string;
  readonly url: string;
  readonly poolSize: number;
  readonly maxConcurrentQueries: number | undefined;
}

/** The pipeline's write policy, defaults filled (see `writePolicyShape`). */
export interface WritePolicyConfig {
  readonly conflict: ConflictPolicy;
  readonly conflictColumn: string;
  readonly resolvers: Readonly<Record<string, string>>;
  readonly applyBatchSize: number;
  readonly priority: string | undefined;
}
type ParsedPipeline = ParsedConfig['pipelines'][number];
/** Reconcile settings with the write policy resolved (reconcile override, else the pipeline's). */
export type ReconcileConfig = Readonly<Omit<ParsedPipeline['reconcile'], keyof WritePolicyConfig | 'chunkSize' | 'chunkTimeMs'>> &
  WritePolicyConfig & {
    readonly chunkSize: number;
    /** 0: fixed `chunkSize`. */
    readonly chunkTimeMs: number;
  };

/** A table entry with its defaults filled (plain names get one too): what differs on the targets. */
export interface TableOptions {
  /** The table on the source (the name jobs, reports and conflicts use). */
  readonly name: string;
  readonly targetName: string;
  readonly targetSchema: string | undefined;
  readonly where: string | undefined;
  readonly targetWhere: string | undefined;
  readonly excludeColumns: readonly string[];
}
export type CdcConfig = Readonly<Omit<NonNullable<ParsedPipeline['cdc']>, 'mode' | 'serverId'>> & {
  /** The mode of the source (side A). */
  readonly mode: CdcMode;
  readonly serverId: number;
  /** Bidirectional pipelines: side B's mode (its own log, or polling like A) and binlog server id. */
  readonly modeB: CdcMode;
  readonly serverIdB: number;
};
export type PipelineConfig = Readonly<Omit<ParsedPipeline, 'reconcile' | 'cdc' | 'tables' | keyof WritePolicyConfig>> & {
  /** Source table names of the `tables` entries, in their order; undefined: every table with a primary key. */
  readonly tables: readonly string[] | undefined;
  /** The object entries of `tables`, by source table name (tables named by a plain string have none). */
  readonly tableOptions: Readonly<Record<string, TableOptions>>;
  /** The pipeline-level write policy (CDC and bidirectional sync use it as is). */
  readonly write: WritePolicyConfig;
  readonly reconcile: ReconcileConfig;
  readonly cdc: CdcConfig | undefined;
};
export type WorkersConfig = Readonly<ParsedConfig['workers']>;

export interface Config {
  /** Absolute path of the file the config came from (resolver modules are relative to it). */
  readonly file: string | undefined;
  readonly redis: Readonly<ParsedConfig['redis']>;
  readonly connections: Readonly<Record<string, ConnectionConfig>>;
  readonly pipelines: readonly PipelineConfig[];
  readonly workers: WorkersConfig;
  readonly board: Readonly<ParsedConfig['board']>;
  /** `port` undefined: `DEFAULT_METRICS_PORT`, and a taken port is not fatal (see `metricsSchema`). */
  readonly metrics: Readonly<ParsedConfig['metrics']>;
}
