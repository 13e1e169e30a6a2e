/**
 * CDC end to end on real servers, for every engine pair and every mode its source has (binlog or
 * logical, and polling): a live mixed workload converges row by row through the one write path
 * (BIGINT keys above 2^53, multi-row transactions, key-changing updates, deletes); a key changed
 * many times is synced every time; a reconcile racing the stream ends equal; a poison batch goes to
 * the dead-letter queue while the rest flows and applies when retried after the fix; connections
 * killed from the server side (the walsender, the pools, the polling reader) lose nothing; Redis losing
 * its data mid-stream loses nothing; a TRUNCATE reconciles the table; status shows each target's
 * position and lag. Reconcile runs with `deleteExtra: false`: rows deleted at the source are deleted
 * at the target all the same.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from 'bullmq';
import type { DeadLetterPayload } from '../../jobs/cdc-batch.job.js';
import type { CdcMode, ChangeSource } from '../../src/dialect/change-source.js';
import type { TablePair } from '../../src/dialect/table-pair.js';
import type { Engine } from '../../src/dialect/types.js';
import { changeSourceOf, readCdcStatus, startCdcReaders, type RunningReaders } from '../../workers/cdc-readers.js';
import { replicationObjectName } from '../../src/dialect/postgres/postgres-logical-source.js';
import { CDC_MODES, ITEMS_DDL, idText, itemValues, openSession, runWorkload, until, waitForEqual, type Session } from '../support/cdc-fixture.js';
import { createHarness, type Harness } from '../support/harness.js';
import { deleteRedisPrefix, ENGINE_PAIRS } from '../support/scratch.js';

const CASES: [Engine, Engine, CdcMode][] = ENGINE_PAIRS.flatMap(([source, target]) => CDC_MODES[source].map((mode): [Engine, Engine, CdcMode] => [source, target, mode]));

describe.each(CASES)('cdc %s -> %s (%s)', (sourceEngine, targetEngine, mode) => {
  let harness: Harness;
  let source: ChangeSource;
  let readers: RunningReaders;
  let session: Session;
  let pair: TablePair;
  const ids = new Set<number>();
  const nextId = { value: 0 };
  const tag = `cdc_${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}_${mode.slice(0, 3)}`;

  beforeAll(async () => {
    harness = await createHarness({
      tag,
      sourceEngine,
      targetEngine,
      tables: ['items'],
      // CDC deletes what the source deleted whatever deleteExtra says (it is about target-only rows).
      reconcile: { deleteExtra: false },
      pipeline: {
        cdc: {
          mode, batchWindowMs: 20, heartbeatMs: 500, pollIntervalMs: 50, attempts: 2, backoffMs: 100,
          serverId: 100_000 + randomBytes(3).readUIntBE(0, 3),
        },
      },
    });
    await harness.source.execute(ITEMS_DDL[sourceEngine]);
    // The target refuses qty >= 100000: the poison-batch test inserts one such row.
    await harness.target.execute(ITEMS_DDL[targetEngine].replace(/\)( ENGINE=InnoDB)?$/, ', CONSTRAINT qty_cap CHECK (qty < 100000))$1'));
    // Rows made before CDC starts reach the target through the initial reconcile.
    const seed = Array.from({ length: 50 }, (_, index) => itemValues((nextId.value += 1), 0));
    for (let offset = 1; offset <= 50; offset += 1) ids.add(offset);
    await harness.source.execute(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${seed.join(', ')}`);
    source = await changeSourceOf(harness.runtime, harness.runtime.pipeline('p'));
    await source.setup();
    await harness.startWorkers();
    readers = await startCdcReaders(harness.runtime);
    session = await openSession(sourceEngine, `${tag}_src`);
    pair = (await harness.runtime.tableContext('p', 'items', 'dst')).pair;
  });

  afterAll(async () => {
    await readers?.stop();
    await session?.close();
    await source?.teardown().catch(() => undefined);
    await harness?.close();
  });

  it('a live mixed workload converges row by row', async () => {
    await waitForEqual(harness.source, harness.target, pair);
    await runWorkload(session, ids, { transactions: 60, seed: 1, nextId });
    await waitForEqual(harness.source, harness.target, pair);
    expect(await harness.target.fetchByKeys(pair.target, [[idText(1)]])).toHaveLength(ids.has(1) ? 1 : 0);
  });

  it('a key changed many times is synced every time (each batch is a new job)', async () => {
    const key = (nextId.value += 1);
    ids.add(key);
    await session.run(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${itemValues(key, 0)}`);
    for (let version = 1; version <= 8; version += 1) {
      await session.run(`UPDATE items SET qty = ${version} WHERE id = ${idText(key)}`);
      await until(async () => {
        const [row] = await harness.target.fetchByKeys(pair.target, [[idText(key)]]);
        return row !== undefined && Number(row[2]) === version;
      }, `qty ${version} at the target`);
    }
  });

  it('a reconcile run started while the workload and CDC both write ends equal', async () => {
    const workload = runWorkload(session, ids, { transactions: 40, seed: 2, nextId });
    const outcome = await harness.run();
    await workload;
    expect(outcome.kind).toBe('completed');
    await waitForEqual(harness.source, harness.target, pair);
  });

  it('a poison batch goes to the dead-letter queue while the rest flows; retried after the fix it applies', async () => {
    const poison = (nextId.value += 1);
    ids.add(poison);
    await session.run(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${itemValues(poison, 0).replace(/, \d+, /, ', 500000, ')}`);
    const letter = await until(async () => {
      const jobs = (await harness.runtime.queues.deadLetter.getJobs(['failed'])) as Job<DeadLetterPayload>[];
      return jobs.find((job) => job.data.tables.some(([, keys]) => keys.some((key) => String(key[0]) === idText(poison))));
    }, 'the dead letter');
    expect(letter.failedReason).toMatch(/qty_cap|constraint|check/i);
    // Later changes still flow while the dead letter waits.
    const later = (nextId.value += 1);
    ids.add(later);
    await session.run(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${itemValues(later, 0)}`);
    await until(async () => (await harness.target.fetchByKeys(pair.target, [[idText(later)]])).length === 1, 'the later row');
    expect(await harness.target.fetchByKeys(pair.target, [[idText(poison)]])).toHaveLength(0);

    await harness.target.execute('ALTER TABLE items DROP CONSTRAINT qty_cap');
    await letter.retry('failed');
    await waitForEqual(harness.source, harness.target, pair);
    expect(await harness.runtime.queues.deadLetter.getJobState(letter.id!)).toBe('completed');
  });

  it('connections killed from the server side mid-stream (KILL, pg_terminate_backend) lose nothing', async () => {
    const workloadConnection = await session.serverId();
    const workload = runWorkload(session, ids, { transactions: 40, seed: 7, nextId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // This pipeline's own connections only: the servers are shared with other test files.
    if (sourceEngine === 'postgres' && mode === 'logical') {
      const slot = replicationObjectName('p', 'rowsync', `${tag}_src`);
      await until(async () => (await harness.source.execute('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]))[0]?.active_pid, 'the walsender');
      const [{ killed }] = (await harness.source.execute(
        'SELECT pg_terminate_backend(active_pid) AS killed FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL', [slot],
      )) as [{ killed: boolean }];
      expect(killed).toBe(true);
    }
    for (const [engine, database, namespace] of [[sourceEngine, harness.source, `${tag}_src`], [targetEngine, harness.target, `${tag}_dst`]] as const) {
      if (engine !== 'mysql') continue;
      // Every connection on this test's database: the reader's and the workers' pools, the polling reader.
      const threads = await database.execute('SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID() AND ID <> ?', [
        namespace,
        workloadConnection,
      ]);
      for (const thread of threads) await database.execute(`KILL ${Number(thread.ID)}`).catch(() => undefined);
    }
    await workload;
    await runWorkload(session, ids, { transactions: 10, seed: 8, nextId });
    await waitForEqual(harness.source, harness.target, pair);
  });

  it('Redis losing its data mid-stream loses nothing', async () => {
    const workload = runWorkload(session, ids, { transactions: 40, seed: 3, nextId });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await deleteRedisPrefix(harness.config.redis.prefix);
    await workload;
    await runWorkload(session, ids, { transactions: 10, seed: 4, nextId });
    await waitForEqual(harness.source, harness.target, pair);
  });

  // MySQL/MariaDB fire no trigger on TRUNCATE: polling cannot see it there (a documented limit).
  it.skipIf(sourceEngine === 'mysql' && mode === 'polling')('a TRUNCATE in the stream reconciles the table', async () => {
    const runsBefore = (await harness.runtime.queues.run.getJobs(['completed', 'active', 'waiting', 'waiting-children'])).length;
    await session.run('TRUNCATE TABLE items');
    ids.clear();
    await until(async () => {
      const runs = await harness.runtime.queues.run.getJobs(['completed', 'active', 'waiting', 'waiting-children']);
      return runs.length > runsBefore && runs.some((job) => job.id?.endsWith('.cdc-truncate-or-schema-change'));
    }, 'the reconcile run of the truncated table');
    await waitForEqual(harness.source, harness.target, pair);
    expect((await harness.target.countRange(pair.target, {}))).toBe(0);
    await runWorkload(session, ids, { transactions: 10, seed: 5, nextId });
    await waitForEqual(harness.source, harness.target, pair);
  });

  it('status shows the mode, the durable position and the lag of each target', async () => {
    const status = await until(async () => {
      const [entry] = await readCdcStatus(harness.runtime.redis, harness.config.redis.prefix);
      return entry?.state === 'streaming' && entry.targets[0]?.lagMs === 0 ? entry : undefined;
    }, 'a streaming status');
    expect(status).toMatchObject({ pipeline: 'p', mode, targets: [{ target: 'dst', queuedJobs: 0 }] });
    const checkpoint = await harness.target.readCheckpoint('p', 'src');
    expect(checkpoint).toBeDefined();
    await until(async () => (await readCdcStatus(harness.runtime.redis, harness.config.redis.prefix))[0]?.targets[0]?.checkpoint === (await harness.target.readCheckpoint('p', 'src')), 'status position = durable checkpoint');
  });
});
