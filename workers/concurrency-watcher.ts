import type { Worker } from 'bullmq';
import type { LimitFunction } from 'p-limit';
import { JOB_KINDS, type ConcurrencyOverrides, type JobKind } from '../src/coordination/concurrency-overrides.js';
import type { Logger } from '../src/logging/logger.js';

/** How often a worker process reads the cluster-wide overrides (one HGETALL). */
export const CONCURRENCY_POLL_MS = 2000;

export type Concurrency = Readonly<Record<JobKind, number>>;

/** What each kind's concurrency is applied to in this process. */
export interface ConcurrencyTargets {
  readonly table: Worker;
  readonly chunk: Worker;
  readonly cdc: Worker;
  /** Apply lanes: one BullMQ worker per lane, and this gate over all of them. */
  readonly apply: LimitFunction;
}

export interface ConcurrencyWatcher {
  /** The concurrency in force in this process, per kind. */
  current(): Concurrency;
  /** Reads the overrides now and applies them (the poll does this every CONCURRENCY_POLL_MS). */
  refresh(): Promise<void>;
  stop(): void;
}

/**
 * Keeps this process's concurrency equal to `base` (the config, or the process's own flags) with
 * the cluster-wide overrides on top, polling Redis: no subscriber connection to keep, and a process
 * that was disconnected catches up on its next read. A lowered limit lets running jobs finish; a
 * raised one starts more jobs at once.
 */
export function watchConcurrency(
  overrides: ConcurrencyOverrides,
  base: Concurrency,
  initial: Concurrency,
  targets: ConcurrencyTargets,
  logger: Logger,
  pollMs = CONCURRENCY_POLL_MS,
): ConcurrencyWatcher {
  const current: Record<JobKind, number> = { ...initial };
  let reading: Promise<void> | undefined;
  const refresh = () => {
    reading ??= overrides
      .read()
      .then((override) => {
        for (const kind of JOB_KINDS) {
          const wanted = override[kind] ?? base[kind];
          if (wanted === current[kind]) continue;
          logger.info({ kind, from: current[kind], to: wanted, override: override[kind] !== undefined }, 'concurrency changed');
          apply(targets, kind, wanted, current[kind]);
          current[kind] = wanted;
        }
      })
      // Redis unreachable: keep what is in force; the next poll tries again.
      .catch((error: Error) => logger.debug({ err: error.message }, 'could not read concurrency overrides'))
      .finally(() => (reading = undefined));
    return reading;
  };
  const timer = setInterval(() => void refresh(), pollMs);
  timer.unref();
  return {
    current: () => ({ ...current }),
    refresh,
    stop: () => clearInterval(timer),
  };
}

function apply(targets: ConcurrencyTargets, kind: JobKind, concurrency: number, previous: number): void {
  if (kind === 'apply') {
    // p-limit starts queued calls at once when its limit grows.
    targets.apply.concurrency = concurrency;
    return;
  }
  const worker = targets[kind];
  worker.concurrency = concurrency;
  if (concurrency > previous) wake(worker);
}

/**
 * BullMQ's main loop (6.7), once it runs `concurrency` jobs, waits for one of them to settle before
 * it compares the count with the limit again: a raise alone would wait for a running job, minutes
 * for a big chunk. A settled promise added to the loop's queue wakes it, which is how
 * `Worker.resume()` wakes it too; without that queue (another BullMQ version, or no loop running)
 * the raise applies when the next job finishes.
 */
function wake(worker: Worker): void {
  const loop = (worker as unknown as { mainLoopQueue?: { add(promise: Promise<unknown>): void } | null }).mainLoopQueue;
  if (loop && typeof loop.add === 'function') loop.add(Promise.resolve(undefined));
}
