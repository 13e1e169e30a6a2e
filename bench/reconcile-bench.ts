/**
 * `npm run bench`: rowsync's full reconcile of a 1,000,000-row table with 0.2% drift, MariaDB ->
 * MariaDB and MariaDB -> PostgreSQL, against the floor (one hash scan of both tables inside the
 * databases, in parallel) and against pt-table-sync (MariaDB -> MariaDB), all measured in this run on
 * the same data; then the rows each tool left different, rowsync's peak RSS, and a profile of where
 * rowsync's time goes. Results: stdout, and bench/results/latest.json.
 *
 * Options: --rows N (1000000), --chunk-size N (10000), --workers N (4), --pool-size N (rowsync's
 * default), --repeat N (3: floor and rowsync are measured N times, the medians are compared), --seed N, --skip-pt, --no-profile, --only mariadb|postgres, --strict (exit 1 on a FAIL),
 * --wait-quiet S (30: before each timed phase, wait up to S seconds for other processes to leave the
 * CPU idle; on a shared machine their load inflates every time measured), --clean (drop the cached bench
 * databases and exit).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchServers, mysqlRows, openMysql, openPostgres, pgRows, ROOT } from './bench-env.js';
import { DIFF_CAP, diffMysqlPostgres, diffMysqlTables, differenceCount, differingKeys, type Differences } from './compare.js';
import { waitForQuiet, type CpuPhase } from './cpu.js';
import {
  benchNames, CHANGE_KINDS, copyMysqlTarget, driftKeys, driftMysql, driftPostgres, dropBenchData, ensureMysqlSource, ensureMysqlTarget,
  ensurePostgresTarget, planDrift, restoreMysql, restorePostgres, type Drift,
} from './dataset.js';
import { profileRun, type ProfileResult } from './profile.js';
import {
  canonicalScan, ensurePtTableSync, floorScan, ptTableSyncArgs, runPtTableSync, runRowsyncCli, type FloorResult, type PairName,
  type PtTableSyncResult, type RowsyncCliResult, type RowsyncSettings,
} from './tools.js';

const TARGETS = { floorRatio: 1.5, ptSpeedup: 5, rowsLeft: 0, peakRssMb: 300 } as const;

interface Options {
  rows: number;
  chunkSize: number;
  workers: number;
  poolSize: number | undefined;
  seed: number;
  skipPt: boolean;
  profile: boolean;
  only: 'mariadb' | 'postgres' | undefined;
  strict: boolean;
  clean: boolean;
  waitQuietSeconds: number;
  repeat: number;
}

/** A bad command line: printed without a stack trace. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    rows: 1_000_000, chunkSize: 10_000, workers: 4, poolSize: undefined, seed: 1, skipPt: false, profile: true, only: undefined,
    strict: false, clean: false, waitQuietSeconds: 30, repeat: 3,
  };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const number = (name: string, min = 1) => {
      const value = Number(argv[(index += 1)]);
      if (!Number.isInteger(value) || value < min) throw new UsageError(`${name}: expected a whole number >= ${min}`);
      return value;
    };
    switch (arg) {
      case '--rows': options.rows = number(arg); break;
      case '--chunk-size': options.chunkSize = number(arg); break;
      case '--workers': options.workers = number(arg); break;
      case '--pool-size': options.poolSize = number(arg); break;
      case '--seed': options.seed = number(arg); break;
      case '--skip-pt': options.skipPt = true; break;
      case '--no-profile': options.profile = false; break;
      case '--strict': options.strict = true; break;
      case '--clean': options.clean = true; break;
      case '--wait-quiet': options.waitQuietSeconds = number(arg, 0); break;
      case '--repeat': options.repeat = number(arg); break;
      case '--only': {
        const value = argv[(index += 1)];
        if (value !== 'mariadb' && value !== 'postgres') throw new UsageError('--only: expected mariadb or postgres');
        options.only = value;
        break;
      }
      default:
        throw new UsageError(`unknown option ${arg} (see the header of bench/reconcile-bench.ts)`);
    }
  }
  return options;
}

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const mb = (kb: number | undefined) => (kb === undefined ? '-' : `${(kb / 1024).toFixed(0)} MB`);
const thousands = (n: number) => n.toLocaleString('en-US');

/** One timed attempt: drift, floor scan, rowsync run, count of rows left different. */
interface Run {
  /** Cores other processes used just before each timed phase (the bench idle). */
  loadBefore: { floor: number; rowsync: number };
  floor: FloorResult;
  rowsync: RowsyncCliResult;
  left: Differences;
}

