import { keyIdentity, rowHash } from '../dialect/canonical.js';
import type { Database } from '../dialect/dialect.js';
import { syncStateKeyId, type SyncStateStore } from '../dialect/sync-state.js';
import type { TablePair } from '../dialect/table-pair.js';
import type { ChangeSet, ExpectedRow, KeyTuple, PortableValue, Row, TableShape } from '../dialect/types.js';
import { ConfigError } from '../errors/index.js';
import {
  addBidirectionalResults, EMPTY_BIDIRECTIONAL_RESULT, type BidirectionalResult, type ConflictOutcome,
} from './bidirectional-result.js';

export { addBidirectionalResults, EMPTY_BIDIRECTIONAL_RESULT, type BidirectionalResult, type ConflictOutcome };
import { columnIndex, compareColumnValues, conflictColumnIndex, indexByKey, keyObject, rowObject, type CustomResolver, type SyncResult } from './sync-keys.js';

/**
 * Bidirectional sync (ARCHITECTURE.md, Bidirectional): both sides take writes. Side A is the
 * pipeline's source, side B its one target. For each key rowsync keeps the hash of the row as it was
 * when both sides were last equal (the sync state, in side B). For a key whose rows differ:
 *
 * | state     | A vs state | B vs state | meaning                        | result                          |
 * |-----------|------------|------------|--------------------------------|---------------------------------|
 * | none      | present    | absent     | inserted on A                  | copy to B                       |
 * | none      | absent     | present    | inserted on B                  | copy to A                       |
 * | none      | present    | present    | no history (first run, or both | conflict `insert-insert`:       |
 * |           |            |            | inserted the key)              | the policy decides              |
 * | hash h    | changed    | = h        | changed (or deleted) on A      | A's row (or its absence) to B   |
 * | hash h    | = h        | changed    | changed (or deleted) on B      | B's row (or its absence) to A   |
 * | hash h    | changed    | changed    | both changed                   | conflict `update-update`, or    |
 * |           |            |            |                                | `update-delete`: the policy     |
 *
 * A row deleted on one side is thus deleted on the other instead of coming back (its state tells
 * "deleted on A" from "inserted on B"). Equal rows need no write; their state is brought up to date.
 *
 * Writes are conditional (`applyChangesIfUnchanged`): each side's rows are locked and read again in
 * the writing transaction, and a key whose row changed since it was read (a user's write racing this
 * sync) is not written but decided again from fresh reads: a newer change is never overwritten by
 * this sync, and so never by an echo of an older one. Echoes of rowsync's own writes (they come back
 * through the other side's change stream) find both rows equal and write nothing: nothing loops.
 *
 * Conflict policies (`conflict`): `timestamp` (the newer `conflictColumn` wins; on a tie, or when
 * neither has a value, side A wins: every process decides the same, so both sides end equal),
 * `priority` (the `priority` connection's side wins, its deletion included), `merge` (A's non-null
 * values over B's, written to both), `manual` (nothing is written; the conflict is recorded pending
 * for `rowsync conflicts resolve`), `custom` (a resolver module). Update against delete: the update
 * wins (the row is kept on both sides: no data is lost), except under `priority` (the priority
 * side's state wins) and `manual`.
 */

export type Side = 'a' | 'b';
export type BidirectionalPolicyName = 'timestamp' | 'priority' | 'merge' | 'manual' | 'custom';
export type ConflictKind = 'insert-insert' | 'update-update' | 'update-delete';

export interface BidirectionalPolicy {
  readonly conflict: BidirectionalPolicyName;
  readonly conflictColumn: string;
  /** The side whose row wins under `priority`. */
  readonly priority?: Side;
  readonly resolver?: CustomResolver;
}

/** One conflict, as logged in side B's `rowsync_conflicts`. */
export interface BidirectionalConflict {
  readonly pipeline: string;
  readonly table: string;
  readonly key: Readonly<Record<string, PortableValue>>;
  readonly rowA: Readonly<Record<string, PortableValue>> | null;
  readonly rowB: Readonly<Record<string, PortableValue>> | null;
  readonly kind: ConflictKind;
  readonly policy: BidirectionalPolicyName;
  readonly outcome: ConflictOutcome;
}

export interface BidirectionalRequest {
  readonly pipeline: string;
  readonly a: Database;
  readonly b: Database;
  /** `source`: side A's shape, `target`: side B's. */
  readonly pair: TablePair;
  readonly policy: BidirectionalPolicy;
  readonly state: SyncStateStore;
  readonly dryRun: boolean;
  readonly recordConflicts: (conflicts: readonly BidirectionalConflict[]) => Promise<void>;
}

/** Rounds of re-reading keys whose rows changed under a write, before the rest is left to the next sync. */
const MAX_ROUNDS = 5;

/**
 * Converges `keys` on both sides by the decision table above. Idempotent and order-insensitive like
 * `syncKeys`; callers hold the keys' leases (two syncs of one key never run at once).
 */
