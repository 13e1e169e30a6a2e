/**
 * rowsync on a Redis Cluster of three masters (started on loopback by `scripts/services.sh`): a
 * reconcile run with drift processed by the workers of two Runtimes (two machines sharing one
 * Redis) repairs everything; every key under a hash-tagged prefix lives in that prefix's one slot,
 * and two prefixes can live on different masters; the key leases, the database semaphore and the
 * leader lock work there, while a prefix without hash tag would fail (CROSSSLOT); a binlog stream
 * read by one of two readers (the other standing by on the cluster-held lock) converges row by row.
 */
import { randomBytes } from 'node:crypto';
import type { Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newRunId } from '../../jobs/job-ids.js';
import { QUEUE_NAMES } from '../../jobs/queues.js';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import { Runtime } from '../../jobs/runtime.js';
import { parseConfig } from '../../src/config/index.js';
import { KeyLeases } from '../../src/coordination/key-leases.js';
import { LeaderLock } from '../../src/coordination/leader-lock.js';
import { createRedisClient, redisMasters, type RedisClient } from '../../src/coordination/redis-client.js';
import { RedisSemaphore } from '../../src/coordination/redis-semaphore.js';
import { createLogger } from '../../src/logging/logger.js';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import { startWorkers, type RunningWorkers } from '../../workers/start-workers.js';
import { changeSourceOf, readCdcStatus, startCdcReaders, type RunningReaders } from '../../workers/cdc-readers.js';
import type { ChangeSource } from '../../src/dialect/change-source.js';
import { ITEMS_DDL, itemValues, openSession, runWorkload, until, waitForEqual, type Session } from '../support/cdc-fixture.js';
import { createHarness, type Harness } from '../support/harness.js';
import { DRIFT, expectEqualTables, seedOrders, type Tables } from '../support/orders-fixture.js';
import { deleteRedisKeys, deleteRedisPrefix, scanRedisKeys, scratchUrl } from '../support/scratch.js';
import { testServers } from '../support/servers.js';

const nodes = testServers().redisClusterNodes;
const cluster = { url: nodes[0]!, cluster: nodes };
const logger = createLogger({ level: process.env.ROWSYNC_LOG_LEVEL ?? 'silent' });

const table = (report: RunReport, name: string): TableReport => report.tables.find((entry) => entry.table === name)!;

/** The slot of a key, as the cluster computes it. */
async function slotOf(redis: RedisClient, key: string): Promise<number> {
  return Number(await redis.call('CLUSTER', 'KEYSLOT', key));
}

