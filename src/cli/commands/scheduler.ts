import { serveMetrics, type MetricsPortOption } from '../../metrics/serve-metrics.js';
import { openApi, serveUntilSignal, type GlobalOptions } from '../context.js';

/** `rowsync scheduler`: enqueues each pipeline's `reconcile.schedule` until SIGTERM/SIGINT. */
export async function schedulerCommand(options: GlobalOptions & { readonly metricsPort?: MetricsPortOption }): Promise<number> {
  const { rowsync, runtime, logger } = openApi(options, 'scheduler');
  const metrics = await serveMetrics(runtime, logger, options.metricsPort);
  const scheduler = rowsync.startScheduler();
  if (scheduler.scheduled.length === 0) logger.warn('no pipeline has reconcile.schedule; nothing to do until one does');
  for (const line of scheduler.scheduled) logger.info(`scheduled ${line}`);
  return serveUntilSignal(logger, async () => {
    await scheduler.stop();
    await metrics?.close();
    await rowsync.close();
  });
}
