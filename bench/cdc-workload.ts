/**
 * The CDC benchmark's data and writers: an `items` table (BIGINT key, text, int, decimal,
 * microsecond datetime) and a one-row `probe` table, created alike on MariaDB and PostgreSQL; the
 * same seeded rows on both sides; and a seeded workload of multi-row transactions (inserts, updates,
 * deletes, 1-100 rows each, every row of a transaction a distinct key) written through one
 * connection, so that one written row change is one key the change source delivers.
 */
import mysql from 'mysql2/promise';
import pg from 'pg';
import { mysqlParts } from './bench-env.js';

export type Engine = 'mysql' | 'postgres';

export const ITEMS_DDL: Record<Engine, string> = {
  mysql:
    'CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, sku VARCHAR(40) NOT NULL, qty INT NOT NULL, price DECIMAL(12,2) NULL, ' +
    'note TEXT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci',
  postgres:
    'CREATE TABLE items (id BIGINT NOT NULL PRIMARY KEY, sku VARCHAR(40) NOT NULL, qty INT NOT NULL, price NUMERIC(12,2) NULL, ' +
    'note TEXT NULL, updated_at TIMESTAMP(6) NOT NULL)',
};

/** The lag probe: one row whose `seq` the writer bumps; the target is polled for it. */
export const PROBE_DDL: Record<Engine, string> = {
  mysql: 'CREATE TABLE probe (id INT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL) ENGINE=InnoDB',
  postgres: 'CREATE TABLE probe (id INT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL)',
};

