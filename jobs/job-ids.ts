import { createHash } from 'node:crypto';

/**
 * Deterministic job ids: a re-enqueue (a retried parent re-planning, two schedulers firing the same
 * tick) adds nothing, because BullMQ ignores an add whose id exists. Ids nest (run > table >
 * chunk > apply) so every job of a run starts with the run id, and contain no ':' (BullMQ forbids it).
 */
export function digest(...parts: readonly unknown[]): string {
  return createHash('sha1').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$/;

export const tableJobId = (runId: string, table: string, target: string) => `${runId}.t${digest(table, target)}`;
export const chunkJobId = (tableJobId: string, range: unknown) => `${tableJobId}.c${digest(range)}`;
export const applyJobId = (parentId: string, lane: number, keys: unknown) => `${parentId}.a${digest(lane, keys)}`;

/** A fresh run id: pipeline, UTC time to the second, and a random suffix. */
export function newRunId(pipeline: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${pipeline}.${stamp}.${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * The run id of a scheduled tick: the same for every scheduler firing that tick. Floored to the
 * second, not the minute: with a 6-field schedule (say every 2 s) every tick of a minute is its own
 * run, and a minute floor made all but the first of them a no-op.
 */
export function scheduledRunId(pipeline: string, tick: Date): string {
  const second = new Date(Math.floor(tick.getTime() / 1000) * 1000);
  return `${pipeline}.${second.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.scheduled`;
}
