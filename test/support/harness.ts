import { randomBytes } from 'node:crypto';
import { parseConfig, type Config } from '../../src/config/index.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { createLogger } from '../../src/logging/logger.js';
import { newRunId } from '../../jobs/job-ids.js';
import { enqueueRun } from '../../jobs/reconcile-run.job.js';
import { Runtime } from '../../jobs/runtime.js';
import { startWorkers, type RunningWorkers } from '../../workers/start-workers.js';
import { watchRun, type RunOutcome } from '../../src/cli/run-monitor.js';
import { deleteRedisPrefix, dropScratch, openScratch, scratchUrl } from './scratch.js';
import { testServers } from './servers.js';

export interface Harness {
  readonly config: Config;
  readonly runtime: Runtime;
  readonly source: Database;
  readonly target: Database;
  /** Enqueues a run of the pipeline `p` and waits for its outcome (workers must be running). */
  run(options?: { dryRun?: boolean; tables?: string[]; runId?: string }): Promise<RunOutcome & { runId: string }>;
  startWorkers(): Promise<RunningWorkers>;
  close(): Promise<void>;
}

/**
 * A pipeline `p` from a fresh source namespace to a fresh target namespace on the test servers,
 * with its own Redis prefix so test files never see each other's queues.
 */
export async function createHarness(options: {
  readonly tag: string;
  readonly sourceEngine: Engine;
  readonly targetEngine: Engine;
  readonly reconcile?: Record<string, unknown>;
  readonly workers?: Record<string, unknown>;
  readonly tables?: string[];
  readonly connections?: Record<string, unknown>;
  /** More pipeline keys (`cdc`, the write policy...). */
  readonly pipeline?: Record<string, unknown>;
  /** The test Redis by default; `cluster` (startup nodes) runs on a Redis Cluster, under a hash-tagged prefix. */
  readonly redis?: { readonly cluster?: readonly string[]; readonly prefix?: string };
}): Promise<Harness> {
  const sourceNamespace = `${options.tag}_src`;
  const targetNamespace = `${options.tag}_dst`;
  const source = await openScratch(options.sourceEngine, sourceNamespace, 'src');
  const target = await openScratch(options.targetEngine, targetNamespace, 'dst');
  const config = parseConfig({
    redis: redisSection(options.tag, options.redis),
    connections: {
      src: scratchUrl(options.sourceEngine, sourceNamespace),
      dst: scratchUrl(options.targetEngine, targetNamespace),
      ...options.connections,
    },
    pipelines: [
      {
        name: 'p',
        source: 'src',
        targets: ['dst'],
        ...(options.tables ? { tables: options.tables } : {}),
        reconcile: { attempts: 2, backoffMs: 200, ...options.reconcile },
        ...options.pipeline,
      },
    ],
    workers: { lanes: 4, ...options.workers },
  });
  const runtime = new Runtime(config, createLogger({ level: process.env.ROWSYNC_LOG_LEVEL ?? 'silent' }));
  const running: RunningWorkers[] = [];
  return {
    config,
    runtime,
    source,
    target,
    async run(runOptions = {}) {
      const runId = runOptions.runId ?? newRunId('p');
      await enqueueRun(runtime, {
        runId,
        pipeline: 'p',
        dryRun: Boolean(runOptions.dryRun),
        requestedAt: Date.now(),
        ...(runOptions.tables ? { tables: runOptions.tables } : {}),
      });
      return { ...(await watchRun(runtime, runId, { intervalMs: 100 })), runId };
    },
    async startWorkers() {
      const workers = await startWorkers(runtime);
      running.push(workers);
      return workers;
    },
    /** Stops the workers and removes everything the harness made: queues, keys, namespaces. */
    async close() {
      for (const workers of running) await workers.close();
      await Promise.all(runtime.queues.all().map((queue) => queue.obliterate({ force: true }).catch(() => undefined)));
      await runtime.close();
      await source.close();
      await target.close();
      await deleteRedisPrefix(config.redis.prefix, config.redis);
      await dropScratch(options.sourceEngine, sourceNamespace);
      await dropScratch(options.targetEngine, targetNamespace);
    },
  };
}

/** The harness's `redis` config: its own prefix on the test Redis, or on a cluster with a hash tag. */
function redisSection(tag: string, redis: { readonly cluster?: readonly string[]; readonly prefix?: string } = {}): Record<string, unknown> {
  const unique = `t-${tag}-${randomBytes(3).toString('hex')}`;
  if (redis.cluster) return { cluster: [...redis.cluster], prefix: redis.prefix ?? `{${unique}}` };
  return { url: testServers().redisUrl, prefix: redis.prefix ?? unique };
}
