import type { ChangeTransaction } from '../dialect/change-source.js';
import type { KeyTuple } from '../dialect/types.js';
import { encodeTuple } from '../sync/portable-json.js';

/**
 * What one batch of the stream changed: keys per table (each key once), tables to reconcile, and the
 * position right after its last transaction. A batch only ever ends at a transaction's end, so its
 * position is one a reader may resume from.
 */
export interface ChangeBatch {
  readonly position: string;
  /** Commit time of the batch's oldest transaction (ms since epoch): lag is measured from it. */
  readonly committedAt: number;
  readonly keys: ReadonlyMap<string, readonly KeyTuple[]>;
  /** Tables whose TRUNCATE or schema change the batch saw: they get a reconcile run. */
  readonly reconcile: ReadonlySet<string>;
  readonly keyCount: number;
}

/**
 * Collects committed transactions into batches of changed keys: a batch is cut at the first
 * transaction end after it holds `batchSize` keys or has been open `windowMs` (the reader asks),
 * never inside a transaction. A key changed many times in one batch is synced once: sync reads the
 * source's current row, so the last change wins whichever change the batch saw first.
 */
export class ChangeBatcher {
  private keys = new Map<string, Map<string, KeyTuple>>();
  private reconcile = new Set<string>();
  private keyCount = 0;
  private position: string | undefined;
  private committedAt: number | undefined;
  private openedAt: number | undefined;

  constructor(private readonly batchSize: number) {}

  add(transaction: ChangeTransaction, now = Date.now()): void {
    this.openedAt ??= now;
    this.committedAt ??= transaction.committedAt ?? now;
    this.position = transaction.position;
    for (const change of transaction.changes) {
      if (change.kind === 'reconcile') {
        this.reconcile.add(change.table);
        continue;
      }
      let table = this.keys.get(change.table);
      if (!table) {
        table = new Map();
        this.keys.set(change.table, table);
      }
      for (const key of change.keys) {
        const identity = JSON.stringify(encodeTuple(key));
        if (!table.has(identity)) {
          table.set(identity, key);
          this.keyCount += 1;
        }
      }
    }
  }

  /** Moves the batch's end to a later position at which the source reported nothing new (heartbeat). */
  extendTo(position: string, now = Date.now()): void {
    this.openedAt ??= now;
    this.committedAt ??= now;
    this.position = position;
  }

  get isEmpty(): boolean {
    return this.position === undefined;
  }

  get isFull(): boolean {
    return this.keyCount >= this.batchSize;
  }

  /** Distinct keys collected so far. */
  get size(): number {
    return this.keyCount;
  }

  /** How long the open batch has been collecting (0 when empty). */
  age(now = Date.now()): number {
    return this.openedAt === undefined ? 0 : now - this.openedAt;
  }

  /** Hands out the batch collected so far and starts a new one; undefined when nothing was added. */
  cut(): ChangeBatch | undefined {
    if (this.position === undefined) return undefined;
    const batch: ChangeBatch = {
      position: this.position,
      committedAt: this.committedAt!,
      keys: new Map([...this.keys].map(([table, keys]) => [table, [...keys.values()]])),
      reconcile: this.reconcile,
      keyCount: this.keyCount,
    };
    this.keys = new Map();
    this.reconcile = new Set();
    this.keyCount = 0;
    this.position = undefined;
    this.committedAt = undefined;
    this.openedAt = undefined;
    return batch;
  }
}

/**
 * Cuts a batch's keys into parts of at most `size` keys (one job each), table by table, so a single
 * huge transaction still becomes jobs of bounded size.
 */
export function splitBatchKeys(
  keys: ReadonlyMap<string, readonly KeyTuple[]>,
  size: number,
): Map<string, KeyTuple[]>[] {
  const parts: Map<string, KeyTuple[]>[] = [];
  let current = new Map<string, KeyTuple[]>();
  let count = 0;
  for (const [table, tableKeys] of keys) {
    for (const key of tableKeys) {
      if (count >= size) {
        parts.push(current);
        current = new Map();
        count = 0;
      }
      let list = current.get(table);
      if (!list) {
        list = [];
        current.set(table, list);
      }
      list.push(key);
      count += 1;
    }
  }
  if (count > 0) parts.push(current);
  return parts;
}
