import type { Logger } from 'pino';
import { redactSecrets } from './redact.js';

/**
 * A warning that a failing connection raises on every socket event (ioredis reconnects every
 * few hundred ms, and each BullMQ queue and worker re-emits the same error): the first one is
 * logged at once, then at most one line per interval, carrying how many were folded into it.
 */
export class ThrottledWarning {
  private lastLoggedAt = 0;
  private suppressed = 0;
  /** Set when someone else tells the user (a one-shot command's single error line). */
  silenced = false;

  constructor(
    private readonly logger: Logger,
    private readonly message: string,
    private readonly intervalMs = 10_000,
  ) {}

  report(error: unknown, fields: Record<string, unknown> = {}): void {
    if (this.silenced) return;
    const now = Date.now();
    if (now - this.lastLoggedAt < this.intervalMs) {
      this.suppressed += 1;
      return;
    }
    const text = redactSecrets(error instanceof Error ? error.message : String(error));
    this.logger.warn({ ...fields, err: text, ...(this.suppressed > 0 ? { repeated: this.suppressed } : {}) }, this.message);
    this.lastLoggedAt = now;
    this.suppressed = 0;
  }
}
