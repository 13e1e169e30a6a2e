import { BucketAccumulator, checksumOfRows, keyIdentity, rowHash } from '../../src/dialect/canonical.js';
import { bucketKeyColumn, planConditionalWrite, rangeList, type Database } from '../../src/dialect/dialect.js';
import type {
  ApplyResult, ChangeSet, ConditionalApplyResult, ExpectedRow, KeyRange, KeyTuple, PortableValue, Row, TableShape, ValueKind,
} from '../../src/dialect/types.js';

/**
 * An in-memory table for unit tests of the algorithm layers (range differ, sync): it implements the
 * data methods of `Database` with the contract's key order (numbers numerically, text by UTF-8
 * bytes) and the reference checksum of canonical.ts. It is not a dialect: the conformance suite
 * checks the real ones against real servers.
 */
export class MemoryDatabase implements Database {
  readonly engine = 'mysql' as const;
  rows: Row[] = [];
  queries = 0;
  applied: ChangeSet[] = [];

  constructor(readonly connectionName: string, readonly shape: TableShape) {}

  canRenderInSql(kind: ValueKind): boolean {
    return kind !== 'float' && kind !== 'json';
  }
  quoteIdentifier(name: string): string {
    return `"${name}"`;
  }
  async listTables(): Promise<string[]> {
    return [this.shape.table];
  }
  async describeTable(): Promise<never> {
    throw new Error('not used');
  }
  async execute(): Promise<never> {
    throw new Error('not used');
  }
  async checkFilter(): Promise<void> {}
  async readLoad(): Promise<never> {
    throw new Error('not used');
  }
  async readReplicaLag(): Promise<never> {
    throw new Error('not used');
  }
  async close(): Promise<void> {}
  async recordConflicts(): Promise<never> {
    throw new Error('not used: syncKeys takes its own recordConflicts');
  }
  private readonly checkpoints = new Map<string, string>();
  async readCheckpoint(pipeline: string, source: string): Promise<string | undefined> {
    return this.checkpoints.get(`${pipeline}\u0000${source}`);
  }
  async writeCheckpoint(pipeline: string, source: string, position: string): Promise<void> {
    this.checkpoints.set(`${pipeline}\u0000${source}`, position);
  }
  async deleteCheckpoint(pipeline: string, source: string): Promise<void> {
    this.checkpoints.delete(`${pipeline}\u0000${source}`);
  }

  private sorted(range: KeyRange): Row[] {
    this.queries += 1;
    return this.rows
      .filter((row) => inRange(this.shape, row, range))
      .sort((a, b) => compareKeys(keyOf(this.shape, a), keyOf(this.shape, b)));
  }
  async checksumRange(shape: TableShape, range: KeyRange) {
    return checksumOfRows(shape, this.sorted(range));
  }
  async checksumBuckets(shape: TableShape, range: KeyRange, width: number) {
    bucketKeyColumn(shape, width);
    const accumulator = new BucketAccumulator(width);
    for (const row of this.sorted(range)) accumulator.add(keyOf(shape, row)[0] ?? null, rowHash(shape, row));
    return accumulator.result();
  }
  async rowHashes(shape: TableShape, range: KeyRange | readonly KeyRange[], limit: number) {
    return rangeList(range)
      .flatMap((part) => this.sorted(part))
      .slice(0, limit)
      .map((row) => ({ key: keyOf(shape, row), hash: rowHash(shape, row) }));
  }
  async countRange(_shape: TableShape, range: KeyRange) {
    return this.sorted(range).length;
  }
  async keyAtOffset(_shape: TableShape, range: KeyRange, offset: number) {
    const row = this.sorted(range)[offset];
    return row ? keyOf(this.shape, row) : undefined;
  }
  async fetchRange(_shape: TableShape, range: KeyRange, limit: number) {
    return this.sorted(range).slice(0, limit);
  }
  async fetchByKeys(shape: TableShape, keys: readonly KeyTuple[]) {
    this.queries += 1;
    const wanted = new Set(keys.map((key) => keyIdentity(shape, key)));
    return this.rows.filter((row) => wanted.has(keyIdentity(shape, keyOf(shape, row))));
  }
  async applyChanges(shape: TableShape, changes: ChangeSet): Promise<ApplyResult> {
    this.applied.push(changes);
    const deleted = new Set(changes.deletes.map((key) => keyIdentity(shape, key)));
    const upserted = new Map(changes.upserts.map((row) => [keyIdentity(shape, keyOf(shape, row)), row]));
    this.rows = this.rows.filter((row) => {
      const identity = keyIdentity(shape, keyOf(shape, row));
      return !deleted.has(identity) && !upserted.has(identity);
    });
    this.rows.push(...upserted.values());
    return { upserted: upserted.size, deleted: deleted.size };
  }
  /** No concurrency here: the "lock" is the synchronous check right before the write. */
  async applyChangesIfUnchanged(shape: TableShape, changes: ChangeSet, expected: readonly ExpectedRow[]): Promise<ConditionalApplyResult> {
    const plan = planConditionalWrite(shape, changes, expected);
    const decided = plan.decide(await this.fetchByKeys(shape, plan.keys));
    const { upserts, deletes } = decided.changes;
    const applied = upserts.length + deletes.length > 0 ? await this.applyChanges(shape, decided.changes) : { upserted: 0, deleted: 0 };
    return { ...applied, changed: decided.changed };
  }
}

function keyOf(shape: TableShape, row: Row): KeyTuple {
  return shape.keyIndexes.map((index) => row[index] ?? null);
}

function compareValues(a: PortableValue, b: PortableValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return Buffer.compare(Buffer.from(String(a)), Buffer.from(String(b)));
}

export function compareKeys(a: KeyTuple, b: KeyTuple): number {
  for (let index = 0; index < a.length; index += 1) {
    const order = compareValues(a[index] ?? null, b[index] ?? null);
    if (order !== 0) return order;
  }
  return 0;
}

function inRange(shape: TableShape, row: Row, range: KeyRange): boolean {
  const key = keyOf(shape, row);
  if (range.lower && compareKeys(key, range.lower) < 0) return false;
  if (range.upper && compareKeys(key, range.upper) >= 0) return false;
  return true;
}
