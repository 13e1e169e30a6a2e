import { serveMetrics, type MetricsPortOption } from '../../metrics/serve-metrics.js';
import { openApi, serveUntilSignal, type GlobalOptions } from '../context.js';
import { boardCredentials } from './board.js';

/** `rowsync start`: scheduler + workers + CDC readers + board in one process, for a single machine. */
export async function startCommand(options: GlobalOptions & { readonly metricsPort?: MetricsPortOption }): Promise<number> {
  const { rowsync, runtime, logger } = openApi(options, 'start');
  const metrics = await serveMetrics(runtime, logger, options.metricsPort);
  const workers = await rowsync.startWorkers();
  const readers = await rowsync.startCdc();
  const scheduler = rowsync.startScheduler();
  const board = await rowsync.startBoard(boardCredentials());
  logger.info({ board: board.url, scheduled: scheduler.scheduled, cdc: readers.readers }, 'rowsync started');
  process.stderr.write(`Bull Board on ${board.url}\n`);
  process.stderr.write(`overview on ${board.overviewUrl}\n`);
  return serveUntilSignal(logger, async () => {
    // Readers first: they release their leader locks, and a standby elsewhere takes over.
    await readers.stop();
    await scheduler.stop();
    await board.stop();
    await metrics?.close();
    await workers.stop();
    await rowsync.close();
  });
}
