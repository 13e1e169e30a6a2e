/**
 * What the CDC suites share: an `items` table with BIGINT keys above 2^53 on both engines, a single
 * connection per side for real multi-statement transactions, a seeded random workload of inserts,
 * updates, deletes and key-changing updates, and a wait for the target to equal the source.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { CdcMode } from '../../src/dialect/change-source.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { TablePair } from '../../src/dialect/table-pair.js';
import type { Engine } from '../../src/dialect/types.js';
import { expectEqualTables } from './orders-fixture.js';
import { scratchUrl } from './scratch.js';

export const CDC_MODES: Record<Engine, readonly CdcMode[]> = { mysql: ['binlog', 'polling'], postgres: ['logical', 'polling'] };

/** Keys start above 2^53: a decoder that reads BIGINT as a double names another row. */
export const BASE_ID = 9_007_199_254_740_993n;
export const idText = (offset: number) => String(BASE_ID + BigInt(offset));

export const ITEMS_DDL: Record<Engine, string> = {
  mysql:
    'CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, sku VARCHAR(40) NOT NULL, qty INT NOT NULL, price DECIMAL(12,2) NULL, ' +
    'note TEXT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB',
  postgres:
    'CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, sku VARCHAR(40) NOT NULL, qty INT NOT NULL, price NUMERIC(12,2) NULL, ' +
    'note TEXT NULL, updated_at TIMESTAMP(6) NOT NULL)',
};

/** One connection: statements run in order, so BEGIN ... COMMIT is a real transaction. */
export interface Session {
  run(sql: string): Promise<void>;
  /** The server's id of this connection (MySQL CONNECTION_ID(), PostgreSQL pg_backend_pid()). */
  serverId(): Promise<number>;
  close(): Promise<void>;
}

export async function openSession(engine: Engine, namespace: string): Promise<Session> {
  const url = scratchUrl(engine, namespace);
  if (engine === 'mysql') {
    const connection = await mysql.createConnection(url);
    return {
      run: async (sql) => {
        await connection.query(sql);
      },
      serverId: async () => Number(((await connection.query('SELECT CONNECTION_ID() AS id')) as unknown as [{ id: number }[]])[0][0]!.id),
      close: () => connection.end(),
    };
  }
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.search = '';
  const client = new pg.Client({ connectionString: parsed.toString() });
  await client.connect();
  await client.query(`SET search_path TO "${schema}"`);
  return {
    run: async (sql) => {
      await client.query(sql);
    },
    serverId: async () => Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid),
    close: () => client.end(),
  };
}

/** A small seeded PRNG, so a failing workload can be replayed. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

const stamp = (index: number) => `2026-11-${String(1 + (index % 28)).padStart(2, '0')} 10:${String(index % 60).padStart(2, '0')}:00.${String(index % 1_000_000).padStart(6, '0')}`;

export function itemValues(offset: number, version: number): string {
  return `(${idText(offset)}, 'sku-${offset}-${version}', ${(offset * 7 + version) % 997}, ${version % 5 === 0 ? 'NULL' : `${offset}.${String(version % 100).padStart(2, '0')}`}, ` +
    `${version % 3 === 0 ? 'NULL' : `'note ${version}'`}, '${stamp(offset + version)}')`;
}

/**
 * Runs `transactions` random transactions on the source: inserts of 1-5 rows, updates, deletes and
 * key-changing updates, mixed in one transaction. `ids` is the set of live key offsets (updated).
 */
export async function runWorkload(session: Session, ids: Set<number>, options: { transactions: number; seed: number; nextId: { value: number } }): Promise<void> {
  const next = random(options.seed);
  const pick = () => [...ids][Math.floor(next() * ids.size)];
  for (let transaction = 0; transaction < options.transactions; transaction += 1) {
    const statements: string[] = [];
    const operations = 1 + Math.floor(next() * 5);
    for (let operation = 0; operation < operations; operation += 1) {
      const choice = next();
      const existing = pick();
      if (choice < 0.4 || existing === undefined) {
        const count = 1 + Math.floor(next() * 5);
        const rows: string[] = [];
        for (let row = 0; row < count; row += 1) {
          const offset = (options.nextId.value += 1);
          ids.add(offset);
          rows.push(itemValues(offset, transaction));
        }
        statements.push(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${rows.join(', ')}`);
      } else if (choice < 0.75) {
        statements.push(`UPDATE items SET qty = qty + 1, note = 'changed ${transaction}', updated_at = '${stamp(transaction)}' WHERE id = ${idText(existing)}`);
      } else if (choice < 0.9) {
        ids.delete(existing);
        statements.push(`DELETE FROM items WHERE id = ${idText(existing)}`);
      } else {
        const offset = (options.nextId.value += 1);
        ids.delete(existing);
        ids.add(offset);
        statements.push(`UPDATE items SET id = ${idText(offset)} WHERE id = ${idText(existing)}`);
      }
    }
    await session.run('BEGIN');
    for (const statement of statements) await session.run(statement);
    await session.run('COMMIT');
  }
}

/** Waits until the target equals the source row by row (checksums first, then every row). */
export async function waitForEqual(source: Database, target: Database, pair: TablePair, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problems: string[] = [];
  while (Date.now() < deadline) {
    const [a, b] = await Promise.all([source.checksumRange(pair.source, {}), target.checksumRange(pair.target, {})]);
    if (a.count === b.count && a.sum === b.sum) {
      problems = await expectEqualTables(source, target, pair);
      if (problems.length === 0) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  problems = await expectEqualTables(source, target, pair);
  throw new Error(`target did not converge within ${timeoutMs} ms: ${problems.join('; ')}`);
}

/** Waits for a condition with a deadline (never a fixed sleep). */
export async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
