import { RowsyncError } from './rowsync-error.js';

/** Invalid configuration or command-line usage. The CLI exits with code 2 for it. */
export class ConfigError extends RowsyncError {
  override readonly name = 'ConfigError';
  constructor(message: string, options: { subject?: string; cause?: unknown } = {}) {
    super('CONFIG_INVALID', message, options);
  }
}
