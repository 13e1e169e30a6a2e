import { canonicalText, keyIdentity, sameValue } from '../dialect/canonical.js';
import { ConfigError, SchemaError } from '../errors/index.js';
import type { Database } from '../dialect/dialect.js';
import type { TablePair } from '../dialect/table-pair.js';
import type { KeyTuple, PortableValue, Row, TableShape, ValueKind } from '../dialect/types.js';
import type { ConflictRecord } from '../dialect/types.js';
import { addBidirectionalResults, EMPTY_BIDIRECTIONAL_RESULT, type BidirectionalResult } from './bidirectional-result.js';

export type ConflictPolicyName = 'source_wins' | 'target_wins' | 'timestamp' | 'priority' | 'merge' | 'manual' | 'custom';

/** What a custom resolver decides for one differing row pair. */
export type CustomDecision = 'source' | 'target' | 'skip' | Readonly<Record<string, PortableValue>>;

/**
 * A per-table resolver module's default export (`conflict: custom`). Called only for keys present
 * on both sides with different values. Returning an object writes that row (missing columns are
 * taken from the source row).
 */
export type CustomResolver = (conflict: {
  readonly table: string;
  readonly key: Readonly<Record<string, PortableValue>>;
  readonly source: Readonly<Record<string, PortableValue>>;
  readonly target: Readonly<Record<string, PortableValue>>;
}) => CustomDecision | Promise<CustomDecision>;

export interface SyncPolicy {
  readonly conflict: ConflictPolicyName;
  /** Column whose newer value wins under `timestamp` (source-side name, matched case-insensitively). */
  readonly conflictColumn: string;
  readonly deleteExtra: boolean;
  readonly resolver?: CustomResolver;
}

export interface SyncRequest {
  readonly pipeline: string;
  readonly source: Database;
  readonly target: Database;
  readonly pair: TablePair;
  readonly policy: SyncPolicy;
  /** Plan only: read both sides and report what would be written, write nothing. */
  readonly dryRun: boolean;
  /** Where `manual` conflicts go (the target database's conflicts table). */
  readonly recordConflicts: (records: readonly ConflictRecord[]) => Promise<void>;
}

export interface SyncResult {
  readonly inserted: number;
  readonly updated: number;
  readonly deleted: number;
  readonly conflicts: number;
  /** Keys whose rows were already equal (or absent on both sides) when re-read. */
  readonly unchanged: number;
  /** Keys a policy decided to leave as they are (target_wins, an older source under timestamp...). */
  readonly skipped: number;
  /** Bidirectional pipelines: what changed on which side and how conflicts ended (bidirectional-sync.ts). */
  readonly bidirectional?: BidirectionalResult;
}

export const EMPTY_SYNC_RESULT: SyncResult = { inserted: 0, updated: 0, deleted: 0, conflicts: 0, unchanged: 0, skipped: 0 };

export function addSyncResults(a: SyncResult, b: SyncResult): SyncResult {
  const bidirectional =
    a.bidirectional || b.bidirectional
      ? addBidirectionalResults(a.bidirectional ?? EMPTY_BIDIRECTIONAL_RESULT, b.bidirectional ?? EMPTY_BIDIRECTIONAL_RESULT)
      : undefined;
  return {
    inserted: a.inserted + b.inserted,
    updated: a.updated + b.updated,
    deleted: a.deleted + b.deleted,
    conflicts: a.conflicts + b.conflicts,
    unchanged: a.unchanged + b.unchanged,
    skipped: a.skipped + b.skipped,
    ...(bidirectional ? { bidirectional } : {}),
  };
}

/**
 * The one write operation (ARCHITECTURE.md): read these keys from the source now and from the target
 * now, compare, apply the conflict policy, write only what differs, in one target transaction.
 * Idempotent and order-insensitive: a retry, replay or duplicate converges to the source's current
 * state and never writes a stale image. Callers guarantee that no other sync of the same keys runs
 * concurrently (apply lanes).
 *
 * With a row filter (`TableShape.filter`, the table's `where`) both sides are read through it: a key
 * whose source row matches is written (inserted, or replacing the target row whether or not that one
 * matched); a target row that matches is deleted only when the source has no row at all for its key
 * (a source row outside the filter leaves it alone, counted as skipped); rows outside the filter on
 * both sides are never touched.
 */
