/**
 * `npm run bench:bidirectional`: a periodic bidirectional run (`mode: bidirectional`, `conflict:
 * timestamp` on updated_at) over the 1,000,000-row `items` table of bench/dataset.ts with 0.1% changes
 * on each side, some of the keys changed on both sides (conflicts), against a one-way reconcile of
 * the same tables with the same changes, in the same run: same CLI, workers, chunk size and servers.
 * Target: the bidirectional run takes at most 1.3x the one-way run.
 *
 * Pairs: MariaDB (side A) <-> PostgreSQL (side B), and MariaDB <-> MariaDB. The tables are this
 * bench's own copies (bench_bidi_a, bench_bidi_pg, bench_bidi_my), cached between runs and restored by
 * key from the reconcile bench's pristine source; the reconcile bench's tables are only read.
 *
 * Per pair: the sync tables of side B are dropped, then the first bidirectional run over the equal
 * tables records the baseline (timed and printed: it is not what the target is about), and the states
 * are saved. Each attempt then applies the same change set on both sides and runs the bidirectional
 * pipeline, and (in alternating order) applies it again on the restored tables and runs the one-way
 * pipeline; after each run: A and B compared row by row (bench/compare.ts), every changed key's final
 * row on both sides checked against the plan (conflicts: the newer updated_at's row), the keys that
 * differ from the pristine rows, the report's counts against what was injected and the conflicts
 * logged. Then the tables and the sync state are restored for the next attempt.
 *
 * Options: --rows N (1000000), --changes N per side (rows / 1000), --conflicts N (changes / 10),
 * --chunk-size N (10000), --workers N (4), --pool-size N (rowsync's default), --repeat N (3: medians
 * of N attempts), --seed N (1), --only mariadb|postgres, --no-profile (skip the in-process profile of
 * one run of each pipeline), --strict (exit 1 on a FAIL), --wait-quiet S (30: before each timed phase,
 * wait up to S seconds for the machine to be idle), --clean (drop this bench's databases and exit).
 * Results: stdout, and bench/results/bidirectional-latest.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchServers, mysqlRows, openMysql, openPostgres, pgRows, ROOT } from './bench-env.js';
import { DIFF_CAP, diffMysqlPostgres, diffMysqlTables, differenceCount, differingKeys, type Differences } from './compare.js';
import { cpuText, waitForQuiet } from './cpu.js';
import {
  benchNames, copyMysqlTarget, ensureMysqlSource, ensureMysqlTarget, ensurePostgresTarget, restoreMysql, restorePostgres,
} from './dataset.js';
import {
  applySideMysql, applySidePostgres, bidiNames, checkContent, conflictLog, dropSyncTables, expectedAfterBidirectional, expectedAfterOneWay,
  PAIR_LABEL, PIPELINE, planChanges, planKeys, profileRun, restoreState, runCli, saveState, stateInfo, view,
  type BidiPair, type BidiProfile, type ChangePlan, type CliRun, type ContentCheck, type Mode,
} from './bidirectional-tools.js';
import type { RowsyncSettings } from './tools.js';

const TARGETS = { ratio: 1.3 } as const;

interface Options {
  rows: number;
  changes: number | undefined;
  conflicts: number | undefined;
  chunkSize: number;
  workers: number;
  poolSize: number | undefined;
  repeat: number;
  seed: number;
  only: 'mariadb' | 'postgres' | undefined;
  profile: boolean;
  strict: boolean;
  clean: boolean;
  waitQuietSeconds: number;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function parseOptions(argv: readonly string[]): Options {
  const options: Options = {
    rows: 1_000_000, changes: undefined, conflicts: undefined, chunkSize: 10_000, workers: 4, poolSize: undefined, repeat: 3, seed: 1,
    only: undefined, profile: true, strict: false, clean: false, waitQuietSeconds: 30,
  };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    const number = (name: string, min = 1) => {
      const value = Number(argv[(index += 1)]);
      if (!Number.isInteger(value) || value < min) throw new UsageError(`${name}: expected a whole number >= ${min}`);
      return value;
    };
    switch (arg) {
      case '--rows': options.rows = number(arg, 1000); break;
      case '--changes': options.changes = number(arg, 10); break;
      case '--conflicts': options.conflicts = number(arg, 0); break;
      case '--chunk-size': options.chunkSize = number(arg); break;
      case '--workers': options.workers = number(arg); break;
      case '--pool-size': options.poolSize = number(arg); break;
      case '--repeat': options.repeat = number(arg); break;
      case '--seed': options.seed = number(arg); break;
      case '--no-profile': options.profile = false; break;
      case '--strict': options.strict = true; break;
      case '--clean': options.clean = true; break;
      case '--wait-quiet': options.waitQuietSeconds = number(arg, 0); break;
      case '--only': {
        const value = argv[(index += 1)];
        if (value !== 'mariadb' && value !== 'postgres') throw new UsageError('--only: expected mariadb or postgres');
        options.only = value;
        break;
      }
      default:
        throw new UsageError(`unknown option ${arg} (see the header of bench/bidirectional-bench.ts)`);
    }
  }
  return options;
}

const log = (message: string) => process.stderr.write(`[bench:bidi] ${message}\n`);
const seconds = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
const mb = (kb: number | undefined) => (kb === undefined ? '-' : `${(kb / 1024).toFixed(0)} MB`);
const thousands = (n: number) => n.toLocaleString('en-US');
const median = <T>(items: readonly T[], by: (item: T) => number): T => [...items].sort((a, b) => by(a) - by(b))[Math.floor((items.length - 1) / 2)]!;

/** What the report and the conflict log must say, from the plan alone. */
interface Expected {
  readonly changed: number;
  readonly onlyA: number;
  readonly onlyB: number;
  readonly bidirectional: {
    changedOnA: number; changedOnB: number; deletedOnA: number; deletedOnB: number; writtenToA: number; writtenToB: number;
    a_won: number; b_won: number;
  };
  readonly oneWay: { inserted: number; updated: number; deleted: number };
}

