import cron, { type ScheduledTask } from 'node-cron';
import { scheduledRunId } from '../jobs/job-ids.js';
import { enqueueRun } from '../jobs/reconcile-run.job.js';
import type { Runtime } from '../jobs/runtime.js';

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
          options.onEnqueued?.(runId, added);
        } catch (error) {
          runtime.logger.error({ pipeline: pipeline.name, runId, err: (error as Error).message }, 'could not enqueue scheduled run');
        }
      },
      { ...(timezone ? { timezone } : {}), name: `rowsync-${pipeline.name}`, noOverlap: true },
    );
    tasks.push(task);
  }
  return {
    scheduled,
    async stop() {
      await Promise.all(tasks.map((task) => task.stop()));
    },
  };
}
