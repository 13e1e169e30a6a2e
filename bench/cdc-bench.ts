/**
 * `npm run bench:cdc`: rowsync's change-data-capture, MariaDB -> PostgreSQL (binlog) and PostgreSQL
 * -> MariaDB (logical replication), each figure beside a baseline measured in the same run:
 *
 * 1. Catch-up throughput: a backlog of row changes (multi-row transactions of 1-100 inserts, updates
 *    and deletes on distinct keys) written while no reader runs, from a checkpoint the bench wrote
 *    at the source's position after seeding both sides equal; then `rowsync cdc --workers N` (the
 *    CLI, a child process) until the target's durable checkpoint reaches the marker transaction
 *    written after the backlog (then both sides are checked equal with rowsync's whole-table
 *    checksum). Baseline: the same ChangeSource alone from the same checkpoint, counting keys with a
 *    handler that does nothing, until the marker.
 * 2. Lag under steady load: ~1,000 row changes/s (100 transactions/s of 10 rows) for --lag-seconds
 *    while the CLI runs; a probe row on the source gets a new sequence number every 50 ms (its commit
 *    acknowledgement time recorded by the writer) and a poller on the target records when each
 *    number appears: source commit -> visible at the target, p50 / p99.
 * 3. Peak RSS of the CLI process (reader + workers) catching up a --rss-changes backlog, measured
 *    by the process itself (bench/rss-probe.ts), stopped with SIGTERM once the target equals the source.
 *
 * Options: --changes N (200000), --seed-rows N (100000), --workers N (1: CDC jobs at once in the CLI),
 * --batch-size N (cdc.batchSize, 1000), --apply-batch-size N (1000), --pool-size N (4),
 * --max-in-flight N (cdc.maxInFlightBatches, 16), --batch-window-ms N (100),
 * --only mariadb|postgres (the source engine), --skip-rss, --rss-changes N (1000000),
 * --lag-seconds N (30), --skip-lag, --wait-quiet S (45: before each timed phase, wait up to S
 * seconds for the machine to be idle), --keep (leave the bench databases), --strict (exit 1 on a FAIL),
 * --profile (V8 CPU profile of the end-to-end CLI process, summarised; slows that run a little).
 * Results: stdout, and bench/results/cdc-latest.json.
 *
 * Tuning (measured here, 2 cores): --workers 1 is the fastest. Concurrent CDC jobs hold all-or-none key
 * leases over their whole part (1000 keys); on random updates two concurrent parts nearly always share
 * a key, so one of them polls for its leases (backoff up to 50 ms) and 2 or 4 workers end up slower
 * than 1. applyBatchSize = batchSize (one target transaction per job) beats the default 500.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../jobs/runtime.js';
import { parseConfig } from '../src/config/index.js';
import { createDatabase } from '../src/dialect/create-database.js';
import type { Database } from '../src/dialect/dialect.js';
import { createLogger } from '../src/logging/logger.js';
import { changeSourceOf } from '../workers/cdc-readers.js';
import { benchServers, mysqlRows, openMysql, openPostgres, pgRows, ROOT, type BenchServers } from './bench-env.js';
import {
  cdcConfig, DIRECTIONS, decodeAlone, interruption, killChildren, namespaceUrl, newPrefix, readProbe, sleep, spawnCdcCli, TableCompare,
  waitCheckpoint, waitStreaming, type CdcChild, type CdcSettings, type DecoderResult, type Direction, type DirectionName,
} from './cdc-tools.js';
import { ITEMS_DDL, openSession, pgSessionSettings, PROBE_DDL, seedItems, Workload, writeBacklog, type Engine, type Session } from './cdc-workload.js';
import { summarizeProfile, type ProfileSummary } from './cdc-profile.js';
import { cpuPhase, cpuSnapshot, cpuText, waitForQuiet, type CpuPhase, type CpuSnapshot } from './cpu.js';
import { dropRedisPrefix } from './tools.js';

const TARGETS = { endToEndPerSecond: 10_000, decoderRatio: 0.5, lagP99Ms: 1000, peakRssMb: 300 } as const;

interface Options {
  changes: number;
  seedRows: number;
  settings: CdcSettings;
  only: 'mariadb' | 'postgres' | undefined;
  skipRss: boolean;
  rssChanges: number;
  lagSeconds: number;
  skipLag: boolean;
  waitQuietSeconds: number;
  keep: boolean;
  strict: boolean;
  seed: number;
  profile: boolean;
  pgAsyncCommit: boolean;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseOptions(argv: readonly string[]): Options {
  const settings = { workers: 1, batchSize: 1000, batchWindowMs: 100, maxInFlightBatches: 16, applyBatchSize: 1000, poolSize: 4, heartbeatMs: 10_000 };
  const options: Options = {
    changes: 200_000, seedRows: 100_000, settings, only: undefined, skipRss: false, rssChanges: 1_000_000, lagSeconds: 30, skipLag: false,
    waitQuietSeconds: 45, keep: false, strict: false, seed: 1, profile: false, pgAsyncCommit: false,
  };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const number = (min = 1) => {
      const value = Number(argv[(index += 1)]);
      if (!Number.isInteger(value) || value < min) throw new UsageError(`${arg}: expected a whole number >= ${min}`);
      return value;
    };
    switch (arg) {
      case '--changes': options.changes = number(); break;
      case '--seed-rows': options.seedRows = number(1000); break;
      case '--workers': settings.workers = number(); break;
      case '--batch-size': settings.batchSize = number(); break;
      case '--apply-batch-size': settings.applyBatchSize = number(); break;
      case '--pool-size': settings.poolSize = number(); break;
      case '--max-in-flight': settings.maxInFlightBatches = number(); break;
      case '--batch-window-ms': settings.batchWindowMs = number(0); break;
      case '--skip-rss': options.skipRss = true; break;
      case '--rss-changes': options.rssChanges = number(); break;
      case '--lag-seconds': options.lagSeconds = number(); break;
      case '--skip-lag': options.skipLag = true; break;
      case '--wait-quiet': options.waitQuietSeconds = number(0); break;
      case '--keep': options.keep = true; break;
      case '--strict': options.strict = true; break;
      case '--seed': options.seed = number(); break;
      case '--profile': options.profile = true; break;
      case '--pg-async-commit': options.pgAsyncCommit = true; break;
      case '--only': {
        const value = argv[(index += 1)];
        if (value !== 'mariadb' && value !== 'postgres') throw new UsageError('--only: expected mariadb or postgres (the source engine)');
        options.only = value;
        break;
      }
      default:
        throw new UsageError(`unknown option ${arg} (see the header of bench/cdc-bench.ts)`);
    }
  }
  return options;
}

const log = (message: string) => process.stderr.write(`[bench:cdc ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
const thousands = (n: number) => Math.round(n).toLocaleString('en-US');
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const perSecond = (count: number, ms: number) => (count * 1000) / ms;

// ------------------------------------------------------------------------------------------------
// results

interface ThroughputResult {
  backlog: { changes: number; transactions: number; writeMs: number };
  decoder: DecoderResult & { perSecond: number; loadBefore: number; cpu: CpuPhase };
  endToEnd: {
    loadBefore: number;
    /** Spawn -> the target checkpoint at the marker's position. */
    wallMs: number;
    /** Spawn -> the reader published `streaming` (Node start, config, preflight, stream open). */
    startupMs: number;
    /** Spawn -> the marker row visible at the target (a lower bound of the end). */
    markerSeenMs: number | undefined;
    perSecond: number;
    perSecondStreaming: number;
    equalAfter: boolean;
    /** Extra time until both sides were equal, when they were not at the checkpoint (a bug). */
    equalLateMs?: number;
    rowsyncCpuMs: number | undefined;
    cpu: CpuPhase;
    exit: { code: number | null; signal: string | null };
    warnings: number;
    errors: number;
    stderrTail: string;
    /** --profile: the CLI's V8 CPU profile (the run is then slower by the profiler's overhead). */
    profile?: ProfileSummary;
  };
}