export async function syncBidirectional(request: BidirectionalRequest, keys: readonly KeyTuple[]): Promise<BidirectionalResult> {
  let total = EMPTY_BIDIRECTIONAL_RESULT;
  let pending = distinctKeys(request.pair.source, keys);
  for (let round = 0; round < MAX_ROUNDS && pending.length > 0; round += 1) {
    const { result, changed } = await syncRound(request, pending);
    total = addBidirectionalResults(total, result);
    pending = changed;
  }
  // Still racing after several rounds (a key written continuously): its next change event, or the
  // next run, syncs it again. Nothing was overwritten.
  return total;
}

interface Plan {
  readonly toA: SideWrites;
  readonly toB: SideWrites;
  /** New sync state per key id, applied once both sides' writes of that key went through. */
  readonly state: Map<string, { key: KeyTuple; hash: string | null }>;
  readonly conflicts: BidirectionalConflict[];
  result: BidirectionalResult;
}

class SideWrites {
  readonly upserts: Row[] = [];
  readonly deletes: KeyTuple[] = [];
  readonly expected: ExpectedRow[] = [];
  get size(): number {
    return this.upserts.length + this.deletes.length;
  }
  /** Makes this side's row of `key` become `wanted` (absent: delete), given what was read there. */
  set(key: KeyTuple, current: Row | undefined, wanted: Row | undefined): void {
    if (wanted) this.upserts.push(wanted);
    else if (current) this.deletes.push(key);
    else return;
    this.expected.push({ key, row: current });
  }
  changes(): ChangeSet {
    return { upserts: this.upserts, deletes: this.deletes };
  }
}

async function syncRound(request: BidirectionalRequest, keys: readonly KeyTuple[]): Promise<{ result: BidirectionalResult; changed: KeyTuple[] }> {
  const { pair } = request;
  const shape = pair.source;
  const [rowsA, rowsB, state] = await Promise.all([
    request.a.fetchByKeys(pair.source, keys),
    request.b.fetchByKeys(pair.target, keys),
    request.state.read(request.pipeline, shape.table, keys.map((key) => syncStateKeyId(shape, key))),
  ]);
  const byKeyA = indexByKey(pair.source, rowsA);
  const byKeyB = indexByKey(pair.target, rowsB);
  const plan: Plan = { toA: new SideWrites(), toB: new SideWrites(), state: new Map(), conflicts: [], result: EMPTY_BIDIRECTIONAL_RESULT };
  for (const key of keys) {
    const identity = keyIdentity(shape, key);
    await decideKey(request, plan, key, byKeyA.get(identity), byKeyB.get(identity), state.get(syncStateKeyId(shape, key)));
  }
  if (request.dryRun) return { result: plan.result, changed: [] };

  // Conflicts first: a crash after the writes must not lose the record of what was decided.
  if (plan.conflicts.length > 0) await request.recordConflicts(plan.conflicts);
  const [appliedA, appliedB] = await Promise.all([
    plan.toA.size > 0 ? request.a.applyChangesIfUnchanged(pair.source, plan.toA.changes(), plan.toA.expected) : undefined,
    plan.toB.size > 0 ? request.b.applyChangesIfUnchanged(pair.target, plan.toB.changes(), plan.toB.expected) : undefined,
  ]);
  const changedIds = new Set<string>();
  const changed: KeyTuple[] = [];
  for (const key of [...(appliedA?.changed ?? []), ...(appliedB?.changed ?? [])]) {
    const id = keyIdentity(shape, key);
    if (changedIds.has(id)) continue;
    changedIds.add(id);
    changed.push(key);
  }
  // A key written on one side but raced on the other keeps its old state: the next round (or the
  // next sync) sees both changed and decides again by the policy, which converges.
  const entries = [...plan.state.values()]
    .filter((entry) => !changedIds.has(keyIdentity(shape, entry.key)))
    .map((entry) => ({ keyId: syncStateKeyId(shape, entry.key), hash: entry.hash }));
  if (entries.length > 0) await request.state.write(request.pipeline, shape.table, entries);
  const result = {
    ...plan.result,
    writtenToA: (appliedA?.upserted ?? 0) + (appliedA?.deleted ?? 0),
    writtenToB: (appliedB?.upserted ?? 0) + (appliedB?.deleted ?? 0),
  };
  return { result, changed };
}

