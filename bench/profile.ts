/**
 * Where a reconcile spends its time: the same run as the CLI's (enqueueRun + startWorkers + watchRun,
 * as test/support/harness.ts does), in this process, with every Database call of the workers timed.
 * The Runtime's `database()` is wrapped, so no rowsync code changes; the wrapper adds a few
 * microseconds per query. Query kinds follow the differ: checksums per bisection level (by the rows
 * a checksum covered), row-hash downloads (leaf or `direct`), key-offset walks (planning and
 * splitting), and sync's reads and writes by key.
 */
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config/index.js';
import type { Database } from '../src/dialect/dialect.js';
import type { RangeChecksum } from '../src/dialect/types.js';
import { createLogger } from '../src/logging/logger.js';
import type { RunReport } from '../src/reconcile/report.js';
import { watchRun } from '../src/cli/run-monitor.js';
import { newRunId } from '../jobs/job-ids.js';
import { enqueueRun } from '../jobs/reconcile-run.job.js';
import { Runtime } from '../jobs/runtime.js';
import { startWorkers } from '../workers/start-workers.js';
import type { BenchServers } from './bench-env.js';
import type { BenchNames } from './dataset.js';
import { measured, type CpuPhase } from './cpu.js';
import { dropRedisPrefix, newPrefix, PIPELINES, rowsyncConfig, type PairName, type RowsyncSettings } from './tools.js';

export interface Call {
  readonly connection: string;
  readonly kind: string;
  readonly start: number;
  readonly end: number;
  readonly rows: number;
}

export interface KindStats {
  readonly kind: string;
  readonly calls: number;
  /** Sum of query durations (queries overlap: this can exceed the wall time). */
  readonly totalMs: number;
  readonly meanMs: number;
  readonly maxMs: number;
  readonly rows: number;
  /** First start and last end, relative to the enqueue. */
  readonly fromMs: number;
  readonly toMs: number;
}

export interface ProfileResult {
  readonly pair: PairName;
  readonly wallMs: number;
  readonly report?: RunReport;
  readonly outcome: string;
  readonly byConnection: Record<string, { busyMs: number; queries: number; kinds: KindStats[] }>;
  /** Node main thread: CPU used and event loop utilization during the run. */
  readonly node: { cpuMs: number; eventLoopUtilization: number };
  readonly cpu: CpuPhase;
  readonly jobs: { chunk: number; apply: number; applyKeys: number };
  /**
   * Peaks of process.memoryUsage() sampled every 50 ms (MB; this process also holds the bench's own
   * few MB): tells a large RSS made of live heap from one made of garbage or driver buffers.
   */
  readonly memory: { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
}

function rowsOf(method: string, result: unknown, args: readonly unknown[]): number {
  if (Array.isArray(result)) {
    // Per-bucket checksums ({ count, sum }[]): the rows they cover, not the number of buckets.
    const counted = result.every((item) => typeof (item as { count?: unknown } | null)?.count === 'number');
    return counted && result.length > 0 ? result.reduce((sum: number, item) => sum + (item as { count: number }).count, 0) : result.length;
  }
  if (method === 'checksumRange') return (result as RangeChecksum).count;
  if (method === 'countRange') return Number(result);
  if (method === 'applyChanges') {
    const changes = args[1] as { upserts: unknown[]; deletes: unknown[] };
    return changes.upserts.length + changes.deletes.length;
  }
  return 0;
}

/** Names a call by what the differ used it for. */
function kindOf(method: string, args: readonly unknown[], rows: number, chunkSize: number): string {
  switch (method) {
    case 'checksumRange': {
      // Bisection level: 0 for a whole chunk, 1 for a 1/16 piece, ... (fanout 16, by rows covered).
      const level = rows <= 0 ? 0 : Math.max(0, Math.round(Math.log(chunkSize / rows) / Math.log(16)));
      return `checksumRange L${level}`;
    }
    case 'rowHashes':
      // diffRange's `direct` asks for directLimit + 1 = 50001 rows; a leaf asks for 2 x its count + 16.
      return args[2] === 50_001 ? 'rowHashes (direct)' : 'rowHashes (leaf)';
    case 'keyAtOffset':
      return args[2] === chunkSize ? 'keyAtOffset (plan)' : 'keyAtOffset (split)';
    default:
      return method;
  }
}

/** How a profile names a call and counts its rows (a query's role differs per bench). */
export type DescribeCall = (method: string, args: readonly unknown[], result: unknown) => { readonly kind: string; readonly rows: number };

/** The reconcile bench's naming: bisection levels of checksums, row hashes, syncs... by rows covered. */
function reconcileCall(chunkSize: number): DescribeCall {
  return (method, args, result) => {
    const rows = rowsOf(method, result, args);
    return { kind: kindOf(method, args, rows, chunkSize), rows };
  };
}

/** `database` with every query timed into `calls` (start and end relative to `origin()`). */
export function instrument(database: Database, calls: Call[], origin: () => number, describe: DescribeCall): Database {
  return new Proxy(database, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      const method = String(property);
      const fn = value as (...args: unknown[]) => unknown;
      if (['canRenderInSql', 'quoteIdentifier', 'close'].includes(method)) return fn.bind(target);
      return async (...args: unknown[]) => {
        const start = performance.now();
        const result = await fn.apply(target, args);
        const { kind, rows } = describe(method, args, result);
        calls.push({ connection: database.connectionName, kind, start: start - origin(), end: performance.now() - origin(), rows });
        return result;
      };
    },
  });
}

