import { pino, type DestinationStream, type Logger } from 'pino';
import { currentLogContext } from './log-context.js';
import { redactSecrets } from './redact.js';

export type { Logger } from 'pino';
export { redactSecrets } from './redact.js';

/** `json`: one JSON object per line (for log shippers). `pretty`: one readable line per entry. */
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  readonly name?: string;
  readonly level?: string;
  /** Default: ROWSYNC_LOG_FORMAT, else `pretty` when stderr is a terminal and `json` otherwise. */
  readonly format?: LogFormat;
  /** Where lines go (tests); default stderr. */
  readonly destination?: DestinationStream;
}

/**
 * Structured logs on stderr (stdout is reserved for `--json` reports). Level from ROWSYNC_LOG_LEVEL
 * (default `info`; `silent` in tests). Jobs log through child loggers bound to their run id,
 * pipeline, table, target and chunk or batch, so every line that has those carries them.
 *
 * No secret reaches a line: fields named like secrets or URLs are censored by path, and every string
 * (the message, error texts) goes through `redactSecrets`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? logFormatFromEnvironment();
  const destination = options.destination ?? pino.destination({ fd: 2, sync: false });
  return pino(
    {
      name: options.name ?? 'rowsync',
      level: options.level ?? process.env.ROWSYNC_LOG_LEVEL ?? 'info',
      redact: {
        paths: ['password', '*.password', 'url', '*.url', 'connectionString', '*.connectionString'],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }), log: redactStrings },
      // The job being worked on (run id, pipeline, table, chunk or batch), on every line it writes.
      mixin: () => currentLogContext() ?? {},
      hooks: {
        logMethod(args, method) {
          // The message and its printf arguments.
          method.apply(this, args.map((arg) => (typeof arg === 'string' ? redactSecrets(arg) : arg)) as typeof args);
        },
      },
    },
    format === 'pretty' ? prettyStream(destination) : destination,
  );
}

export function logFormatFromEnvironment(): LogFormat {
  const configured = process.env.ROWSYNC_LOG_FORMAT;
  if (configured === 'json' || configured === 'pretty') return configured;
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** Every string in a log entry's fields (error messages and stacks included), redacted. */
function redactStrings(object: Record<string, unknown>): Record<string, unknown> {
  return redactValue(object, 0) as Record<string, unknown>;
}

const REDACT_DEPTH = 4;

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value instanceof Error) return { type: value.name, message: redactSecrets(value.message), stack: redactSecrets(value.stack ?? '') };
  if (depth >= REDACT_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redactValue(item, depth + 1));
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) result[key] = redactValue(item, depth + 1);
  return result;
}

const LEVEL_WIDTH = 5;
/** pino's own fields, shown in the line's head rather than as key=value. */
const HEAD_FIELDS = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

/**
 * One readable line per entry for a terminal: `12:00:01.234 INFO  message  runId=… table=…`.
 * A line that is not JSON (never expected) passes through unchanged.
 */
function prettyStream(destination: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      destination.write(`${prettyLine(line)}\n`);
    },
  };
}

export function prettyLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const level = String(entry.level ?? '').toUpperCase().padEnd(LEVEL_WIDTH);
  const fields = Object.entries(entry)
    .filter(([key]) => !HEAD_FIELDS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' && !/\s/.test(value) ? value : JSON.stringify(value)}`);
  return [time, level, String(entry.msg ?? ''), ...fields].filter((part) => part !== '').join(' ');
}
