/**
 * `reconcile.maxLoad` and `reconcile.maxReplicaLag` on real servers, both engines. The load is raised
 * for real: sessions running `SELECT SLEEP(n)` / `pg_sleep(n)` on the server the pipeline reads, with
 * a threshold a few above the server's load measured just before (the test servers are shared). While
 * they run, no chunk is compared and the run's progress, `rowsync reconcile`'s progress lines and
 * `rowsync status` say why it waits; once they end, the run completes and repairs the drift. A
 * watched "replica" that is not one fails the run before any write, naming the connection (no real
 * replica exists here: the lag decisions are unit-tested over set readings in test/unit/throttle.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRunId } from '../../jobs/job-ids.js';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import { watchRun } from '../../src/cli/run-monitor.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { openSession, until, type Session } from '../support/cdc-fixture.js';
import { buildCli, describeResult, killLeftoverProcesses, runCli, startCli, writeJson } from '../support/cli.js';
import { createHarness, type Harness } from '../support/harness.js';
import { ENGINES } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

const ROWS = 400;
const SLEEPERS = 8;
const SLEEP_SECONDS = 6;

const DDL: Record<Engine, string> = {
  mysql: 'CREATE TABLE items (id INT NOT NULL PRIMARY KEY, qty INT NOT NULL)',
  postgres: 'CREATE TABLE items (id integer PRIMARY KEY, qty integer NOT NULL)',
};
const MEASURE: Record<Engine, string> = { mysql: 'Threads_running', postgres: 'active backends' };
const SLEEP: Record<Engine, string> = { mysql: `SELECT SLEEP(${SLEEP_SECONDS})`, postgres: `SELECT pg_sleep(${SLEEP_SECONDS})` };

/** The highest load seen over a second on a quiet moment of the (shared) server. */
async function baselineLoad(engine: Engine): Promise<number> {
  const servers = testServers();
  const probe = createDatabase({ connectionName: 'probe', url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl, poolSize: 1 });
  try {
    let highest = 0;
    for (let sample = 0; sample < 10; sample += 1) {
      highest = Math.max(highest, (await probe.readLoad()).value);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return highest;
  } finally {
    await probe.close();
  }
}

/** Sessions that keep the server busy for SLEEP_SECONDS; resolves when they are all done. */
async function raiseLoad(engine: Engine, namespace: string): Promise<{ done: Promise<void>; endsAt: number }> {
  const sessions: Session[] = await Promise.all(Array.from({ length: SLEEPERS }, () => openSession(engine, namespace)));
  const endsAt = Date.now() + SLEEP_SECONDS * 1000;
  const done = Promise.all(sessions.map((session) => session.run(SLEEP[engine]))).then(async () => {
    await Promise.all(sessions.map((session) => session.close()));
  });
  return { done, endsAt };
}

describe.each(ENGINES)('maxLoad on %s', (engine) => {
  let harness: Harness;
  let threshold: number;
  let probe: Database;
  let dir: string;
  const tag = `thr_${engine.slice(0, 2)}`;

  beforeAll(async () => {
    // Over the baseline, under baseline + SLEEPERS: the sleepers trip it, the server's own noise does not.
    threshold = (await baselineLoad(engine)) + 3;
    harness = await createHarness({
      tag, sourceEngine: engine, targetEngine: engine, tables: ['items'], reconcile: { chunkSize: 50, maxLoad: threshold },
    });
    await harness.source.execute(DDL[engine]);
    await harness.target.execute(DDL[engine]);
    const rows = Array.from({ length: ROWS }, (_, index) => `(${index + 1}, ${index + 1})`).join(', ');
    await harness.source.execute(`INSERT INTO items VALUES ${rows}`);
    await harness.target.execute(`INSERT INTO items VALUES ${rows}`);
    const servers = testServers();
    probe = createDatabase({ connectionName: 'probe', url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl, poolSize: 1 });
    dir = mkdtempSync(join(tmpdir(), `rowsync-${tag}-`));
    await harness.startWorkers();
  });

  afterAll(async () => {
    await killLeftoverProcesses();
    await probe?.close();
    await harness?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const drift = async () => {
    await harness.target.execute('UPDATE items SET qty = -1 WHERE id IN (7, 123, 399)');
    await harness.target.execute('DELETE FROM items WHERE id = 200');
  };
  const loadOver = () => until(async () => (await probe.readLoad()).value > threshold, `${MEASURE[engine]} over ${threshold}`, 10_000);

  it('holds every chunk while the load is over maxLoad, says why, and completes once it drops', async () => {
    await drift();
    const load = await raiseLoad(engine, `${tag}_src`);
    await loadOver();
    const runId = newRunId('p');
    await enqueueRun(harness.runtime, { runId, pipeline: 'p', dryRun: false, requestedAt: Date.now() });
    const waiting = await until(async () => (await harness.runtime.progress.read(runId)).waiting, 'the run to say it waits', 10_000);
    expect(waiting).toMatch(new RegExp(`^source src: ${MEASURE[engine]} \\d+ > maxLoad ${threshold}; target dst: ${MEASURE[engine]} \\d+ > maxLoad ${threshold}$`));
    // No chunk compared while the sleepers run (checked until a second before they end).
    let comparedWhileLoaded = 0;
    while (Date.now() < load.endsAt - 1000) {
      const progress = await harness.runtime.progress.read(runId);
      comparedWhileLoaded = Math.max(comparedWhileLoaded, progress.chunksDone);
      expect(progress.waiting).toBeDefined();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(comparedWhileLoaded).toBe(0);
    expect((await harness.runtime.queues.chunk.getDelayedCount())).toBeGreaterThan(0);
    await load.done;
    const outcome = await watchRun(harness.runtime, runId, { intervalMs: 100 });
    if (outcome.kind !== 'completed') throw new Error(JSON.stringify(outcome));
    expect(outcome.report.tables[0]).toMatchObject({ table: 'items', sourceRows: ROWS, chunks: ROWS / 50, missing: 1, changed: 3, inserted: 1, updated: 3 });
    expect((await harness.runtime.progress.read(runId)).waiting).toBeUndefined();
    const [counts] = await harness.target.execute('SELECT count(*) AS total, sum(CASE WHEN qty < 0 THEN 1 ELSE 0 END) AS wrong FROM items');
    expect([Number(counts!.total), Number(counts!.wrong)]).toEqual([ROWS, 0]);
  });

  it('rowsync reconcile prints why it waits, rowsync status shows it, and the run completes after', async () => {
    await buildCli();
    await drift();
    const configFile = writeJson(dir, 'rowsync.json', {
      redis: harness.config.redis,
      connections: { src: harness.config.connections.src!.url, dst: harness.config.connections.dst!.url },
      pipelines: [{ name: 'p', source: 'src', targets: ['dst'], tables: ['items'], reconcile: { chunkSize: 50, maxLoad: threshold, attempts: 2, backoffMs: 200 } }],
      workers: { lanes: 4 },
    });
    const load = await raiseLoad(engine, `${tag}_src`);
    await loadOver();
    const reconcile = startCli(['reconcile', '--config', configFile, '--pipeline', 'p', '--run-id', `p.throttle-cli-${engine}`]);
    const status = await until(async () => {
      const result = await runCli(['status', '--config', configFile]);
      return /waiting: source src: /.test(result.stdout) ? result.stdout : undefined;
    }, 'rowsync status to show the wait', 15_000);
    expect(status).toMatch(new RegExp(`p\\.throttle-cli-${engine}\\s+\\S+.*chunks 0/\\d+.*, waiting: source src: ${MEASURE[engine]} \\d+ > maxLoad ${threshold}`));
    await load.done;
    const result = await reconcile.exited;
    expect(result.code, describeResult(result)).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`reconcile: chunks 0/\\d+, .*waiting: source src: ${MEASURE[engine]} \\d+ > maxLoad ${threshold}`));
    expect(result.stdout).toMatch(/^items\s+dst\s+400\s+399\s+8\s+\d+\s+1\s+0\s+3\s+1\s+3\s/m);
  });
});

describe.each(ENGINES)('maxReplicaLag on %s', (engine) => {
  let harness: Harness;

  beforeAll(async () => {
    harness = await createHarness({
      tag: `thrlag_${engine.slice(0, 2)}`,
      sourceEngine: engine,
      targetEngine: engine,
      tables: ['items'],
      // The target's own server stands in for a replica: it is a primary, not a replica.
      reconcile: { maxReplicaLag: { seconds: 10, replicas: ['dst'] } },
    });
    await harness.source.execute(DDL[engine]);
    await harness.target.execute(DDL[engine]);
    await harness.source.execute('INSERT INTO items VALUES (1, 1)');
    await harness.startWorkers();
  });

  afterAll(async () => {
    await harness?.close();
  });

  it('reads the server as no replica', async () => {
    expect(await harness.target.readReplicaLag()).toEqual({ replica: false });
  });

  it('a watched connection that is not a replica fails the run before any write, naming it', async () => {
    const outcome = await harness.run();
    expect(outcome.kind).toBe('failed');
    expect(outcome.kind === 'failed' && outcome.reason).toMatch(
      /pipelines\.p\.reconcile\.maxReplicaLag\.replicas: connection 'dst' is not a replica/,
    );
    expect(await harness.target.execute('SELECT id FROM items')).toEqual([]);
  });
});