/** Time during which at least one query was in flight (union of intervals). */
export function busyTime(calls: readonly Call[]): number {
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  let busy = 0;
  let open = -Infinity;
  let close = -Infinity;
  for (const call of sorted) {
    if (call.start > close) {
      if (close > open) busy += close - open;
      open = call.start;
      close = call.end;
    } else close = Math.max(close, call.end);
  }
  if (close > open) busy += close - open;
  return busy;
}

function summarize(calls: readonly Call[]): KindStats[] {
  const byKind = new Map<string, Call[]>();
  for (const call of calls) byKind.set(call.kind, [...(byKind.get(call.kind) ?? []), call]);
  return [...byKind.entries()]
    .map(([kind, list]) => {
      const durations = list.map((call) => call.end - call.start);
      const totalMs = durations.reduce((sum, ms) => sum + ms, 0);
      return {
        kind,
        calls: list.length,
        totalMs,
        meanMs: totalMs / list.length,
        maxMs: Math.max(...durations),
        rows: list.reduce((sum, call) => sum + call.rows, 0),
        fromMs: Math.min(...list.map((call) => call.start)),
        toMs: Math.max(...list.map((call) => call.end)),
      };
    })
    .sort((a, b) => b.totalMs - a.totalMs);
}

export async function profileRun(pair: PairName, servers: BenchServers, names: BenchNames, settings: RowsyncSettings): Promise<ProfileResult> {
  const prefix = newPrefix();
  const config = parseConfig(rowsyncConfig(servers, names, settings, prefix));
  const runtime = new Runtime(config, createLogger({ level: process.env.ROWSYNC_LOG_LEVEL ?? 'warn' }));
  const calls: Call[] = [];
  let started = performance.now();
  const wrapped = new Map<string, Database>();
  const database = runtime.database.bind(runtime);
  runtime.database = (name: string): Database => {
    let instrumented = wrapped.get(name);
    if (!instrumented) {
      instrumented = instrument(database(name), calls, () => started, reconcileCall(settings.chunkSize));
      wrapped.set(name, instrumented);
    }
    return instrumented;
  };
  const workers = await startWorkers(runtime, { chunk: settings.workers });
  try {
    const runId = newRunId(PIPELINES[pair].pipeline);
    const memory = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
    const sampler = setInterval(() => {
      const usage = process.memoryUsage();
      for (const key of Object.keys(memory) as (keyof typeof memory)[]) memory[key] = Math.max(memory[key], usage[key] / 1048576);
    }, 50);
    const cpuBefore = process.cpuUsage();
    const eluBefore = performance.eventLoopUtilization();
    const { value: outcome, cpu } = await measured(servers.pids, async () => {
      started = performance.now();
      await enqueueRun(runtime, { runId, pipeline: PIPELINES[pair].pipeline, dryRun: false, requestedAt: Date.now() });
      return watchRun(runtime, runId, { intervalMs: 50 });
    });
    clearInterval(sampler);
    const cpuUsed = process.cpuUsage(cpuBefore);
    const elu = performance.eventLoopUtilization(eluBefore);
    const connections = [...new Set(calls.map((call) => call.connection))].sort();
    const byConnection: ProfileResult['byConnection'] = {};
    for (const connection of connections) {
      const own = calls.filter((call) => call.connection === connection);
      byConnection[connection] = { busyMs: busyTime(own), queries: own.length, kinds: summarize(own) };
    }
    const chunkJobs = await runtime.queues.chunk.getJobCounts('completed');
    let applyJobs = 0;
    let applyKeys = 0;
    for (const queue of runtime.queues.apply) {
      for (const job of await queue.getJobs(['completed'], 0, -1)) {
        applyJobs += 1;
        applyKeys += (job.data as { keys?: unknown[] }).keys?.length ?? 0;
      }
    }
    return {
      pair,
      wallMs: cpu.wallMs,
      outcome: outcome.kind,
      ...(outcome.kind === 'completed' ? { report: outcome.report } : {}),
      byConnection,
      node: { cpuMs: (cpuUsed.user + cpuUsed.system) / 1000, eventLoopUtilization: elu.utilization },
      cpu,
      jobs: { chunk: chunkJobs.completed ?? 0, apply: applyJobs, applyKeys },
      memory,
    };
  } finally {
    await workers.close();
    await Promise.all(runtime.queues.all().map((queue) => queue.obliterate({ force: true }).catch(() => undefined)));
    await runtime.close();
    await dropRedisPrefix(servers.redisUrl, prefix).catch(() => undefined);
  }
}