interface LagResult {
  loadBefore: number;
  durationMs: number;
  changes: number;
  transactions: number;
  changesPerSecond: number;
  probes: number;
  probesSeen: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  pollIntervalMeanMs: number;
  pollIntervalMaxMs: number;
  /** Commit acknowledgement time of the probe's UPDATE (ms), median: the source side of the measurement. */
  probeCommitMedianMs: number;
  equalAfter: boolean;
  rowsyncCpuMs: number | undefined;
  cpu: CpuPhase;
  warnings: number;
  errors: number;
  /** The slowest probes: seconds into the run, lag. */
  worst: { atS: number; lagMs: number }[];
  /** Every probe: [seconds into the run, lag ms]. */
  samples: [number, number][];
  /** Spawn -> a probe written after the reader streamed was visible at the target (before the load starts). */
  caughtUpMs: number;
  /** Binlog / WAL the source server wrote per second during the run (all sessions: the reader reads it all). */
  logBytesPerSecond: number;
}

interface RssResult {
  loadBefore: number;
  backlog: { changes: number; transactions: number; writeMs: number };
  wallMs: number;
  perSecond: number;
  maxRssKb: number | undefined;
  sampledMaxRssKb: number;
  rowsyncCpuMs: number | undefined;
  cpu: CpuPhase;
  exit: { code: number | null; signal: string | null };
  warnings: number;
  errors: number;
  stderrTail: string;
}

interface DirectionResult {
  direction: DirectionName;
  label: string;
  mode: string;
  seedMs: number;
  throughput?: ThroughputResult;
  lag?: LagResult;
  rss?: RssResult;
  error?: string;
}

// ------------------------------------------------------------------------------------------------
// one direction

class DirectionBench {
  private readonly prefix = newPrefix();
  private readonly dir = mkdtempSync(join(tmpdir(), 'rowsync-cdcbench-'));
  private readonly configFile = join(this.dir, 'rowsync.json');
  private readonly runtime: Runtime;
  private readonly sourceDb: Database;
  private readonly targetDb: Database;
  private readonly compare: TableCompare;
  private readonly workload: Workload;
  private probeSeq = 0;
  private children: CdcChild[] = [];
  private readonly sessions = new Set<Session>();

  constructor(
    private readonly direction: Direction,
    private readonly servers: BenchServers,
    private readonly options: Options,
  ) {
    // Binlog readers need a server id unique on the MariaDB server: the bench's own, per run.
    const serverId = 3_000_000_000 + randomBytes(3).readUIntBE(0, 3);
    const config = cdcConfig(servers, direction, options.settings, this.prefix, serverId);
    writeFileSync(this.configFile, JSON.stringify(config, null, 2));
    this.runtime = new Runtime(parseConfig(config), createLogger({ level: process.env.ROWSYNC_BENCH_LOG_LEVEL ?? 'warn' }));
    this.sourceDb = createDatabase({ connectionName: 'bench-src', url: namespaceUrl(servers, direction.sourceEngine, direction.sourceNamespace), poolSize: 2 });
    this.targetDb = createDatabase({ connectionName: 'bench-dst', url: namespaceUrl(servers, direction.targetEngine, direction.targetNamespace), poolSize: 2 });
    this.compare = new TableCompare(this.sourceDb, this.targetDb);
    this.workload = new Workload(options.seedRows, options.seed);
  }

  private say(message: string): void {
    log(`${this.direction.label}: ${message}`);
  }

  private quiet(): Promise<number> {
    return waitForQuiet(this.options.waitQuietSeconds * 1000, 0.25, (message) => this.say(message));
  }

  async run(): Promise<DirectionResult> {
    const result: DirectionResult = { direction: this.direction.name, label: this.direction.label, mode: this.direction.mode, seedMs: 0 };
    try {
      result.seedMs = await this.prepare();
      result.throughput = await this.throughput();
      if (!this.options.skipLag) result.lag = await this.lag();
      if (!this.options.skipRss) result.rss = await this.rss();
    } catch (error) {
      result.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.say(`FAILED: ${result.error}`);
    } finally {
      await this.cleanup();
    }
    return result;
  }

