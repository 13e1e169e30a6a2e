import type { Database } from '../dialect/dialect.js';
import type { RedisSemaphore } from './redis-semaphore.js';

/**
 * A Database whose queries take a slot of a Redis semaphore first, so the number of concurrent
 * queries on one server stays bounded however many worker processes run. Only the methods that
 * query are gated; the rest pass through.
 */
export function limitDatabase(database: Database, semaphore: RedisSemaphore): Database {
  const gated = new Set<keyof Database>([
    'listTables', 'describeTable', 'checksumRange', 'checksumBuckets', 'rowHashes', 'countRange', 'keyAtOffset', 'fetchRange', 'fetchByKeys',
    'applyChanges', 'applyChangesIfUnchanged', 'execute', 'recordConflicts', 'readCheckpoint', 'writeCheckpoint', 'deleteCheckpoint',
  ]);
  return new Proxy(database, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!gated.has(property as keyof Database)) return (value as (...args: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => semaphore.run(() => (value as (...params: unknown[]) => Promise<unknown>).apply(target, args));
    },
  });
}
