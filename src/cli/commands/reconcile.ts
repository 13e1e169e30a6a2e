import { writeFile } from 'node:fs/promises';
import { ConfigError } from '../../errors/index.js';
import { findPipeline } from '../../config/index.js';
import type { Rowsync } from '../../api/rowsync.js';
import { RunFailedError } from '../../api/run-failed-error.js';
import { openApi, type GlobalOptions } from '../context.js';
import { formatReport } from '../print-report.js';
import { ProgressDisplay } from '../progress-display.js';
import { EXIT } from '../exit-codes.js';
import { runTotals, type RunReport } from '../../reconcile/report.js';

export interface ReconcileOptions extends GlobalOptions {
  readonly pipeline: string;
  readonly table?: string[];
  readonly dryRun?: boolean;
  readonly json?: boolean;
  readonly workers?: number;
  readonly wait?: boolean;
  readonly runId?: string;
  /** Exit 3 (`EXIT.differences`) when the completed run found any difference. */
  readonly failOnDiff?: boolean;
  /** JSON lines of the differing keys to this file (`-`: stdout). */
  readonly printKeys?: string;
  readonly printLimit?: number;
}

/** `--print-limit` by default: enough to act on, bounded for a table that differs everywhere. */
const DEFAULT_PRINT_LIMIT = 10_000;

