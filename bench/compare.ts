/**
 * "Rows left different": an exact, full-row comparison of a source and a target that shares no code
 * with rowsync (its canonical text, hashing and diffing are what is being measured).
 * - MariaDB -> MariaDB: a join on the key inside the server; text compared as bytes (CAST AS BINARY:
 *   the tables' utf8mb4_unicode_ci collation would call 'abc' = 'ABC ' equal).
 * - MariaDB -> PostgreSQL: one MD5 per row of an independent rendering (text as hex, NULL as 'N'),
 *   read from both sides in key-range pages and merged in Node.
 * - PostgreSQL -> PostgreSQL (two schemas of one database): a full join on the key inside the server;
 *   text compared as bytes (`COLLATE "C"`), every other column with its own type's equality.
 */
import type { Pool } from 'mysql2/promise';
import type pg from 'pg';
import { mysqlRows, pgRows } from './bench-env.js';
import type { BenchNames } from './dataset.js';

export interface Differences {
  /** Keys on both sides with different values. */
  readonly changed: number[];
  /** Keys only the source has. */
  readonly missing: number[];
  /** Keys only the target has. */
  readonly extra: number[];
}

export function differenceCount(differences: Differences): number {
  return differences.changed.length + differences.missing.length + differences.extra.length;
}

export function differingKeys(differences: Differences): number[] {
  return [...differences.changed, ...differences.missing, ...differences.extra];
}

/** More differing keys than this: the caller recopies the target instead of restoring by key. */
export const DIFF_CAP = 200_000;

const COLUMNS = ['sku', 'name', 'price', 'qty', 'active', 'updated_at', 'note'] as const;
const TEXT_COLUMNS = new Set<string>(['sku', 'name', 'note']);

export async function diffMysqlTables(pool: Pool, names: BenchNames): Promise<Differences> {
  const source = `\`${names.source}\`.items`;
  const target = `\`${names.mysqlTarget}\`.items`;
  const same = COLUMNS.map((column) =>
    TEXT_COLUMNS.has(column) ? `CAST(a.${column} AS BINARY) <=> CAST(b.${column} AS BINARY)` : `a.${column} <=> b.${column}`,
  ).join(' AND ');
  const [sourceSide, extra] = await Promise.all([
    mysqlRows(
      pool,
      `SELECT a.id, b.id IS NULL FROM ${source} a LEFT JOIN ${target} b ON b.id = a.id WHERE b.id IS NULL OR NOT (${same}) LIMIT ${DIFF_CAP + 1}`,
    ),
    mysqlRows(pool, `SELECT b.id FROM ${target} b LEFT JOIN ${source} a ON a.id = b.id WHERE a.id IS NULL LIMIT ${DIFF_CAP + 1}`),
  ]);
  return {
    changed: sourceSide.filter((row) => Number(row[1]) === 0).map((row) => Number(row[0])),
    missing: sourceSide.filter((row) => Number(row[1]) !== 0).map((row) => Number(row[0])),
    extra: extra.map((row) => Number(row[0])),
  };
}

export async function diffPostgresTables(postgres: pg.Pool, names: BenchNames): Promise<Differences> {
  const same = COLUMNS.map((column) =>
    TEXT_COLUMNS.has(column) ? `a.${column} COLLATE "C" IS NOT DISTINCT FROM b.${column} COLLATE "C"` : `a.${column} IS NOT DISTINCT FROM b.${column}`,
  ).join(' AND ');
  const rows = await pgRows(
    postgres,
    `SELECT coalesce(a.id, b.id), CASE WHEN b.id IS NULL THEN 'missing' WHEN a.id IS NULL THEN 'extra' ELSE 'changed' END ` +
      `FROM "${names.pgSourceSchema}".items a FULL JOIN "${names.pgSchema}".items b ON b.id = a.id ` +
      `WHERE a.id IS NULL OR b.id IS NULL OR NOT (${same}) LIMIT ${DIFF_CAP + 1}`,
  );
  const keys = (kind: string) => rows.filter((row) => row[1] === kind).map((row) => Number(row[0]));
  return { changed: keys('changed'), missing: keys('missing'), extra: keys('extra') };
}

const MYSQL_ROW_MD5 =
  "MD5(CONCAT_WS('|', HEX(sku), HEX(name), price, qty, active, DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f'), IFNULL(HEX(note), 'N')))";
const PG_ROW_MD5 =
  "md5(concat_ws('|', upper(encode(convert_to(sku, 'UTF8'), 'hex')), upper(encode(convert_to(name, 'UTF8'), 'hex')), price::text, " +
  "qty::text, CASE WHEN active THEN '1' ELSE '0' END, to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US'), " +
  "coalesce(upper(encode(convert_to(note, 'UTF8'), 'hex')), 'N')))";

/** Keys run from 10 to rows * 10 + 9; pages of `pageKeys` key values (about a tenth as many rows). */
export async function diffMysqlPostgres(mysql: Pool, postgres: pg.Pool, names: BenchNames, rows: number, pageKeys = 500_000): Promise<Differences> {
  const result: Differences = { changed: [], missing: [], extra: [] };
  const end = rows * 10 + 10;
  const pages: [number, number][] = [];
  for (let lower = 0; lower < end; lower += pageKeys) pages.push([lower, Math.min(end, lower + pageKeys)]);
  const comparePage = async ([lower, upper]: [number, number]) => {
    const [sourceRows, targetRows] = await Promise.all([
      mysqlRows(mysql, `SELECT id, ${MYSQL_ROW_MD5} FROM \`${names.source}\`.items WHERE id >= ${lower} AND id < ${upper} ORDER BY id`),
      pgRows(postgres, `SELECT id, ${PG_ROW_MD5} FROM "${names.pgSchema}".items WHERE id >= $1 AND id < $2 ORDER BY id`, [lower, upper]),
    ]);
    let s = 0;
    let t = 0;
    while (s < sourceRows.length || t < targetRows.length) {
      const sourceId = s < sourceRows.length ? Number(sourceRows[s]![0]) : Infinity;
      const targetId = t < targetRows.length ? Number(targetRows[t]![0]) : Infinity;
      if (sourceId === targetId) {
        if (String(sourceRows[s]![1]) !== String(targetRows[t]![1])) result.changed.push(sourceId);
        s += 1;
        t += 1;
      } else if (sourceId < targetId) {
        result.missing.push(sourceId);
        s += 1;
      } else {
        result.extra.push(targetId);
        t += 1;
      }
    }
  };
  // Two pages in flight: each side then has one query running while Node merges the previous page.
  let next = 0;
  const lane = async () => {
    while (next < pages.length) {
      const page = pages[next]!;
      next += 1;
      await comparePage(page);
    }
  };
  await Promise.all([lane(), lane()]);
  return result;
}
