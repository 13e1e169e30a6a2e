/**
 * Tables and columns from information_schema, mapped to value kinds.
 *
 * MariaDB vs MySQL 8:
 * - MySQL 8 returns information_schema column labels in upper case whatever the query spells, so every
 *   query here reads rows as arrays (position, not label).
 * - JSON: MySQL 8 has a JSON type (DATA_TYPE 'json'); MariaDB's JSON is an alias of LONGTEXT with a
 *   `CHECK (json_valid(col))` constraint, found in information_schema.CHECK_CONSTRAINTS (MariaDB
 *   10.2.22+/10.3.10+; MySQL's CHECK_CONSTRAINTS has no TABLE_NAME, and needs none).
 * - Generated columns: EXTRA is 'VIRTUAL GENERATED' / 'STORED GENERATED' on both (older MariaDB:
 *   'PERSISTENT'); MySQL 8's 'DEFAULT_GENERATED' (expression defaults) is not a generated column.
 * - TABLE_NAME comparisons in information_schema may be case-insensitive, so rows are re-filtered by
 *   exact name in Node.
 */
import { SchemaError } from '../../errors/index.js';
import type { ColumnSchema, TableSchema, ValueKind } from '../types.js';
import { textLiteral } from './mysql-sql.js';

export type ArrayQuery = (sql: string, params?: readonly unknown[]) => Promise<unknown[][]>;

const BASE_TABLE_TYPES = new Set(['BASE TABLE', 'SYSTEM VERSIONED']);

const SPATIAL_TYPES = new Set([
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon',
  'geometrycollection', 'geomcollection',
]);

/** Byte order of UTF-8, the same order on every engine and locale. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function listTables(query: ArrayQuery): Promise<string[]> {
  const rows = await query(
    'SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
  );
  return rows
    .filter((row) => BASE_TABLE_TYPES.has(String(row[1])))
    .map((row) => String(row[0]))
    .sort(compareNames);
}

/**
 * `database`: a database of the same server other than the connection's own (a table entry's
 * `targetSchema`); the result then carries it as `schema`.
 */
export async function describeTable(query: ArrayQuery, connectionName: string, table: string, database?: string): Promise<TableSchema> {
  const subject = database === undefined ? `${connectionName}.${table}` : `${connectionName}.${database}.${table}`;
  // Inlined as a hex literal like every value (mysql-sql.ts): immune to NO_BACKSLASH_ESCAPES.
  const name = textLiteral(table);
  const schemaIs = database === undefined ? 'DATABASE()' : textLiteral(database);
  const tables = (
    await query(
      `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ${schemaIs} AND TABLE_NAME = ${name}`,
    )
  ).filter((row) => String(row[0]) === table);
  const found = tables[0];
  if (!found) {
    const where = database === undefined ? '' : ` in database ${database}`;
    throw new SchemaError('TABLE_NOT_FOUND', `table ${table} not found${where} on connection ${connectionName}`, { subject });
  }
  if (!BASE_TABLE_TYPES.has(String(found[1]))) {
    throw new SchemaError(
      'TABLE_NOT_FOUND',
      `table ${table} on connection ${connectionName} is a ${String(found[1]).toLowerCase()}, not a base table`,
      { subject },
    );
  }

  const columnRows = (
    await query(
      `SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE, EXTRA, CHARACTER_SET_NAME
         FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = ${schemaIs} AND TABLE_NAME = ${name}
        ORDER BY ORDINAL_POSITION`,
    )
  ).filter((row) => String(row[0]) === table);

  const keyRows = (
    await query(
      `SELECT TABLE_NAME, COLUMN_NAME
         FROM information_schema.STATISTICS
        WHERE TABLE_SCHEMA = ${schemaIs} AND TABLE_NAME = ${name} AND INDEX_NAME = 'PRIMARY'
        ORDER BY SEQ_IN_INDEX`,
    )
  ).filter((row) => String(row[0]) === table);

  const jsonColumns = await jsonCheckedColumns(query, table, schemaIs);

  const columns = columnRows.map((row): ColumnSchema => {
    const name = String(row[1]);
    const columnType = String(row[2]);
    const dataType = String(row[3]).toLowerCase();
    const extra = String(row[5] ?? '');
    const charset = row[6] === null || row[6] === undefined ? undefined : String(row[6]).toLowerCase();
    return {
      name,
      nativeType: columnType,
      kind: kindOf(dataType, columnType, jsonColumns.has(name), () => `${subject}.${name}`, connectionName, table, name),
      nullable: String(row[4]).toUpperCase() === 'YES',
      generated: /\b(VIRTUAL|STORED) GENERATED\b|\bPERSISTENT\b/i.test(extra),
      ...(charset ? { charset } : {}),
    };
  });

  const primaryKey = keyRows.map((row) => String(row[1]));
  if (primaryKey.length === 0) {
    throw new SchemaError(
      'NO_PRIMARY_KEY',
      `table ${table} on connection ${connectionName} has no primary key (rowsync needs one to compare rows)`,
      { subject },
    );
  }
  return { name: table, ...(database === undefined ? {} : { schema: database }), columns, primaryKey };
}

