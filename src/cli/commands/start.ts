import { startBoard } from '../../../workers/board.js';
import { startCdcReaders } from '../../../workers/cdc-readers.js';
import { startScheduler } from '../../../workers/scheduler.js';
import { startWorkers } from '../../../workers/start-workers.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';
import { boardCredentials } from './board.js';

/** `rowsync start`: scheduler + workers + CDC readers + board in one process, for a single machine. */
export async function startCommand(options: GlobalOptions): Promise<number> {
  const { runtime, config, logger } = openRuntime(options, 'start');
  const workers = await startWorkers(runtime);
  const readers = await startCdcReaders(runtime);
  const scheduler = startScheduler(runtime);
  const board = await startBoard(runtime.queues, { host: config.board.host, port: config.board.port, ...boardCredentials() });
  logger.info({ board: board.url, scheduled: scheduler.scheduled, cdc: readers.readers.length }, 'rowsync started');
  process.stderr.write(`Bull Board on ${board.url}\n`);
  await untilSignal();
  const forced = untilSignal().then(() => process.exit(130));
  void forced;
  await readers.stop();
  await scheduler.stop();
  await board.close();
  await workers.close();
  await runtime.close();
  return 0;
}
