import { sameChecksum } from '../../src/dialect/canonical.js';
import type { Database } from '../../src/dialect/dialect.js';
import { buildTablePair, type TablePair } from '../../src/dialect/table-pair.js';
import type { Engine, Row } from '../../src/dialect/types.js';
import { keyOf, sameRow } from '../../src/sync/sync-keys.js';
import { executeFor } from './scratch.js';

/**
 * An `orders` table (integer key) and an `order_lines` table (composite key, text part) with known
 * drift between source and target, used by the reconcile suites.
 */
// order_lines.sku holds keys that differ only by case ('A-1', 'a-1'): on MariaDB that needs a binary
// collation, as it does for any case-sensitive PostgreSQL key synced into MySQL.
export const ORDERS_DDL: Record<Engine, readonly string[]> = {
  mysql: [
    'CREATE TABLE orders (id INT NOT NULL PRIMARY KEY, customer VARCHAR(100) NOT NULL, amount DECIMAL(12,2) NOT NULL, ' +
      "status VARCHAR(20) NOT NULL, note TEXT NULL, updated_at DATETIME(6) NOT NULL)",
    'CREATE TABLE order_lines (order_id INT NOT NULL, sku VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, qty INT NOT NULL, price DOUBLE NULL, ' +
      'PRIMARY KEY (order_id, sku))',
    'CREATE TABLE audit_log (happened_at DATETIME(6) NOT NULL, message TEXT NOT NULL)',
  ],
  postgres: [
    'CREATE TABLE orders (id integer PRIMARY KEY, customer varchar(100) NOT NULL, amount numeric(12,2) NOT NULL, ' +
      'status varchar(20) NOT NULL, note text NULL, updated_at timestamp(6) NOT NULL)',
    'CREATE TABLE order_lines (order_id integer NOT NULL, sku varchar(40) NOT NULL, qty integer NOT NULL, price double precision NULL, ' +
      'PRIMARY KEY (order_id, sku))',
    'CREATE TABLE audit_log (happened_at timestamp(6) NOT NULL, message text NOT NULL)',
  ],
};

export const ORDER_COUNT = 3000;
const SKUS = ['A-1', 'a-1', 'B', 'É-9'];

export function orderRow(id: number, variant = 0): Row {
  const day = String(1 + (id % 28)).padStart(2, '0');
  return [
    id,
    `customer ${id % 97}${variant ? ' (edited)' : ''}`,
    `${(id * 7) % 10000}.${String((id + variant) % 100).padStart(2, '0')}`,
    ['new', 'paid', 'shipped'][id % 3]!,
    id % 5 === 0 ? null : `note ${id}`,
    `2024-03-${day} 10:00:00.${String(id % 1_000_000).padStart(6, '0')}`,
  ];
}

export function lineRows(orderId: number): Row[] {
  return SKUS.map((sku, index) => [orderId, sku, index + 1, index === 3 ? null : (orderId * 0.1 + index) / 3]);
}

/** Keys of the injected drift, by what the report must call them. */
export const DRIFT = {
  changed: [7, 500, 501, 1999, 2500],
  missing: [1, 1000, 3000],
  extra: [0, 5000, 5001],
} as const;

export interface Tables {
  readonly orders: TablePair;
  readonly lines: TablePair;
}

export async function tablePairs(source: Database, target: Database): Promise<Tables> {
  const pair = async (table: string) => buildTablePair(source, await source.describeTable(table), target, await target.describeTable(table));
  return { orders: await pair('orders'), lines: await pair('order_lines') };
}

/** Creates the tables on both sides, equal data, then injects DRIFT into the target. */
export async function seedOrders(source: Database, target: Database): Promise<Tables> {
  await executeFor(source, ORDERS_DDL);
  await executeFor(target, ORDERS_DDL);
  const tables = await tablePairs(source, target);
  const orders = Array.from({ length: ORDER_COUNT }, (_, index) => orderRow(index + 1));
  const lines = Array.from({ length: 200 }, (_, index) => lineRows(index + 1)).flat();
  for (const [database, side] of [[source, 'source'], [target, 'target']] as const) {
    for (let start = 0; start < orders.length; start += 1000) {
      await database.applyChanges(tables.orders[side], { upserts: orders.slice(start, start + 1000), deletes: [] });
    }
    await database.applyChanges(tables.lines[side], { upserts: lines, deletes: [] });
  }
  await injectDrift(target, tables);
  return tables;
}

export async function injectDrift(target: Database, tables: Tables): Promise<void> {
  await target.applyChanges(tables.orders.target, {
    upserts: [...DRIFT.changed.map((id) => orderRow(id, 1)), ...DRIFT.extra.map((id) => orderRow(id))],
    deletes: DRIFT.missing.map((id) => [id]),
  });
  // order_lines: one changed price, one missing line, one extra line differing only by case.
  await target.applyChanges(tables.lines.target, {
    upserts: [[10, 'B', 3, 99.5], [10, 'b', 1, null]],
    deletes: [[11, 'a-1']],
  });
}

/** Both sides hold the same rows, compared row by row (not only by checksum). */
export async function expectEqualTables(source: Database, target: Database, pair: TablePair): Promise<string[]> {
  const problems: string[] = [];
  const [sourceRows, targetRows] = await Promise.all([
    source.fetchRange(pair.source, {}, 1_000_000),
    target.fetchRange(pair.target, {}, 1_000_000),
  ]);
  if (sourceRows.length !== targetRows.length) problems.push(`row counts ${sourceRows.length} vs ${targetRows.length}`);
  sourceRows.forEach((row, index) => {
    const other = targetRows[index];
    if (!other || !sameRow(pair.source, row, other)) {
      problems.push(`row ${JSON.stringify(keyOf(pair.source, row))}: ${JSON.stringify(row)} vs ${JSON.stringify(other)}`);
    }
  });
  const [a, b] = await Promise.all([source.checksumRange(pair.source, {}), target.checksumRange(pair.target, {})]);
  if (!sameChecksum(a, b)) problems.push('checksums differ');
  return problems.slice(0, 10);
}