export async function syncKeys(request: SyncRequest, keys: readonly KeyTuple[]): Promise<SyncResult> {
  const { pair, policy } = request;
  if (keys.length === 0) return EMPTY_SYNC_RESULT;
  const [sourceRows, targetRows] = await Promise.all([
    request.source.fetchByKeys(pair.source, keys),
    request.target.fetchByKeys(pair.target, keys),
  ]);
  const sourceByKey = indexByKey(pair.source, sourceRows);
  const targetByKey = indexByKey(pair.target, targetRows);
  const timestampIndex =
    policy.conflict === 'timestamp' ? conflictColumnIndex(pair.source, policy.conflictColumn, request.source.connectionName) : -1;

  const upserts: Row[] = [];
  const deletes: KeyTuple[] = [];
  const conflicts: ConflictRecord[] = [];
  let inserted = 0;
  let updated = 0;
  let unchanged = 0;
  let skipped = 0;

  const seen = new Set<string>();
  for (const key of keys) {
    const identity = keyIdentity(pair.source, key);
    if (seen.has(identity)) continue;
    seen.add(identity);
    const sourceRow = sourceByKey.get(identity);
    const targetRow = targetByKey.get(identity);
    if (!sourceRow && !targetRow) {
      unchanged += 1;
    } else if (sourceRow && !targetRow) {
      upserts.push(sourceRow);
      inserted += 1;
    } else if (!sourceRow && targetRow) {
      if (policy.deleteExtra) deletes.push(keyOf(pair.target, targetRow));
      else skipped += 1;
    } else if (sameRow(pair.source, sourceRow!, targetRow!)) {
      unchanged += 1;
    } else {
      const decision = await decide(request, sourceRow!, targetRow!, timestampIndex);
      if (decision === 'skip') {
        skipped += 1;
      } else if (decision === 'conflict') {
        conflicts.push(conflictRecord(request, sourceRow!, targetRow!));
      } else if (sameRow(pair.source, decision, targetRow!)) {
        skipped += 1;
      } else {
        upserts.push(decision);
        updated += 1;
      }
    }
  }

  // With a row filter, both reads above saw only the rows inside it, so a key missing from the source
  // read may still have a source row outside the filter: that key is out of scope, not deleted.
  if (deletes.length > 0 && pair.source.filter !== undefined) {
    const outside = await keysOutsideFilter(request, deletes);
    if (outside.size > 0) {
      const kept = deletes.filter((key) => !outside.has(keyIdentity(pair.target, key)));
      skipped += deletes.length - kept.length;
      deletes.splice(0, deletes.length, ...kept);
    }
  }

  if (!request.dryRun) {
    if (upserts.length > 0 || deletes.length > 0) await request.target.applyChanges(pair.target, { upserts, deletes });
    if (conflicts.length > 0) await request.recordConflicts(conflicts);
  }
  return { inserted, updated, deleted: deletes.length, conflicts: conflicts.length, unchanged, skipped };
}

/** Identities of the keys whose source row exists but lies outside the source's filter. */
async function keysOutsideFilter(request: SyncRequest, keys: readonly KeyTuple[]): Promise<Set<string>> {
  const { filter: _filter, ...unfiltered } = request.pair.source;
  const rows = await request.source.fetchByKeys(unfiltered, keys);
  return new Set(rows.map((row) => keyIdentity(unfiltered, keyOf(unfiltered, row))));
}

