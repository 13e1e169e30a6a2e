/**
 * `connections.<name>.maxConcurrentQueries`: however many worker processes run, the target server
 * never runs more than that many rowsync queries at once, as the server itself reports it
 * (MariaDB's PROCESSLIST, PostgreSQL's pg_stat_activity), and the run still completes and repairs
 * everything. Three worker sets, each with its own Runtime (own pools, own Redis connection), stand
 * in for three processes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../../jobs/runtime.js';
import { createDatabase } from '../../src/dialect/create-database.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { createLogger } from '../../src/logging/logger.js';
import type { RunReport } from '../../src/reconcile/report.js';
import { startWorkers, type RunningWorkers } from '../../workers/start-workers.js';
import { createHarness, type Harness } from '../support/harness.js';
import { DRIFT, ORDER_COUNT, expectEqualTables, orderRow, seedOrders, type Tables } from '../support/orders-fixture.js';
import { ENGINE_PAIRS, scratchUrl } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

const CAP = 2;
/**
 * Slow queries sent through the capped connection of every worker set while the run goes on. The
 * run's own queries last about a millisecond, so a sampler rarely catches two of them at once even
 * uncapped; 30 ms sleeps make any overshoot of the cap visible to it (measured without the cap: 12
 * to 14 at once).
 */
const SLEEP: Record<Engine, string> = { mysql: 'SELECT SLEEP(0.03)', postgres: 'SELECT pg_sleep(0.03)' };
const SLEEPERS_PER_SET = 4;
const SLEEPS_PER_SLEEPER = 3;
/** Orders whose target copy is edited on top of DRIFT, so the apply lanes write a lot too. */
const DRIFTED = new Set<number>([...DRIFT.changed, ...DRIFT.missing, ...DRIFT.extra]);
const EDITED = Array.from({ length: 150 }, (_, index) => 100 + index * 18).filter((id) => !DRIFTED.has(id));

/**
 * MariaDB keeps a statement in PROCESSLIST as `Query` for a moment after its reply went out (the
 * client has already given back its slot): these states come after the reply, so such a row is
 * not a running query.
 */
const MYSQL_AFTER_REPLY_STATES = ['query end', 'closing tables', 'freeing items', 'cleaning up', 'logging slow query', 'Reset for next command'];

/**
 * Counts the target's queries that were running at one instant, as the server sees them (not the
 * sampler's own). Neither PROCESSLIST nor pg_stat_activity is one atomic snapshot: it is read
 * session by session, so a query that ended, freeing a slot for one that began, can appear beside
 * it. A query counts only when it had been running for longer than the whole probe took (measured
 * by the client around the probe): it started before the probe was sent and was still running when
 * the server read it, so every query counted was running at the moment the probe was sent.
 */
function activeQueryProbe(engine: Engine, namespace: string, applicationName: string): { probe: () => Promise<number>; close: () => Promise<void> } {
  const servers = testServers();
  const admin: Database = createDatabase({
    connectionName: `${engine}-sampler`,
    url: engine === 'mysql' ? servers.mysqlUrl : servers.postgresUrl,
    poolSize: 1,
  });
  const sql =
    engine === 'mysql'
      ? `SELECT TIME_MS AS elapsed_ms FROM information_schema.PROCESSLIST WHERE DB = ? AND COMMAND = 'Query' AND ID <> CONNECTION_ID()
           AND COALESCE(STATE, '') NOT IN (${MYSQL_AFTER_REPLY_STATES.map((state) => `'${state}'`).join(', ')})`
      : `SELECT EXTRACT(EPOCH FROM clock_timestamp() - query_start) * 1000 AS elapsed_ms FROM pg_stat_activity
         WHERE application_name = $1 AND state = 'active' AND pid <> pg_backend_pid()`;
  return {
    probe: async () => {
      const sentAt = performance.now();
      const rows = await admin.execute(sql, [engine === 'mysql' ? namespace : applicationName]);
      // 1 ms margin for the servers' and the client's clock resolution.
      const probeMs = performance.now() - sentAt + 1;
      return rows.filter((row) => Number(row.elapsed_ms) > probeMs).length;
    },
    close: () => admin.close(),
  };
}

