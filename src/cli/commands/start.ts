import { startBoard } from '../../../workers/board.js';
import { startScheduler } from '../../../workers/scheduler.js';
import { startWorkers } from '../../../workers/start-workers.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';
import { boardCredentials } from './board.js';

/** `rowsync start`: scheduler + workers + board in one process, for a single machine. */
export async function startCommand(options: GlobalOptions): Promise<number> {
  const { runtime, config, logger } = openRuntime(options, 'start');
  const workers = await startWorkers(runtime);
  const scheduler = startScheduler(runtime);
  const board = await startBoard(runtime.queues, { host: config.board.host, port: config.board.port, ...boardCredentials() });
  logger.info({ board: board.url, scheduled: scheduler.scheduled }, 'rowsync started');
  process.stderr.write(`Bull Board on ${board.url}\n`);
  await untilSignal();
  await scheduler.stop();
  await board.close();
  await workers.close();
  await runtime.close();
  return 0;
}