/** Columns constrained by `CHECK (json_valid(col))`: MariaDB's JSON columns. */
async function jsonCheckedColumns(query: ArrayQuery, table: string, schemaIs: string): Promise<Set<string>> {
  const name = textLiteral(table);
  let rows: unknown[][];
  try {
    rows = await query(
      `SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
        WHERE CONSTRAINT_SCHEMA = ${schemaIs} AND TABLE_NAME = ${name}`,
    );
  } catch (error) {
    // MySQL 8 (no TABLE_NAME column: its JSON is a real type) and servers without the view.
    const errno = (error as { errno?: unknown }).errno;
    if (errno === 1054 || errno === 1109) return new Set();
    throw error;
  }
  const names = new Set<string>();
  for (const row of rows) {
    if (String(row[0]) !== table) continue;
    const match = /^\s*json_valid\s*\(\s*`((?:[^`]|``)+)`\s*\)\s*$/i.exec(String(row[1]));
    if (match) names.add(match[1]!.replaceAll('``', '`'));
  }
  return names;
}

function kindOf(
  dataType: string,
  columnType: string,
  jsonChecked: boolean,
  subject: () => string,
  connectionName: string,
  table: string,
  column: string,
): ValueKind {
  const type = columnType.toLowerCase();
  switch (dataType) {
    case 'tinyint':
      return /^tinyint\s*\(1\)/.test(type) ? 'boolean' : 'integer';
    case 'smallint': case 'mediumint': case 'int': case 'integer': case 'bigint': case 'year':
      return 'integer';
    case 'decimal': case 'numeric': case 'fixed':
      return 'decimal';
    case 'float': case 'double': case 'real': case 'double precision':
      return 'float';
    case 'bit':
      return /^bit\s*\(1\)/.test(type) || type === 'bit' ? 'boolean' : 'binary';
    case 'char': case 'varchar': case 'tinytext': case 'text': case 'mediumtext': case 'longtext': case 'enum': case 'set':
      // CHAR(36) stays text; table-pair.ts upgrades it to uuid when the other side is a uuid.
      return jsonChecked ? 'json' : 'text';
    case 'binary': case 'varbinary': case 'tinyblob': case 'blob': case 'mediumblob': case 'longblob':
      return 'binary';
    case 'date':
      return 'date';
    case 'datetime': case 'timestamp':
      return 'datetime';
    case 'time':
      return 'time';
    case 'json':
      return 'json';
    case 'uuid':
      return 'uuid';
    case 'inet4': case 'inet6':
      return 'text';
    default: {
      const why = SPATIAL_TYPES.has(dataType)
        ? 'spatial values have no exact portable form'
        : 'rowsync cannot compare it exactly across engines';
      throw new SchemaError(
        'UNSUPPORTED_TYPE',
        `column ${column} of table ${table} on connection ${connectionName} has type ${columnType}: ${why}`,
        { subject: subject() },
      );
    }
  }
}
