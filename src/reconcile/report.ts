import { addBidirectionalResults, EMPTY_BIDIRECTIONAL_RESULT, type BidirectionalResult } from '../sync/bidirectional-result.js';
import type { SyncResult } from '../sync/sync-keys.js';

/** Counts a chunk and a table report alike. */
export interface RowCounts {
  readonly sourceRows: number;
  readonly targetRows: number;
  /** In source only. */
  readonly missing: number;
  /** In target only. */
  readonly extra: number;
  /** In both, with different values. */
  readonly changed: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly conflicts: number;
  /**
   * Bidirectional pipelines (source = side A, target = side B): keys changed and deleted on each side
   * since the last sync, rows written to each side, conflicts by outcome. `missing` / `extra` are then
   * rows only A / only B had when compared; `inserted` / `updated` / `deleted` stay 0.
   */
  readonly bidirectional?: BidirectionalResult;
}

/** Counts of one chunk (a key range of one table on one target). */
export interface ChunkReport extends RowCounts {
  readonly differing: boolean;
  /** Wall time of the chunk's first scan (`DiffStats.scanMs`), what adaptive sizes aim at. */
  readonly scanMs?: number;
}

/** One table on one target: the `tables[]` entries of `rowsync reconcile --json`. */
export interface TableReport extends RowCounts {
  readonly table: string;
  readonly target: string;
  readonly chunks: number;
  readonly chunksDiffering: number;
  /** Why this table could not be reconciled (no primary key, missing, schema mismatch...). */
  readonly errors: string[];
}

/**
 * `completed_with_errors`: every table was done, but at least one could not be reconciled (its
 * report's `errors` say why: missing, no primary key, a column the target lacks...). The CLI then
 * exits 1, like a failed run, so cron, CI and alerting see it.
 */
export type RunStatus = 'completed' | 'completed_with_errors' | 'failed' | 'running' | 'waiting';

/** The report of `rowsync reconcile --json`. */
export interface RunReport {
  readonly runId: string;
  readonly pipeline: string;
  readonly status: RunStatus;
  readonly dryRun: boolean;
  readonly durationMs: number;
  readonly tables: TableReport[];
}

export function chunkReport(
  diff: { sourceRows: number; targetRows: number; missing: number; extra: number; changed: number; scanMs?: number },
  applied: SyncResult,
): ChunkReport {
  return {
    ...(diff.scanMs === undefined ? {} : { scanMs: diff.scanMs }),
    sourceRows: diff.sourceRows,
    targetRows: diff.targetRows,
    differing: diff.missing + diff.extra + diff.changed > 0,
    missing: diff.missing,
    extra: diff.extra,
    changed: diff.changed,
    inserted: applied.inserted,
    updated: applied.updated,
    deleted: applied.deleted,
    conflicts: applied.conflicts,
    ...(applied.bidirectional ? { bidirectional: applied.bidirectional } : {}),
  };
}

export function emptyTableReport(table: string, target: string, errors: string[] = []): TableReport {
  return {
    table, target, sourceRows: 0, targetRows: 0, chunks: 0, chunksDiffering: 0, missing: 0, extra: 0, changed: 0,
    inserted: 0, updated: 0, deleted: 0, conflicts: 0, errors,
  };
}

export function tableReport(table: string, target: string, chunks: readonly ChunkReport[]): TableReport {
  const sum = (pick: (chunk: ChunkReport) => number) => chunks.reduce((total, chunk) => total + pick(chunk), 0);
  return {
    table,
    target,
    sourceRows: sum((chunk) => chunk.sourceRows),
    targetRows: sum((chunk) => chunk.targetRows),
    chunks: chunks.length,
    chunksDiffering: chunks.filter((chunk) => chunk.differing).length,
    missing: sum((chunk) => chunk.missing),
    extra: sum((chunk) => chunk.extra),
    changed: sum((chunk) => chunk.changed),
    inserted: sum((chunk) => chunk.inserted),
    updated: sum((chunk) => chunk.updated),
    deleted: sum((chunk) => chunk.deleted),
    conflicts: sum((chunk) => chunk.conflicts),
    ...(chunks.some((chunk) => chunk.bidirectional)
      ? { bidirectional: chunks.reduce((total, chunk) => addBidirectionalResults(total, chunk.bidirectional ?? EMPTY_BIDIRECTIONAL_RESULT), EMPTY_BIDIRECTIONAL_RESULT) }
      : {}),
    errors: [],
  };
}

/** A run report's counts over all its (table, target) pairs. */
export interface RunTotals {
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly missing: number;
  readonly extra: number;
  readonly changed: number;
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly conflicts: number;
  readonly chunks: number;
  readonly chunksDiffering: number;
  /** (table, target) pairs that could not be reconciled. */
  readonly tablesWithErrors: number;
}

export function runTotals(report: RunReport): RunTotals {
  const sum = (pick: (table: TableReport) => number) => report.tables.reduce((total, table) => total + pick(table), 0);
  return {
    sourceRows: sum((table) => table.sourceRows),
    targetRows: sum((table) => table.targetRows),
    missing: sum((table) => table.missing),
    extra: sum((table) => table.extra),
    changed: sum((table) => table.changed),
    inserted: sum((table) => table.inserted),
    updated: sum((table) => table.updated),
    deleted: sum((table) => table.deleted),
    conflicts: sum((table) => table.conflicts),
    chunks: sum((table) => table.chunks),
    chunksDiffering: sum((table) => table.chunksDiffering),
    tablesWithErrors: report.tables.filter((table) => table.errors.length > 0).length,
  };
}