function expectedCounts(plan: ChangePlan): Expected {
  const u = plan.a.updated.length;
  const i = plan.a.inserted.length;
  const d = plan.a.deleted.length;
  const aWon = plan.conflicts.filter((c) => c.newer === 'a').length;
  const bWon = plan.conflicts.length - aWon;
  return {
    changed: 2 * u + plan.conflicts.length,
    onlyA: i + d, // inserted on A, deleted on B
    onlyB: i + d,
    bidirectional: {
      changedOnA: u + i, changedOnB: u + i, deletedOnA: d, deletedOnB: d, writtenToA: u + i + d + bWon, writtenToB: u + i + d + aWon,
      a_won: aWon, b_won: bWon,
    },
    oneWay: { inserted: i + d, updated: 2 * u + plan.conflicts.length, deleted: i + d },
  };
}

/** The checks after one run. */
interface Check {
  /** Rows different between A and B (compare.ts, row by row). */
  readonly leftDifferent: number;
  /** Keys whose difference from the pristine rows is not the plan's (a change lost, or one that came from nowhere). */
  readonly unexpectedKeys: number;
  readonly content: ContentCheck;
  /** Report counts that differ from what was injected: "field measured (expected)". */
  readonly reportMismatches: string[];
  /** Conflicts logged in side B by this run, by "kind outcome" (bidirectional only). */
  readonly conflictsLogged?: Record<string, number>;
  readonly conflictLogMismatch?: string;
}

interface Attempt {
  readonly mode: Mode;
  readonly attempt: number;
  /** Cores other processes used just before the run. */
  readonly loadBefore: number;
  readonly run: CliRun;
  readonly check: Check;
  /** Untimed: sync state rows the restore removed / added back (bidirectional only). */
  readonly stateRestore?: { removed: number; added: number };
}

