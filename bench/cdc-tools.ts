/**
 * What the CDC benchmark drives: the two directions (namespaces, pipelines, rowsync config), the
 * `rowsync cdc --workers N` CLI as a child process (optionally with the RSS probe preloaded), the
 * decoder alone (the pipeline's ChangeSource with a handler that only counts keys), and the waits
 * (reader streaming, checkpoint reached, both sides equal).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RedisClient } from '../src/coordination/redis-client.js';
import type { Runtime } from '../jobs/runtime.js';
import type { ChangeSource, ChangeTransaction } from '../src/dialect/change-source.js';
import type { Database } from '../src/dialect/dialect.js';
import { buildTablePair, type TablePair } from '../src/dialect/table-pair.js';
import { changeSourceOf, readCdcStatus } from '../workers/cdc-readers.js';
import { mysqlUrlFor, postgresUrlFor, ROOT, type BenchServers } from './bench-env.js';
import { processCpuMs } from './cpu.js';
import type { Engine } from './cdc-workload.js';

export type DirectionName = 'mariadb->postgres' | 'postgres->mariadb';

export interface Direction {
  readonly name: DirectionName;
  readonly label: string;
  readonly mode: 'binlog' | 'logical';
  readonly pipeline: string;
  readonly sourceEngine: Engine;
  readonly targetEngine: Engine;
  /** MariaDB database or PostgreSQL schema. */
  readonly sourceNamespace: string;
  readonly targetNamespace: string;
}

export const DIRECTIONS: Record<DirectionName, Direction> = {
  'mariadb->postgres': {
    name: 'mariadb->postgres', label: 'MariaDB->PostgreSQL', mode: 'binlog', pipeline: 'cdcbench_my2pg',
    sourceEngine: 'mysql', targetEngine: 'postgres', sourceNamespace: 'rowsync_cdcbench_src', targetNamespace: 'cdcbench_dst',
  },
  'postgres->mariadb': {
    name: 'postgres->mariadb', label: 'PostgreSQL->MariaDB', mode: 'logical', pipeline: 'cdcbench_pg2my',
    sourceEngine: 'postgres', targetEngine: 'mysql', sourceNamespace: 'cdcbench_src', targetNamespace: 'rowsync_cdcbench_dst',
  },
};

export const TABLES = ['items', 'probe'] as const;

export function namespaceUrl(servers: BenchServers, engine: Engine, namespace: string): string {
  return engine === 'mysql' ? mysqlUrlFor(servers.mysqlUrl, namespace) : postgresUrlFor(servers.postgresUrl, namespace);
}

/** The knobs the bench sets (printed with the results). */
export interface CdcSettings {
  /** `rowsync cdc --workers N`: CDC batch jobs at once in the CLI process. */
  readonly workers: number;
  readonly batchSize: number;
  readonly batchWindowMs: number;
  readonly maxInFlightBatches: number;
  readonly applyBatchSize: number;
  readonly poolSize: number;
  readonly heartbeatMs: number;
}

/** rowsync's config for one direction: one pipeline src -> dst, no initial reconcile (the bench writes the checkpoint). */
export function cdcConfig(servers: BenchServers, direction: Direction, settings: CdcSettings, prefix: string, serverId: number): Record<string, unknown> {
  return {
    redis: { url: servers.redisUrl, prefix },
    connections: {
      src: { url: namespaceUrl(servers, direction.sourceEngine, direction.sourceNamespace), poolSize: settings.poolSize },
      dst: { url: namespaceUrl(servers, direction.targetEngine, direction.targetNamespace), poolSize: settings.poolSize },
    },
    pipelines: [
      {
        name: direction.pipeline,
        source: 'src',
        targets: ['dst'],
        tables: [...TABLES],
        applyBatchSize: settings.applyBatchSize,
        cdc: {
          mode: direction.mode,
          batchSize: settings.batchSize,
          batchWindowMs: settings.batchWindowMs,
          maxInFlightBatches: settings.maxInFlightBatches,
          heartbeatMs: settings.heartbeatMs,
          initialReconcile: false,
          ...(direction.mode === 'binlog' ? { serverId } : {}),
        },
      },
    ],
    workers: { concurrency: { cdc: settings.workers } },
  };
}

