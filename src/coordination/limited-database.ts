import type { Database } from '../dialect/dialect.js';
import { queryStarted, queryWaiting } from '../metrics/instruments.js';
import type { RedisSemaphore } from './redis-semaphore.js';

/**
 * The methods that run no query (they build SQL text or close the pool). Every other method is
 * gated: a list of the querying ones instead let each new one (the load and lag probes, the filter
 * check, the MySQL sync state's `transaction`) bypass the cap until someone remembered to add it.
 * A gated method's own inner queries go to the wrapped object, so they take no second slot.
 */
const NOT_QUERYING = new Set<PropertyKey>(['canRenderInSql', 'quoteIdentifier', 'close']);

/**
 * A Database whose queries are counted while they run (`rowsync_database_queries_in_flight`, labelled
 * with the connection name): how close a process comes to its pool size and to the server's cap.
 */
export function countQueries(database: Database): Database {
  return wrapQueries(database, (run) => {
    const done = queryStarted(database.connectionName);
    return run().finally(done);
  });
}

/**
 * A Database whose queries take a slot of a Redis semaphore first, so the number of concurrent
 * queries on one server stays bounded however many worker processes run. Only the methods that
 * query are gated; the rest pass through.
 */
export function limitDatabase(database: Database, semaphore: RedisSemaphore): Database {
  return wrapQueries(database, (run) => {
    // Counted while waiting for a slot (`rowsync_database_queries_waiting`): a cap set too low shows there.
    let waited: (() => void) | undefined = queryWaiting(database.connectionName);
    const stopWaiting = () => {
      waited?.();
      waited = undefined;
    };
    return semaphore
      .run(() => {
        stopWaiting();
        return run();
      })
      .finally(stopWaiting);
  });
}

/** Routes every querying method of `database` through `around`; the other members pass through. */
function wrapQueries(database: Database, around: (run: () => Promise<unknown>) => Promise<unknown>): Database {
  return new Proxy(database, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof property === 'symbol' || NOT_QUERYING.has(property)) return (value as (...args: unknown[]) => unknown).bind(target);
      // async: a method that returns a plain value or throws still yields a promise to `around`.
      return (...args: unknown[]) => around(async () => (value as (...params: unknown[]) => unknown).apply(target, args));
    },
  });
}