interface PairResult {
  readonly pair: BidiPair;
  readonly first: { run: CliRun; loadBefore: number; states: number; baseline: boolean; leftDifferent: number };
  readonly attempts: Attempt[];
  readonly bidirectional: CliRun;
  readonly oneWay: CliRun;
  readonly ratio: number;
  readonly pairedRatios: number[];
  readonly peakRssKb: { bidirectional: number; oneWay: number; first: number };
  readonly profiles?: { bidirectional: BidiProfile; oneWay: BidiProfile; leftDifferent: { bidirectional: number; oneWay: number } };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const servers = benchServers();
  const mysql = openMysql(servers.mysqlUrl, 6);
  const postgres = openPostgres(servers.postgresUrl, 4);
  const base = benchNames(options.rows);
  const names = bidiNames(options.rows, base.source);
  try {
    if (options.clean) {
      await mysql.query(`DROP DATABASE IF EXISTS \`${names.a}\``);
      await mysql.query(`DROP DATABASE IF EXISTS \`${names.bMy}\``);
      await postgres.query(`DROP SCHEMA IF EXISTS "${names.bPg}" CASCADE`);
      log(`dropped ${names.a}, ${names.bMy} (MariaDB) and schema ${names.bPg} (PostgreSQL)`);
      return 0;
    }
    const started = performance.now();
    const perSide = options.changes ?? Math.max(10, Math.round(options.rows / 1000));
    const conflicts = options.conflicts ?? Math.round(perSide / 10);
    const plan = planChanges(options.rows, perSide, conflicts, options.seed);
    const expected = expectedCounts(plan);
    const differing = new Set(planKeys(plan)).size;
    const settings: RowsyncSettings = {
      chunkSize: options.chunkSize, workers: options.workers, ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    };
    const mariadbVersion = String((await mysqlRows(mysql, 'SELECT VERSION()'))[0]?.[0]);
    const postgresVersion = String((await pgRows(postgres, 'SHOW server_version'))[0]?.[0]);
    const bufferPool = Number((await mysqlRows(mysql, 'SELECT @@innodb_buffer_pool_size'))[0]?.[0]);
    const sharedBuffers = String((await pgRows(postgres, 'SHOW shared_buffers'))[0]?.[0]);

    // The pristine rows (the reconcile bench's cached source, only read here) and side A's copy.
    await ensureMysqlSource(mysql, base, options.rows, log);
    const aView = view(base.source, { mysql: names.a });
    await ensureMysqlTarget(mysql, aView, options.rows, log);
    const quiet = () => waitForQuiet(options.waitQuietSeconds * 1000, 0.25, log);

    const pairs: BidiPair[] =
      options.only === 'mariadb' ? ['mariadb->mariadb'] : options.only === 'postgres' ? ['mariadb->postgres'] : ['mariadb->postgres', 'mariadb->mariadb'];
    const results: PairResult[] = [];
    for (const pair of pairs) {
      const label = PAIR_LABEL[pair];
      const bView = pair === 'mariadb->postgres' ? view(base.source, { pg: names.bPg }) : view(base.source, { mysql: names.bMy });
      if (pair === 'mariadb->postgres') await ensurePostgresTarget(postgres, bView, options.rows, log);
      else await ensureMysqlTarget(mysql, bView, options.rows, log);

      const diffA = () => diffMysqlTables(mysql, aView);
      const diffB = () => (pair === 'mariadb->postgres' ? diffMysqlPostgres(mysql, postgres, bView, options.rows) : diffMysqlTables(mysql, bView));
      const diffAB = () =>
        pair === 'mariadb->postgres'
          ? diffMysqlPostgres(mysql, postgres, view(names.a, { pg: names.bPg }), options.rows)
          : diffMysqlTables(mysql, view(names.a, { mysql: names.bMy }));
      const restoreA = (keys: readonly number[]) => restoreMysql(mysql, aView, keys);
      const restoreB = (keys: readonly number[]) =>
        pair === 'mariadb->postgres' ? restorePostgres(postgres, bView, options.rows, keys) : restoreMysql(mysql, bView, keys);
      const apply = () =>
        Promise.all([
          applySideMysql(mysql, names.a, 'a', plan),
          pair === 'mariadb->postgres' ? applySidePostgres(postgres, names.bPg, 'b', plan) : applySideMysql(mysql, names.bMy, 'b', plan),
        ]);

      // 1. Both sides equal to the pristine rows (restored by key, or rebuilt).
      for (const [side, diff, restore] of [['A', diffA, restoreA], ['B', diffB, restoreB]] as const) {
        const found = await diff();
        const count = differenceCount(found);
        if (count > DIFF_CAP) {
          log(`${label}: side ${side} differs from the pristine rows in more than ${thousands(DIFF_CAP)} rows: rebuilding it`);
          if (side === 'A') await copyMysqlTarget(mysql, aView, log);
          else if (pair === 'mariadb->postgres') {
            await postgres.query(`DROP TABLE IF EXISTS "${names.bPg}".items`);
            await ensurePostgresTarget(postgres, bView, options.rows, log);
          } else await copyMysqlTarget(mysql, bView, log);
        } else if (count > 0) {
          log(`${label}: side ${side}: restoring ${thousands(count)} rows left by an earlier run`);
          await restore(differingKeys(found));
        }
      }
      const startDiff = differenceCount(await diffAB());
      if (startDiff !== 0) throw new Error(`${label}: A and B differ in ${startDiff} rows after the reset`);
      log(`${label}: A and B equal to the pristine rows and to each other`);

      // 2. The first bidirectional run over equal tables: records the baseline.
      await dropSyncTables(pair, mysql, postgres, names);
      const bidiPipeline = PIPELINE[pair].bidirectional;
      const oneWayPipeline = PIPELINE[pair]['one-way'];
      const firstLoad = await quiet();
      log(`${label}: first bidirectional run (records the baseline): ${bidiPipeline}`);
      const firstRun = await runCli(servers, names, settings, bidiPipeline);
      if (firstRun.exitCode !== 0) throw new Error(`${label}: first run exited with ${String(firstRun.exitCode)}:\n${firstRun.stderrTail}`);
      const firstState = await stateInfo(pair, mysql, postgres, names, bidiPipeline);
      const firstLeft = differenceCount(await diffAB());
      log(`${label}: first run ${seconds(firstRun.wallMs)}, ${thousands(firstState.states)} states, baseline ${firstState.baseline ? 'marked' : 'NOT MARKED'}, rows different ${firstLeft}`);
      if (!firstState.baseline || firstState.states !== options.rows) {
        log(`${label}: WARNING: expected ${thousands(options.rows)} states and a baseline mark`);
      }
      await saveState(pair, mysql, postgres, names, bidiPipeline);
      log(`${label}: sync state saved (${thousands(firstState.states)} rows); statistics updated`);

      // 3. The attempts.
      const verify = async (mode: Mode, run: CliRun, conflictsBefore: Map<string, number> | undefined): Promise<{ check: Check; keys: number[] }> => {
        const [left, fromPristine] = await Promise.all([diffAB(), diffA()]);
        const want =
          mode === 'bidirectional'
            ? {
                changed: [...plan.a.updated, ...plan.b.updated, ...plan.conflicts.map((c) => c.id)],
                missing: [...plan.a.deleted, ...plan.b.deleted],
                extra: [...plan.a.inserted, ...plan.b.inserted],
              }
            : { changed: [...plan.a.updated, ...plan.conflicts.map((c) => c.id)], missing: plan.a.deleted, extra: plan.a.inserted };
        let unexpectedKeys = 0;
        for (const kind of ['changed', 'missing', 'extra'] as const) {
          const got = new Set(fromPristine[kind]);
          const wanted = new Set(want[kind]);
          for (const id of got) if (!wanted.has(id)) unexpectedKeys += 1;
          for (const id of wanted) if (!got.has(id)) unexpectedKeys += 1;
        }
        const content = await checkContent(pair, mysql, postgres, names, plan, mode === 'bidirectional' ? expectedAfterBidirectional(plan) : expectedAfterOneWay(plan));
        const mismatches: string[] = [];
        const same = (field: string, measured: number | undefined, wanted: number) => {
          if (measured !== wanted) mismatches.push(`${field} ${String(measured)} (expected ${wanted})`);
        };
        const table = run.report?.tables[0];
        if (!table) mismatches.push('no report');
        else {
          same('changed', table.changed, expected.changed);
          same('missing (only on A)', table.missing, expected.onlyA);
          same('extra (only on B)', table.extra, expected.onlyB);
          if (mode === 'bidirectional') {
            const b = table.bidirectional;
            const e = expected.bidirectional;
            if (!b) mismatches.push('no bidirectional section');
            else {
              same('changedOnA', b.changedOnA, e.changedOnA);
              same('changedOnB', b.changedOnB, e.changedOnB);
              same('deletedOnA', b.deletedOnA, e.deletedOnA);
              same('deletedOnB', b.deletedOnB, e.deletedOnB);
              same('writtenToA', b.writtenToA, e.writtenToA);
              same('writtenToB', b.writtenToB, e.writtenToB);
              same('conflicts.a_won', b.conflicts.a_won ?? 0, e.a_won);
              same('conflicts.b_won', b.conflicts.b_won ?? 0, e.b_won);
              const others = Object.entries(b.conflicts).filter(([outcome, n]) => outcome !== 'a_won' && outcome !== 'b_won' && (n ?? 0) > 0);
              if (others.length > 0) mismatches.push(`other conflict outcomes ${JSON.stringify(Object.fromEntries(others))}`);
            }
            same('conflicts', table.conflicts, plan.conflicts.length);
          } else {
            same('inserted', table.inserted, expected.oneWay.inserted);
            same('updated', table.updated, expected.oneWay.updated);
            same('deleted', table.deleted, expected.oneWay.deleted);
          }
        }
        let conflictsLogged: Record<string, number> | undefined;
        let conflictLogMismatch: string | undefined;
        if (conflictsBefore) {
          const after = await conflictLog(pair, mysql, postgres, names, bidiPipeline);
          conflictsLogged = {};
          for (const [key, count] of after) {
            const delta = count - (conflictsBefore.get(key) ?? 0);
            if (delta !== 0) conflictsLogged[key] = delta;
          }
          const wantLog = { 'update-update a_won': expected.bidirectional.a_won, 'update-update b_won': expected.bidirectional.b_won };
          const normalized = (record: Record<string, number>) => JSON.stringify(Object.entries(record).filter(([, n]) => n > 0).sort());
          if (normalized(conflictsLogged) !== normalized(wantLog)) conflictLogMismatch = `logged ${JSON.stringify(conflictsLogged)}, expected ${JSON.stringify(wantLog)}`;
        }
        return {
          check: {
            leftDifferent: differenceCount(left), unexpectedKeys, content, reportMismatches: mismatches,
            ...(conflictsLogged ? { conflictsLogged } : {}), ...(conflictLogMismatch ? { conflictLogMismatch } : {}),
          },
          keys: [...differingKeys(left), ...differingKeys(fromPristine)],
        };
      };

      const attempts: Attempt[] = [];
      const runMode = async (mode: Mode, attempt: number) => {
        await apply();
        const conflictsBefore = mode === 'bidirectional' ? await conflictLog(pair, mysql, postgres, names, bidiPipeline) : undefined;
        const loadBefore = await quiet();
        const pipeline = mode === 'bidirectional' ? bidiPipeline : oneWayPipeline;
        log(`${label} [${attempt}/${options.repeat}] ${mode}: rowsync reconcile --pipeline ${pipeline} (--workers ${settings.workers}, chunkSize ${settings.chunkSize})`);
        const run = await runCli(servers, names, settings, pipeline);
        if (run.exitCode !== 0) log(`${label}: rowsync exited with ${String(run.exitCode)}:\n${run.stderrTail}`);
        const { check, keys } = await verify(mode, run, conflictsBefore);
        log(
          `${label} [${attempt}/${options.repeat}] ${mode}: ${seconds(run.wallMs)}, peak RSS ${mb(run.maxRssKb)}; A vs B different ${check.leftDifferent}, ` +
            `unexpected keys ${check.unexpectedKeys}, wrong rows A/B ${check.content.wrong.a}/${check.content.wrong.b}` +
            `${check.reportMismatches.length > 0 ? `; report: ${check.reportMismatches.join(', ')}` : '; report counts as injected'}` +
            `${check.conflictLogMismatch ? `; conflict log: ${check.conflictLogMismatch}` : ''}`,
        );
        for (const sample of check.content.samples.slice(0, 5)) log(`  ${sample}`);
        // Reset: both sides to the pristine rows at every key the plan or the checks touched; the saved states.
        const touched = [...new Set([...planKeys(plan), ...keys])];
        await Promise.all([restoreA(touched), restoreB(touched)]);
        const stateRestore = mode === 'bidirectional' ? await restoreState(pair, mysql, postgres, names, bidiPipeline) : undefined;
        attempts.push({ mode, attempt, loadBefore, run, check, ...(stateRestore ? { stateRestore } : {}) });
      };
      for (let attempt = 1; attempt <= options.repeat; attempt += 1) {
        // Alternating order: a drift of the machine's speed during an attempt favours neither.
        const order: Mode[] = attempt % 2 === 1 ? ['bidirectional', 'one-way'] : ['one-way', 'bidirectional'];
        for (const mode of order) await runMode(mode, attempt);
      }

      let profiles: PairResult['profiles'];
      if (options.profile) {
        const profileMode = async (mode: Mode) => {
          await apply();
          await quiet();
          const pipeline = mode === 'bidirectional' ? bidiPipeline : oneWayPipeline;
          log(`${label}: profiled in-process run of ${pipeline}`);
          const profile = await profileRun(servers, names, settings, pipeline);
          const [left, fromPristine] = await Promise.all([diffAB(), diffA()]);
          await Promise.all([...[restoreA, restoreB].map((restore) => restore([...new Set([...planKeys(plan), ...differingKeys(left), ...differingKeys(fromPristine)])]))]);
          if (mode === 'bidirectional') await restoreState(pair, mysql, postgres, names, bidiPipeline);
          return { profile, left: differenceCount(left) };
        };
        const bidi = await profileMode('bidirectional');
        const oneWay = await profileMode('one-way');
        profiles = { bidirectional: bidi.profile, oneWay: oneWay.profile, leftDifferent: { bidirectional: bidi.left, oneWay: oneWay.left } };
      }

      const runsOf = (mode: Mode) => attempts.filter((attempt) => attempt.mode === mode);
      const bidiMedian = median(runsOf('bidirectional'), (a) => a.run.wallMs).run;
      const oneWayMedian = median(runsOf('one-way'), (a) => a.run.wallMs).run;
      const pairedRatios = runsOf('bidirectional').map((a, index) => a.run.wallMs / runsOf('one-way')[index]!.run.wallMs);
      const peak = (mode: Mode) => Math.max(...runsOf(mode).map((a) => a.run.maxRssKb ?? Number.NaN));
      results.push({
        pair,
        first: { run: firstRun, loadBefore: firstLoad, states: firstState.states, baseline: firstState.baseline, leftDifferent: firstLeft },
        attempts,
        bidirectional: bidiMedian,
        oneWay: oneWayMedian,
        ratio: bidiMedian.wallMs / oneWayMedian.wallMs,
        pairedRatios,
        peakRssKb: { bidirectional: peak('bidirectional'), oneWay: peak('one-way'), first: firstRun.maxRssKb ?? Number.NaN },
        ...(profiles ? { profiles } : {}),
      });
    }

    const verdicts = judge(results, plan);
    const env = { mariadbVersion, postgresVersion, bufferPoolMb: bufferPool / 1048576, sharedBuffers, totalMs: performance.now() - started };
    print(options, plan, differing, results, verdicts, env);
    const file = join(ROOT, 'bench/results/bidirectional-latest.json');
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: {
            cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, mariadb: mariadbVersion, postgres: postgresVersion,
            innodbBufferPoolMb: bufferPool / 1048576, pgSharedBuffers: sharedBuffers,
          },
          settings: { rows: options.rows, ...settings, repeat: options.repeat, seed: options.seed, conflict: 'timestamp', conflictColumn: 'updated_at' },
          changes: {
            perSide: plan.perSide, differingKeys: differing,
            a: { updated: plan.a.updated.length, inserted: plan.a.inserted.length, deleted: plan.a.deleted.length },
            b: { updated: plan.b.updated.length, inserted: plan.b.inserted.length, deleted: plan.b.deleted.length },
            conflicts: { total: plan.conflicts.length, newerOnA: expected.bidirectional.a_won, newerOnB: expected.bidirectional.b_won },
          },
          expected,
          targets: TARGETS,
          verdicts,
          results,
          totalMs: env.totalMs,
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

interface Verdict {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass: boolean;
}

function judge(results: readonly PairResult[], plan: ChangePlan): Verdict[] {
  const verdicts: Verdict[] = [];
  for (const r of results) {
    const label = PAIR_LABEL[r.pair];
    const bidi = r.attempts.filter((a) => a.mode === 'bidirectional');
    const oneWay = r.attempts.filter((a) => a.mode === 'one-way');
    const ok = r.attempts.every((a) => a.run.exitCode === 0);
    verdicts.push({
      what: `${label}: periodic bidirectional run / one-way reconcile (medians of ${bidi.length})`,
      measured: `${r.ratio.toFixed(2)}x (${seconds(r.bidirectional.wallMs)} / ${seconds(r.oneWay.wallMs)})`,
      target: `<= ${TARGETS.ratio}x`,
      pass: ok && r.ratio <= TARGETS.ratio,
    });
    const worst = (pick: (a: Attempt) => number, list = bidi) => Math.max(...list.map(pick));
    verdicts.push({
      what: `${label}: rows different A vs B after the bidirectional run (worst of ${bidi.length}) / after the one-way run`,
      measured: `${worst((a) => a.check.leftDifferent)} / ${worst((a) => a.check.leftDifferent, oneWay)}`,
      target: '= 0 / 0',
      pass: ok && worst((a) => a.check.leftDifferent) === 0 && worst((a) => a.check.leftDifferent, oneWay) === 0,
    });
    const wrong = worst((a) => a.check.content.wrong.a + a.check.content.wrong.b + a.check.unexpectedKeys);
    verdicts.push({
      what: `${label}: changed keys with a wrong final row on A or B, or unexpected keys (worst)`,
      measured: String(wrong),
      target: '= 0',
      pass: ok && wrong === 0,
    });
    const decided = Math.min(...bidi.map((a) => a.check.content.conflictsDecided.aNewer + a.check.content.conflictsDecided.bNewer));
    verdicts.push({
      what: `${label}: conflicts decided by the newer updated_at, both sides (fewest of ${bidi.length})`,
      measured: `${decided} of ${plan.conflicts.length}`,
      target: `= ${plan.conflicts.length}`,
      pass: ok && decided === plan.conflicts.length,
    });
    const reportBad = r.attempts.filter((a) => a.check.reportMismatches.length > 0 || a.check.conflictLogMismatch);
    verdicts.push({
      what: `${label}: report counts (and conflicts logged) as injected, every run`,
      measured: reportBad.length === 0 ? 'yes' : `no: ${reportBad.map((a) => `${a.mode} #${a.attempt}: ${[...a.check.reportMismatches, a.check.conflictLogMismatch ?? ''].filter(Boolean).join(', ')}`).join('; ')}`,
      target: 'yes',
      pass: ok && reportBad.length === 0,
    });
  }
  return verdicts;
}

function print(
  options: Options, plan: ChangePlan, differing: number, results: readonly PairResult[], verdicts: readonly Verdict[],
  env: { mariadbVersion: string; postgresVersion: string; bufferPoolMb: number; sharedBuffers: string; totalMs: number },
): void {
  const out: string[] = [];
  const line = (text = '') => out.push(text);
  const aNewer = plan.conflicts.filter((c) => c.newer === 'a').length;
  line();
  line(`rowsync bidirectional benchmark: ${thousands(options.rows)} rows; per side ${thousands(plan.perSide)} changed rows ` +
    `(${thousands(plan.a.updated.length)} updated, ${thousands(plan.a.inserted.length)} inserted, ${thousands(plan.a.deleted.length)} deleted, ` +
    `${thousands(plan.conflicts.length)} updated on both sides: conflicts, ${aNewer} newer on A, ${plan.conflicts.length - aNewer} newer on B) ` +
    `= ${thousands(differing)} differing keys; seed ${options.seed}`);
  line(`machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, MariaDB ${env.mariadbVersion} ` +
    `(buffer pool ${env.bufferPoolMb.toFixed(0)} MB), PostgreSQL ${env.postgresVersion} (shared_buffers ${env.sharedBuffers})`);
  line(`rowsync: chunkSize ${options.chunkSize}, --workers ${options.workers}, poolSize ${options.poolSize ?? 'default'}; ` +
    `bidirectional: conflict timestamp on updated_at; one-way: the same tables, A -> B, source_wins; the same change set before every run`);
  line();
  // The table's rows are collected, then written with each column as wide as its widest value.
  const rows: { label: string; values: readonly string[] }[] = [];
  const row = (label: string, values: readonly string[]) => rows.push({ label, values });
  const flushTable = () => {
    const widths = results.map((_, column) => Math.max(22, ...rows.map((r) => (r.values[column] ?? '').length)) + 2);
    for (const r of rows) line(`  ${r.label.padEnd(52)}${r.values.map((value, column) => value.padStart(widths[column]!)).join('')}`);
  };
  const table = (r: PairResult, mode: Mode) => (mode === 'bidirectional' ? r.bidirectional : r.oneWay).report?.tables[0];
  const each = (r: PairResult, mode: Mode, pick: (a: Attempt) => string) => r.attempts.filter((a) => a.mode === mode).map(pick).join(' ');
  row('', results.map((r) => PAIR_LABEL[r.pair]));
  row('first run (records the baseline), wall', results.map((r) => seconds(r.first.run.wallMs)));
  row('  states recorded / rows different after', results.map((r) => `${thousands(r.first.states)} / ${r.first.leftDifferent}`));
  row('  peak RSS / CPU of the process', results.map((r) => `${mb(r.first.run.maxRssKb)} / ${seconds(r.first.run.nodeCpuMs)}`));
  row('  first run / one-way reconcile', results.map((r) => `${(r.first.run.wallMs / r.oneWay.wallMs).toFixed(2)}x`));
  row('periodic bidirectional run (CLI, wall)', results.map((r) => seconds(r.bidirectional.wallMs)));
  row('  each attempt', results.map((r) => each(r, 'bidirectional', (a) => (a.run.wallMs / 1000).toFixed(2))));
  row('  run durationMs (enqueue -> report)', results.map((r) => seconds(r.bidirectional.report?.durationMs)));
  row('  peak RSS (largest) / CPU of the process', results.map((r) => `${mb(r.peakRssKb.bidirectional)} / ${seconds(r.bidirectional.nodeCpuMs)}`));
  row('  found changed / only on A / only on B', results.map((r) => {
    const t = table(r, 'bidirectional');
    return t ? `${t.changed} / ${t.missing} / ${t.extra}` : '-';
  }));
  row('  changed on A / on B', results.map((r) => {
    const b = table(r, 'bidirectional')?.bidirectional;
    return b ? `${b.changedOnA} / ${b.changedOnB}` : '-';
  }));
  row('  deleted on A / on B', results.map((r) => {
    const b = table(r, 'bidirectional')?.bidirectional;
    return b ? `${b.deletedOnA} / ${b.deletedOnB}` : '-';
  }));
  row('  conflicts a_won / b_won (other)', results.map((r) => {
    const b = table(r, 'bidirectional')?.bidirectional;
    if (!b) return '-';
    const other = Object.entries(b.conflicts).filter(([k]) => k !== 'a_won' && k !== 'b_won').reduce((s, [, n]) => s + (n ?? 0), 0);
    return `${b.conflicts.a_won ?? 0} / ${b.conflicts.b_won ?? 0} (${other})`;
  }));
  row('  written to A / to B', results.map((r) => {
    const b = table(r, 'bidirectional')?.bidirectional;
    return b ? `${b.writtenToA} / ${b.writtenToB}` : '-';
  }));
  row('  chunks (differing)', results.map((r) => {
    const t = table(r, 'bidirectional');
    return t ? `${t.chunks} (${t.chunksDiffering})` : '-';
  }));
  row('one-way reconcile A -> B (CLI, wall)', results.map((r) => seconds(r.oneWay.wallMs)));
  row('  each attempt', results.map((r) => each(r, 'one-way', (a) => (a.run.wallMs / 1000).toFixed(2))));
  row('  run durationMs (enqueue -> report)', results.map((r) => seconds(r.oneWay.report?.durationMs)));
  row('  peak RSS (largest) / CPU of the process', results.map((r) => `${mb(r.peakRssKb.oneWay)} / ${seconds(r.oneWay.nodeCpuMs)}`));
  row('  found changed / missing / extra', results.map((r) => {
    const t = table(r, 'one-way');
    return t ? `${t.changed} / ${t.missing} / ${t.extra}` : '-';
  }));
  row('  wrote updated / inserted / deleted', results.map((r) => {
    const t = table(r, 'one-way');
    return t ? `${t.updated} / ${t.inserted} / ${t.deleted}` : '-';
  }));
  row('bidirectional / one-way (medians)', results.map((r) => `${r.ratio.toFixed(2)}x`));
  row('  per attempt (paired)', results.map((r) => r.pairedRatios.map((x) => x.toFixed(2)).join(' ')));
  row('checks after each bidirectional run:', results.map(() => ''));
  row('  rows different A vs B', results.map((r) => each(r, 'bidirectional', (a) => String(a.check.leftDifferent))));
  row('  unexpected keys vs the pristine rows', results.map((r) => each(r, 'bidirectional', (a) => String(a.check.unexpectedKeys))));
  row('  changed keys with a wrong row, A/B', results.map((r) => each(r, 'bidirectional', (a) => `${a.check.content.wrong.a}/${a.check.content.wrong.b}`)));
  row('  conflicts won by the newer side (A-newer, B-newer)', results.map((r) => each(r, 'bidirectional', (a) => {
    const d = a.check.content.conflictsDecided;
    return `${d.aNewer}/${d.ofA},${d.bNewer}/${d.ofB}`;
  })));
  row('  report counts as injected', results.map((r) => each(r, 'bidirectional', (a) => (a.check.reportMismatches.length === 0 ? 'yes' : 'NO'))));
  row('  conflicts logged as decided', results.map((r) => each(r, 'bidirectional', (a) => (a.check.conflictLogMismatch ? 'NO' : 'yes'))));
  row('  sync states restored after (removed/added)', results.map((r) => each(r, 'bidirectional', (a) => `${a.stateRestore?.removed ?? '-'}/${a.stateRestore?.added ?? '-'}`)));
  row('checks after each one-way run:', results.map(() => ''));
  row('  rows different A vs B', results.map((r) => each(r, 'one-way', (a) => String(a.check.leftDifferent))));
  row('  wrong rows A/B; report as injected', results.map((r) => each(r, 'one-way', (a) =>
    `${a.check.content.wrong.a}/${a.check.content.wrong.b};${a.check.reportMismatches.length === 0 && a.check.unexpectedKeys === 0 ? 'yes' : 'NO'}`)));
  flushTable();
  line();
  line('CPU during each run (cores busy on average; machine includes anything else running):');
  for (const r of results) {
    line(`  ${PAIR_LABEL[r.pair]}  load of other processes just before: first ${r.first.loadBefore.toFixed(2)}, ` +
      `bidirectional ${each(r, 'bidirectional', (a) => a.loadBefore.toFixed(2))}, one-way ${each(r, 'one-way', (a) => a.loadBefore.toFixed(2))} cores`);
    line(`  ${PAIR_LABEL[r.pair]}  first run:               ${cpuText(r.first.run.cpu, 'rowsync process')}`);
    line(`  ${PAIR_LABEL[r.pair]}  bidirectional (median):  ${cpuText(r.bidirectional.cpu, 'rowsync process')}`);
    line(`  ${PAIR_LABEL[r.pair]}  one-way (median):        ${cpuText(r.oneWay.cpu, 'rowsync process')}`);
  }
  for (const r of results) {
    if (!r.profiles) continue;
    line();
    const profiles = [['bidirectional', r.profiles.bidirectional, r.profiles.leftDifferent.bidirectional], ['one-way', r.profiles.oneWay, r.profiles.leftDifferent.oneWay]] as const;
    line(`profile ${PAIR_LABEL[r.pair]} (one in-process run of each pipeline, same settings; call times include waiting for a pooled connection, ` +
      `sums overlap):`);
    for (const [mode, p, left] of profiles) {
      line(`  ${mode}: ${seconds(p.wallMs)}, outcome ${p.outcome}, rows left different ${left}; node CPU ${seconds(p.node.cpuMs)}, ` +
        `event loop utilization ${(p.node.eventLoopUtilization * 100).toFixed(0)}%; ${cpuText(p.cpu, 'rowsync process')}`);
      for (const [connection, stats] of Object.entries(p.byConnection)) {
        line(`    ${connection}: ${stats.calls} calls, busy (>= 1 call in flight) ${seconds(stats.busyMs)}`);
        line(`      ${'call'.padEnd(44)}${'calls'.padStart(7)}${'rows'.padStart(10)}${'sum ms'.padStart(10)}${'max ms'.padStart(9)}`);
        for (const kind of stats.kinds) {
          line(`      ${kind.kind.padEnd(44)}${String(kind.calls).padStart(7)}${String(kind.rows).padStart(10)}${kind.totalMs.toFixed(0).padStart(10)}${kind.maxMs.toFixed(0).padStart(9)}`);
        }
      }
    }
  }
  const busy = results.some((r) => r.first.loadBefore > 0.25 || r.attempts.some((a) => a.loadBefore > 0.25));
  if (busy) {
    line();
    line('WARNING: other processes kept the CPU busy before some timed runs (see "load of other processes"):');
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
    process.stderr.write(`[bench:bidi] error: ${text}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);

