import { loadConfigFile, type Config } from '../config/index.js';
import { createLogger, type Logger } from '../logging/logger.js';
import { Runtime } from '../../jobs/runtime.js';

/** Options every command takes. */
export interface GlobalOptions {
  readonly config?: string;
}

export function openRuntime(options: GlobalOptions, name: string): { config: Config; logger: Logger; runtime: Runtime } {
  const config = loadConfigFile(options.config);
  const logger = createLogger({ name: `rowsync-${name}` });
  return { config, logger, runtime: new Runtime(config, logger) };
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