describe.each(ENGINE_PAIRS)('maxConcurrentQueries %s -> %s', (sourceEngine, targetEngine) => {
  const tag = `dbcap_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  const targetNamespace = `${tag}_dst`;
  // PostgreSQL namespaces are schemas of one shared database: the target's sessions are told apart
  // from every other test's by their application_name.
  const applicationName = `rowsync_${tag}_${randomBytes(3).toString('hex')}`;
  let harness: Harness;
  let tables: Tables;
  const extraRuntimes: Runtime[] = [];
  const extraWorkers: RunningWorkers[] = [];

  beforeAll(async () => {
    const url = new URL(scratchUrl(targetEngine, targetNamespace));
    if (targetEngine === 'postgres') url.searchParams.set('application_name', applicationName);
    harness = await createHarness({
      tag,
      sourceEngine,
      targetEngine,
      tables: ['orders', 'order_lines'],
      reconcile: { chunkSize: 100, applyBatchSize: 20 },
      workers: { lanes: 8, concurrency: { table: 2, chunk: 8, apply: 8 } },
      connections: { dst: { url: url.toString(), poolSize: 6, maxConcurrentQueries: CAP } },
    });
    tables = await seedOrders(harness.source, harness.target);
    await harness.target.applyChanges(tables.orders.target, { upserts: EDITED.map((id) => orderRow(id, 2)), deletes: [] });
    await harness.startWorkers();
    for (let index = 0; index < 2; index += 1) {
      const runtime = new Runtime(harness.config, createLogger({ level: process.env.ROWSYNC_LOG_LEVEL ?? 'silent' }));
      extraRuntimes.push(runtime);
      extraWorkers.push(await startWorkers(runtime));
    }
  });

  afterAll(async () => {
    for (const workers of extraWorkers) await workers.close();
    for (const runtime of extraRuntimes) await runtime.close();
    await harness?.close();
  });

  it(`never runs more than ${CAP} queries at once on the target, and still repairs everything`, async () => {
    const sampler = activeQueryProbe(targetEngine, targetNamespace, applicationName);
    const slots = `${harness.config.redis.prefix}:db-slots:dst`;
    const seen = { samples: 0, busy: 0, maxQueries: 0, maxSlots: 0 };
    try {
      let finished = false;
      const sleepers = [harness.runtime, ...extraRuntimes].flatMap((runtime) =>
        Array.from({ length: SLEEPERS_PER_SET }, async () => {
          for (let count = 0; count < SLEEPS_PER_SLEEPER; count += 1) await runtime.database('dst').execute(SLEEP[targetEngine]);
        }),
      );
      const run = Promise.all([harness.run(), ...sleepers]).then(([outcome]) => outcome).finally(() => {
        finished = true;
      });
      while (!finished) {
        const [queries, slotsHeld] = await Promise.all([
          sampler.probe(),
          harness.runtime.redis.zcount(slots, Date.now(), '+inf'),
        ]);
        seen.samples += 1;
        if (queries > 0) seen.busy += 1;
        seen.maxQueries = Math.max(seen.maxQueries, queries);
        seen.maxSlots = Math.max(seen.maxSlots, slotsHeld);
      }
      const outcome = await run;
      if (outcome.kind !== 'completed') throw new Error(`run ended ${JSON.stringify(outcome)}`);
      const report: RunReport = outcome.report;
      if (process.env.ROWSYNC_CAP_STATS) console.log(`${sourceEngine}->${targetEngine}`, JSON.stringify(seen));

      expect(seen.maxQueries).toBeLessThanOrEqual(CAP);
      expect(seen.maxSlots).toBeLessThanOrEqual(CAP);
      // The sampler did see the target at work, with the cap's worth of queries at once (a probe
      // that never sees two queries proves nothing about a cap of two).
      expect(seen.busy).toBeGreaterThan(0);
      expect(seen.maxQueries).toBe(CAP);

      expect(report.tables.find((entry) => entry.table === 'orders')).toMatchObject({
        sourceRows: ORDER_COUNT, targetRows: ORDER_COUNT, chunks: ORDER_COUNT / 100,
        missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length + EDITED.length,
        inserted: DRIFT.missing.length, updated: DRIFT.changed.length + EDITED.length, deleted: DRIFT.extra.length, errors: [],
      });
      expect(report.tables.find((entry) => entry.table === 'order_lines')).toMatchObject({ missing: 1, extra: 1, changed: 1 });
      expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
      expect(await expectEqualTables(harness.source, harness.target, tables.lines)).toEqual([]);
      // Every slot was given back.
      expect(await harness.runtime.redis.zcount(slots, Date.now(), '+inf')).toBe(0);
    } finally {
      await sampler.close();
    }
  });
});
