import { BOARD_PASSWORD_ENV, BOARD_USER_ENV, startBoard } from '../../../workers/board.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';

export interface BoardCommandOptions extends GlobalOptions {
  readonly host?: string;
  readonly port?: number;
}

/** `rowsync board`: Bull Board over every rowsync queue, retries enabled. */
export async function boardCommand(options: BoardCommandOptions): Promise<number> {
  const { runtime, config } = openRuntime(options, 'board');
  try {
    const board = await startBoard(runtime.queues, {
      host: options.host ?? config.board.host,
      port: options.port ?? config.board.port,
      ...boardCredentials(),
    });
    process.stderr.write(`Bull Board on ${board.url}\n`);
    await untilSignal();
    await board.close();
  } finally {
    await runtime.close();
  }
  return 0;
}

export function boardCredentials(): { user?: string; password?: string } {
  const user = process.env[BOARD_USER_ENV];
  const password = process.env[BOARD_PASSWORD_ENV];
  return { ...(user ? { user } : {}), ...(password ? { password } : {}) };
}
