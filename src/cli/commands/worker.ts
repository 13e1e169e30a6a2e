import { serveMetrics, type MetricsPortOption } from '../../metrics/serve-metrics.js';
import { openApi, serveUntilSignal, type GlobalOptions } from '../context.js';

export interface WorkerOptions extends GlobalOptions {
  readonly concurrency?: number;
  readonly metricsPort?: MetricsPortOption;
}

/** `rowsync worker`: processes jobs until SIGTERM/SIGINT, then lets active jobs finish. */
export async function workerCommand(options: WorkerOptions): Promise<number> {
  const { rowsync, runtime, logger } = openApi(options, 'worker');
  const metrics = await serveMetrics(runtime, logger, options.metricsPort);
  const workers = await rowsync.startWorkers(options.concurrency ? { concurrency: options.concurrency } : {});
  // One worker per queue.
  logger.info({ pid: process.pid, queues: runtime.queues.all().length }, 'worker ready');
  return serveUntilSignal(logger, async () => {
    await workers.stop();
    await metrics?.close();
    // Jobs handed back at the shutdown bound: close() then does not wait for their queries.
    await rowsync.close();
  });
}