  /** Fresh namespaces, tables seeded equal, the source set up, the checkpoint at the source's position. */
  private async prepare(): Promise<number> {
    const started = performance.now();
    const { direction } = this;
    // A slot or publication left by an interrupted run.
    await this.teardownSource();
    await recreateNamespace(this.servers, direction.sourceEngine, direction.sourceNamespace);
    await recreateNamespace(this.servers, direction.targetEngine, direction.targetNamespace);
    const source = await openSession(direction.sourceEngine, direction.sourceEngine === 'mysql' ? this.servers.mysqlUrl : this.servers.postgresUrl, direction.sourceNamespace);
    const target = await openSession(direction.targetEngine, direction.targetEngine === 'mysql' ? this.servers.mysqlUrl : this.servers.postgresUrl, direction.targetNamespace);
    try {
      for (const session of [source, target]) {
        await session.run(ITEMS_DDL[session.engine]);
        await session.run(PROBE_DDL[session.engine]);
      }
      this.say(`seeding ${thousands(this.options.seedRows)} rows on both sides`);
      await Promise.all([seedItems(source, this.options.seedRows), seedItems(target, this.options.seedRows)]);
    } finally {
      await Promise.all([source.close(), target.close()]);
    }
    const check = await this.compare.compare();
    if (!check.equal) throw new Error(`seeded sides differ: ${JSON.stringify(check.tables)}`);
    const changeSource = await changeSourceOf(this.runtime, this.runtime.pipeline(direction.pipeline));
    await changeSource.setup();
    const position = await changeSource.currentPosition();
    await this.targetDb.writeCheckpoint(direction.pipeline, 'src', position);
    const ms = performance.now() - started;
    this.say(`seeded and checked equal, ${direction.mode} source set up, checkpoint ${position} (${seconds(ms)})`);
    return ms;
  }

  private openSource(): Promise<Session> {
    return this.open(this.direction.sourceEngine, this.direction.sourceNamespace);
  }

  private openTarget(): Promise<Session> {
    return this.open(this.direction.targetEngine, this.direction.targetNamespace);
  }

  /** A session that `cleanup` closes if a phase fails before closing it. */
  private async open(engine: Engine, namespace: string): Promise<Session> {
    const session = await openSession(engine, engine === 'mysql' ? this.servers.mysqlUrl : this.servers.postgresUrl, namespace);
    this.sessions.add(session);
    return {
      ...session,
      close: async () => {
        this.sessions.delete(session);
        await session.close();
      },
    };
  }

  /** Writes a backlog of `changes` row changes then a marker transaction (the probe row); returns its seq. */
  private async backlog(changes: number): Promise<{ changes: number; transactions: number; writeMs: number; marker: number }> {
    const session = await this.openSource();
    try {
      this.say(`writing a backlog of ${thousands(changes)} row changes (no reader running)`);
      const written = await writeBacklog(session, this.workload, changes, (done) => this.say(`  ${thousands(done)} written`));
      const marker = (this.probeSeq += 1);
      await session.run(`UPDATE probe SET seq = ${marker} WHERE id = 1`);
      this.say(`backlog written: ${thousands(written.changes)} changes in ${thousands(written.transactions)} transactions, ` +
        `${seconds(written.ms)} (${thousands(perSecond(written.changes, written.ms))}/s)`);
      return { changes: written.changes, transactions: written.transactions, writeMs: written.ms, marker };
    } finally {
      await session.close();
    }
  }

  private async throughput(): Promise<ThroughputResult> {
    const { direction, options } = this;
    const backlog = await this.backlog(options.changes);
    const from = await this.targetDb.readCheckpoint(direction.pipeline, 'src');
    if (!from) throw new Error('no checkpoint');
    const timeoutMs = 60_000 + options.changes; // 1,000 changes/s at worst, plus a minute

    // Baseline: the decoder alone, from the same checkpoint.
    const decoderLoad = await this.quiet();
    this.say(`decoder alone from ${from}`);
    const decoderBefore = cpuSnapshot(this.servers.pids);
    const decoded = await decodeAlone(this.runtime, direction.pipeline, from, timeoutMs);
    const decoderCpu = cpuPhase(decoderBefore, cpuSnapshot(this.servers.pids));
    const decoder = { ...decoded, perSecond: perSecond(decoded.keys, decoded.ms), loadBefore: decoderLoad, cpu: decoderCpu };
    this.say(`decoder alone: ${thousands(decoded.keys)} keys in ${thousands(decoded.transactions)} transactions, ${seconds(decoded.ms)} ` +
      `(${thousands(decoder.perSecond)}/s), end position ${decoded.endPosition}`);
    if (decoded.keys !== backlog.changes) {
      this.say(`WARNING: the decoder delivered ${decoded.keys} keys for ${backlog.changes} row changes written on distinct keys`);
    }

    // End to end: the CLI, reader + N workers in one process.
    const changeSource = await changeSourceOf(this.runtime, this.runtime.pipeline(direction.pipeline));
    const loadBefore = await this.quiet();
    this.say(`rowsync cdc --workers ${options.settings.workers} (CLI child process) from ${from}`);
    const before = cpuSnapshot(this.servers.pids);
    const profileDir = options.profile ? join(this.dir, 'profile') : undefined;
    const child = this.spawn(undefined, profileDir);
    const streamingAt = waitStreaming(this.runtime.redis, this.prefix, direction.pipeline, child).catch(() => undefined);
    let markerSeenAt: number | undefined;
    const target = await this.openTarget();
    let doneAt: number;
    let rowsyncCpuMs: number | undefined;
    let after: CpuSnapshot;
    try {
      doneAt = await waitCheckpoint(this.targetDb, changeSource, direction.pipeline, decoded.endPosition, child, timeoutMs, async () => {
        if (markerSeenAt === undefined && Number(await target.scalar('SELECT seq FROM probe WHERE id = 1')) >= backlog.marker) markerSeenAt = performance.now();
      });
      rowsyncCpuMs = child.cpuMs();
      after = cpuSnapshot(this.servers.pids);
    } finally {
      await target.close();
    }
    const cpu = cpuPhase(before, after, rowsyncCpuMs);
    const wallMs = doneAt - child.startedAt;
    const streaming = await streamingAt;
    const startupMs = streaming === undefined ? Number.NaN : streaming - child.startedAt;
    this.say(`target checkpoint reached the marker after ${seconds(wallMs)} (${thousands(perSecond(backlog.changes, wallMs))} changes/s); checking equality`);
    const equal = await this.compare.compare();
    let equalLateMs: number | undefined;
    if (!equal.equal) {
      this.say(`BUG? target not equal to the source at the checkpoint: ${JSON.stringify(equal.tables)}; waiting`);
      const at = await this.compare.waitEqual(60_000, 500, child).catch(() => undefined);
      equalLateMs = at === undefined ? Number.POSITIVE_INFINITY : at - doneAt;
    }
    const exit = await this.stopChild(child);
    const profile = profileDir ? summarizeProfile(profileDir) : undefined;
    return {
      backlog: { changes: backlog.changes, transactions: backlog.transactions, writeMs: backlog.writeMs },
      decoder,
      endToEnd: {
        loadBefore,
        wallMs,
        startupMs,
        markerSeenMs: markerSeenAt === undefined ? undefined : markerSeenAt - child.startedAt,
        perSecond: perSecond(backlog.changes, wallMs),
        perSecondStreaming: perSecond(backlog.changes, wallMs - startupMs),
        equalAfter: equal.equal,
        ...(equalLateMs !== undefined ? { equalLateMs } : {}),
        rowsyncCpuMs,
        cpu,
        exit,
        warnings: child.warnings,
        errors: child.errors,
        stderrTail: child.stderrTail(),
        ...(profile ? { profile } : {}),
      },
    };
  }

