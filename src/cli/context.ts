import type { Config } from '../config/index.js';
import { EXIT } from './exit-codes.js';
import { createLogger, redactSecrets, type Logger } from '../logging/logger.js';
import type { Runtime } from '../../jobs/runtime.js';
import { engineOf, openRowsync, type Rowsync } from '../api/rowsync.js';

/** Options every command takes. */
export interface GlobalOptions {
  readonly config?: string;
}

/** Commands that serve until a signal: without Redis they wait and reconnect with backoff. */
const LONG_RUNNING = new Set(['worker', 'scheduler', 'cdc', 'start', 'board']);
/** How long a one-shot command waits for Redis (at start, or after losing it) before it gives up. */
export const REDIS_WAIT_MS = 5000;

/**
 * A command's rowsync instance (the library's API: commands parse options, call it and print),
 * over the `--config` file (default $ROWSYNC_CONFIG), logging as `rowsync-<name>` on stderr. The
 * runtime underneath is for what only the CLI does: the Redis watchdog of one-shot commands, which
 * exits the process, and the metrics server.
 */
export function openApi(options: GlobalOptions, name: string): { rowsync: Rowsync; config: Config; logger: Logger; runtime: Runtime } {
  const logger = createLogger({ name: `rowsync-${name}` });
  const rowsync = openRowsync({ file: options.config }, { logger });
  const runtime = engineOf(rowsync);
  if (!LONG_RUNNING.has(name)) exitWithoutRedis(runtime);
  return { rowsync, config: rowsync.config, logger, runtime };
}

/**
 * A one-shot command (`reconcile`, `status`, `retry`, ...) that cannot reach Redis within
 * REDIS_WAIT_MS, at start or after losing it, prints one line naming Redis and its address and
 * exits 1 (its commands would otherwise wait for Redis forever).
 */
function exitWithoutRedis(runtime: Runtime): void {
  let lastError = 'no answer';
  // This watchdog's one line replaces the connection warnings.
  runtime.redisErrors.silenced = true;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    timer ??= setTimeout(() => {
      process.stderr.write(`error: cannot reach Redis at ${redisAddress(runtime.config)} after ${REDIS_WAIT_MS / 1000} s: ${lastError}\n`);
      process.exit(EXIT.failed);
    }, REDIS_WAIT_MS);
    timer.unref();
  };
  const disarm = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  runtime.redis.on('error', (error: Error) => {
    lastError = redactSecrets(error.message);
  });
  runtime.redis.on('ready', disarm);
  runtime.redis.on('close', () => {
    // Closed by us (runtime.close()) is not a lost connection.
    if (!runtime.closing) arm();
  });
  if (runtime.redis.status !== 'ready') arm();
}

/** `redis.url` or the cluster's startup nodes, without credentials. */
function redisAddress(config: Config): string {
  const { cluster, url } = config.redis as { cluster?: readonly string[]; url: string };
  return cluster && cluster.length > 0
    ? `${cluster.map((node) => redactSecrets(node)).join(', ')} (redis.cluster)`
    : `${redactSecrets(url)} (redis.url)`;
}

/** Resolves when the process receives SIGINT or SIGTERM (once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}


/**
 * The life of a long-running command: serves until SIGTERM or SIGINT, then runs `stop` (stop
 * readers, scheduler and board, let jobs finish within `workers.shutdownTimeoutMs`, hand back the
 * rest, close connections). A second signal while stopping exits at once (130). Resolves with the
 * exit code (0).
 */
export async function serveUntilSignal(logger: Logger, stop: () => Promise<void>): Promise<number> {
  const signal = await untilSignal();
  logger.info({ signal }, 'stopping: finishing active jobs (a second signal exits at once)');
  const again = untilSignal().then((second) => {
    logger.warn({ signal: second }, 'second signal: exiting at once');
    process.exit(EXIT.signalledTwice);
  });
  void again;
  const startedAt = Date.now();
  await stop();
  logger.info({ ms: Date.now() - startedAt }, 'stopped');
  return 0;
}