interface PairResult {
  pair: PairName;
  canonicalScan: { wallMs: number; cpu: CpuPhase };
  runs: Run[];
  /** The median attempt's floor scan and rowsync run (by wall time). */
  floor: FloorResult;
  rowsync: RowsyncCliResult;
  /** The attempt that left most rows different. */
  rowsyncLeft: Differences;
  /** Largest peak RSS over the attempts. */
  peakRssKb: number;
  ptLoadBefore?: number;
  pt?: PtTableSyncResult;
  ptLeft?: Differences;
  profile?: ProfileResult;
  profileLeft?: Differences;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const servers = benchServers();
  const mysql = openMysql(servers.mysqlUrl, 6);
  const postgres = openPostgres(servers.postgresUrl, 4);
  const names = benchNames(options.rows);
  try {
    if (options.clean) {
      await dropBenchData(mysql, postgres, names);
      log(`dropped ${names.source}, ${names.mysqlTarget} (MariaDB) and schema ${names.pgSchema} (PostgreSQL)`);
      return 0;
    }
    const started = performance.now();
    const drift = planDrift(options.rows, 0.002, options.seed);
    const settings: RowsyncSettings = {
      chunkSize: options.chunkSize, workers: options.workers, ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    };
    const mariadbVersion = String((await mysqlRows(mysql, 'SELECT VERSION()'))[0]?.[0]);
    const postgresVersion = String((await pgRows(postgres, 'SHOW server_version'))[0]?.[0]);
    const bufferPool = Number((await mysqlRows(mysql, 'SELECT @@innodb_buffer_pool_size'))[0]?.[0]);
    const sharedBuffers = String((await pgRows(postgres, 'SHOW shared_buffers'))[0]?.[0]);

    const generated = await ensureMysqlSource(mysql, names, options.rows, log);
    if (generated.generatedMs !== undefined) await copyMysqlTarget(mysql, names, log);
    else await ensureMysqlTarget(mysql, names, options.rows, log);
    await ensurePostgresTarget(postgres, names, options.rows, log);
    const pt = options.skipPt || options.only === 'postgres' ? undefined : ensurePtTableSync(log);

    /** Diff, restore by key (or recopy), then prove equality with rowsync's full canonical checksum. */
    const prepare = async (pair: PairName) => {
      const differences = pair === 'mariadb->mariadb' ? await diffMysqlTables(mysql, names) : await diffMysqlPostgres(mysql, postgres, names, options.rows);
      const count = differenceCount(differences);
      if (count > DIFF_CAP) {
        log(`${pair}: target differs in more than ${thousands(DIFF_CAP)} rows: rebuilding it`);
        if (pair === 'mariadb->mariadb') await copyMysqlTarget(mysql, names, log);
        else {
          await postgres.query(`DROP TABLE IF EXISTS "${names.pgSchema}".items`);
          await ensurePostgresTarget(postgres, names, options.rows, log);
        }
      } else if (count > 0) {
        log(`${pair}: restoring ${thousands(count)} differing rows left by an earlier run`);
        await restore(pair, differingKeys(differences));
      }
      const scan = await canonicalScan(pair, servers, names);
      if (!scan.equal) {
        throw new Error(`${pair}: target not equal to the source after the reset (${JSON.stringify(scan.source)} vs ${JSON.stringify(scan.target)})`);
      }
      log(`${pair}: target equal to the source (rowsync full checksum, ${seconds(scan.wallMs)})`);
      return { wallMs: scan.wallMs, cpu: scan.cpu };
    };
    const restore = (pair: PairName, keys: readonly number[]) =>
      pair === 'mariadb->mariadb' ? restoreMysql(mysql, names, keys) : restorePostgres(postgres, names, options.rows, keys);
    const applyDrift = (pair: PairName) =>
      pair === 'mariadb->mariadb' ? driftMysql(mysql, names.mysqlTarget, drift) : driftPostgres(postgres, names.pgSchema, drift);
    const leftDifferent = (pair: PairName) =>
      pair === 'mariadb->mariadb' ? diffMysqlTables(mysql, names) : diffMysqlPostgres(mysql, postgres, names, options.rows);
    /** After a tool: the target differs from the source exactly at `left`; restoring those and the drift keys makes it equal. */
    const reset = (pair: PairName, left: Differences) => restore(pair, [...driftKeys(drift), ...differingKeys(left)]);

    const pairs: PairName[] = options.only === 'mariadb' ? ['mariadb->mariadb'] : options.only === 'postgres' ? ['mariadb->postgres'] : ['mariadb->mariadb', 'mariadb->postgres'];
    const results: PairResult[] = [];
    for (const pair of pairs) {
      const canonical = await prepare(pair);
      const quiet = () => waitForQuiet(options.waitQuietSeconds * 1000, 0.25, log);
      const runs: Run[] = [];
      for (let attempt = 1; attempt <= options.repeat; attempt += 1) {
        await applyDrift(pair);
        const loadBefore: Run['loadBefore'] = { floor: await quiet(), rowsync: 0 };
        const floor = await floorScan(pair, mysql, postgres, names, servers);
        loadBefore.rowsync = await quiet();
        log(`${pair} [${attempt}/${options.repeat}]: floor ${seconds(floor.wallMs)}; rowsync reconcile (CLI, --workers ${settings.workers}, chunkSize ${settings.chunkSize})`);
        const rowsync = await runRowsyncCli(pair, servers, names, settings);
        if (rowsync.exitCode !== 0) log(`${pair}: rowsync exited with ${String(rowsync.exitCode)}:\n${rowsync.stderrTail}`);
        const left = await leftDifferent(pair);
        log(`${pair} [${attempt}/${options.repeat}]: rowsync ${seconds(rowsync.wallMs)}, peak RSS ${mb(rowsync.maxRssKb)}, rows left different: ${differenceCount(left)}`);
        await reset(pair, left);
        runs.push({ loadBefore, floor, rowsync, left });
      }
      const median = <T>(items: readonly T[], by: (item: T) => number): T => [...items].sort((a, b) => by(a) - by(b))[Math.floor((items.length - 1) / 2)]!;
      const worst = [...runs].sort((a, b) => differenceCount(b.left) - differenceCount(a.left))[0]!;
      const result: PairResult = {
        pair,
        canonicalScan: canonical,
        runs,
        floor: median(runs, (run) => run.floor.wallMs).floor,
        rowsync: median(runs, (run) => run.rowsync.wallMs).rowsync,
        rowsyncLeft: worst.left,
        peakRssKb: Math.max(...runs.map((run) => run.rowsync.maxRssKb ?? Number.NaN)),
      };
      const loadBefore: { pt?: number } = {};

      if (options.profile) {
        await applyDrift(pair);
        log(`${pair}: profiled in-process run`);
        result.profile = await profileRun(pair, servers, names, settings);
        result.profileLeft = await leftDifferent(pair);
        await reset(pair, result.profileLeft);
      }
      if (pair === 'mariadb->mariadb' && pt) {
        await applyDrift(pair);
        const args = ptTableSyncArgs(servers, names);
        loadBefore.pt = await quiet();
        result.ptLoadBefore = loadBefore.pt;
        log(`${pair}: ${pt} ${args.join(' ')}`);
        result.pt = await runPtTableSync(pt, args, servers);
        result.ptLeft = await leftDifferent(pair);
        log(`${pair}: pt-table-sync ${seconds(result.pt.wallMs)} (exit ${String(result.pt.exitCode)}), rows left different: ${differenceCount(result.ptLeft)}`);
        await reset(pair, result.ptLeft);
      }
      results.push(result);
    }

    const verdicts = judge(results);
    print(options, drift, results, verdicts, {
      mariadbVersion, postgresVersion, bufferPoolMb: bufferPool / 1048576, sharedBuffers, totalMs: performance.now() - started,
    });
    const file = join(ROOT, 'bench/results/latest.json');
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, mariadb: mariadbVersion, postgres: postgresVersion,
            innodbBufferPoolMb: bufferPool / 1048576, pgSharedBuffers: sharedBuffers },
          settings: { rows: options.rows, ...settings, seed: options.seed },
          drift: { changed: drift.changed.length, deleted: drift.deleted.length, extra: drift.extra.length, kinds: CHANGE_KINDS },
          targets: TARGETS,
          verdicts,
          results: results.map((result) => ({
            ...result,
            rowsyncLeft: summarizeDifferences(result.rowsyncLeft),
            runs: result.runs.map((run) => ({ ...run, left: summarizeDifferences(run.left) })),
            ...(result.ptLeft ? { ptLeft: summarizeDifferences(result.ptLeft) } : {}),
            ...(result.profileLeft ? { profileLeft: summarizeDifferences(result.profileLeft) } : {}),
          })),
          totalMs: performance.now() - started,
        },
        null,
        2,
      )}\n`,
    );
    log(`results written to ${file}`);
    return options.strict && verdicts.some((verdict) => !verdict.pass) ? 1 : 0;
  } finally {
    await mysql.end();
    await postgres.end();
  }
}

function summarizeDifferences(differences: Differences) {
  return {
    total: differenceCount(differences),
    changed: differences.changed.length,
    missing: differences.missing.length,
    extra: differences.extra.length,
    sampleKeys: differingKeys(differences).slice(0, 20),
  };
}

interface Verdict {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass: boolean;
}

function judge(results: readonly PairResult[]): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const result of results) {
    const label = result.pair === 'mariadb->mariadb' ? 'MariaDB->MariaDB' : 'MariaDB->PostgreSQL';
    const ok = result.runs.every((run) => run.rowsync.exitCode === 0);
    const ratio = result.rowsync.wallMs / result.floor.wallMs;
    verdicts.push({
      what: `${label}: reconcile time / floor (medians of ${result.runs.length})`,
      measured: `${ratio.toFixed(2)}x (${seconds(result.rowsync.wallMs)} / ${seconds(result.floor.wallMs)})`,
      target: `<= ${TARGETS.floorRatio}x`,
      pass: ok && ratio <= TARGETS.floorRatio,
    });
    if (result.pt) {
      const speedup = result.pt.wallMs / result.rowsync.wallMs;
      verdicts.push({
        what: `${label}: pt-table-sync time / rowsync time`,
        measured: `${speedup.toFixed(1)}x (${seconds(result.pt.wallMs)} / ${seconds(result.rowsync.wallMs)})`,
        target: `>= ${TARGETS.ptSpeedup}x`,
        pass: ok && speedup >= TARGETS.ptSpeedup,
      });
    }
    const left = differenceCount(result.rowsyncLeft);
    verdicts.push({ what: `${label}: rows rowsync left different (worst of ${result.runs.length})`, measured: String(left), target: `= ${TARGETS.rowsLeft}`, pass: ok && left === 0 });
    const rssMb = Number.isFinite(result.peakRssKb) ? result.peakRssKb / 1024 : undefined;
    verdicts.push({
      what: `${label}: rowsync peak RSS (largest of ${result.runs.length})`,
      measured: rssMb === undefined ? 'not measured' : `${rssMb.toFixed(0)} MB`,
      target: `< ${TARGETS.peakRssMb} MB`,
      pass: rssMb !== undefined && rssMb < TARGETS.peakRssMb,
    });
  }
  return verdicts;
}

function cpuText(cpu: CpuPhase): string {
  const parts = [`machine ${cpu.machineCores.toFixed(2)} cores`];
  const share = (name: string, ms: number | undefined) => {
    if (ms !== undefined) parts.push(`${name} ${(ms / cpu.wallMs).toFixed(2)}`);
  };
  share('mariadb', cpu.mariadbCpuMs);
  share('postgres', cpu.postgresCpuMs);
  share('redis', cpu.redisCpuMs);
  share('tool process', cpu.toolCpuMs);
  share('bench process', cpu.selfCpuMs);
  parts.push(`other ${cpu.otherCores.toFixed(2)}${cpu.otherCores > 0.15 ? ' (NOISY: something else used the CPU)' : ''}`);
  return parts.join(', ');
}

function print(
  options: Options, drift: Drift, results: readonly PairResult[], verdicts: readonly Verdict[],
  env: { mariadbVersion: string; postgresVersion: string; bufferPoolMb: number; sharedBuffers: string; totalMs: number },
): void {
  const out: string[] = [];
  const line = (text = '') => out.push(text);
  line();
  line(`rowsync reconcile benchmark: ${thousands(options.rows)} rows, drift ${thousands(drift.changed.length + drift.deleted.length + drift.extra.length)} ` +
    `(${thousands(drift.changed.length)} changed, ${thousands(drift.deleted.length)} deleted, ${thousands(drift.extra.length)} extra on the target), seed ${options.seed}`);
  line(`machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, MariaDB ${env.mariadbVersion} ` +
    `(buffer pool ${env.bufferPoolMb.toFixed(0)} MB), PostgreSQL ${env.postgresVersion} (shared_buffers ${env.sharedBuffers})`);
  line(`rowsync: chunkSize ${options.chunkSize}, --workers ${options.workers}, poolSize ${options.poolSize ?? 'default'}; ` +
    `changes: ${CHANGE_KINDS.join(', ')}`);
  line();
  const columns = results.map((result) => (result.pair === 'mariadb->mariadb' ? 'MariaDB->MariaDB' : 'MariaDB->PostgreSQL'));
  const row = (label: string, values: readonly string[]) => line(`  ${label.padEnd(44)}${values.map((value) => value.padStart(22)).join('')}`);
  row('', columns);
  row('floor: hash scan of both tables in parallel', results.map((r) => seconds(r.floor.wallMs)));
  row('  each attempt', results.map((r) => r.runs.map((run) => (run.floor.wallMs / 1000).toFixed(2)).join(' ')));
  row('  source scan / target scan', results.map((r) => `${(r.floor.sourceMs / 1000).toFixed(2)} / ${(r.floor.targetMs / 1000).toFixed(2)} s`));
  row("rowsync's canonical checksum, whole table", results.map((r) => seconds(r.canonicalScan.wallMs)));
  row('rowsync reconcile (CLI process, wall)', results.map((r) => seconds(r.rowsync.wallMs)));
  row('  each attempt', results.map((r) => r.runs.map((run) => (run.rowsync.wallMs / 1000).toFixed(2)).join(' ')));
  row('  run durationMs (enqueue -> report)', results.map((r) => seconds(r.rowsync.report?.durationMs)));
  row('  ratio to floor', results.map((r) => `${(r.rowsync.wallMs / r.floor.wallMs).toFixed(2)}x`));
  row('  peak RSS (largest) / CPU of the process', results.map((r) => `${mb(r.peakRssKb)} / ${seconds(r.rowsync.nodeCpuMs)}`));
  row('  found changed / missing / extra', results.map((r) => {
    const t = r.rowsync.report?.tables[0];
    return t ? `${t.changed} / ${t.missing} / ${t.extra}` : '-';
  }));
  row('  wrote updated / inserted / deleted', results.map((r) => {
    const t = r.rowsync.report?.tables[0];
    return t ? `${t.updated} / ${t.inserted} / ${t.deleted}` : '-';
  }));
  row('  chunks (differing)', results.map((r) => {
    const t = r.rowsync.report?.tables[0];
    return t ? `${t.chunks} (${t.chunksDiffering})` : '-';
  }));
  row('  rows left different (each attempt)', results.map((r) => r.runs.map((run) => differenceCount(run.left)).join(' ')));
  if (results.some((r) => r.pt)) {
    row('pt-table-sync --execute (wall)', results.map((r) => (r.pt ? seconds(r.pt.wallMs) : 'n/a')));
    row('  exit code / algorithm', results.map((r) => (r.pt ? `${String(r.pt.exitCode)} / ${r.pt.summary?.algorithm ?? '?'}` : 'n/a')));
    row('  deleted / replaced / inserted / updated', results.map((r) => {
      const s = r.pt?.summary;
      return s ? `${s.deleted} / ${s.replaced} / ${s.inserted} / ${s.updated}` : 'n/a';
    }));
    row('  rows left different', results.map((r) => (r.ptLeft ? String(differenceCount(r.ptLeft)) : 'n/a')));
    row('  pt-table-sync time / rowsync time', results.map((r) => (r.pt ? `${(r.pt.wallMs / r.rowsync.wallMs).toFixed(1)}x` : 'n/a')));
  }
  line();
  line('CPU during each phase (cores busy on average; machine includes anything else running):');
  for (const r of results) {
    line(`  ${r.pair}  load of other processes just before (each attempt): floor ${r.runs.map((run) => run.loadBefore.floor.toFixed(2)).join(' ')}, ` +
      `rowsync ${r.runs.map((run) => run.loadBefore.rowsync.toFixed(2)).join(' ')}` +
      `${r.ptLoadBefore === undefined ? '' : `, pt-table-sync ${r.ptLoadBefore.toFixed(2)}`} cores`);
    line(`  ${r.pair}  floor (median):   ${cpuText(r.floor.cpu)}`);
    line(`  ${r.pair}  rowsync (median): ${cpuText(r.rowsync.cpu)}`);
    if (r.pt) line(`  ${r.pair}  pt-table-sync: ${cpuText(r.pt.cpu)}`);
  }
  for (const r of results) {
    if (r.pt) {
      line();
      line(`pt-table-sync command: ${r.pt.command.replace(/,p=[^,]*/g, ',p=***')}`);
      line(`pt-table-sync output:\n${r.pt.output.split('\n').map((text) => `  | ${text}`).join('\n')}`);
    }
  }
  for (const r of results) {
    const p = r.profile;
    if (!p) continue;
    line();
    line(`profile ${r.pair} (in-process run, same settings): ${seconds(p.wallMs)}, outcome ${p.outcome}, rows left different ${r.profileLeft ? differenceCount(r.profileLeft) : '-'}; ` +
      `node CPU ${seconds(p.node.cpuMs)}, event loop utilization ${(p.node.eventLoopUtilization * 100).toFixed(0)}%; ${cpuText(p.cpu)}; ` +
      `jobs: ${p.jobs.chunk} chunk, ${p.jobs.apply} apply (${p.jobs.applyKeys} keys); memory peaks: rss ${p.memory.rss.toFixed(0)} MB, ` +
      `heap used ${p.memory.heapUsed.toFixed(0)} of ${p.memory.heapTotal.toFixed(0)} MB, external ${p.memory.external.toFixed(0)} MB ` +
      `(array buffers ${p.memory.arrayBuffers.toFixed(0)} MB)`);
    line('  query times include waiting for a pooled connection; sum ms overlaps (queries run concurrently)');
    for (const [connection, stats] of Object.entries(p.byConnection)) {
      line(`  ${connection}: ${stats.queries} queries, busy (>= 1 query in flight) ${seconds(stats.busyMs)}`);
      line(`    ${'query kind'.padEnd(24)}${'calls'.padStart(7)}${'rows'.padStart(11)}${'sum ms'.padStart(10)}${'mean ms'.padStart(9)}${'max ms'.padStart(9)}${'from-to s'.padStart(15)}`);
      for (const kind of stats.kinds) {
        line(`    ${kind.kind.padEnd(24)}${String(kind.calls).padStart(7)}${String(kind.rows).padStart(11)}${kind.totalMs.toFixed(0).padStart(10)}` +
          `${kind.meanMs.toFixed(1).padStart(9)}${kind.maxMs.toFixed(0).padStart(9)}${`${(kind.fromMs / 1000).toFixed(1)}-${(kind.toMs / 1000).toFixed(1)}`.padStart(15)}`);
      }
    }
  }
  const busy = results.some((r) => r.runs.some((run) => run.loadBefore.floor > 0.25 || run.loadBefore.rowsync > 0.25) || (r.ptLoadBefore ?? 0) > 0.25);
  if (busy) {
    line();
    line('WARNING: other processes kept the CPU busy before some timed phases (see "load of other processes"):');
    line('         those times are inflated; rerun on a quiet machine (or with a longer --wait-quiet) for clean figures.');
  }
  line();
  line('targets:');
  for (const verdict of verdicts) line(`  ${verdict.pass ? 'PASS' : 'FAIL'}  ${verdict.what}: ${verdict.measured} (target ${verdict.target})`);
  line();
  line(`bench total ${seconds(env.totalMs)}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const text = error instanceof UsageError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`[bench] error: ${text}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
