import cron, { type ScheduledTask } from 'node-cron';
import { scheduledRunId } from '../jobs/job-ids.js';
import { enqueueRun } from '../jobs/reconcile-run.job.js';
import type { Runtime } from '../jobs/runtime.js';
import { recordSchedulerTick } from '../src/metrics/instruments.js';

/**
 * Redis hash of each scheduled pipeline's last tick, fields `<pipeline>:runId`, `<pipeline>:startedAt`
 * and `<pipeline>:nextDueAt` (ms since the epoch; pipeline names contain no ':'). Any process's
 * metrics read it (rowsync_scheduled_run_*): a next tick that is overdue means every scheduler is
 * gone or failing, whichever process is left to tell.
 */
export const scheduledRunsKey = (prefix: string) => `${prefix}:scheduled-runs`;

export interface ScheduledRunRecord {
  readonly pipeline: string;
  readonly runId: string | undefined;
  readonly startedAt: number | undefined;
  readonly nextDueAt: number | undefined;
}

/** The last tick of each named pipeline (fields missing before its first tick). */
export async function readScheduledRuns(runtime: Pick<Runtime, 'redis' | 'config'>, pipelines: readonly string[]): Promise<ScheduledRunRecord[]> {
  if (pipelines.length === 0) return [];
  const fields = pipelines.flatMap((pipeline) => [`${pipeline}:runId`, `${pipeline}:startedAt`, `${pipeline}:nextDueAt`]);
  const values = await runtime.redis.hmget(scheduledRunsKey(runtime.config.redis.prefix), ...fields);
  const number = (text: string | null | undefined) => (text ? Number(text) : undefined);
  return pipelines.map((pipeline, index) => ({
    pipeline,
    runId: values[index * 3] ?? undefined,
    startedAt: number(values[index * 3 + 1]),
    nextDueAt: number(values[index * 3 + 2]),
  }));
}

export interface RunningScheduler {
  /** Pipelines with a schedule, as `name: cron (timezone)`. */
  readonly scheduled: readonly string[];
  stop(): Promise<void>;
}

/**
 * Enqueues each pipeline's `reconcile.schedule`. Any number of schedulers may run (for availability):
 * a tick's run id is derived from the pipeline and the tick's second, and a run job with that id is added
 * once, so two schedulers firing the same tick start one run.
 */
export function startScheduler(runtime: Runtime, options: { onEnqueued?: (runId: string, added: boolean) => void } = {}): RunningScheduler {
  const tasks: ScheduledTask[] = [];
  const scheduled: string[] = [];
  for (const pipeline of runtime.config.pipelines) {
    const { schedule, timezone } = pipeline.reconcile;
    if (!schedule) continue;
    scheduled.push(`${pipeline.name}: ${schedule}${timezone ? ` (${timezone})` : ''}`);
    const task = cron.schedule(
      schedule,
      async (context) => {
        // The slot node-cron matched, not `triggeredAt` (when the callback ran): two schedulers
        // agree on the slot even when one's timer fires late into the next second.
        const tick = context?.date ?? new Date();
        const runId = scheduledRunId(pipeline.name, tick);
        try {
          const added = await enqueueRun(runtime, { runId, pipeline: pipeline.name, dryRun: false, requestedAt: Date.now() });
          runtime.logger.info({ pipeline: pipeline.name, runId, added }, added ? 'scheduled run enqueued' : 'scheduled run already enqueued');
          recordSchedulerTick(pipeline.name, added ? 'enqueued' : 'already_enqueued');
          await recordTick(runtime, pipeline.name, { runId, startedAt: tick.getTime(), nextDueAt: task.getNextRun()?.getTime() }).catch((error: unknown) =>
            runtime.logger.warn({ pipeline: pipeline.name, err: (error as Error).message }, 'could not record the scheduled tick'),
          );
          options.onEnqueued?.(runId, added);
        } catch (error) {
          recordSchedulerTick(pipeline.name, 'failed');
          runtime.logger.error({ pipeline: pipeline.name, runId, err: (error as Error).message }, 'could not enqueue scheduled run');
        }
      },
      { ...(timezone ? { timezone } : {}), name: `rowsync-${pipeline.name}`, noOverlap: true },
    );
    tasks.push(task);
    // The next tick is due from now on (a changed schedule or a restart replaces an older due time).
    recordTick(runtime, pipeline.name, { nextDueAt: task.getNextRun()?.getTime() }).catch((error: unknown) =>
      runtime.logger.warn({ pipeline: pipeline.name, err: (error as Error).message }, 'could not record the next scheduled tick'),
    );
  }
  return {
    scheduled,
    async stop() {
      await Promise.all(tasks.map((task) => task.stop()));
    },
  };
}

async function recordTick(runtime: Runtime, pipeline: string, tick: { runId?: string; startedAt?: number; nextDueAt?: number | undefined }): Promise<void> {
  const fields: Record<string, string> = {};
  if (tick.runId !== undefined) fields[`${pipeline}:runId`] = tick.runId;
  if (tick.startedAt !== undefined) fields[`${pipeline}:startedAt`] = String(tick.startedAt);
  if (tick.nextDueAt !== undefined) fields[`${pipeline}:nextDueAt`] = String(tick.nextDueAt);
  if (Object.keys(fields).length > 0) await runtime.redis.hset(scheduledRunsKey(runtime.config.redis.prefix), fields);
}
