import { startWorkers } from '../../../workers/start-workers.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';

export interface WorkerOptions extends GlobalOptions {
  readonly concurrency?: number;
}

/** `rowsync worker`: processes jobs until SIGTERM/SIGINT, then lets active jobs finish. */
export async function workerCommand(options: WorkerOptions): Promise<number> {
  const { runtime, logger } = openRuntime(options, 'worker');
  const workers = await startWorkers(runtime, options.concurrency ? { chunk: options.concurrency } : {});
  logger.info({ pid: process.pid, queues: workers.workers.length }, 'worker ready');
  const signal = await untilSignal();
  logger.info({ signal }, 'stopping: finishing active jobs');
  // close() waits for active jobs; a second signal exits at once, and the jobs' locks expire so
  // another worker picks them up within lockDuration + stalledInterval.
  const forced = untilSignal().then(() => process.exit(130));
  void forced;
  await workers.close();
  await runtime.close();
  return 0;
}
