import { canonicalDecimal } from '../canonical.js';
import type { KeyRange, KeyTuple, PortableValue, ShapeColumn, TableShape } from '../types.js';

/**
 * SQL rendering for PostgreSQL: identifiers, the canonical text of each kind (must match
 * `canonicalText` of canonical.ts byte for byte), key order, range predicates and the conversion of
 * portable values (from either engine) to bind parameters.
 *
 * Everything here is driven by the column's agreed `kind`; the native type matters only where an
 * index must stay usable (key order/equality) or a parameter needs a cast. Read and hash expressions
 * cast to the kind's PostgreSQL type (`::timestamp`, `::numeric`, `::text`), so domains, a `date`
 * agreed as datetime or an `integer` agreed as decimal render exactly like their canonical kind.
 */

/** Double quotes, inner quotes doubled: safe for any name PostgreSQL can hold (it cannot hold NUL). */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Collects bind parameters and hands out their placeholders. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast?: string): string {
    this.values.push(value);
    return cast === undefined ? `$${this.values.length}` : `$${this.values.length}::${cast}`;
  }
}

const INTEGER_NATIVE = /^(smallint|integer|bigint|int2|int4|int8|smallserial|serial|bigserial)$/;
/** Native types whose own `COLLATE "C"` ordering is byte order of their text (index-usable). */
const PLAIN_TEXT_NATIVE = /^(text|character varying(\(\d+\))?|varchar(\(\d+\))?|character(\(\d+\))?|bpchar(\(\d+\))?|name)$/;

export function isIntegerNative(column: ShapeColumn): boolean {
  return INTEGER_NATIVE.test(column.nativeType);
}

function isTextLikeKey(column: ShapeColumn): boolean {
  return (column.kind === 'text' || column.kind === 'uuid') && column.nativeType !== 'uuid';
}

