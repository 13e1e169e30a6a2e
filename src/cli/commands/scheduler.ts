import { startScheduler } from '../../../workers/scheduler.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';

/** `rowsync scheduler`: enqueues each pipeline's `reconcile.schedule` until SIGTERM/SIGINT. */
export async function schedulerCommand(options: GlobalOptions): Promise<number> {
  const { runtime, logger } = openRuntime(options, 'scheduler');
  const scheduler = startScheduler(runtime);
  if (scheduler.scheduled.length === 0) logger.warn('no pipeline has reconcile.schedule; nothing to do until one does');
  for (const line of scheduler.scheduled) logger.info(`scheduled ${line}`);
  await untilSignal();
  await scheduler.stop();
  await runtime.close();
  return 0;
}
