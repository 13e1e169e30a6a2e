import { SchemaError } from '../errors/index.js';
import type { Database } from './dialect.js';
import type { ColumnSchema, ShapeColumn, TableSchema, TableShape, ValueKind } from './types.js';

/** The two sides' views of one table, column for column. */
export interface TablePair {
  readonly source: TableShape;
  readonly target: TableShape;
}

/**
 * The kind both sides render a column as. Equal kinds stay; otherwise the more exact comparison that
 * both values support wins (an int column against a numeric one compares as decimal, a CHAR(36)
 * against a uuid as uuid, TINYINT(1) against boolean as boolean); anything else compares as text.
 */
export function agreedKind(source: ValueKind, target: ValueKind): ValueKind {
  if (source === target) return source;
  const pair = new Set([source, target]);
  const has = (kind: ValueKind) => pair.has(kind);
  if (has('json') && has('text')) return 'json';
  if (has('uuid') && has('text')) return 'uuid';
  if (has('boolean') && has('integer')) return 'boolean';
  if (has('decimal') && has('integer')) return 'decimal';
  if (has('float') && (has('decimal') || has('integer'))) return 'float';
  if (has('datetime') && has('date')) return 'datetime';
  return 'text';
}

/** How a configured table entry narrows a pair (see the README's table entries). */
export interface PairOptions {
  /**
   * Columns neither compared nor written (matched case-insensitively): named on the source, or only
   * on the target. A key column, or a name neither side has, is a `SchemaError` naming it.
   */
  readonly excludeColumns?: readonly string[];
  /** Row filters of each side (`TableShape.filter`). */
  readonly sourceFilter?: string;
  readonly targetFilter?: string;
}

/**
 * Matches the target's columns to the source's (exact name first, then case-insensitively, since
 * MySQL column names are case-insensitive) and builds both shapes. Columns only the target has are
 * left alone. Fails, naming the table and column, when the target lacks a source column or the
 * primary keys differ.
 */
export function buildTablePair(
  source: Database,
  fullSourceSchema: TableSchema,
  target: Database,
  targetSchema: TableSchema,
  options: PairOptions = {},
): TablePair {
  const sourceSchema = excludeColumns(source, fullSourceSchema, target, targetSchema, options.excludeColumns ?? []);
  const targetColumns = sourceSchema.columns.map((column) => {
    const match = findColumn(targetSchema, column.name);
    if (!match) {
      throw new SchemaError(
        'COLUMN_MISSING',
        `table ${targetSchema.name} on ${target.connectionName} has no column ${column.name} ` +
          `(present on ${source.connectionName}.${sourceSchema.name})`,
        { subject: `${target.connectionName}.${targetSchema.name}.${column.name}` },
      );
    }
    return match;
  });

  const sourceKey = sourceSchema.primaryKey.map((name) => name.toLowerCase());
  const targetKey = targetSchema.primaryKey.map((name) => name.toLowerCase());
  if (sourceKey.join('\u0000') !== targetKey.join('\u0000')) {
    throw new SchemaError(
      'KEY_MISMATCH',
      `primary key of ${target.connectionName}.${targetSchema.name} (${targetSchema.primaryKey.join(', ')}) ` +
        `differs from ${source.connectionName}.${sourceSchema.name} (${sourceSchema.primaryKey.join(', ')})`,
      { subject: `${target.connectionName}.${targetSchema.name}` },
    );
  }

  const kinds = sourceSchema.columns.map((column, index) => agreedKind(column.kind, targetColumns[index]!.kind));
  const sites = kinds.map((kind) => (source.canRenderInSql(kind) && target.canRenderInSql(kind) ? 'sql' : 'node'));
  const keyIndexes = sourceSchema.primaryKey.map((name) =>
    sourceSchema.columns.findIndex((column) => column.name === name),
  );
  // Same engine, same declared types: each side may hash with the engine's own function (see
  // `TableShape.sameEngineChecksum`); both run the same dialect code, so they stay comparable.
  const sameEngineChecksum =
    source.engine === target.engine &&
    sourceSchema.columns.every((column, index) => sameNativeType(column, targetColumns[index]!));

  const shape = (schema: TableSchema, columns: readonly ColumnSchema[], filter: string | undefined): TableShape => ({
    table: schema.name,
    ...(schema.schema === undefined ? {} : { schema: schema.schema }),
    ...(filter === undefined ? {} : { filter }),
    ...(sameEngineChecksum ? { sameEngineChecksum } : {}),
    keyIndexes,
    columns: columns.map(
      (column, index): ShapeColumn => ({
        name: column.name,
        nativeType: column.nativeType,
        kind: kinds[index]!,
        hashSite: sites[index]!,
        generated: column.generated,
        ...(column.charset ? { charset: column.charset } : {}),
      }),
    ),
  });
  return {
    source: shape(sourceSchema, sourceSchema.columns, options.sourceFilter),
    target: shape(targetSchema, targetColumns, options.targetFilter),
  };
}

/**
 * The source schema without the excluded columns. Each name must be a source column that is not a
 * key column, or a column only the target has (nothing to leave out then: target-only columns are
 * never compared nor written anyway).
 */
function excludeColumns(source: Database, schema: TableSchema, target: Database, targetSchema: TableSchema, names: readonly string[]): TableSchema {
  if (names.length === 0) return schema;
  const excluded = new Set<string>();
  for (const name of names) {
    const column = findColumn(schema, name);
    if (!column) {
      if (findColumn(targetSchema, name)) continue;
      throw new SchemaError(
        'COLUMN_MISSING',
        `excludeColumns of table ${schema.name}: no column ${name} on ${source.connectionName}.${schema.name} ` +
          `nor on ${target.connectionName}.${targetSchema.name}`,
        { subject: `${source.connectionName}.${schema.name}.${name}` },
      );
    }
    if (schema.primaryKey.includes(column.name)) {
      throw new SchemaError(
        'COLUMN_EXCLUDED',
        `excludeColumns of table ${schema.name}: ${column.name} is a primary key column (rows are matched by it; it cannot be left out)`,
        { subject: `${source.connectionName}.${schema.name}.${column.name}` },
      );
    }
    excluded.add(column.name);
  }
  return { ...schema, columns: schema.columns.filter((column) => !excluded.has(column.name)) };
}

/**
 * A shape for one side alone (same engine on both sides, or tests), with its own kinds. Its
 * checksums are the canonical MD5 ones: the other side they will be compared with is unknown.
 */
export function shapeOf(database: Database, schema: TableSchema): TableShape {
  const { sameEngineChecksum: _unknownOtherSide, ...shape } = buildTablePair(database, schema, database, schema).source;
  return shape;
}

function sameNativeType(source: ColumnSchema, target: ColumnSchema): boolean {
  return source.nativeType.toLowerCase() === target.nativeType.toLowerCase() && source.charset === target.charset;
}

function findColumn(schema: TableSchema, name: string): ColumnSchema | undefined {
  const exact = schema.columns.find((column) => column.name === name);
  if (exact) return exact;
  const folded = schema.columns.filter((column) => column.name.toLowerCase() === name.toLowerCase());
  return folded.length === 1 ? folded[0] : undefined;
}
