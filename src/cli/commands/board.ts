import { BOARD_PASSWORD_ENV, BOARD_USER_ENV } from '../../../workers/board.js';
import { serveMetrics, type MetricsPortOption } from '../../metrics/serve-metrics.js';
import { openApi, serveUntilSignal, type GlobalOptions } from '../context.js';

export interface BoardCommandOptions extends GlobalOptions {
  readonly host?: string;
  readonly port?: number;
  readonly metricsPort?: MetricsPortOption;
}

/** `rowsync board`: Bull Board over every rowsync queue, retries enabled, and the overview page. */
export async function boardCommand(options: BoardCommandOptions): Promise<number> {
  const { rowsync, runtime, logger } = openApi(options, 'board');
  let metrics: Awaited<ReturnType<typeof serveMetrics>>;
  try {
    metrics = await serveMetrics(runtime, logger, options.metricsPort);
    const board = await rowsync.startBoard({
      ...(options.host !== undefined ? { host: options.host } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...boardCredentials(),
    });
    process.stderr.write(`Bull Board on ${board.url}\n`);
    process.stderr.write(`overview on ${board.overviewUrl}\n`);
    return await serveUntilSignal(logger, () => board.stop());
  } finally {
    await metrics?.close();
    await rowsync.close();
  }
}

export function boardCredentials(): { user?: string; password?: string } {
  const user = process.env[BOARD_USER_ENV];
  const password = process.env[BOARD_PASSWORD_ENV];
  return { ...(user ? { user } : {}), ...(password ? { password } : {}) };
}
