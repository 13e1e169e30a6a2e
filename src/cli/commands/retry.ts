import { openApi, type GlobalOptions } from '../context.js';
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
  const { rowsync } = openApi(options, 'retry');
  try {
    const retried = await rowsync.retryRun(options.run);
    process.stderr.write(`retried ${retried} failed job(s) of run ${options.run}\n`);
    if (options.wait === false) return 0;
    return await processAndWait(rowsync, options.run, {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      ...(options.json ? { json: true } : {}),
      ...(options.config ? { configFile: options.config } : {}),
    });
  } finally {
    await rowsync.close();
  }
}
