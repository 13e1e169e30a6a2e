import { DEFAULT_METRICS_PORT, type Config } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import type { Runtime } from '../../jobs/runtime.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';

/** Env var for the metrics port of a process (a number, 0 for any free port, or `off`), between the file and `--metrics-port`. */
export const METRICS_PORT_ENV = 'ROWSYNC_METRICS_PORT';

/** `--metrics-port` as parsed: a port (0: any free one) or `off`. */
export type MetricsPortOption = number | 'off';

export type MetricsListen =
  | { readonly enabled: false }
  | {
      readonly enabled: true;
      readonly host: string;
      readonly port: number;
      /** Where the port came from (named in errors); undefined: the default port. */
      readonly from: string | undefined;
    };

/**
 * Where a process serves its metrics, layered as every setting is: the default (127.0.0.1:9464),
 * then `metrics` in the config file, then ROWSYNC_METRICS_PORT, then `--metrics-port`.
 */
export function resolveMetricsListen(config: Config, flag: MetricsPortOption | undefined, env: NodeJS.ProcessEnv = process.env): MetricsListen {
  const fromEnv = parseEnvPort(env[METRICS_PORT_ENV]);
  const choice: { port: MetricsPortOption | undefined; from: string | undefined } =
    flag !== undefined
      ? { port: flag, from: '--metrics-port' }
      : fromEnv !== undefined
        ? { port: fromEnv, from: METRICS_PORT_ENV }
        : { port: config.metrics.port, from: config.metrics.port === undefined ? undefined : 'metrics.port' };
  if (choice.port === 'off' || (choice.from !== '--metrics-port' && choice.from !== METRICS_PORT_ENV && !config.metrics.enabled)) {
    return { enabled: false };
  }
  return { enabled: true, host: config.metrics.host, port: choice.port ?? DEFAULT_METRICS_PORT, from: choice.from };
}

/**
 * Starts the metrics server of a long-running command, and says where on stderr
 * (`metrics on http://127.0.0.1:9464/metrics`). A port named by the file, the environment or the flag
 * that is taken fails the command (ConfigError naming the option); the default port taken (a second
 * rowsync process on the host) is a warning, and the process runs without metrics.
 */
export async function serveMetrics(runtime: Runtime, logger: Logger, flag: MetricsPortOption | undefined): Promise<MetricsServer | undefined> {
  const listen = resolveMetricsListen(runtime.config, flag);
  if (!listen.enabled) return undefined;
  try {
    const server = await startMetricsServer(runtime, { host: listen.host, port: listen.port });
    logger.info({ endpoint: `${server.url}metrics` }, 'metrics server listening');
    process.stderr.write(`metrics on ${server.url}metrics (health: ${server.url}healthz)\n`);
    return server;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const where = `${listen.host}:${listen.port}`;
    if (code === 'EADDRINUSE' && listen.from === undefined) {
      const message = `metrics not served: the default port ${where} is taken (another rowsync process?); set metrics.port or --metrics-port (0: any free port, off: none)`;
      logger.warn(message);
      process.stderr.write(`warning: ${message}\n`);
      return undefined;
    }
    const option = code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' ? 'metrics.host' : (listen.from ?? 'metrics.port');
    throw new ConfigError(`${option}: cannot serve metrics on ${where} (${code ?? (error as Error).message})`, { subject: option });
  }
}

function parseEnvPort(text: string | undefined): MetricsPortOption | undefined {
  if (text === undefined || text === '') return undefined;
  if (text === 'off') return 'off';
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`${METRICS_PORT_ENV}: expected a port (0-65535, 0: any free port) or 'off', got '${text}'`, { subject: METRICS_PORT_ENV });
  }
  return port;
}
