/**
 * The contenders: rowsync's CLI (enqueue a run, process it with in-process workers, as a user runs
 * it), pt-table-sync, and the floor (one hash scan of both tables inside the databases, in parallel:
 * no checksum tool that reads every row can beat it).
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

export type PairName = 'mariadb->mariadb' | 'mariadb->postgres';

export const PIPELINES: Record<PairName, { pipeline: string; target: string }> = {
  'mariadb->mariadb': { pipeline: 'my2my', target: 'dst_my' },
  'mariadb->postgres': { pipeline: 'my2pg', target: 'dst_pg' },
};

export interface RowsyncSettings {
  readonly chunkSize: number;
  /** `--workers`: chunk jobs processed at once by the CLI's in-process workers. */
  readonly workers: number;
  /** Connections per database per process; undefined: rowsync's default. */
  readonly poolSize?: number;
}

/** rowsync's config for the bench pipelines, under a Redis prefix of its own. */
export function rowsyncConfig(servers: BenchServers, names: BenchNames, settings: RowsyncSettings, prefix: string): Record<string, unknown> {
  const connection = (url: string) => (settings.poolSize ? { url, poolSize: settings.poolSize } : url);
  const reconcile = { chunkSize: settings.chunkSize };
  return {
    redis: { url: servers.redisUrl, prefix },
    connections: {
      src: connection(mysqlUrlFor(servers.mysqlUrl, names.source)),
      dst_my: connection(mysqlUrlFor(servers.mysqlUrl, names.mysqlTarget)),
      dst_pg: connection(postgresUrlFor(servers.postgresUrl, names.pgSchema)),
    },
    pipelines: [
      { name: 'my2my', source: 'src', targets: ['dst_my'], tables: [names.table], reconcile },
      { name: 'my2pg', source: 'src', targets: ['dst_pg'], tables: [names.table], reconcile },
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
      timed(() => mysqlRows(mysql, mysqlFloorSql(`\`${names.source}\`.items`))),
      pair === 'mariadb->mariadb'
        ? timed(() => mysqlRows(mysql, mysqlFloorSql(`\`${names.mysqlTarget}\`.items`)))
        : timed(() => pgRows(postgres, pgFloorSql(`"${names.pgSchema}".items`))),
    ]),
  );
  return { wallMs: cpu.wallMs, sourceMs: value[0].ms, targetMs: value[1].ms, cpu };
}

/**
 * rowsync's own canonical checksum of the whole table on both sides at once (one `checksumRange`
 * without bounds per side): the floor with rowsync's SQL rendering of every column instead of
 * CONCAT_WS. Also the equality check of a reset target: equal checksums or an error.
 */
export async function canonicalScan(
  pair: PairName, servers: BenchServers, names: BenchNames,
): Promise<{ wallMs: number; equal: boolean; source: { count: number; sum: string }; target: { count: number; sum: string }; cpu: CpuPhase }> {
  const source = createDatabase({ connectionName: 'src', url: mysqlUrlFor(servers.mysqlUrl, names.source), poolSize: 1 });
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

export function runRowsyncCli(
  pair: PairName, servers: BenchServers, names: BenchNames, settings: RowsyncSettings,
): Promise<RowsyncCliResult> {
  return runReconcileCli(servers, (prefix) => rowsyncConfig(servers, names, settings, prefix), PIPELINES[pair].pipeline, settings.workers);
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

export function findPtTableSync(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v pt-table-sync'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path ? path : undefined;
}

/** Installs percona-toolkit when running as root with apt-get; otherwise says how. */
export function ensurePtTableSync(log: (message: string) => void): string | undefined {
  const existing = findPtTableSync();
  if (existing) return existing;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasApt = spawnSync('sh', ['-c', 'command -v apt-get'], { encoding: 'utf8' }).status === 0;
  if (!isRoot || !hasApt) {
    log('pt-table-sync not found; install it with:  sudo apt-get install -y percona-toolkit   (skipping the pt-table-sync comparison)');
    return undefined;
  }
  log('pt-table-sync not found: apt-get install -y percona-toolkit');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const installed = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'percona-toolkit'], { stdio: 'inherit', env });
  if (installed.status !== 0) {
    log('apt-get install percona-toolkit failed: skipping the pt-table-sync comparison');
    return undefined;
  }
  return findPtTableSync();
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
  const before = cpuSnapshot(servers.pids);
  let toolCpuMs: number | undefined;
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(binary, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    // perl's CPU time, sampled while it runs (it is gone once it exits): misses at most the last 100 ms.
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
  const cpu = cpuPhase(before, cpuSnapshot(servers.pids), toolCpuMs);
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