/** The row to write for a differing pair, 'skip' to leave the target as is, or 'conflict' (manual). */
async function decide(request: SyncRequest, sourceRow: Row, targetRow: Row, timestampIndex: number): Promise<Row | 'skip' | 'conflict'> {
  const { pair, policy } = request;
  switch (policy.conflict) {
    case 'source_wins':
      return sourceRow;
    case 'target_wins':
      return 'skip';
    case 'timestamp':
      // Canonical datetime text ('YYYY-MM-DD HH:MM:SS.ffffff', UTC) sorts chronologically; a value
      // beats NULL; on a tie the source wins, so both sides converge.
      return newerOrEqual(sourceRow[timestampIndex] ?? null, targetRow[timestampIndex] ?? null, pair.source.columns[timestampIndex]!.kind)
        ? sourceRow
        : 'skip';
    case 'merge':
      return sourceRow.map((value, index) => (value === null ? (targetRow[index] ?? null) : value));
    case 'manual':
      return 'conflict';
    case 'priority':
      // The config refuses it for one-way pipelines; bidirectional ones write through bidirectional-sync.ts.
      throw new Error(`conflict 'priority' needs a bidirectional pipeline (${request.pipeline})`);
    case 'custom': {
      if (!policy.resolver) throw new Error(`no resolver loaded for table ${pair.source.table}`);
      const decision = await policy.resolver({
        table: pair.source.table,
        key: keyObject(pair.source, keyOf(pair.source, sourceRow)),
        source: rowObject(pair.source, sourceRow),
        target: rowObject(pair.source, targetRow),
      });
      if (decision === 'source') return sourceRow;
      if (decision === 'target' || decision === 'skip') return 'skip';
      // Anything else is a row object; a typo ('Source', a misspelt column) must fail, not silently
      // write the source's values.
      const field = `pipelines.${request.pipeline}.reconcile.resolvers.${pair.source.table}`;
      const unknownColumns =
        typeof decision === 'object' && decision !== null && !Array.isArray(decision)
          ? Object.keys(decision).filter((name) => !pair.source.columns.some((column) => column.name === name))
          : undefined;
      if (!unknownColumns || unknownColumns.length > 0) {
        const what = unknownColumns ? `unknown column(s) ${unknownColumns.join(', ')}` : `${typeof decision} ${String(decision)}`;
        throw new ConfigError(`${field}: resolver returned ${what}; expected 'source', 'target', 'skip' or a row object`, {
          subject: field,
        });
      }
      return pair.source.columns.map((column, index) =>
        Object.prototype.hasOwnProperty.call(decision, column.name) ? (decision[column.name] ?? null) : (sourceRow[index] ?? null),
      );
    }
    default: {
      const unreachable: never = policy.conflict;
      throw new Error(`unknown conflict policy ${String(unreachable)}`);
    }
  }
}

function newerOrEqual(source: PortableValue, target: PortableValue, kind: ValueKind): boolean {
  if (source === null) return target === null;
  if (target === null) return true;
  return compareColumnValues(kind, source, target) >= 0;
}

/** Orders two non-null values of an ordered kind (integers exactly, decimals, dates and times by canonical text). */
export function compareColumnValues(kind: ValueKind, a: Exclude<PortableValue, null>, b: Exclude<PortableValue, null>): number {
  if (kind === 'integer') {
    const [x, y] = [BigInt(String(a)), BigInt(String(b))];
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (kind === 'decimal' || kind === 'float') return Math.sign(Number(a) - Number(b));
  // Canonical date/datetime/time text has fixed-width fields, so it sorts chronologically.
  const [x, y] = [canonicalText(kind, a), canonicalText(kind, b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Index of the `timestamp` policy's column; a SchemaError naming it when the table lacks it. */
export function conflictColumnIndex(shape: TableShape, conflictColumn: string, connectionName: string): number {
  const index = columnIndex(shape, conflictColumn);
  if (index === -1) {
    throw new SchemaError('COLUMN_MISSING', `conflict 'timestamp' needs column ${conflictColumn} in ${connectionName}.${shape.table}`, {
      subject: `${connectionName}.${shape.table}.${conflictColumn}`,
    });
  }
  return index;
}

export function sameRow(shape: TableShape, a: Row, b: Row): boolean {
  return shape.columns.every((column, index) => sameValue(column.kind, a[index] ?? null, b[index] ?? null));
}

export function keyOf(shape: TableShape, row: Row): KeyTuple {
  return shape.keyIndexes.map((index) => row[index] ?? null);
}

export function indexByKey(shape: TableShape, rows: readonly Row[]): Map<string, Row> {
  const map = new Map<string, Row>();
  for (const row of rows) map.set(keyIdentity(shape, keyOf(shape, row)), row);
  return map;
}

export function columnIndex(shape: TableShape, name: string): number {
  const exact = shape.columns.findIndex((column) => column.name === name);
  if (exact !== -1) return exact;
  return shape.columns.findIndex((column) => column.name.toLowerCase() === name.toLowerCase());
}

export function rowObject(shape: TableShape, row: Row): Record<string, PortableValue> {
  return Object.fromEntries(shape.columns.map((column, index) => [column.name, row[index] ?? null]));
}

export function keyObject(shape: TableShape, key: KeyTuple): Record<string, PortableValue> {
  return Object.fromEntries(shape.keyIndexes.map((index, position) => [shape.columns[index]!.name, key[position] ?? null]));
}

function conflictRecord(request: SyncRequest, sourceRow: Row, targetRow: Row): ConflictRecord {
  const shape = request.pair.source;
  return {
    pipeline: request.pipeline,
    // The pipeline's (source) name of the table: `rowsync conflicts` finds the pair again by it.
    table: request.pair.source.table,
    key: keyObject(shape, keyOf(shape, sourceRow)),
    sourceRow: rowObject(shape, sourceRow),
    targetRow: rowObject(shape, targetRow),
  };
}