async function decideKey(
  request: BidirectionalRequest,
  plan: Plan,
  key: KeyTuple,
  rowA: Row | undefined,
  rowB: Row | undefined,
  stateHash: string | undefined,
): Promise<void> {
  const shape = request.pair.source;
  const hashA = rowA ? rowHash(shape, rowA) : null;
  const hashB = rowB ? rowHash(shape, rowB) : null;
  const count = (change: Partial<BidirectionalResult>) => {
    plan.result = addBidirectionalResults(plan.result, { ...EMPTY_BIDIRECTIONAL_RESULT, ...change });
  };
  /** Both sides become `wanted` (absent: deleted); a side that already is gets no write. */
  const settle = (wanted: Row | undefined) => {
    const wantedHash = wanted ? rowHash(shape, wanted) : null;
    if (wantedHash !== hashA) plan.toA.set(key, rowA, wanted);
    if (wantedHash !== hashB) plan.toB.set(key, rowB, wanted);
    plan.state.set(keyIdentity(shape, key), { key, hash: wantedHash });
  };

  if (hashA === hashB) {
    count({ unchanged: 1 });
    if ((stateHash ?? null) !== hashA) plan.state.set(keyIdentity(shape, key), { key, hash: hashA });
    return;
  }
  const changedA = stateHash === undefined ? hashA !== null : hashA !== stateHash;
  const changedB = stateHash === undefined ? hashB !== null : hashB !== stateHash;
  if (changedA && !changedB) {
    count(rowA ? { changedOnA: 1 } : { deletedOnA: 1 });
    settle(rowA);
    return;
  }
  if (changedB && !changedA) {
    count(rowB ? { changedOnB: 1 } : { deletedOnB: 1 });
    settle(rowB);
    return;
  }
  const kind: ConflictKind = stateHash === undefined ? 'insert-insert' : rowA && rowB ? 'update-update' : 'update-delete';
  const decision = await resolveConflict(request, key, rowA, rowB);
  plan.conflicts.push({
    pipeline: request.pipeline,
    // The pipeline's (side A) name of the table: `rowsync conflicts` finds the pair again by it.
    table: request.pair.source.table,
    key: keyObject(shape, key),
    rowA: rowA ? rowObject(shape, rowA) : null,
    rowB: rowB ? rowObject(shape, rowB) : null,
    kind,
    policy: request.policy.conflict,
    outcome: decision.outcome,
  });
  count({ conflicts: { [decision.outcome]: 1 } });
  if (decision.outcome === 'pending' || decision.outcome === 'skipped') return;
  settle(decision.row);
}

async function resolveConflict(
  request: BidirectionalRequest,
  key: KeyTuple,
  rowA: Row | undefined,
  rowB: Row | undefined,
): Promise<{ outcome: ConflictOutcome; row: Row | undefined }> {
  const { policy } = request;
  const shape = request.pair.source;
  const side = (winner: Side) => ({ outcome: (winner === 'a' ? 'a_won' : 'b_won') as ConflictOutcome, row: winner === 'a' ? rowA : rowB });
  if (policy.conflict === 'manual') return { outcome: 'pending', row: undefined };
  if (policy.conflict === 'priority') return side(policy.priority ?? 'a');
  // Update against delete: keep the row (no data lost), whichever side still has it.
  if (!rowA || !rowB) return side(rowA ? 'a' : 'b');
  switch (policy.conflict) {
    case 'timestamp': {
      const index = conflictColumnIndex(shape, policy.conflictColumn, request.a.connectionName);
      const kind = shape.columns[index]!.kind;
      const [a, b] = [rowA[index] ?? null, rowB[index] ?? null];
      // Newer wins; a value beats NULL; a tie goes to side A, the same choice on every process.
      if (b !== null && (a === null || compareColumnValues(kind, b, a) > 0)) return side('b');
      return side('a');
    }
    case 'merge':
      return { outcome: 'merged', row: rowA.map((value, index) => (value === null ? (rowB[index] ?? null) : value)) };
    case 'custom': {
      if (!policy.resolver) throw new Error(`no resolver loaded for table ${shape.table}`);
      const decision = await policy.resolver({
        table: shape.table,
        key: keyObject(shape, key),
        source: rowObject(shape, rowA),
        target: rowObject(shape, rowB),
      });
      if (decision === 'source') return side('a');
      if (decision === 'target') return side('b');
      if (decision === 'skip') return { outcome: 'skipped', row: undefined };
      const field = `pipelines.${request.pipeline}.resolvers.${shape.table}`;
      const unknown =
        typeof decision === 'object' && decision !== null && !Array.isArray(decision)
          ? Object.keys(decision).filter((name) => columnIndex(shape, name) === -1)
          : undefined;
      if (!unknown || unknown.length > 0) {
        const what = unknown ? `unknown column(s) ${unknown.join(', ')}` : `${typeof decision} ${String(decision)}`;
        throw new ConfigError(`${field}: resolver returned ${what}; expected 'source', 'target', 'skip' or a row object`, { subject: field });
      }
      const row = shape.columns.map((column, index) =>
        Object.prototype.hasOwnProperty.call(decision, column.name) ? (decision[column.name] ?? null) : (rowA[index] ?? null),
      );
      return { outcome: 'resolver_row', row };
    }
    default:
      throw new Error(`unknown bidirectional conflict policy ${policy.conflict}`);
  }
}

function distinctKeys(shape: TableShape, keys: readonly KeyTuple[]): KeyTuple[] {
  const seen = new Set<string>();
  return keys.filter((key) => {
    const identity = keyIdentity(shape, key);
    if (seen.has(identity)) return false;
    seen.add(identity);
    return true;
  });
}

/** A bidirectional result in the shape every sync reports (`SyncResult`): conflicts counted, details kept. */
export function asSyncResult(result: BidirectionalResult): SyncResult {
  const conflicts = Object.values(result.conflicts).reduce((total, count) => total + (count ?? 0), 0);
  return { inserted: 0, updated: 0, deleted: 0, conflicts, unchanged: result.unchanged, skipped: 0, bidirectional: result };
}