  private async lag(): Promise<LagResult> {
    const { direction, options } = this;
    const loadBefore = await this.quiet();
    const child = this.spawn();
    const spawnedAt = child.startedAt;
    await waitStreaming(this.runtime.redis, this.prefix, direction.pipeline, child);
    const load = await this.openSource();
    const probe = await this.openSource();
    const poller = await this.openTarget();
    // Steady state first: the stream starts at the checkpoint and must read through whatever the
    // source logged since (other sessions' writes too: a walsender decodes all WAL of the cluster).
    const warmup = (this.probeSeq += 1);
    await probe.run(`UPDATE probe SET seq = ${warmup} WHERE id = 1`);
    const warmupDeadline = performance.now() + 180_000;
    while (Number(await poller.scalar('SELECT seq FROM probe WHERE id = 1')) < warmup) {
      if (!child.running || performance.now() > warmupDeadline) throw new Error(`the reader did not catch up before the lag run:\n${child.stderrTail()}`);
      await sleep(10);
    }
    const caughtUpMs = performance.now() - spawnedAt;
    this.say(`reader caught up ${seconds(caughtUpMs)} after spawn`);
    const logBefore = await this.sourceLogBytes();
    this.say(`steady load for ${options.lagSeconds} s: 100 transactions/s of 10 row changes, probe every 50 ms`);
    const before = cpuSnapshot(this.servers.pids);
    const cpuBefore = child.cpuMs();
    const committed = new Map<number, number>();
    const commitMs: number[] = [];
    const seen = new Map<number, number>();
    const intervals: number[] = [];
    let stopWriting = false;
    let stopPolling = false;
    let lastProbe = this.probeSeq;
    const firstProbe = this.probeSeq + 1;
    const started = performance.now();
    const endAt = started + options.lagSeconds * 1000;
    let changes = 0;
    let transactions = 0;

    const loadLoop = (async () => {
      for (let index = 0; !stopWriting; index += 1) {
        const due = started + index * 10;
        const now = performance.now();
        if (due > now) await sleep(due - now);
        if (performance.now() >= endAt) break;
        await load.run(this.workload.transaction(10));
        changes += 10;
        transactions += 1;
      }
    })();
    const probeLoop = (async () => {
      for (let index = 0; ; index += 1) {
        const due = started + 25 + index * 50;
        const now = performance.now();
        if (due > now) await sleep(due - now);
        if (performance.now() >= endAt || stopWriting) break;
        const seq = (this.probeSeq += 1);
        const sent = performance.now();
        await probe.run(`UPDATE probe SET seq = ${seq} WHERE id = 1`);
        const acked = performance.now();
        committed.set(seq, acked);
        commitMs.push(acked - sent);
        lastProbe = seq;
      }
    })();
    const pollLoop = (async () => {
      let previous = performance.now();
      let highest = firstProbe - 1;
      while (!stopPolling) {
        const value = Number(await poller.scalar('SELECT seq FROM probe WHERE id = 1'));
        const at = performance.now();
        intervals.push(at - previous);
        previous = at;
        for (let seq = highest + 1; seq <= value; seq += 1) if (seq >= firstProbe) seen.set(seq, at);
        if (value > highest) highest = value;
        await sleep(2);
      }
    })();
    try {
      await Promise.all([loadLoop, probeLoop]);
    } finally {
      stopWriting = true;
    }
    const durationMs = performance.now() - started;
    const logBytes = (await this.sourceLogBytes()) - logBefore;
    this.say(`load done: ${thousands(changes)} changes in ${seconds(durationMs)}; waiting for the last probe at the target`);
    const deadline = performance.now() + 60_000;
    while (!seen.has(lastProbe) && performance.now() < deadline && child.running) await sleep(20);
    stopPolling = true;
    await pollLoop;
    const rowsyncCpuMs = cpuBefore === undefined ? undefined : (child.cpuMs() ?? cpuBefore) - cpuBefore;
    const cpu = cpuPhase(before, cpuSnapshot(this.servers.pids), rowsyncCpuMs);
    await Promise.all([load.close(), probe.close(), poller.close()]);
    const equalAfter = await this.compare.waitEqual(30_000, 500, child).then(() => true, (error: unknown) => {
      this.say(`after the lag run: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    });
    await this.stopChild(child);

    const lags: number[] = [];
    const samples: [number, number][] = [];
    for (const [seq, at] of committed) {
      const visible = seen.get(seq);
      if (visible === undefined) continue;
      lags.push(visible - at);
      samples.push([Number(((at - started) / 1000).toFixed(3)), Number((visible - at).toFixed(1))]);
    }
    const worst = [...samples].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([atS, lagMs]) => ({ atS, lagMs }));
    lags.sort((a, b) => a - b);
    const quantile = (q: number) => (lags.length === 0 ? Number.NaN : lags[Math.min(lags.length - 1, Math.ceil(q * lags.length) - 1)]!);
    const pollIntervals = intervals.slice(1);
    const result: LagResult = {
      loadBefore,
      durationMs,
      changes,
      transactions,
      changesPerSecond: perSecond(changes, durationMs),
      probes: committed.size,
      probesSeen: lags.length,
      p50Ms: quantile(0.5),
      p90Ms: quantile(0.9),
      p99Ms: quantile(0.99),
      maxMs: lags[lags.length - 1] ?? Number.NaN,
      meanMs: lags.reduce((sum, value) => sum + value, 0) / Math.max(1, lags.length),
      pollIntervalMeanMs: pollIntervals.reduce((sum, value) => sum + value, 0) / Math.max(1, pollIntervals.length),
      pollIntervalMaxMs: Math.max(0, ...pollIntervals),
      probeCommitMedianMs: [...commitMs].sort((a, b) => a - b)[Math.floor(commitMs.length / 2)] ?? Number.NaN,
      equalAfter,
      rowsyncCpuMs,
      cpu,
      warnings: child.warnings,
      errors: child.errors,
      worst,
      samples,
      caughtUpMs,
      logBytesPerSecond: (logBytes * 1000) / durationMs,
    };
    this.say(`lag: p50 ${result.p50Ms.toFixed(0)} ms, p99 ${result.p99Ms.toFixed(0)} ms, max ${result.maxMs.toFixed(0)} ms over ${result.probesSeen} probes; ` +
      `${thousands(result.changesPerSecond)} changes/s written`);
    return result;
  }

  private async rss(): Promise<RssResult> {
    const { direction, options } = this;
    const backlog = await this.backlog(options.rssChanges);
    const probeFile = join(this.dir, 'probe.json');
    const loadBefore = await this.quiet();
    this.say(`peak RSS: rowsync cdc --workers ${options.settings.workers} with the RSS probe, catching up ${thousands(backlog.changes)} changes`);
    const before = cpuSnapshot(this.servers.pids);
    const child = this.spawn(probeFile);
    const target = await this.openTarget();
    const timeoutMs = 120_000 + options.rssChanges;
    const deadline = performance.now() + timeoutMs;
    let lastReport = performance.now();
    try {
      for (;;) {
        if (interruption.interrupted) throw new Error('interrupted (SIGINT)');
        if (!child.running) throw new Error(`rowsync cdc exited during the RSS run:\n${child.stderrTail()}`);
        if (Number(await target.scalar('SELECT seq FROM probe WHERE id = 1')) >= backlog.marker) break;
        if (performance.now() > deadline) throw new Error(`the marker did not reach the target within ${timeoutMs} ms`);
        if (performance.now() - lastReport > 15_000) {
          lastReport = performance.now();
          this.say(`  ${seconds(performance.now() - child.startedAt)}: RSS now ${((child.rssKb() ?? 0) / 1024).toFixed(0)} MB`);
        }
        await sleep(100);
      }
    } finally {
      await target.close();
    }
    const doneAt = await this.compare.waitEqual(120_000, 500, child);
    const rowsyncCpuMs = child.cpuMs();
    const cpu = cpuPhase(before, cpuSnapshot(this.servers.pids), rowsyncCpuMs);
    const wallMs = doneAt - child.startedAt;
    const exit = await this.stopChild(child);
    const probe = readProbe(probeFile);
    this.say(`RSS run: equal after ${seconds(wallMs)} (${thousands(perSecond(backlog.changes, wallMs))} changes/s); peak RSS ` +
      `${probe.maxRssKb === undefined ? 'not measured' : `${(probe.maxRssKb / 1024).toFixed(0)} MB`}`);
    return {
      loadBefore,
      backlog: { changes: backlog.changes, transactions: backlog.transactions, writeMs: backlog.writeMs },
      wallMs,
      perSecond: perSecond(backlog.changes, wallMs),
      maxRssKb: probe.maxRssKb,
      sampledMaxRssKb: child.sampledMaxRssKb,
      rowsyncCpuMs,
      cpu,
      exit,
      warnings: child.warnings,
      errors: child.errors,
      stderrTail: child.stderrTail(),
    };
  }

  /** Bytes the source server has logged so far (PostgreSQL: WAL position; MariaDB: binlog files' sizes). */
  private async sourceLogBytes(): Promise<number> {
    if (this.direction.sourceEngine === 'postgres') {
      const [row] = await this.sourceDb.execute(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS bytes`);
      return Number(row?.bytes);
    }
    const rows = await this.sourceDb.execute('SHOW BINARY LOGS');
    return rows.reduce((sum, row) => sum + Number(row.File_size), 0);
  }

  private spawn(probeFile?: string, profileDir?: string): CdcChild {
    const child = spawnCdcCli(this.configFile, this.options.settings.workers, probeFile, profileDir);
    this.children.push(child);
    return child;
  }

  private async stopChild(child: CdcChild): Promise<{ code: number | null; signal: string | null }> {
    const exit = await child.stop();
    this.children = this.children.filter((candidate) => candidate !== child);
    if (exit.code !== 0) this.say(`rowsync cdc exited with ${String(exit.code)} ${exit.signal ?? ''}:\n${child.stderrTail()}`);
    return exit;
  }

  /** Drops the slot and publication (logical); retried while a stopped reader's walsender still holds the slot. */
  private async teardownSource(): Promise<void> {
    const source = await changeSourceOf(this.runtime, this.runtime.pipeline(this.direction.pipeline));
    for (let attempt = 1; ; attempt += 1) {
      try {
        await source.teardown();
        return;
      } catch (error) {
        if (attempt >= 15) throw error;
        await sleep(1000);
      }
    }
  }

  private async cleanup(): Promise<void> {
    for (const child of this.children) await child.stop(10_000).catch(() => undefined);
    for (const session of this.sessions) await session.close().catch(() => undefined);
    await this.teardownSource().catch((error: unknown) => this.say(`teardown failed: ${error instanceof Error ? error.message : String(error)}`));
    await dropRedisPrefix(this.servers.redisUrl, this.prefix).catch(() => undefined);
    await this.runtime.close().catch(() => undefined);
    await Promise.all([this.sourceDb.close(), this.targetDb.close()]).catch(() => undefined);
    if (!this.options.keep) {
      await dropNamespace(this.servers, this.direction.sourceEngine, this.direction.sourceNamespace).catch(() => undefined);
      await dropNamespace(this.servers, this.direction.targetEngine, this.direction.targetNamespace).catch(() => undefined);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function recreateNamespace(servers: BenchServers, engine: Engine, namespace: string): Promise<void> {
  await dropNamespace(servers, engine, namespace);
  if (engine === 'mysql') {
    const pool = openMysql(servers.mysqlUrl, 1);
    try {
      await mysqlRows(pool, `CREATE DATABASE \`${namespace}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    } finally {
      await pool.end();
    }
  } else {
    const pool = openPostgres(servers.postgresUrl, 1);
    try {
      await pgRows(pool, `CREATE SCHEMA "${namespace}"`);
    } finally {
      await pool.end();
    }
  }
}

async function dropNamespace(servers: BenchServers, engine: Engine, namespace: string): Promise<void> {
  if (engine === 'mysql') {
    const pool = openMysql(servers.mysqlUrl, 1);
    try {
      await mysqlRows(pool, `DROP DATABASE IF EXISTS \`${namespace}\``);
    } finally {
      await pool.end();
    }
  } else {
    const pool = openPostgres(servers.postgresUrl, 1);
    try {
      await pgRows(pool, `DROP SCHEMA IF EXISTS "${namespace}" CASCADE`);
    } finally {
      await pool.end();
    }
  }
}

// ------------------------------------------------------------------------------------------------
// verdicts and report

interface Verdict {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass: boolean;
}

function judge(results: readonly DirectionResult[]): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const r of results) {
    if (r.error && !r.throughput) {
      verdicts.push({ what: `${r.label}: benchmark`, measured: 'failed (see the error above)', target: 'runs', pass: false });
      continue;
    }
    const t = r.throughput;
    if (t) {
      const e = t.endToEnd;
      const ok = e.equalAfter || (e.equalLateMs !== undefined && Number.isFinite(e.equalLateMs));
      verdicts.push({
        what: `${r.label}: catch-up end to end (spawn -> target checkpoint at the end)`,
        measured: `${thousands(e.perSecond)} changes/s (${thousands(t.backlog.changes)} in ${seconds(e.wallMs)})`,
        target: `>= ${thousands(TARGETS.endToEndPerSecond)}/s`,
        pass: ok && e.perSecond >= TARGETS.endToEndPerSecond,
      });
      const ratio = e.perSecond / t.decoder.perSecond;
      verdicts.push({
        what: `${r.label}: end to end / decoder alone`,
        measured: `${ratio.toFixed(2)} (${thousands(e.perSecond)} / ${thousands(t.decoder.perSecond)} changes/s)`,
        target: `>= ${TARGETS.decoderRatio}`,
        pass: ok && ratio >= TARGETS.decoderRatio,
      });
      verdicts.push({ what: `${r.label}: target equal to the source at the checkpoint`, measured: e.equalAfter ? 'yes' : `no${e.equalLateMs !== undefined ? ` (equal ${seconds(e.equalLateMs)} later)` : ''}`, target: 'yes', pass: e.equalAfter });
    }
    if (r.lag) {
      verdicts.push({
        what: `${r.label}: lag p99 under ${thousands(r.lag.changesPerSecond)} changes/s`,
        measured: `${r.lag.p99Ms.toFixed(0)} ms (p50 ${r.lag.p50Ms.toFixed(0)} ms, ${r.lag.probesSeen}/${r.lag.probes} probes)`,
        target: `< ${TARGETS.lagP99Ms} ms`,
        pass: r.lag.equalAfter && r.lag.probesSeen === r.lag.probes && r.lag.p99Ms < TARGETS.lagP99Ms,
      });
    }
    if (r.rss) {
      const mb = r.rss.maxRssKb === undefined ? undefined : r.rss.maxRssKb / 1024;
      verdicts.push({
        what: `${r.label}: peak RSS, ${thousands(r.rss.backlog.changes)}-change backlog`,
        measured: mb === undefined ? 'not measured' : `${mb.toFixed(0)} MB`,
        target: `< ${TARGETS.peakRssMb} MB`,
        pass: mb !== undefined && mb < TARGETS.peakRssMb,
      });
    }
    if (r.error) verdicts.push({ what: `${r.label}: benchmark`, measured: 'failed part-way (see the error above)', target: 'runs', pass: false });
  }
  return verdicts;
}

function print(options: Options, results: readonly DirectionResult[], verdicts: readonly Verdict[], env: Record<string, string>, totalMs: number): void {
  const out: string[] = [];
  const line = (text = '') => out.push(text);
  const s = options.settings;
  line();
  line(`rowsync CDC benchmark: seed ${thousands(options.seedRows)} rows equal on both sides; backlog ${thousands(options.changes)} row changes ` +
    `(transactions of 1-100 rows on distinct keys: ~40% inserts, 45% updates, 15% deletes)`);
  line(`machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, MariaDB ${env.mariadb}, PostgreSQL ${env.postgres}`);
  line(`servers: PostgreSQL synchronous_commit=${env.pgSynchronousCommit} (the bench's own PostgreSQL sessions: ` +
    `${options.pgAsyncCommit ? 'the same, --pg-async-commit' : 'on; with off, logical decoding sees a commit only when the WAL writer flushes it, up to 3 x wal_writer_delay later'}), ` +
    `MariaDB innodb_flush_log_at_trx_commit=${env.mariadbFlushAtCommit}`);
  line(`rowsync: rowsync cdc --workers ${s.workers} (CLI child process: reader + in-process CDC workers); cdc.batchSize ${s.batchSize}, ` +
    `batchWindowMs ${s.batchWindowMs}, maxInFlightBatches ${s.maxInFlightBatches}, heartbeatMs ${s.heartbeatMs}; applyBatchSize ${s.applyBatchSize}; poolSize ${s.poolSize}`);
  line();
  const row = (label: string, values: readonly string[]) => line(`  ${label.padEnd(50)}${values.map((value) => value.padStart(30)).join('')}`);
  row('', results.map((r) => `${r.label} (${r.mode})`));
  const t = (f: (x: ThroughputResult) => string) => results.map((r) => (r.throughput ? f(r.throughput) : '-'));
  line('1. catch-up throughput');
  row('backlog: changes / transactions', t((x) => `${thousands(x.backlog.changes)} / ${thousands(x.backlog.transactions)}`));
  row('  written in (source, no reader)', t((x) => `${seconds(x.backlog.writeMs)} (${thousands(perSecond(x.backlog.changes, x.backlog.writeMs))}/s)`));
  row('decoder alone: keys, time', t((x) => `${thousands(x.decoder.keys)} in ${seconds(x.decoder.ms)}`));
  row('  changes/s (baseline)', t((x) => thousands(x.decoder.perSecond)));
  row('  of which stream start', t((x) => seconds(x.decoder.startMs)));
  row('end to end (CLI spawn -> checkpoint at end)', t((x) => seconds(x.endToEnd.wallMs)));
  row('  changes/s', t((x) => thousands(x.endToEnd.perSecond)));
  row('  startup (spawn -> reader streaming)', t((x) => seconds(x.endToEnd.startupMs)));
  row('  changes/s from streaming', t((x) => thousands(x.endToEnd.perSecondStreaming)));
  row('  marker row visible at target after', t((x) => seconds(x.endToEnd.markerSeenMs)));
  row('  end to end / decoder alone', t((x) => (x.endToEnd.perSecond / x.decoder.perSecond).toFixed(2)));
  row('  target equal at the checkpoint', t((x) => (x.endToEnd.equalAfter ? 'yes' : `NO${x.endToEnd.equalLateMs !== undefined ? ` (+${seconds(x.endToEnd.equalLateMs)})` : ''}`)));
  row('  rowsync process CPU (cores)', t((x) => (x.endToEnd.rowsyncCpuMs === undefined ? '-' : `${seconds(x.endToEnd.rowsyncCpuMs)} (${(x.endToEnd.rowsyncCpuMs / x.endToEnd.wallMs).toFixed(2)})`)));
  const us = (ms: number | undefined, count: number) => (ms === undefined ? '-' : `${((ms * 1000) / count).toFixed(0)}`);
  row('  CPU per change, us: rowsync/mariadb/postgres/redis', t((x) => {
    const c = x.endToEnd.cpu;
    const n = x.backlog.changes;
    return `${us(c.toolCpuMs, n)} / ${us(c.mariadbCpuMs, n)} / ${us(c.postgresCpuMs, n)} / ${us(c.redisCpuMs, n)}`;
  }));
  const machineCores = cpus().length;
  row(`  ceiling if CPU-bound on ${machineCores} cores (sum of above)`, t((x) => {
    const c = x.endToEnd.cpu;
    const total = (c.toolCpuMs ?? 0) + (c.mariadbCpuMs ?? 0) + (c.postgresCpuMs ?? 0) + (c.redisCpuMs ?? 0);
    return total > 0 ? `${thousands((machineCores * x.backlog.changes * 1000) / total)}/s` : '-';
  }));
  row('  decoder CPU per change, us: bench/mariadb/postgres', t((x) => {
    const c = x.decoder.cpu;
    return `${us(x.decoder.cpuMs, x.decoder.keys)} / ${us(c.mariadbCpuMs, x.decoder.keys)} / ${us(c.postgresCpuMs, x.decoder.keys)}`;
  }));
  row('  CLI warnings / errors logged', t((x) => `${x.endToEnd.warnings} / ${x.endToEnd.errors}`));
  const l = (f: (x: LagResult) => string) => results.map((r) => (r.lag ? f(r.lag) : '-'));
  if (results.some((r) => r.lag)) {
    line(`2. lag under steady load (${options.lagSeconds} s; probe UPDATE every 50 ms; commit time = the writer's COMMIT acknowledgement)`);
    row('written: changes/s (transactions/s)', l((x) => `${thousands(x.changesPerSecond)} (${thousands(perSecond(x.transactions, x.durationMs))})`));
    row('source commit -> visible at target: p50', l((x) => `${x.p50Ms.toFixed(0)} ms`));
    row('  p90 / p99 / max', l((x) => `${x.p90Ms.toFixed(0)} / ${x.p99Ms.toFixed(0)} / ${x.maxMs.toFixed(0)} ms`));
    row('  mean, probes seen / written', l((x) => `${x.meanMs.toFixed(0)} ms, ${x.probesSeen} / ${x.probes}`));
    row('  target poll interval mean / max', l((x) => `${x.pollIntervalMeanMs.toFixed(1)} / ${x.pollIntervalMaxMs.toFixed(0)} ms`));
    row('  probe commit round trip (median)', l((x) => `${x.probeCommitMedianMs.toFixed(1)} ms`));
    row('  (before the load) spawn -> reader caught up', l((x) => seconds(x.caughtUpMs)));
    row('  source log written during the run (all sessions)', l((x) => `${(x.logBytesPerSecond / 1048576).toFixed(2)} MB/s`));
    row('  slowest probes (s into the run: lag ms)', l((x) => x.worst.slice(0, 3).map((w) => `${w.atS.toFixed(1)}:${w.lagMs.toFixed(0)}`).join(' ')));
    row('  target equal afterwards', l((x) => (x.equalAfter ? 'yes' : 'NO')));
    row('  CLI warnings / errors logged', l((x) => `${x.warnings} / ${x.errors}`));
    row('  rowsync process CPU (cores)', l((x) => (x.rowsyncCpuMs === undefined ? '-' : (x.rowsyncCpuMs / x.cpu.wallMs).toFixed(2))));
    line('  (each lag is over-stated by up to one poll interval - half of it on average - plus the poll query; the commit is taken');
    line('   when the writer got the acknowledgement, which under-states by at most the probe round trip)');
  }
  const m = (f: (x: RssResult) => string) => results.map((r) => (r.rss ? f(r.rss) : '-'));
  if (results.some((r) => r.rss)) {
    line('3. peak RSS catching up a large backlog');
    row('backlog: changes / transactions', m((x) => `${thousands(x.backlog.changes)} / ${thousands(x.backlog.transactions)}`));
    row('peak RSS (process maxRSS; /proc samples)', m((x) => `${x.maxRssKb === undefined ? '-' : (x.maxRssKb / 1024).toFixed(0)} MB; ${(x.sampledMaxRssKb / 1024).toFixed(0)} MB`));
    row('  spawn -> equal, changes/s', m((x) => `${seconds(x.wallMs)}, ${thousands(x.perSecond)}/s`));
    row('  rowsync process CPU (cores)', m((x) => (x.rowsyncCpuMs === undefined ? '-' : (x.rowsyncCpuMs / x.wallMs).toFixed(2))));
  }
  line();
  line('CPU (cores busy on average; "other" = processes outside the bench, e.g. a parallel test run):');
  for (const r of results) {
    if (r.throughput) {
      line(`  ${r.label}  load before: decoder ${r.throughput.decoder.loadBefore.toFixed(2)}, end to end ${r.throughput.endToEnd.loadBefore.toFixed(2)}` +
        `${r.lag ? `, lag ${r.lag.loadBefore.toFixed(2)}` : ''}${r.rss ? `, rss ${r.rss.loadBefore.toFixed(2)}` : ''} cores`);
      line(`  ${r.label}  decoder alone: ${cpuText(r.throughput.decoder.cpu, 'decoder (bench process)')}`);
      line(`  ${r.label}  end to end:    ${cpuText(r.throughput.endToEnd.cpu, 'rowsync')}`);
    }
    if (r.lag) line(`  ${r.label}  lag run:       ${cpuText(r.lag.cpu, 'rowsync')}`);
    if (r.rss) line(`  ${r.label}  rss run:       ${cpuText(r.rss.cpu, 'rowsync')}`);
  }
  for (const r of results) {
    const x = r.throughput;
    if (!x) continue;
    const e = x.endToEnd;
    const c = e.cpu;
    const n = x.backlog.changes;
    const perChange = (ms: number | undefined) => ((ms ?? 0) * 1000) / n;
    const total = perChange(c.toolCpuMs) + perChange(c.mariadbCpuMs) + perChange(c.postgresCpuMs) + perChange(c.redisCpuMs);
    const decoderTotal = ((x.decoder.cpuMs + (x.decoder.cpu.mariadbCpuMs ?? 0) + (x.decoder.cpu.postgresCpuMs ?? 0)) * 1000) / x.decoder.keys;
    line();
    line(`where the time goes, ${r.label} end to end (${seconds(e.wallMs)} for ${thousands(n)} changes, ${seconds(e.startupMs)} of it start-up):`);
    line(`  CPU per change ${total.toFixed(0)} us in all (rowsync ${perChange(c.toolCpuMs).toFixed(0)}, mariadb ${perChange(c.mariadbCpuMs).toFixed(0)}, ` +
      `postgres ${perChange(c.postgresCpuMs).toFixed(0)}, redis ${perChange(c.redisCpuMs).toFixed(0)}; the servers' figures include other clients of them): ` +
      `even with every core busy this machine would top out near ${thousands((cpus().length * 1e6) / total)}/s.`);
    line(`  The decoder alone costs ${decoderTotal.toFixed(0)} us per change (parse the log, keep the keys); end to end adds, per batch of keys, a read of ` +
      `the source rows, a read of the target rows, the target write, a key lease and a BullMQ job (Redis).`);
    line(`  The rowsync process used ${(perChange(c.toolCpuMs) * n / e.wallMs / 1000).toFixed(2)} of a core and the machine ${c.machineCores.toFixed(2)} of ${cpus().length}: ` +
      `${c.machineCores < cpus().length - 0.3 ? `not CPU-bound: with --workers ${options.settings.workers} the batches are synced one after another and wait on round trips` : 'CPU-bound'}.`);
  }
  for (const r of results) {
    const p = r.throughput?.endToEnd.profile;
    if (!p) continue;
    line();
    line(`${r.label}: CPU profile of the end-to-end CLI process (--profile; ${seconds(p.wallMs)} profiled, ${seconds(p.busyMs)} busy on the main thread)`);
    line(`  self time by area: ${p.areas.filter((a) => a.area !== 'idle').slice(0, 14).map((a) => `${a.area} ${(a.ms / 1000).toFixed(2)} s`).join(', ')}`);
    line('  top functions (self time):');
    for (const f of p.functions.filter((fn) => fn.area !== 'idle').slice(0, 20)) line(`    ${(f.ms / 1000).toFixed(2).padStart(7)} s  ${f.name}`);
  }
  for (const r of results) {
    if (r.error) {
      line();
      line(`${r.label} failed: ${r.error}`);
    }
  }
  const noisy = results.some((r) => [r.throughput?.decoder.loadBefore, r.throughput?.endToEnd.loadBefore, r.lag?.loadBefore, r.rss?.loadBefore].some((load) => (load ?? 0) > 0.25));
  if (noisy) {
    line();
    line('WARNING: other processes kept the CPU busy before some timed phases: those figures are inflated; rerun on a quiet machine.');
  }
  line();
  line('targets:');
  for (const verdict of verdicts) line(`  ${verdict.pass ? 'PASS' : 'FAIL'}  ${verdict.what}: ${verdict.measured} (target ${verdict.target})`);
  line();
  line(`bench total ${seconds(totalMs)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

// ------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  pgSessionSettings.synchronousCommit = !options.pgAsyncCommit;
  const started = performance.now();
  const servers = benchServers();
  process.once('SIGINT', () => {
    interruption.interrupted = true;
    log('SIGINT: stopping children and cleaning up (Ctrl-C again to abort at once)');
    killChildren();
    process.once('SIGINT', () => process.exit(130));
  });
  const mysql = openMysql(servers.mysqlUrl, 1);
  const postgres = openPostgres(servers.postgresUrl, 1);
  const env = {
    mariadb: String((await mysqlRows(mysql, 'SELECT VERSION()'))[0]?.[0]),
    postgres: String((await pgRows(postgres, 'SHOW server_version'))[0]?.[0]),
    pgSynchronousCommit: String((await pgRows(postgres, 'SHOW synchronous_commit'))[0]?.[0]),
    mariadbFlushAtCommit: String((await mysqlRows(mysql, 'SELECT @@innodb_flush_log_at_trx_commit'))[0]?.[0]),
  };
  await Promise.all([mysql.end(), postgres.end()]);

  const names: DirectionName[] =
    options.only === 'mariadb' ? ['mariadb->postgres'] : options.only === 'postgres' ? ['postgres->mariadb'] : ['mariadb->postgres', 'postgres->mariadb'];
  const results: DirectionResult[] = [];
  for (const name of names) {
    if (interruption.interrupted) break;
    results.push(await new DirectionBench(DIRECTIONS[name], servers, options).run());
  }
  const verdicts = judge(results);
  const totalMs = performance.now() - started;
  print(options, results, verdicts, env, totalMs);
  const file = join(ROOT, 'bench/results/cdc-latest.json');
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, ...env },
        options: { ...options },
        targets: TARGETS,
        verdicts,
        results,
        totalMs,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${file}`);
  return options.strict && verdicts.some((verdict) => !verdict.pass) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const text = error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`[bench:cdc] error: ${text}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
