import type { Database } from '../../src/dialect/dialect.js';
import { buildTablePair, type TablePair } from '../../src/dialect/table-pair.js';
import type { Engine, Row } from '../../src/dialect/types.js';
import { executeFor } from './scratch.js';

/**
 * An `items` table whose source and target disagree in every way a conflict policy decides on:
 * a source that is newer, a target that is newer, a timestamp tie, NULLs on either side for `merge`,
 * a source row without a timestamp, plus one row only the source has and one only the target has.
 */
export const ITEMS_DDL: Record<Engine, readonly string[]> = {
  mysql: ['CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(50) NULL, qty INT NULL, updated_at DATETIME(6) NULL)'],
  postgres: ['CREATE TABLE items (id integer PRIMARY KEY, name varchar(50) NULL, qty integer NULL, updated_at timestamp(6) NULL)'],
};

// One microsecond apart: the `timestamp` policy must not lose precision when it compares them.
export const OLDER = '2024-05-01 10:00:00.000001';
export const NEWER = '2024-05-01 10:00:00.000002';

export const SOURCE_ITEMS: readonly Row[] = [
  [1, 'same', 1, OLDER],
  [2, 'src-newer', 2, NEWER],
  [3, 'src-older', 3, OLDER],
  [4, 'src-tie', 4, OLDER],
  [5, null, 5, OLDER],
  [6, 'src-only', 6, OLDER],
  [8, 'src-no-time', 8, null],
];

export const TARGET_ITEMS: readonly Row[] = [
  [1, 'same', 1, OLDER],
  [2, 'dst-older', 20, OLDER],
  [3, 'dst-newer', 30, NEWER],
  [4, 'dst-tie', 40, OLDER],
  [5, 'dst-name', null, OLDER],
  [7, 'dst-only', 7, OLDER],
  [8, 'dst-timed', 80, OLDER],
];

/** Keys by what the report must call them. */
export const ITEM_DRIFT = { changed: [2, 3, 4, 5, 8], missing: [6], extra: [7] } as const;

/** Creates `items` on both sides with the rows above and returns the table pair. */
export async function seedItems(source: Database, target: Database): Promise<TablePair> {
  await executeFor(source, ITEMS_DDL);
  await executeFor(target, ITEMS_DDL);
  const pair = buildTablePair(source, await source.describeTable('items'), target, await target.describeTable('items'));
  await source.applyChanges(pair.source, { upserts: SOURCE_ITEMS, deletes: [] });
  await target.applyChanges(pair.target, { upserts: TARGET_ITEMS, deletes: [] });
  return pair;
}

/** Every target row in key order. */
export async function targetItems(target: Database, pair: TablePair): Promise<Row[]> {
  return target.fetchRange(pair.target, {}, 1000);
}
