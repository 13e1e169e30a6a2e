import type { Job } from 'bullmq';
import { reportCompletion, type DeadLetterPayload } from '../../../jobs/cdc-batch.job.js';
import type { Runtime } from '../../../jobs/runtime.js';
import { startWorkers } from '../../../workers/start-workers.js';
import { ConfigError } from '../../errors/index.js';
import { openRuntime, type GlobalOptions } from '../context.js';

export interface DlqOptions extends GlobalOptions {
  readonly pipeline?: string;
  readonly id?: string[];
  readonly json?: boolean;
  readonly wait?: boolean;
}

/** The dead letters waiting for an operator (parked in the failed set), filtered by pipeline and id. */
async function deadLetters(runtime: Runtime, options: DlqOptions): Promise<Job<DeadLetterPayload>[]> {
  if (options.pipeline) runtime.pipeline(options.pipeline);
  const jobs = (await runtime.queues.deadLetter.getJobs(['failed'], 0, -1)) as Job<DeadLetterPayload>[];
  const chosen = jobs.filter(
    (job) => job?.id && (!options.pipeline || job.data.pipeline === options.pipeline) && (!options.id || options.id.includes(job.id)),
  );
  const unknown = (options.id ?? []).filter((id) => !chosen.some((job) => job.id === id));
  if (unknown.length > 0) throw new ConfigError(`--id: no dead letter ${unknown.join(', ')} (see rowsync dlq list)`, { subject: '--id' });
  return chosen.sort((a, b) => a.timestamp - b.timestamp);
}

function describe(job: Job<DeadLetterPayload>) {
  const data = job.data;
  return {
    id: job.id!,
    pipeline: data.pipeline,
    target: data.target,
    keys: Object.fromEntries(data.tables.map(([table, keys]) => [table, keys.length])),
    firstKeys: Object.fromEntries(data.tables.map(([table, keys]) => [table, keys.slice(0, 5)])),
    error: job.failedReason || data.error,
    deadLetteredAt: new Date(data.deadLetteredAt).toISOString(),
    attempts: data.attempts,
  };
}

/** `rowsync dlq list`: every dead-lettered CDC batch with its target, keys and error. */
export async function dlqListCommand(options: DlqOptions): Promise<number> {
  const { runtime } = openRuntime(options, 'dlq');
  try {
    const letters = (await deadLetters(runtime, options)).map(describe);
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
    await runtime.close();
  }
}

/**
 * `rowsync dlq retry`: sends dead letters back through the write path (what Bull Board's retry does)
 * and, by default, processes them in this process and waits: exit 0 when every one was applied, 1
 * when some failed again (they are parked again with the new error).
 */
export async function dlqRetryCommand(options: DlqOptions): Promise<number> {
  const { runtime } = openRuntime(options, 'dlq');
  try {
    const letters = await deadLetters(runtime, options);
    for (const job of letters) await job.retry('failed');
    process.stderr.write(`retrying ${letters.length} dead letter(s)\n`);
    if (options.wait === false || letters.length === 0) return 0;
    const workers = await startWorkers(runtime, { table: 1, chunk: 1, apply: 1, cdc: 1 });
    try {
      const pending = new Set(letters.map((job) => job.id!));
      let failed = 0;
      while (pending.size > 0) {
        for (const id of [...pending]) {
          const state = await runtime.queues.deadLetter.getJobState(id);
          if (state === 'completed' || state === 'failed' || state === 'unknown') {
            pending.delete(id);
            if (state === 'failed') {
              failed += 1;
              const job = await runtime.queues.deadLetter.getJob(id);
              process.stderr.write(`${id}: failed again: ${job?.failedReason ?? 'unknown error'}\n`);
            }
          }
        }
        if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      process.stderr.write(`${letters.length - failed} applied, ${failed} failed again\n`);
      return failed > 0 ? 1 : 0;
    } finally {
      await workers.close();
    }
  } finally {
    await runtime.close();
  }
}

/**
 * `rowsync dlq purge`: drops dead letters for good. Their keys are then repaired only by a reconcile;
 * a reader still waiting for them lets its checkpoint move on.
 */
export async function dlqPurgeCommand(options: DlqOptions): Promise<number> {
  const { runtime, config } = openRuntime(options, 'dlq');
  try {
    const letters = await deadLetters(runtime, options);
    for (const job of letters) {
      await reportCompletion(runtime.redis, config.redis.prefix, job.data, 'applied');
      await job.remove();
    }
    process.stderr.write(`purged ${letters.length} dead letter(s); run a reconcile to repair their keys\n`);
    return 0;
  } finally {
    await runtime.close();
  }
}