/** The expression a column is read as, so that the driver value normalises to the portable value. */
export function readExpression(column: ShapeColumn): string {
  const q = quoteIdentifier(column.name);
  switch (column.kind) {
    case 'integer':
    case 'float':
    case 'boolean':
      return q;
    case 'decimal':
      return `${q}::numeric`;
    case 'binary':
      return `${q}::bytea`;
    case 'date':
      return `${q}::date`;
    case 'datetime':
      // timestamptz -> timestamp in the UTC session is the UTC wall time; a date becomes midnight.
      return `${q}::timestamp`;
    case 'time':
      return `${q}::time`;
    case 'text':
    case 'json':
    case 'uuid':
      // ::text also strips char(n) padding, like MySQL CHAR reads do.
      return `${q}::text`;
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** Normalises what pg returned for `readExpression(column)` to the portable value of the kind. */
export function normalizeValue(column: ShapeColumn, value: unknown): PortableValue {
  if (value === null || value === undefined) return null;
  switch (column.kind) {
    case 'integer':
      return typeof value === 'number' ? value : String(value);
    case 'decimal':
      return String(value);
    case 'float':
      return typeof value === 'number' ? value : Number(value);
    case 'boolean':
      return typeof value === 'boolean' ? value : typeof value === 'number' ? value : Number(value);
    case 'binary':
      if (Buffer.isBuffer(value)) return value;
      return Buffer.from(String(value).replace(/^\\x/, ''), 'hex');
    case 'datetime':
      return normalizeTimestamp(String(value));
    case 'time':
      return padFraction(String(value));
    case 'date':
    case 'text':
    case 'json':
    case 'uuid':
      return String(value);
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/**
 * 'YYYY-MM-DD HH:MM:SS[.f][+00][ BC]' -> 'YYYY-MM-DD HH:MM:SS.ffffff[ BC]'. 'infinity' and
 * '-infinity' pass unchanged (canonical text then pads them to 'infinity.000000', as the SQL does).
 */
export function normalizeTimestamp(text: string): string {
  const match = /^(.*\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?(?:[+-]\d\d(?::?\d\d){0,2})?( BC)?$/.exec(text);
  if (!match) {
    // A bare date (a date column read where a datetime was expected) becomes midnight.
    const date = /^(\d{4,}-\d\d-\d\d)( BC)?$/.exec(text);
    return date ? `${date[1]} 00:00:00.000000${date[2] ?? ''}` : text;
  }
  return `${match[1]} ${match[2]}.${(match[3] ?? '').padEnd(6, '0')}${match[4] ?? ''}`;
}

function padFraction(text: string): string {
  const dot = text.indexOf('.');
  if (dot === -1) return `${text}.000000`;
  return text.slice(0, dot + 1) + text.slice(dot + 1).padEnd(6, '0');
}

/**
 * SQL producing the canonical text of a non-null value (see canonical.ts), for the kinds this
 * dialect hashes in SQL. Float and JSON are hashed in Node (`canRenderInSql`).
 */
export function canonicalTextSql(column: ShapeColumn): string {
  const q = quoteIdentifier(column.name);
  switch (column.kind) {
    case 'integer':
    case 'text':
      return `${q}::text`;
    case 'decimal':
      // trim_scale (PostgreSQL 13+): '1.10' -> '1.1', '2.000' -> '2'; numeric text never has an exponent.
      return `trim_scale(${q}::numeric)::text`;
    case 'boolean':
      // boolean renders 'true'/'false'; an integer column agreed as boolean renders its digits.
      return `(CASE ${q}::text WHEN 'true' THEN '1' WHEN 'false' THEN '0' ELSE ${q}::text END)`;
    case 'binary':
      return `encode(${q}::bytea, 'hex')`;
    case 'date':
      // DateStyle=ISO: 'YYYY-MM-DD' (plus ' BC' / 'infinity' exactly as the driver reads them).
      return `${q}::date::text`;
    case 'datetime': {
      // Years before 1 AD print as ' BC'; a comparison finds them at a fraction of a second to_char.
      const value = `${q}::timestamp`;
      return (
        `(CASE WHEN isfinite(${value}) THEN to_char(${value}, 'YYYY-MM-DD HH24:MI:SS.US') || ` +
        `CASE WHEN ${value} < '0001-01-01 00:00:00'::timestamp THEN ' BC' ELSE '' END ELSE ${value}::text || '.000000' END)`
      );
    }
    case 'time': {
      // time::text is 'HH:MM:SS' or 'HH:MM:SS.f{1,6}'; pad to exactly 6 fraction digits (15 chars).
      const text = `${q}::time::text`;
      return `rpad(CASE WHEN strpos(${text}, '.') = 0 THEN ${text} || '.' ELSE ${text} END, 15, '0')`;
    }
    case 'uuid':
      return `lower(${q}::text)`;
    case 'float':
    case 'json':
      throw new Error(`kind ${column.kind} of column ${column.name} is hashed in Node, not in SQL`);
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/**
 * `N` for NULL, else `<UTF-8 byte length>:<canonical text>`. convert_to gives the UTF-8 bytes whatever
 * the database encoding (in a UTF-8 database it only copies them).
 */
export function tokenSql(column: ShapeColumn): string {
  const q = quoteIdentifier(column.name);
  const text = canonicalTextSql(column);
  if (column.kind === 'text') return `CASE WHEN ${q} IS NULL THEN 'N' ELSE octet_length(convert_to(${text}, 'UTF8'))::text || ':' || ${text} END`;
  // Delimited token (canonical.ts). The NULL test is on the column: a text expression that came out
  // NULL for a value would make the whole row NULL (and fail loudly) instead of passing for NULL.
  return `CASE WHEN ${q} IS NULL THEN 'N' ELSE ${text} END || '|'`;
}

/**
 * MD5 (hex) of the concatenated tokens of the given columns. convert_to(..., 'UTF8') makes the hashed
 * bytes UTF-8 whatever the database encoding; with no column it is md5('') as canonical.ts expects.
 */
export function rowMd5Sql(columns: readonly ShapeColumn[]): string {
  return `md5(convert_to(${rowTokensSql(columns)}, 'UTF8'))`;
}

function rowTokensSql(columns: readonly ShapeColumn[]): string {
  return columns.length === 0 ? `''::text` : columns.map((column) => `(${tokenSql(column)})`).join(' || ');
}

/**
 * The per-row term a same-engine checksum sums (`TableShape.sameEngineChecksum`): a signed 64-bit
 * `hashtextextended` (Jenkins lookup3, PostgreSQL 11+, stable across versions since hash partitions
 * rely on it) of the same canonical tokens `rowMd5Sql` hashes, so it tells apart exactly what the MD5
 * does. About 60% of the cost of MD5 + hex + `bit(60)` per row (measured on the bench table).
 * `COLLATE "C"`: under a nondeterministic collation the hash would be the collation's (case- or
 * accent-blind); under "C" it is of the bytes. The bytes are in the server encoding, not UTF-8:
 * two servers with different encodings hash non-ASCII rows differently (found different by the
 * checksum, then equal by `rowHashes`: slower, never wrong).
 */
export function rowNativeHashSql(columns: readonly ShapeColumn[]): string {
  return `hashtextextended((${rowTokensSql(columns)}) COLLATE "C", 0)`;
}

/**
 * The expression a key column is ordered and range-compared by: byte order of UTF-8 for text-like
 * keys (`COLLATE "C"`), native order for everything else (numbers, dates, bytea (memcmp), and uuid,
 * whose byte order equals the order of its lowercase hex text).
 *
 * A text key column whose own collation is not "C" cannot use its index for these predicates (the
 * index is sorted by the column collation): correct but a scan; declare such keys `COLLATE "C"`
 * for large tables. Types whose own comparison is not byte order of their text (citext, enums,
 * a number agreed with a text column) are ordered by `::text COLLATE "C"`.
 */
export function keyOrderExpression(column: ShapeColumn): string {
  const q = quoteIdentifier(column.name);
  if (!isTextLikeKey(column)) return q;
  return PLAIN_TEXT_NATIVE.test(column.nativeType) ? `${q} COLLATE "C"` : `(${q}::text) COLLATE "C"`;
}

/** Byte-exact equality expression of a key column (for fetch/delete by key). */
export function keyExactExpression(column: ShapeColumn): string {
  const q = quoteIdentifier(column.name);
  return isTextLikeKey(column) ? `(${q}::text COLLATE "C")` : q;
}

/** True when plain `=` on some key column may match more than byte-equal text (citext, ICU). */
export function needsExactKeyCheck(shape: TableShape): boolean {
  return shape.keyIndexes.some((index) => isTextLikeKey(shape.columns[index]!));
}

/** Cast for a key placeholder where PostgreSQL would otherwise infer a type that changes the meaning. */
export function keyParamCast(column: ShapeColumn): string | undefined {
  // A date column agreed as datetime: compare against the full timestamp (date vs timestamp is a
  // cross-type btree operator, so the index stays usable) instead of truncating the bound to a date.
  if (column.kind === 'datetime' && column.nativeType === 'date') return 'timestamp';
  // Everything else stays untyped: PostgreSQL infers the column's (or `::text COLLATE "C"`'s) type.
  return undefined;
}

/**
 * A portable value (read from either engine) as a bind parameter for this column. pg sends
 * parameters as untyped text, so PostgreSQL's own input functions parse them against the column's
 * type: booleans go as '1'/'0' (accepted by both boolean and integer columns), a MySQL DECIMAL
 * '5.00' for an integer column loses its zero fraction, Buffers go as bytea.
 */
export function toParam(column: ShapeColumn, value: PortableValue | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? '1' : '0';
  switch (column.kind) {
    case 'decimal':
      return isIntegerNative(column) ? canonicalDecimal(String(value)) : String(value);
    case 'boolean':
      return typeof value === 'number' ? String(value) : value;
    case 'text':
    case 'json':
    case 'uuid':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    case 'binary':
      return Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
    case 'float':
      return typeof value === 'number' ? String(value) : value;
    default:
      return Buffer.isBuffer(value) ? value.toString('utf8') : value;
  }
}

export function keyColumns(shape: TableShape): ShapeColumn[] {
  return shape.keyIndexes.map((index) => shape.columns[index]!);
}

/** `ORDER BY` list in key order. */
export function keyOrderBy(shape: TableShape): string {
  return keyColumns(shape)
    .map((column) => keyOrderExpression(column))
    .join(', ');
}

/**
 * WHERE clause for a key range (lower inclusive, upper exclusive). Composite keys use a row
 * comparison `(a, b) >= ($1, $2)`: lexicographic, and a btree index on (a, b) serves it as one
 * range scan (including `COLLATE "C"` members when the index has that collation).
 */
export function rangePredicate(shape: TableShape, range: KeyRange, params: Params): string {
  const columns = keyColumns(shape);
  const parts: string[] = [];
  const bound = (tuple: KeyTuple, operator: '>=' | '<') => {
    if (tuple.length !== columns.length) {
      throw new Error(`key bound of ${shape.table} has ${tuple.length} values, the key has ${columns.length} columns`);
    }
    const left = columns.map(keyOrderExpression);
    const right = columns.map((column, index) => params.add(toParam(column, tuple[index]), keyParamCast(column)));
    return columns.length === 1
      ? `${left[0]} ${operator} ${right[0]}`
      : `(${left.join(', ')}) ${operator} (${right.join(', ')})`;
  };
  if (range.lower) parts.push(bound(range.lower, '>='));
  if (range.upper) parts.push(bound(range.upper, '<'));
  return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
}

/**
 * `predicate` restricted to the rows of the shape's filter (the user's `where`, in parentheses), for
 * reads; the predicate itself when the shape has none.
 */
export function withFilter(shape: TableShape, predicate: string): string {
  return shape.filter === undefined ? predicate : `(${predicate}) AND (${shape.filter})`;
}

/**
 * `(a, b) IN ((..), ..)` on the plain columns (index-usable), plus, when a text-like key might
 * compare case- or accent-insensitively (citext, nondeterministic ICU collations), the same tuples
 * compared byte-exactly, so a delete never touches a row whose key is merely "equal".
 */
export function keysPredicate(shape: TableShape, keys: readonly KeyTuple[], params: Params): string {
  const columns = keyColumns(shape);
  const tupleList = (expressions: string[], exact: boolean) => {
    const tuples = keys.map((key) => {
      const values = columns.map((column, index) =>
        params.add(toParam(column, key[index]), exact && isTextLikeKey(column) ? 'text' : keyParamCast(column)),
      );
      return columns.length === 1 ? values[0]! : `(${values.join(', ')})`;
    });
    const left = columns.length === 1 ? expressions[0]! : `(${expressions.join(', ')})`;
    return `${left} IN (${tuples.join(', ')})`;
  };
  const plain = tupleList(columns.map((column) => quoteIdentifier(column.name)), false);
  if (!needsExactKeyCheck(shape)) return plain;
  return `${plain} AND ${tupleList(columns.map(keyExactExpression), true)}`;
}