export function newPrefix(): string {
  return `rowsync-cdcbench-${randomBytes(3).toString('hex')}`;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Set by SIGINT: every wait loop stops with an error, so the finally blocks clean up. */
export const interruption = { interrupted: false };

function checkInterrupted(): void {
  if (interruption.interrupted) throw new Error('interrupted (SIGINT)');
}

// ------------------------------------------------------------------------------------------------
// the CLI child

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ProbeData {
  readonly maxRssKb?: number;
  readonly userCpuMs?: number;
  readonly systemCpuMs?: number;
}

const children = new Set<ChildProcess>();

/** Stops every child this bench started (SIGINT of the bench). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGTERM');
}

export class CdcChild {
  readonly startedAt = performance.now();
  readonly exited: Promise<ChildExit>;
  private readonly process: ChildProcess;
  private lines: string[] = [];
  private partial = '';
  warnings = 0;
  errors = 0;
  /** Largest RSS sampled from /proc while it ran (the probe has the exact peak). */
  sampledMaxRssKb = 0;
  private readonly sampler: NodeJS.Timeout;

  constructor(readonly command: string, args: readonly string[], env: Record<string, string>) {
    this.process = spawn(process.execPath, [...args], {
      cwd: ROOT,
      env: { ...process.env, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_LOG_LEVEL ?? 'warn', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(this.process);
    this.process.stderr!.on('data', (data: Buffer) => this.onStderr(data.toString('utf8')));
    this.exited = new Promise<ChildExit>((resolve) => {
      this.process.on('exit', (code, signal) => {
        children.delete(this.process);
        resolve({ code, signal });
      });
      this.process.on('error', () => {
        children.delete(this.process);
        resolve({ code: -1, signal: null });
      });
    });
    this.sampler = setInterval(() => {
      const rss = this.rssKb();
      if (rss !== undefined && rss > this.sampledMaxRssKb) this.sampledMaxRssKb = rss;
    }, 200);
    void this.exited.then(() => clearInterval(this.sampler));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** CPU the process has used so far (ms), from /proc. */
  cpuMs(): number | undefined {
    return this.pid === undefined ? undefined : processCpuMs(this.pid);
  }

  rssKb(): number | undefined {
    if (this.pid === undefined) return undefined;
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  stderrTail(lines = 15): string {
    return [...this.lines, this.partial].filter(Boolean).slice(-lines).join('\n');
  }

  /** SIGTERM (the CLI stops its readers, writes checkpoints, lets active jobs finish); SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<ChildExit> {
    if (this.running) this.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.running) this.process.kill('SIGKILL');
    }, timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private onStderr(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      if (/"level":"warn"/.test(line)) this.warnings += 1;
      if (/"level":"(error|fatal)"/.test(line)) this.errors += 1;
      this.lines.push(line.length > 600 ? `${line.slice(0, 600)}...` : line);
    }
    if (this.lines.length > 200) this.lines = this.lines.slice(-100);
  }
}

/** `node [--import rss-probe] dist/src/cli/main.js cdc --config F --workers N`. */
export function spawnCdcCli(configFile: string, workers: number, probeFile?: string, profileDir?: string): CdcChild {
  const cli = join(ROOT, 'dist/src/cli/main.js');
  const probe = pathToFileURL(join(ROOT, 'dist/bench/rss-probe.js')).href;
  const args = [
    ...(probeFile ? ['--import', probe] : []),
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    cli, 'cdc', '--config', configFile, '--workers', String(workers),
  ];
  const command = `node ${probeFile ? '--import dist/bench/rss-probe.js ' : ''}${profileDir ? '--cpu-prof ' : ''}dist/src/cli/main.js cdc --config <config.json> --workers ${workers}`;
  return new CdcChild(command, args, probeFile ? { ROWSYNC_BENCH_PROBE: probeFile } : {});
}

export function readProbe(file: string): ProbeData {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ProbeData;
  } catch {
    return {};
  }
}

// ------------------------------------------------------------------------------------------------
// waits

/** Until the pipeline's reader publishes `streaming` (the CLI started, preflight passed, stream open). */
export async function waitStreaming(redis: RedisClient, prefix: string, pipeline: string, child: CdcChild, timeoutMs = 60_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    checkInterrupted();
    const status = (await readCdcStatus(redis, prefix)).find((entry) => entry.pipeline === pipeline);
    if (status?.state === 'streaming') return performance.now();
    if (!child.running) throw new Error(`rowsync cdc exited before streaming:\n${child.stderrTail()}`);
    if (performance.now() > deadline) throw new Error(`rowsync cdc did not start streaming within ${timeoutMs} ms (state ${status?.state ?? 'none'}):\n${child.stderrTail()}`);
    await sleep(20);
  }
}

/** Until the target's durable checkpoint is at or past `position`; returns when it was seen. */
export async function waitCheckpoint(
  target: Database, source: ChangeSource, pipeline: string, position: string, child: CdcChild | undefined, timeoutMs: number,
  onPoll?: () => Promise<void>,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    checkInterrupted();
    const checkpoint = await target.readCheckpoint(pipeline, 'src');
    const at = performance.now();
    if (checkpoint !== undefined && source.comparePositions(checkpoint, position) >= 0) return at;
    await onPoll?.();
    if (child && !child.running) throw new Error(`rowsync cdc exited before the checkpoint reached ${position} (at ${checkpoint}):\n${child.stderrTail()}`);
    if (at > deadline) throw new Error(`the checkpoint did not reach ${position} within ${timeoutMs} ms (at ${checkpoint ?? 'none'})`);
    await sleep(25);
  }
}

/** Whole-table checksums of both sides (rowsync's own canonical checksum, `checksumRange(shape, {})`). */
export class TableCompare {
  private pairs: TablePair[] | undefined;

  constructor(readonly source: Database, readonly target: Database) {}

  async pairsOf(): Promise<TablePair[]> {
    this.pairs ??= await Promise.all(
      TABLES.map(async (table) => {
        const [a, b] = await Promise.all([this.source.describeTable(table), this.target.describeTable(table)]);
        return buildTablePair(this.source, a, this.target, b);
      }),
    );
    return this.pairs;
  }

  /** Per table: equal or not, with counts. */
  async compare(): Promise<{ equal: boolean; tables: { table: string; equal: boolean; sourceCount: number; targetCount: number }[] }> {
    const tables = [];
    for (const pair of await this.pairsOf()) {
      const [a, b] = await Promise.all([this.source.checksumRange(pair.source, {}), this.target.checksumRange(pair.target, {})]);
      tables.push({ table: pair.source.table, equal: a.count === b.count && a.sum === b.sum, sourceCount: a.count, targetCount: b.count });
    }
    return { equal: tables.every((table) => table.equal), tables };
  }

  /** Until both sides are equal; returns when, or throws after `timeoutMs` with the last comparison. */
  async waitEqual(timeoutMs: number, intervalMs = 500, child?: CdcChild): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      checkInterrupted();
      const result = await this.compare();
      if (result.equal) return performance.now();
      if (child && !child.running) throw new Error(`rowsync cdc exited before the target equalled the source:\n${child.stderrTail()}`);
      if (performance.now() > deadline) throw new Error(`target not equal to the source after ${timeoutMs} ms: ${JSON.stringify(result.tables)}`);
      await sleep(intervalMs);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// the decoder alone

export interface DecoderResult {
  /** start() called -> the marker transaction delivered. */
  readonly ms: number;
  /** start() returned (connected, streaming) after this long. */
  readonly startMs: number;
  readonly keys: number;
  readonly transactions: number;
  /** Position right after the marker transaction: where the end-to-end run is complete. */
  readonly endPosition: string;
  readonly cpuMs: number;
}

/**
 * The pipeline's change source, started from `from`, with a handler that only counts the keys of
 * `items`, until the first transaction that changes `probe` (the marker written after the backlog).
 */
export async function decodeAlone(runtime: Runtime, pipeline: string, from: string, timeoutMs: number): Promise<DecoderResult> {
  const source = await changeSourceOf(runtime, runtime.pipeline(pipeline));
  let keys = 0;
  let transactions = 0;
  let marker: { position: string; at: number } | undefined;
  let reached!: () => void;
  const done = new Promise<void>((resolve) => {
    reached = resolve;
  });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const stream = await source.start(from, {
    async onTransaction(transaction: ChangeTransaction) {
      transactions += 1;
      for (const change of transaction.changes) {
        if (change.kind !== 'keys') continue;
        if (change.table === 'items') keys += change.keys.length;
        else if (change.table === 'probe' && !marker) {
          marker = { position: transaction.position, at: performance.now() };
          reached();
        }
      }
    },
    async onIdle() {},
  });
  const startMs = performance.now() - started;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      done,
      stream.done.then(() => {
        throw new Error('the change stream ended before the marker');
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`decoder: no marker within ${timeoutMs} ms (${keys} keys so far)`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await stream.stop();
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { ms: marker!.at - started, startMs, keys, transactions, endPosition: marker!.position, cpuMs: (cpu.user + cpu.system) / 1000 };
}
