/**
 * Base of every error rowsync raises on purpose. `code` is stable (tests and scripts match on it);
 * `subject` names the offending table, column, option or connection so the message can be acted on.
 * Messages never contain secrets: connection URLs are redacted before they reach an error.
 */
export class RowsyncError extends Error {
  override readonly name: string = 'RowsyncError';
  readonly code: string;
  readonly subject: string | undefined;

  constructor(code: string, message: string, options: { subject?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.subject = options.subject;
  }
}
