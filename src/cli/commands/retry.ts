import { ConfigError } from '../../errors/index.js';
import { openRuntime, type GlobalOptions } from '../context.js';
import { failedJobsOfRun } from '../run-monitor.js';
import { processAndWait } from './reconcile.js';

export interface RetryOptions extends GlobalOptions {
  readonly run: string;
  readonly workers?: number;
  readonly wait?: boolean;
  readonly json?: boolean;
}

/**
 * `rowsync retry`: moves every failed job of a run back to its queue (what Bull Board's retry does),
 * then, by default, processes and waits for the run like `reconcile`.
 */
export async function retryCommand(options: RetryOptions): Promise<number> {
  const { runtime, config } = openRuntime(options, 'retry');
  try {
    if (!(await runtime.queues.run.getJob(options.run))) {
      throw new ConfigError(`--run: no run '${options.run}' in Redis (prefix ${config.redis.prefix})`, { subject: '--run' });
    }
    let retried = 0;
    for (const queue of runtime.queues.all()) {
      for (const job of await failedJobsOfRun(queue, options.run)) {
        await job.retry('failed', { resetAttemptsMade: true });
        retried += 1;
      }
    }
    process.stderr.write(`retried ${retried} failed job(s) of run ${options.run}\n`);
    if (options.wait === false) return 0;
    return await processAndWait(runtime, options.run, {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.json ? { json: true } : {}),
      ...(options.config ? { configFile: options.config } : {}),
    });
  } finally {
    await runtime.close();
  }
}
