import { keyIdentity } from '../dialect/canonical.js';
import type { KeyTuple, TableShape } from '../dialect/types.js';

/**
 * The apply lane of a key: hash(table, key) mod lanes (FNV-1a over the canonical key identity, so
 * every process, whatever engine it read the key from, routes the same key to the same lane).
 * One lane runs one job at a time across all workers; that two syncs of one key never overlap, also
 * with a chunk job syncing keys itself, is the key leases' work (coordination/key-leases.ts).
 */
export function laneOf(table: string, keyText: string, lanes: number): number {
  return keyHash(table, keyText) % lanes;
}

/** FNV-1a 32-bit of (table, canonical key identity): lanes are this mod L, key leases this itself. */
export function keyHash(table: string, keyText: string): number {
  let hash = 0x811c9dc5;
  const text = `${table}\u0000${keyText}`;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The key-lease ids of `keys` (see coordination/key-leases.ts). */
export function leaseIdsOf(shape: TableShape, keys: readonly KeyTuple[]): number[] {
  return keys.map((key) => keyHash(shape.table, keyIdentity(shape, key)));
}

/** Groups keys by lane, then cuts each lane's keys into batches of at most `batchSize`. */
export function batchKeysByLane(
  shape: TableShape,
  keys: readonly KeyTuple[],
  lanes: number,
  batchSize: number,
): { lane: number; keys: KeyTuple[] }[] {
  const byLane = new Map<number, KeyTuple[]>();
  for (const key of keys) {
    const lane = laneOf(shape.table, keyIdentity(shape, key), lanes);
    const list = byLane.get(lane) ?? [];
    list.push(key);
    byLane.set(lane, list);
  }
  const batches: { lane: number; keys: KeyTuple[] }[] = [];
  for (const [lane, laneKeys] of [...byLane.entries()].sort((a, b) => a[0] - b[0])) {
    for (let start = 0; start < laneKeys.length; start += batchSize) {
      batches.push({ lane, keys: laneKeys.slice(start, start + batchSize) });
    }
  }
  return batches;
}
