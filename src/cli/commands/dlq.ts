import type { DeadLetterFilter } from '../../api/dead-letters.js';
import { openApi, type GlobalOptions } from '../context.js';

export interface DlqOptions extends GlobalOptions {
  readonly pipeline?: string;
  readonly id?: string[];
  readonly json?: boolean;
  readonly wait?: boolean;
}

function filterOf(options: DlqOptions): DeadLetterFilter {
  return { ...(options.pipeline ? { pipeline: options.pipeline } : {}), ...(options.id ? { ids: options.id } : {}) };
}

/** `rowsync dlq list`: every dead-lettered CDC batch with its target, keys and error. */
export async function dlqListCommand(options: DlqOptions): Promise<number> {
  const { rowsync } = openApi(options, 'dlq');
  try {
    const letters = await rowsync.deadLetters(filterOf(options));
    if (options.json) {
      process.stdout.write(`${JSON.stringify(letters)}\n`);
      return 0;
    }
    if (letters.length === 0) process.stdout.write('no dead letters\n');
    for (const letter of letters) {
      const keys = Object.entries(letter.keys).map(([table, count]) => `${table}: ${count} key(s)`).join(', ');
      process.stdout.write(`${letter.id}  ${letter.pipeline} -> ${letter.target}  ${keys}  at ${letter.deadLetteredAt}\n  error: ${letter.error}\n`);
    }
    return 0;
  } finally {
    await rowsync.close();
  }
}

/**
 * `rowsync dlq retry`: sends dead letters back through the write path (what Bull Board's retry does)
 * and, by default, processes them in this process and waits: exit 0 when every one was applied, 1
 * when some failed again (they are parked again with the new error).
 */
export async function dlqRetryCommand(options: DlqOptions): Promise<number> {
  const { rowsync } = openApi(options, 'dlq');
  try {
    const ids = await rowsync.requeueDeadLetters(filterOf(options));
    process.stderr.write(`retrying ${ids.length} dead letter(s)\n`);
    if (options.wait === false || ids.length === 0) return 0;
    const { applied, failed } = await rowsync.awaitDeadLetters(ids, {
      onFailedAgain: (id, reason) => process.stderr.write(`${id}: failed again: ${reason}\n`),
    });
    process.stderr.write(`${applied} applied, ${failed.length} failed again\n`);
    return failed.length > 0 ? 1 : 0;
  } finally {
    await rowsync.close();
  }
}

/**
 * `rowsync dlq purge`: drops dead letters for good. Their keys are then repaired only by a reconcile;
 * a reader still waiting for them lets its checkpoint move on.
 */
export async function dlqPurgeCommand(options: DlqOptions): Promise<number> {
  const { rowsync } = openApi(options, 'dlq');
  try {
    const purged = await rowsync.purgeDeadLetters(filterOf(options));
    process.stderr.write(`purged ${purged} dead letter(s); run a reconcile to repair their keys\n`);
    return 0;
  } finally {
    await rowsync.close();
  }
}
