/**
 * The contenders: rowsync's CLI (enqueue a run, process it with in-process workers, as a user runs
 * it), pt-table-sync (MariaDB->MariaDB), pg_comparator (PostgreSQL->PostgreSQL), and the floor (one
 * hash scan of both tables inside the databases, in parallel: no checksum tool that reads every row
 * can beat it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import type pg from 'pg';
import { createDatabase } from '../src/dialect/create-database.js';
import { buildTablePair } from '../src/dialect/table-pair.js';
import type { RunReport } from '../src/reconcile/report.js';
import { mysqlParts, mysqlRows, mysqlUrlFor, pgRows, postgresUrlFor, ROOT, type BenchServers } from './bench-env.js';
import { cpuPhase, cpuSnapshot, measured, processCpuMs, type CpuPhase } from './cpu.js';
import { mysqlFloorSql, pgFloorSql, type BenchNames } from './dataset.js';

export type PairName = 'mariadb->mariadb' | 'mariadb->postgres' | 'postgres->postgres';

export const PIPELINES: Record<PairName, { pipeline: string; target: string }> = {
  'mariadb->mariadb': { pipeline: 'my2my', target: 'dst_my' },
  'mariadb->postgres': { pipeline: 'my2pg', target: 'dst_pg' },
  'postgres->postgres': { pipeline: 'pg2pg', target: 'dst_pg' },
};

export const PAIR_LABELS: Record<PairName, string> = {
  'mariadb->mariadb': 'MariaDB->MariaDB',
  'mariadb->postgres': 'MariaDB->PostgreSQL',
  'postgres->postgres': 'PostgreSQL->PostgreSQL',
};

export interface RowsyncSettings {
  readonly chunkSize: number;
  /** `--workers`: chunk jobs processed at once by the CLI's in-process workers. */
  readonly workers: number;
  /** Connections per database per process; undefined: rowsync's default. */
  readonly poolSize?: number;
}

/**
 * rowsync's config for the bench pipelines, under a Redis prefix of its own; `table`: the table every
 * pipeline reconciles (the bench table, or the empty one for the fixed cost).
 */
export function rowsyncConfig(
  servers: BenchServers, names: BenchNames, settings: RowsyncSettings, prefix: string, table: string = names.table,
): Record<string, unknown> {
  const connection = (url: string) => (settings.poolSize ? { url, poolSize: settings.poolSize } : url);
  const reconcile = { chunkSize: settings.chunkSize };
  return {
    redis: { url: servers.redisUrl, prefix },
    connections: {
      src: connection(mysqlUrlFor(servers.mysqlUrl, names.source)),
      src_pg: connection(postgresUrlFor(servers.postgresUrl, names.pgSourceSchema)),
      dst_my: connection(mysqlUrlFor(servers.mysqlUrl, names.mysqlTarget)),
      dst_pg: connection(postgresUrlFor(servers.postgresUrl, names.pgSchema)),
    },
    pipelines: [
      { name: 'my2my', source: 'src', targets: ['dst_my'], tables: [table], reconcile },
      { name: 'my2pg', source: 'src', targets: ['dst_pg'], tables: [table], reconcile },
      { name: 'pg2pg', source: 'src_pg', targets: ['dst_pg'], tables: [table], reconcile },
    ],
  };
}

export function newPrefix(): string {
  return `rowsync-bench-${randomBytes(3).toString('hex')}`;
}

