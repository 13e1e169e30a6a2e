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

/**
 * Matches the target's columns to the source's (exact name first, then case-insensitively, since
 * MySQL column names are case-insensitive) and builds both shapes. Columns only the target has are
 * left alone. Fails, naming the table and column, when the target lacks a source column or the
 * primary keys differ.
 */
export function buildTablePair(
  source: Database,
  sourceSchema: TableSchema,
  target: Database,
  targetSchema: TableSchema,
): TablePair {
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

  const shape = (table: string, columns: readonly ColumnSchema[]): TableShape => ({
    table,
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
  return { source: shape(sourceSchema.name, sourceSchema.columns), target: shape(targetSchema.name, targetColumns) };
}

/** A shape for one side alone (same engine on both sides, or tests), with its own kinds. */
export function shapeOf(database: Database, schema: TableSchema): TableShape {
  return buildTablePair(database, schema, database, schema).source;
}

function findColumn(schema: TableSchema, name: string): ColumnSchema | undefined {
  const exact = schema.columns.find((column) => column.name === name);
  if (exact) return exact;
  const folded = schema.columns.filter((column) => column.name.toLowerCase() === name.toLowerCase());
  return folded.length === 1 ? folded[0] : undefined;
}