/** `host:port` of the master serving each slot, from CLUSTER SLOTS. */
async function slotOwners(redis: RedisClient): Promise<(slot: number) => string> {
  const ranges = (await redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  return (slot) => {
    const range = ranges.find(([first, last]) => slot >= first && slot <= last);
    if (!range) throw new Error(`slot ${slot} is not served`);
    return `${range[2][0]}:${range[2][1]}`;
  };
}

/** The masters (`host:port`) holding keys that match `pattern`. */
async function mastersHolding(redis: RedisClient, pattern: string): Promise<Set<string>> {
  const holders = new Set<string>();
  for (const node of redisMasters(redis)) {
    const [, keys] = await node.scan('0', 'MATCH', pattern, 'COUNT', 10_000);
    if (keys.length > 0) holders.add(`${node.options.host}:${node.options.port}`);
  }
  return holders;
}

describe('Redis Cluster (three masters)', () => {
  let admin: RedisClient;

  beforeAll(async () => {
    admin = createRedisClient(cluster, { maxRetriesPerRequest: 3 });
    const info = String(await admin.call('CLUSTER', 'INFO'));
    expect(info, `the cluster of scripts/services.sh (${nodes.join(', ')}) is not ready`).toMatch(/cluster_state:ok/);
    expect(redisMasters(admin)).toHaveLength(3);
  });

  afterAll(async () => {
    await admin?.quit();
  });

  describe('a reconcile run by the workers of two runtimes', () => {
    let harness: Harness;
    let tables: Tables;
    let secondMachine: Runtime;
    const running: RunningWorkers[] = [];

    beforeAll(async () => {
      harness = await createHarness({
        tag: 'rcluster',
        sourceEngine: 'mysql',
        targetEngine: 'postgres',
        tables: ['orders', 'order_lines'],
        reconcile: { chunkSize: 200 },
        // One chunk at a time per machine, so that both machines take chunks; the source behind
        // the cluster-wide semaphore (its key lives under the prefix too).
        workers: { concurrency: { table: 1, chunk: 1, apply: 2, cdc: 1 } },
        connections: { src: { url: scratchUrl('mysql', 'rcluster_src'), maxConcurrentQueries: 3 } },
        redis: { cluster: nodes },
      });
      tables = await seedOrders(harness.source, harness.target);
      secondMachine = new Runtime(harness.config, logger);
      running.push(await harness.startWorkers(), await startWorkers(secondMachine));
    });

    afterAll(async () => {
      for (const workers of running.slice(1)) await workers.close();
      await secondMachine?.close();
      await harness?.close();
    });

    it('repairs exactly the injected drift, both machines taking chunks', async () => {
      const chunksDone = running.map((workers) => {
        const counter = { done: 0 };
        const chunkWorker = workers.workers.find((worker) => worker.name === QUEUE_NAMES.chunk) as Worker;
        chunkWorker.on('completed', () => (counter.done += 1));
        return counter;
      });
      const outcome = await harness.run();
      if (outcome.kind !== 'completed') throw new Error(`run ended ${JSON.stringify(outcome)}`);
      const report = outcome.report;
      expect(table(report, 'orders')).toMatchObject({
        missing: DRIFT.missing.length, extra: DRIFT.extra.length, changed: DRIFT.changed.length,
        inserted: DRIFT.missing.length, updated: DRIFT.changed.length, deleted: DRIFT.extra.length, errors: [],
      });
      expect(table(report, 'order_lines')).toMatchObject({ missing: 1, extra: 1, changed: 1, inserted: 1, updated: 1, deleted: 1, errors: [] });
      expect(await expectEqualTables(harness.source, harness.target, tables.orders)).toEqual([]);
      expect(await expectEqualTables(harness.source, harness.target, tables.lines)).toEqual([]);
      // 3000 orders in chunks of 200, 800 lines in chunks of 200: at least 19 chunk jobs, shared.
      const chunks = chunksDone.map((counter) => counter.done);
      expect(chunks[0]! + chunks[1]!).toBe(table(report, 'orders').chunks + table(report, 'order_lines').chunks);
      expect(chunks[0]!, `chunks per machine: ${chunks.join(', ')}`).toBeGreaterThan(0);
      expect(chunks[1]!, `chunks per machine: ${chunks.join(', ')}`).toBeGreaterThan(0);
      // A second run finds nothing.
      const again = await harness.run();
      if (again.kind !== 'completed') throw new Error(`second run ended ${JSON.stringify(again)}`);
      expect(again.report.tables.map((entry) => entry.missing + entry.extra + entry.changed)).toEqual([0, 0]);
    });

    it("keeps every key of the prefix in the prefix's one slot, on one master", async () => {
      const prefix = harness.config.redis.prefix;
      expect(prefix).toMatch(/^\{t-rcluster-[0-9a-f]{6}\}$/);
      const keys = await scanRedisKeys(admin, `${prefix}:*`);
      // BullMQ's queues and flows, and rowsync's own keys: run progress, the enqueued marker, the semaphore.
      for (const kind of [':reconcile-run:', ':reconcile-table:', ':reconcile-chunk:', ':run-progress:', ':run-enqueued:']) {
        expect(keys.some((key) => key.includes(kind)), `a key with ${kind} among ${keys.length}`).toBe(true);
      }
      const slot = await slotOf(admin, prefix);
      const slots = new Set(await Promise.all(keys.map((key) => slotOf(admin, key))));
      expect([...slots]).toEqual([slot]);
      const owner = (await slotOwners(admin))(slot);
      expect([...(await mastersHolding(admin, `${prefix}:*`))]).toEqual([owner]);
    });
  });

  describe('a CDC stream through the cluster, one reader leading and one standing by', () => {
    let harness: Harness;
    let secondMachine: Runtime;
    let source: ChangeSource;
    let session: Session;
    const workers: RunningWorkers[] = [];
    const readers: RunningReaders[] = [];
    const ids = new Set<number>();
    const nextId = { value: 0 };

    beforeAll(async () => {
      harness = await createHarness({
        tag: 'rclcdc',
        sourceEngine: 'mysql',
        targetEngine: 'postgres',
        tables: ['items'],
        pipeline: {
          cdc: { mode: 'binlog', batchWindowMs: 20, heartbeatMs: 500, attempts: 2, backoffMs: 100, serverId: 100_000 + randomBytes(3).readUIntBE(0, 3) },
        },
        redis: { cluster: nodes },
      });
      await harness.source.execute(ITEMS_DDL.mysql);
      await harness.target.execute(ITEMS_DDL.postgres);
      const seed = Array.from({ length: 20 }, () => itemValues((nextId.value += 1), 0));
      for (let offset = 1; offset <= 20; offset += 1) ids.add(offset);
      await harness.source.execute(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${seed.join(', ')}`);
      source = await changeSourceOf(harness.runtime, harness.runtime.pipeline('p'));
      await source.setup();
      secondMachine = new Runtime(harness.config, logger);
      workers.push(await harness.startWorkers(), await startWorkers(secondMachine));
      readers.push(await startCdcReaders(harness.runtime), await startCdcReaders(secondMachine));
      session = await openSession('mysql', 'rclcdc_src');
    });

    afterAll(async () => {
      for (const running of readers) await running.stop();
      await session?.close();
      await source?.teardown().catch(() => undefined);
      for (const running of workers.slice(1)) await running.close();
      await secondMachine?.close();
      await harness?.close();
    });

    it('converges a live workload row by row, its keys in the prefix slot', async () => {
      const pair = (await harness.runtime.tableContext('p', 'items', 'dst')).pair;
      await waitForEqual(harness.source, harness.target, pair);
      await runWorkload(session, ids, { transactions: 30, seed: 7, nextId });
      await waitForEqual(harness.source, harness.target, pair);
      const prefix = harness.config.redis.prefix;
      const status = await until(async () => {
        const streams = await readCdcStatus(admin, prefix);
        return streams.length === 1 && streams[0]!.state === 'streaming' ? streams : undefined;
      }, 'one streaming reader');
      expect(status).toHaveLength(1);
      const keys = await scanRedisKeys(admin, `${prefix}:*`);
      for (const kind of [':cdc-status', ':cdc-leader:', ':cdc-batch:']) {
        expect(keys.some((key) => key.includes(kind)), `a key with ${kind} among ${keys.length}`).toBe(true);
      }
      const slot = await slotOf(admin, prefix);
      expect([...new Set(await Promise.all(keys.map((key) => slotOf(admin, key))))]).toEqual([slot]);
    });
  });

  it('places two prefixes on different masters when their tags hash to slots of different masters', async () => {
    const owners = await slotOwners(admin);
    const hex = randomBytes(3).toString('hex');
    // Find two tags whose slots two different masters serve (the slot ranges are thirds of 16384).
    const candidates = await Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const prefix = `{t-rcl-spread-${hex}-${index}}`;
        return { prefix, master: owners(await slotOf(admin, prefix)) };
      }),
    );
    const first = candidates[0]!;
    const second = candidates.find((candidate) => candidate.master !== first.master)!;
    expect(second).toBeDefined();
    const runtimes = [first, second].map(
      ({ prefix }) =>
        new Runtime(
          parseConfig({
            redis: { cluster: nodes, prefix },
            connections: { src: scratchUrl('mysql', 'rcl_none_src'), dst: scratchUrl('postgres', 'rcl_none_dst') },
            pipelines: [{ name: 'p', source: 'src', targets: ['dst'] }],
          }),
          logger,
        ),
    );
    try {
      // A run enqueued under each prefix (nothing processes them): BullMQ's keys and rowsync's marker.
      for (const runtime of runtimes) {
        expect(await enqueueRun(runtime, { runId: newRunId('p'), pipeline: 'p', dryRun: true, requestedAt: Date.now() })).toBe(true);
      }
      expect([...(await mastersHolding(admin, `${first.prefix}:*`))]).toEqual([first.master]);
      expect([...(await mastersHolding(admin, `${second.prefix}:*`))]).toEqual([second.master]);
      expect(first.master).not.toBe(second.master);
    } finally {
      for (const runtime of runtimes) {
        await Promise.all(runtime.queues.all().map((queue) => queue.obliterate({ force: true }).catch(() => undefined)));
        await runtime.close();
      }
      for (const { prefix } of [first, second]) await deleteRedisPrefix(prefix, cluster);
    }
  });

  describe('coordination', () => {
    const prefix = `{t-rcl-coord-${randomBytes(3).toString('hex')}}`;

    afterAll(async () => {
      await deleteRedisPrefix(prefix, cluster);
      await deleteRedisKeys(admin, 't-rcl-untagged-*');
    });

    it('key leases are taken all or none, and some-of, under a hash-tagged prefix', async () => {
      const leases = new KeyLeases(admin, prefix);
      const ids = Array.from({ length: 40 }, (_, index) => index * 7919);
      const first = (await leases.tryHold(ids))!;
      expect(first).toBeDefined();
      expect(await leases.tryHold([ids[3]!, 1])).toBeUndefined();
      const some = await leases.holdSome([ids[5]!, 2, 3]);
      expect([...some.held].sort((a, b) => a - b)).toEqual([2, 3]);
      expect(await leases.held([...ids.slice(0, 2), 1, 2, 3])).toEqual([0, 2, 3, 7919]);
      await first.release();
      await some.lease.release();
      expect(await leases.held([...ids, 1, 2, 3])).toEqual([]);
    });

    it('a prefix without hash tag spreads the leases over slots: the cluster refuses the script', async () => {
      const leases = new KeyLeases(admin, `t-rcl-untagged-${randomBytes(3).toString('hex')}`);
      await expect(leases.tryHold(Array.from({ length: 40 }, (_, index) => index))).rejects.toThrow(/CROSSSLOT/);
    });

    it('the database semaphore caps concurrent holders', async () => {
      const semaphore = new RedisSemaphore(admin, `${prefix}:db-slots:src`, { limit: 2 });
      let active = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 6 }, () =>
          semaphore.run(async () => {
            active += 1;
            most = Math.max(most, active);
            await new Promise((resolve) => setTimeout(resolve, 30));
            active -= 1;
          }),
        ),
      );
      expect(most).toBe(2);
      expect(await semaphore.held()).toBe(0);
    });

    it('the leader lock has one holder, and a second takes it once the first lets go', async () => {
      const key = `${prefix}:cdc-leader:p`;
      const [one, two] = [new LeaderLock(admin, key), new LeaderLock(admin, key)];
      expect(await one.tryAcquire(() => undefined)).toBe(true);
      expect(await two.tryAcquire(() => undefined)).toBe(false);
      await one.release();
      expect(await two.tryAcquire(() => undefined)).toBe(true);
      await two.release();
      expect(await admin.exists(key)).toBe(0);
    });
  });
});