/** Removes every key under a rowsync Redis prefix (queues, progress counters). */
export async function dropRedisPrefix(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

// ------------------------------------------------------------------------------------------------
// floor

export interface FloorResult {
  readonly wallMs: number;
  readonly sourceMs: number;
  readonly targetMs: number;
  readonly cpu: CpuPhase;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** One hash scan of the source and of the target at the same time, each inside its database. */
export async function floorScan(pair: PairName, mysql: Pool, postgres: pg.Pool, names: BenchNames, servers: BenchServers): Promise<FloorResult> {
  const { value, cpu } = await measured(servers.pids, () =>
    Promise.all([
      pair === 'postgres->postgres'
        ? timed(() => pgRows(postgres, pgFloorSql(`"${names.pgSourceSchema}".items`)))
        : timed(() => mysqlRows(mysql, mysqlFloorSql(`\`${names.source}\`.items`))),
      pair === 'mariadb->mariadb'
        ? timed(() => mysqlRows(mysql, mysqlFloorSql(`\`${names.mysqlTarget}\`.items`)))
        : timed(() => pgRows(postgres, pgFloorSql(`"${names.pgSchema}".items`))),
    ]),
  );
  return { wallMs: cpu.wallMs, sourceMs: value[0].ms, targetMs: value[1].ms, cpu };
}

/**
 * rowsync's own checksum of the whole table on both sides at once (one `checksumRange` without
 * bounds per side, with the pair's shapes as a run builds them): the floor with rowsync's canonical
 * rendering of every column instead of CONCAT_WS, hashed with MD5, or with PostgreSQL's native
 * 64-bit hash on PostgreSQL->PostgreSQL (`TableShape.sameEngineChecksum`). Also the equality check of
 * a reset target: equal checksums or an error.
 */
export async function canonicalScan(
  pair: PairName, servers: BenchServers, names: BenchNames,
): Promise<{ wallMs: number; equal: boolean; source: { count: number; sum: string }; target: { count: number; sum: string }; cpu: CpuPhase }> {
  const source = createDatabase(
    pair === 'postgres->postgres'
      ? { connectionName: 'src_pg', url: postgresUrlFor(servers.postgresUrl, names.pgSourceSchema), poolSize: 1 }
      : { connectionName: 'src', url: mysqlUrlFor(servers.mysqlUrl, names.source), poolSize: 1 },
  );
  const target = createDatabase(
    pair === 'mariadb->mariadb'
      ? { connectionName: 'dst_my', url: mysqlUrlFor(servers.mysqlUrl, names.mysqlTarget), poolSize: 1 }
      : { connectionName: 'dst_pg', url: postgresUrlFor(servers.postgresUrl, names.pgSchema), poolSize: 1 },
  );
  try {
    const [sourceSchema, targetSchema] = await Promise.all([source.describeTable(names.table), target.describeTable(names.table)]);
    const tablePair = buildTablePair(source, sourceSchema, target, targetSchema);
    const { value, cpu } = await measured(servers.pids, () =>
      Promise.all([source.checksumRange(tablePair.source, {}), target.checksumRange(tablePair.target, {})]),
    );
    const [a, b] = value;
    return { wallMs: cpu.wallMs, equal: a.count === b.count && a.sum === b.sum, source: a, target: b, cpu };
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

// ------------------------------------------------------------------------------------------------
// rowsync CLI

export interface RowsyncCliResult {
  readonly command: string;
  readonly exitCode: number | null;
  /** Spawn to exit: Node start-up, introspection, planning, every chunk and apply job, shutdown. */
  readonly wallMs: number;
  readonly report?: RunReport;
  readonly maxRssKb?: number;
  readonly nodeCpuMs?: number;
  readonly stderrTail: string;
  readonly cpu: CpuPhase;
}

/** rowsync's reconcile of `pair` over `table` (default: the bench table; the empty one measures the fixed cost). */
export function runRowsyncCli(
  pair: PairName, servers: BenchServers, names: BenchNames, settings: RowsyncSettings, table: string = names.table,
): Promise<RowsyncCliResult> {
  return runReconcileCli(servers, (prefix) => rowsyncConfig(servers, names, settings, prefix, table), PIPELINES[pair].pipeline, settings.workers);
}

/**
 * `node --import rss-probe dist/src/cli/main.js reconcile --config F --pipeline P --json --workers N`
 * with the config `config(prefix)` under a fresh Redis prefix (dropped afterwards): wall time, the
 * report, the process's own peak RSS and CPU, and the servers' CPU over the run.
 */
export async function runReconcileCli(
  servers: BenchServers, config: (prefix: string) => unknown, pipeline: string, workers: number,
): Promise<RowsyncCliResult> {
  const prefix = newPrefix();
  const dir = mkdtempSync(join(tmpdir(), 'rowsync-bench-'));
  const configFile = join(dir, 'rowsync.json');
  const probeFile = join(dir, 'probe.json');
  writeFileSync(configFile, JSON.stringify(config(prefix), null, 2));
  const cli = join(ROOT, 'dist/src/cli/main.js');
  const probe = pathToFileURL(join(ROOT, 'dist/bench/rss-probe.js')).href;
  const args = ['reconcile', '--config', configFile, '--pipeline', pipeline, '--json', '--workers', String(workers)];
  try {
    const before = cpuSnapshot(servers.pids);
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', probe, cli, ...args], {
        cwd: ROOT,
        env: { ...process.env, ROWSYNC_BENCH_PROBE: probeFile, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_LOG_LEVEL ?? 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (data: Buffer) => (out += data.toString('utf8')));
      child.stderr.on('data', (data: Buffer) => (err += data.toString('utf8')));
      child.on('error', reject);
      child.on('close', (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
    });
    const after = cpuSnapshot(servers.pids);
    let report: RunReport | undefined;
    try {
      report = JSON.parse(stdout.trim().split('\n').pop() ?? '') as RunReport;
    } catch {
      report = undefined;
    }
    let probeData: { maxRssKb?: number; userCpuMs?: number; systemCpuMs?: number } = {};
    try {
      probeData = JSON.parse(readFileSync(probeFile, 'utf8')) as typeof probeData;
    } catch {
      // The process died before its exit handler ran: no peak RSS to report.
    }
    const nodeCpuMs = probeData.userCpuMs === undefined ? undefined : probeData.userCpuMs + (probeData.systemCpuMs ?? 0);
    const cpu = cpuPhase(before, after, nodeCpuMs);
    return {
      command: `node dist/src/cli/main.js ${args.map((arg) => (arg === configFile ? '<config.json>' : arg)).join(' ')}`,
      exitCode: code,
      wallMs: cpu.wallMs,
      ...(report?.runId ? { report } : {}),
      ...(probeData.maxRssKb !== undefined ? { maxRssKb: probeData.maxRssKb } : {}),
      ...(nodeCpuMs !== undefined ? { nodeCpuMs } : {}),
      stderrTail: stderr.split('\n').slice(-15).join('\n'),
      cpu,
    };
  } finally {
    await dropRedisPrefix(servers.redisUrl, prefix).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------
// pt-table-sync

export interface PtTableSyncResult {
  readonly command: string;
  readonly exitCode: number | null;
  readonly wallMs: number;
  /** The `--verbose` summary line: rows it deleted/replaced/inserted/updated and the algorithm it chose. */
  readonly summary?: { deleted: number; replaced: number; inserted: number; updated: number; algorithm: string; exit: number };
  readonly output: string;
  readonly cpu: CpuPhase;
}

function findCommand(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

/** `command`, installing Debian's `debianPackage` first when it is missing and this runs as root with apt-get; otherwise says how. */
function ensureCommand(command: string, debianPackage: string, log: (message: string) => void): string | undefined {
  const existing = findCommand(command);
  if (existing) return existing;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !findCommand('apt-get')) {
    log(`${command} not found; install it with:  sudo apt-get install -y ${debianPackage}   (skipping the ${command} comparison)`);
    return undefined;
  }
  log(`${command} not found: apt-get install -y --no-install-recommends ${debianPackage}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', debianPackage], { stdio: 'inherit', env });
  if (installed.status !== 0) {
    log(`apt-get install ${debianPackage} failed: skipping the ${command} comparison`);
    return undefined;
  }
  return findCommand(command);
}

export function findPtTableSync(): string | undefined {
  return findCommand('pt-table-sync');
}

/** Installs percona-toolkit when running as root with apt-get; otherwise says how. */
export function ensurePtTableSync(log: (message: string) => void): string | undefined {
  return ensureCommand('pt-table-sync', 'percona-toolkit', log);
}

/**
 * Runs an external tool to its end: exit code, stdout and stderr together, its own CPU (sampled
 * every 100 ms while it runs: it is gone once it exits, so at most the last 100 ms are missed) and
 * the servers' CPU over the run.
 */
async function runTool(
  binary: string, args: readonly string[], servers: BenchServers, env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string; cpu: CpuPhase }> {
  const before = cpuSnapshot(servers.pids);
  let toolCpuMs: number | undefined;
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(binary, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const sampler = setInterval(() => {
      if (child.pid !== undefined) toolCpuMs = processCpuMs(child.pid) ?? toolCpuMs;
    }, 100);
    child.on('close', () => clearInterval(sampler));
    let text = '';
    child.stdout.on('data', (data: Buffer) => (text += data.toString('utf8')));
    child.stderr.on('data', (data: Buffer) => (text += data.toString('utf8')));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, output: text }));
  });
  return { code, output, cpu: cpuPhase(before, cpuSnapshot(servers.pids), toolCpuMs) };
}

/**
 * `pt-table-sync --execute SOURCE_DSN DEST_DSN`: with two DSNs and no --replicate/--sync-to-master it
 * makes the destination table equal to the source, with its defaults: --algorithms Chunk,Nibble,
 * GroupBy,Stream (first usable wins: Chunk on an integer key), --function CRC32 aggregated with
 * BIT_XOR, --chunk-size 1000. --verbose prints the per-table summary parsed here.
 */
export function ptTableSyncArgs(servers: BenchServers, names: BenchNames, extra: readonly string[] = []): string[] {
  const { host, port, user, password } = mysqlParts(servers.mysqlUrl);
  const dsn = (database: string) => `h=${host},P=${port},u=${user},p=${password},D=${database},t=${names.table}`;
  return ['--execute', '--verbose', ...extra, dsn(names.source), dsn(names.mysqlTarget)];
}

export async function runPtTableSync(binary: string, args: readonly string[], servers: BenchServers): Promise<PtTableSyncResult> {
  const { code, output, cpu } = await runTool(binary, args, servers);
  // "#      0       0      0      0 Chunk     08:47:25 08:47:25 2    db.items"
  const line = /^#\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s*$/m.exec(output);
  return {
    command: `pt-table-sync ${args.join(' ')}`,
    exitCode: code,
    wallMs: cpu.wallMs,
    ...(line
      ? {
          summary: {
            deleted: Number(line[1]), replaced: Number(line[2]), inserted: Number(line[3]), updated: Number(line[4]),
            algorithm: line[5]!, exit: Number(line[6]),
          },
        }
      : {}),
    output: output.trim(),
    cpu,
  };
}

// ------------------------------------------------------------------------------------------------
// pg_comparator

export interface PgComparatorResult {
  readonly command: string;
  readonly exitCode: number | null;
  readonly wallMs: number;
  /** Its report lines (`UPDATE k`, `INSERT k`, `DELETE k`): what it found and, with --do-it, wrote. */
  readonly reported: { readonly update: number; readonly insert: number; readonly delete: number };
  /** Output other than the report lines (warnings, errors). */
  readonly messages: string;
  readonly cpu: CpuPhase;
}

/**
 * pg_comparator (Debian's `postgresql-comparator`: the script and its `pgcmp` extension, built for the
 * distribution's PostgreSQL), installed when missing and running as root with apt-get, and
 * `CREATE EXTENSION IF NOT EXISTS pgcmp` in the database of both tables (its checksum functions and
 * casts). Undefined, with the reason logged, when either cannot be done.
 */
export async function ensurePgComparator(postgres: pg.Pool, log: (message: string) => void): Promise<string | undefined> {
  const binary = ensureCommand('pg_comparator', 'postgresql-comparator', log);
  if (!binary) return undefined;
  const available = await pgRows(postgres, `SELECT default_version FROM pg_available_extensions WHERE name = 'pgcmp'`);
  if (available.length === 0) {
    const version = String((await pgRows(postgres, 'SHOW server_version'))[0]?.[0]);
    log(`pg_comparator: extension pgcmp is not installed for this PostgreSQL server (${version}; Debian builds it for the distribution's ` +
      'PostgreSQL only): skipping the pg_comparator comparison');
    return undefined;
  }
  try {
    // Source and target schemas live in one database: one CREATE EXTENSION serves both sides.
    await postgres.query('CREATE EXTENSION IF NOT EXISTS pgcmp');
  } catch (error) {
    log(`pg_comparator: CREATE EXTENSION pgcmp failed (${error instanceof Error ? error.message : String(error)}): skipping the pg_comparator comparison`);
    return undefined;
  }
  return binary;
}

/** Its connection URL: `pgsql://user@host:port/base/schema.table` (key: the primary key, columns: all others; the password from the environment). */
function pgComparatorUrl(postgresUrl: string, schema: string, table: string): string {
  const parsed = new URL(postgresUrl);
  const base = parsed.pathname.replace(/^\//, '') || 'postgres';
  return `pgsql://${decodeURIComponent(parsed.username)}@${parsed.hostname || '127.0.0.1'}:${parsed.port || '5432'}/${base}/${schema}.${table}`;
}

/**
 * `pg_comparator --synchronize --do-it SOURCE TARGET`, as its manual's synchronization example, with
 * every other option at its default: checksum `ck` (its C Jenkins hash from pgcmp, 8-byte tuple
 * checksums), sum aggregate, folding factor 7, one wrapping transaction, tables locked while it
 * synchronizes, asynchronous queries on both connections. `--env-pass PGC_PASS` reads the password
 * from the environment instead of the command line.
 */
export function pgComparatorArgs(servers: BenchServers, names: BenchNames): string[] {
  return [
    '--synchronize', '--do-it', '--env-pass=PGC_PASS',
    pgComparatorUrl(servers.postgresUrl, names.pgSourceSchema, names.table),
    pgComparatorUrl(servers.postgresUrl, names.pgSchema, names.table),
  ];
}

export async function runPgComparator(binary: string, args: readonly string[], servers: BenchServers): Promise<PgComparatorResult> {
  const password = decodeURIComponent(new URL(servers.postgresUrl).password);
  const { code, output, cpu } = await runTool(binary, args, servers, { ...process.env, PGC_PASS: password });
  const reported = { update: 0, insert: 0, delete: 0 };
  const messages: string[] = [];
  for (const line of output.split('\n')) {
    const match = /^(UPDATE|INSERT|DELETE) /.exec(line);
    if (match) reported[match[1]!.toLowerCase() as keyof typeof reported] += 1;
    else if (line.trim()) messages.push(line);
  }
  return { command: `pg_comparator ${args.join(' ')}`, exitCode: code, wallMs: cpu.wallMs, reported, messages: messages.join('\n'), cpu };
}
