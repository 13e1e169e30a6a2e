import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Structured logs on stderr (stdout is reserved for `--json` reports). Level from ROWSYNC_LOG_LEVEL
 * (default `info`; `silent` in tests). Anything that looks like a connection URL or password is
 * redacted, so a URL passed into a log field by mistake does not leak its secret.
 */
export function createLogger(options: { name?: string; level?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'rowsync',
      level: options.level ?? process.env.ROWSYNC_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['password', '*.password', 'url', '*.url', 'connectionString', '*.connectionString'],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}

/** Removes `user:password@` credentials from any URL inside a free-form string. */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)([^:/@\s]+):([^@\s]*)@/gi, '$1$2:***@');
}