/** `rowsync reconcile`: enqueue a run, process it with in-process workers, wait and report. */
export async function reconcileCommand(options: ReconcileOptions): Promise<number> {
  const { rowsync, config } = openApi(options, 'reconcile');
  try {
    const pipeline = findPipeline(config, options.pipeline);
    if (options.failOnDiff && options.wait === false) {
      throw new ConfigError('--fail-on-diff: needs the run to finish here (drop --no-wait)', { subject: '--fail-on-diff' });
    }
    if (options.printKeys !== undefined && options.wait === false) {
      throw new ConfigError('--print-keys: needs the run to finish here (drop --no-wait)', { subject: '--print-keys' });
    }
    if (options.printKeys === '-' && options.json) {
      throw new ConfigError('--print-keys -: stdout carries the --json report; name a file', { subject: '--print-keys' });
    }
    if (options.printLimit !== undefined && options.printKeys === undefined) {
      throw new ConfigError('--print-limit: only with --print-keys', { subject: '--print-limit' });
    }
    if (options.printLimit === 0) throw new ConfigError('--print-limit: expected at least 1', { subject: '--print-limit' });
    const { runId, added } = await rowsync.enqueueReconcile(pipeline.name, {
      ...(options.table ? { tables: options.table } : {}),
      dryRun: Boolean(options.dryRun),
      ...(options.runId !== undefined ? { runId: options.runId } : {}),
      ...(options.printKeys !== undefined ? { recordKeys: options.printLimit ?? DEFAULT_PRINT_LIMIT } : {}),
    });
    process.stderr.write(`${added ? 'enqueued' : 'already enqueued:'} run ${runId}\n`);
    if (options.wait === false) {
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, pipeline: pipeline.name, status: 'waiting' })}\n`);
      return 0;
    }
    const code = await processAndWait(rowsync, runId, { ...options, ...(options.config ? { configFile: options.config } : {}) });
    if (options.printKeys !== undefined) await printKeys(rowsync, runId, options.printKeys);
    return code;
  } finally {
    await rowsync.close();
  }
}

/** Waits for the run (processing it with in-process workers unless `--workers 0`), showing progress, then prints the outcome. */
export async function processAndWait(
  rowsync: Rowsync,
  runId: string,
  options: { workers?: number; json?: boolean; configFile?: string; failOnDiff?: boolean; printKeys?: string },
): Promise<number> {
  // stderr, also with --json (its report goes to stdout): a bar on a terminal, else a line every 10 s.
  const display = new ProgressDisplay();
  const noWorkers = options.workers === 0 ? warnWhileNoWorker(rowsync, options.configFile) : undefined;
  let report: RunReport;
  try {
    report = await rowsync.waitForRun(runId, {
      ...(options.workers !== undefined ? { workers: options.workers } : {}),
      onProgress: (counts) => display.update(counts),
    });
  } catch (error) {
    if (!(error instanceof RunFailedError)) throw error;
    return printFailure(error, options);
  } finally {
    noWorkers?.stop();
    display.stop();
  }
  return printReport(report, runId, options);
}

/** First look after this long (a worker may be connecting), then every 10 s. */
const NO_WORKER_FIRST_CHECK_MS = 2000;
const NO_WORKER_REPEAT_MS = 10_000;

/**
 * `--workers 0` leaves the run to `rowsync worker` processes: while none is connected, says so
 * (every 10 s), instead of waiting silently.
 */
function warnWhileNoWorker(rowsync: Rowsync, configFile: string | undefined): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = async () => {
    const workers = await rowsync.connectedWorkers().catch(() => undefined);
    if (stopped) return;
    if (workers === 0) {
      process.stderr.write(
        `no rowsync worker is connected (Redis prefix ${rowsync.config.redis.prefix}): the run waits until one is; ` +
          `start one with: rowsync worker --config ${configFile ?? 'FILE'}\n`,
      );
    }
    timer = setTimeout(() => void check(), NO_WORKER_REPEAT_MS);
  };
  timer = setTimeout(() => void check(), NO_WORKER_FIRST_CHECK_MS);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function printReport(report: RunReport, runId: string, options: { json?: boolean; failOnDiff?: boolean; printKeys?: string }): number {
  // `--print-keys -` keeps stdout for the key lines: the readable report goes to stderr then.
  const out = options.printKeys === '-' ? process.stderr : process.stdout;
  out.write(options.json ? `${JSON.stringify(report)}\n` : formatReport(report));
  const differences = differencesFound(report);
  if (options.failOnDiff && differences > 0) {
    process.stderr.write(`run ${runId} found ${differences} differing row(s) (--fail-on-diff: exit ${EXIT.differences})\n`);
    return EXIT.differences;
  }
  // A table that could not be reconciled (or, for a monitoring run, compared) fails the command:
  // cron, CI and alerting must see it, not a plain success.
  const unchecked = report.tables.filter((table) => table.errors.length > 0);
  if (unchecked.length > 0) {
    for (const table of unchecked) process.stderr.write(`error: ${table.table} -> ${table.target}: ${table.errors.join('; ')}\n`);
    process.stderr.write(`run ${runId} completed with errors: ${unchecked.length} table(s) could not be reconciled (exit ${EXIT.failed})\n`);
    return EXIT.failed;
  }
  return EXIT.ok;
}

function printFailure(error: RunFailedError, options: { json?: boolean; configFile?: string }): number {
  const { runId } = error;
  switch (error.outcome) {
    case 'stuck': {
      const retry = `rowsync retry --config ${options.configFile ?? 'FILE'} --run ${runId}`;
      for (const job of error.failedJobs) {
        // Queue and job id: what an operator looks for in Bull Board to retry this one job.
        process.stderr.write(`error: ${job.description} (queue ${job.queue}, job ${job.id}) failed after ${job.attemptsMade} attempt(s): ${job.reason}\n`);
      }
      process.stderr.write(
        `run ${runId} is waiting for ${error.failedJobs.length} failed job(s). Fix the cause, then retry them from Bull Board ` +
          `(rowsync board) or with: ${retry}\n`,
      );
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, status: 'failed', failedJobs: error.failedJobs })}\n`);
      return EXIT.failed;
    }
    case 'failed':
      process.stderr.write(`error: run ${runId} failed: ${error.reason}\n`);
      if (options.json) process.stdout.write(`${JSON.stringify({ runId, status: 'failed', error: error.reason })}\n`);
      return EXIT.failed;
    case 'missing':
      process.stderr.write(`error: ${error.message}\n`);
      return EXIT.failed;
    default: {
      const unreachable: never = error.outcome;
      throw new Error(`unknown outcome ${String(unreachable)}`);
    }
  }
}

/**
 * Rows found different in a completed run: missing, extra and changed over every table and target
 * (counted when compared, so a run that repaired them counts them too).
 */
export function differencesFound(report: RunReport): number {
  const totals = runTotals(report);
  return totals.missing + totals.extra + totals.changed;
}

/** Writes the run's recorded differing keys (`--print-keys`), and says on stderr when the limit cut the list. */
async function printKeys(rowsync: Rowsync, runId: string, file: string): Promise<void> {
  const { lines, found } = await rowsync.differingKeys(runId);
  const text = lines.map((line) => `${line}\n`).join('');
  if (file === '-') process.stdout.write(text);
  else await writeFile(file, text);
  const where = file === '-' ? 'stdout' : file;
  process.stderr.write(
    lines.length < found
      ? `listed ${lines.length} of ${found} differing keys in ${where} (--print-limit ${lines.length})\n`
      : `listed ${lines.length} differing key(s) in ${where}\n`,
  );
}
