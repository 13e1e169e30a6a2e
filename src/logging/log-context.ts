import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What a log line is about (run id, pipeline, table, target, chunk or batch), carried across the
 * awaits of one job: the logger adds it to every line written while the job runs (createLogger's
 * mixin), so code deep in a job logs it without passing a child logger down.
 */
export type LogContext = Readonly<Record<string, string | number>>;

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(context: LogContext, work: () => T): T {
  return storage.run({ ...storage.getStore(), ...context }, work);
}

export function currentLogContext(): LogContext | undefined {
  return storage.getStore();
}

/**
 * The log context of a job from its payload: every rowsync job names its pipeline; run jobs and
 * their children their run id, table and target; chunk jobs their index; CDC batches their
 * sequence number and part.
 */
export function jobLogContext(queue: string, jobId: string | undefined, data: unknown): LogContext {
  const payload = (data ?? {}) as Record<string, unknown>;
  const context: Record<string, string | number> = { queue };
  if (jobId) context.jobId = jobId;
  for (const field of ['runId', 'pipeline', 'table', 'target'] as const) {
    const value = payload[field];
    if (typeof value === 'string') context[field] = value;
  }
  if (typeof payload.index === 'number' && queue.includes('chunk')) context.chunk = payload.index;
  if (typeof payload.seq === 'number') context.batch = typeof payload.part === 'number' ? `${payload.seq}.${payload.part}` : payload.seq;
  return context;
}
