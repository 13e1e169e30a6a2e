import { SchemaError } from '../../errors/index.js';
import type { ColumnSchema, TableSchema, ValueKind } from '../types.js';

/** Runs one catalog query (rows as arrays); errors are translated by the caller. */
export type CatalogQuery = (sql: string, params: readonly unknown[]) => Promise<unknown[][]>;

/**
 * Reads tables, columns and primary keys from pg_catalog (not information_schema: it hides
 * identity/generated details behind privileges and is slower), for one schema.
 */
export class PostgresIntrospector {
  constructor(
    private readonly query: CatalogQuery,
    private readonly schema: string,
    private readonly connectionName: string,
  ) {}

  /** Base tables (plain and partitioned roots, not partitions, views or foreign tables), byte order. */
  async listTables(): Promise<string[]> {
    const rows = await this.query(
      `SELECT c.relname FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY c.relname COLLATE "C"`,
      [this.schema],
    );
    return rows.map((row) => String(row[0]));
  }

  /** `schema`: a schema of the database other than the connection's (a table entry's `targetSchema`). */
  async describeTable(table: string, schema?: string): Promise<TableSchema> {
    const inSchema = schema ?? this.schema;
    const subject = schema === undefined ? `${this.connectionName}.${table}` : `${this.connectionName}.${schema}.${table}`;
    const found = await this.query(
      `SELECT c.oid::int8::text FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [inSchema, table],
    );
    const oid = found[0]?.[0];
    if (oid === undefined) {
      throw new SchemaError(
        'TABLE_NOT_FOUND',
        `connection ${this.connectionName}: table ${table} not found in schema ${inSchema}`,
        { subject },
      );
    }

    const columnRows = await this.query(
      `SELECT a.attname,
              format_type(a.atttypid, a.atttypmod),
              a.attnotnull,
              a.attgenerated <> '' AS generated,
              bt.typname, bt.typtype, bt.typcategory,
              et.typname AS element_name, et.typtype AS element_type
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
         JOIN pg_catalog.pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
         LEFT JOIN pg_catalog.pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
        WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [oid],
    );
    const columns = columnRows.map((row): ColumnSchema => {
      const [name, nativeType, notNull, generated, typeName, typeType, category, elementName, elementType] = row as [
        string, string, boolean, boolean, string, string, string, string | null, string | null,
      ];
      const kind =
        category === 'A'
          ? elementName !== null && kindOfType(elementName, elementType ?? 'b') !== undefined
            ? 'text'
            : undefined
          : kindOfType(typeName, typeType);
      if (kind === undefined) {
        throw new SchemaError(
          'UNSUPPORTED_TYPE',
          `connection ${this.connectionName}: column ${name} of table ${table} has type ${nativeType}, ` +
            `which rowsync cannot compare exactly`,
          { subject: `${subject}.${name}` },
        );
      }
      return { name, nativeType, kind, nullable: !notNull, generated };
    });

    const keyRows = await this.query(
      `SELECT a.attname
         FROM pg_catalog.pg_index i
        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1::oid AND i.indisprimary
        ORDER BY k.position`,
      [oid],
    );
    if (keyRows.length === 0) {
      throw new SchemaError(
        'NO_PRIMARY_KEY',
        `connection ${this.connectionName}: table ${table} has no primary key (rowsync needs one to match rows)`,
        { subject },
      );
    }
    return { name: table, ...(schema === undefined ? {} : { schema }), columns, primaryKey: keyRows.map((row) => String(row[0])) };
  }

  /**
   * Columns declared GENERATED ALWAYS AS IDENTITY: inserts need OVERRIDING SYSTEM VALUE and they
   * cannot be assigned by ON CONFLICT DO UPDATE (PostgreSQL only allows DEFAULT there).
   */
  async identityAlwaysColumns(table: string, schema?: string): Promise<Set<string>> {
    const rows = await this.query(
      `SELECT a.attname FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attidentity = 'a' AND NOT a.attisdropped`,
      [schema ?? this.schema, table],
    );
    return new Set(rows.map((row) => String(row[0])));
  }
}

/**
 * Kind of a (base) type, or undefined when its text cannot be compared exactly across engines.
 * Types mapped to 'text' are those whose `::text` is a faithful, session-independent rendering
 * (the session pins DateStyle, IntervalStyle, extra_float_digits, bytea_output and TimeZone).
 * money is rejected: its text depends on lc_monetary. Geometric types print floats.
 */
export function kindOfType(typeName: string, typeType: string): ValueKind | undefined {
  if (typeType === 'e') return 'text'; // enum: compared by label
  if (typeType === 'r' || typeType === 'm') return 'text'; // ranges / multiranges of scalar types
  switch (typeName) {
    case 'int2':
    case 'int4':
    case 'int8':
      return 'integer';
    case 'numeric':
      return 'decimal';
    case 'float4':
    case 'float8':
      return 'float';
    case 'bool':
      return 'boolean';
    case 'text':
    case 'varchar':
    case 'bpchar':
    case 'name':
    case 'citext':
    case 'char':
      return 'text';
    case 'bytea':
      return 'binary';
    case 'date':
      return 'date';
    case 'timestamp':
    case 'timestamptz':
      return 'datetime';
    case 'time':
      return 'time';
    case 'json':
    case 'jsonb':
      return 'json';
    case 'uuid':
      return 'uuid';
    case 'timetz':
    case 'interval':
    case 'inet':
    case 'cidr':
    case 'macaddr':
    case 'macaddr8':
    case 'bit':
    case 'varbit':
    case 'xml':
    case 'oid':
    case 'pg_lsn':
    case 'tsvector':
    case 'tsquery':
      return 'text';
    default:
      return undefined;
  }
}