/** One connection to one namespace (a MariaDB database or a PostgreSQL schema). */
export interface Session {
  readonly engine: Engine;
  /** Runs SQL text; several statements separated by `;` go in one round trip. */
  run(sql: string): Promise<void>;
  /** First column of the first row, or undefined. */
  scalar(sql: string): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * PostgreSQL sessions of the bench commit with `synchronous_commit = on` unless told otherwise: the
 * test server runs with it off (scripts/services.sh), and the walsender streams only WAL that has been
 * flushed, which the WAL writer then does every wal_writer_delay (200 ms) - a delay of the server's
 * setting, not of rowsync, that production servers (default on) do not have.
 */
export const pgSessionSettings = { synchronousCommit: true };

export async function openSession(engine: Engine, serverUrl: string, namespace: string): Promise<Session> {
  if (engine === 'mysql') {
    const { host, port, user, password } = mysqlParts(serverUrl);
    const connection = await mysql.createConnection({
      host, port, user, password, database: namespace, multipleStatements: true, supportBigNumbers: true, bigNumberStrings: true,
      dateStrings: true, charset: 'UTF8MB4_GENERAL_CI',
    });
    return {
      engine,
      run: async (sql) => {
        await connection.query(sql);
      },
      scalar: async (sql) => {
        const [rows] = await connection.query({ sql, rowsAsArray: true });
        return (rows as unknown[][])[0]?.[0];
      },
      close: () => connection.end(),
    };
  }
  const parsed = new URL(serverUrl);
  parsed.search = '';
  const client = new pg.Client({
    connectionString: parsed.toString(),
    options: `-c TimeZone=UTC -c search_path=${namespace}${pgSessionSettings.synchronousCommit ? ' -c synchronous_commit=on' : ''}`,
  });
  client.on('error', () => undefined);
  await client.connect();
  return {
    engine,
    run: async (sql) => {
      await client.query(sql);
    },
    scalar: async (sql) => {
      const result = await client.query({ text: sql, rowMode: 'array' });
      return (result.rows as unknown[][])[0]?.[0];
    },
    close: () => client.end(),
  };
}

/** A small seeded PRNG (the workload is the same on every run with the same seed). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state / 2 ** 32;
  };
}

const stamp = (n: number) =>
  `2026-${String(1 + (n % 12)).padStart(2, '0')}-${String(1 + (n % 28)).padStart(2, '0')} ` +
  `${String(n % 24).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}:${String((n * 7) % 60).padStart(2, '0')}.${String((n * 7919) % 1_000_000).padStart(6, '0')}`;

/** Row `id` at version `version`, as SQL values valid on both engines (equal values hash equal). */
export function itemValues(id: number, version: number): string {
  const n = id * 31 + version;
  return `(${id}, 'sku-${id}-${version}', ${n % 99_991}, ${n % 7 === 0 ? 'NULL' : `${n % 1_000_000}.${String(n % 100).padStart(2, '0')}`}, ` +
    `${n % 5 === 0 ? 'NULL' : `'note ${version} ${'x'.repeat(n % 40)}'`}, '${stamp(n)}')`;
}

/** Inserts rows 1..rows on a side (the same rows on both sides of a pair). */
export async function seedItems(session: Session, rows: number, onProgress?: (done: number) => void): Promise<void> {
  const chunk = 5000;
  for (let start = 1; start <= rows; start += chunk) {
    const values: string[] = [];
    for (let id = start; id < Math.min(rows + 1, start + chunk); id += 1) values.push(itemValues(id, 0));
    await session.run(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${values.join(', ')}`);
    onProgress?.(Math.min(rows, start + chunk - 1));
  }
  await session.run('INSERT INTO probe (id, seq) VALUES (1, 0)');
}

/** Live keys and the next new key: what the workload may update, delete and insert. */
export class Workload {
  private readonly live: number[];
  private nextId: number;
  private readonly next: () => number;
  private version = 0;

  constructor(seedRows: number, seed: number) {
    this.live = Array.from({ length: seedRows }, (_, index) => index + 1);
    this.nextId = seedRows + 1;
    this.next = random(seed);
  }

  /**
   * One transaction of `size` row changes on distinct keys (about 40% inserts, 45% updates, 15%
   * deletes), as one SQL text (BEGIN ... COMMIT).
   */
  transaction(size: number): string {
    this.version += 1;
    const version = this.version;
    const inserts: string[] = [];
    const updates: number[] = [];
    const deletes: number[] = [];
    const touched = new Set<number>();
    for (let row = 0; row < size; row += 1) {
      const choice = this.next();
      if (choice < 0.4 || this.live.length < 1000) {
        const id = this.nextId;
        this.nextId += 1;
        inserts.push(itemValues(id, version));
        this.live.push(id);
        touched.add(id);
        continue;
      }
      // An existing key not yet touched by this transaction.
      let index = Math.floor(this.next() * this.live.length);
      while (touched.has(this.live[index]!)) index = Math.floor(this.next() * this.live.length);
      const id = this.live[index]!;
      touched.add(id);
      if (choice < 0.85) updates.push(id);
      else {
        deletes.push(id);
        this.live[index] = this.live[this.live.length - 1]!;
        this.live.pop();
      }
    }
    const statements = ['BEGIN'];
    if (deletes.length > 0) statements.push(`DELETE FROM items WHERE id IN (${deletes.join(', ')})`);
    if (updates.length > 0) {
      // qty always changes: MariaDB logs no row event for an UPDATE that leaves a row as it was.
      statements.push(
        `UPDATE items SET qty = qty + 1, price = ${version % 1_000_000}.${String(version % 100).padStart(2, '0')}, ` +
          `note = 'u${version}', updated_at = '${stamp(version)}' WHERE id IN (${updates.join(', ')})`,
      );
    }
    if (inserts.length > 0) statements.push(`INSERT INTO items (id, sku, qty, price, note, updated_at) VALUES ${inserts.join(', ')}`);
    statements.push('COMMIT');
    return statements.join('; ');
  }

  /** A size from 1 to `max`, uniform. */
  size(max = 100): number {
    return 1 + Math.floor(this.next() * max);
  }
}

/**
 * Writes transactions of 1-100 row changes until `changes` row changes are committed; returns the
 * count (a little over `changes`) and the number of transactions.
 */
export async function writeBacklog(
  session: Session, workload: Workload, changes: number, onProgress?: (done: number) => void,
): Promise<{ changes: number; transactions: number; ms: number }> {
  const started = performance.now();
  let done = 0;
  let transactions = 0;
  let reported = 0;
  while (done < changes) {
    const size = Math.min(workload.size(), Math.max(1, changes - done));
    await session.run(workload.transaction(size));
    done += size;
    transactions += 1;
    if (onProgress && done - reported >= 100_000) {
      reported = done;
      onProgress(done);
    }
  }
  return { changes: done, transactions, ms: performance.now() - started };
}
