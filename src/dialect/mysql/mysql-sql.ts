/**
 * SQL text for MySQL/MariaDB: identifier quoting, value literals, key order, key range predicates and
 * the canonical-text renderers of `canonical.ts`. Pure functions, no driver.
 *
 * Values are inlined as literals instead of `?` placeholders on purpose:
 * - integers and decimals must reach the server as numeric literals: mysql2 sends a JS string as a
 *   quoted string, and MySQL compares an integer column with a string constant as DOUBLE, which
 *   cannot tell 18446744073709551615 from 18446744073709551614;
 * - text is sent as `_utf8mb4 X'<hex>'` (`_binary X'<hex>'` for byte-order comparisons): byte-exact and
 *   independent of the session's sql_mode (NO_BACKSLASH_ESCAPES changes what a quoted literal means).
 *
 * Values not representable at all (zero dates '0000-00-00', invalid dates that a permissive sql_mode
 * lets in) are unsupported: they have no portable value and PostgreSQL cannot hold them.
 */
import type { KeyRange, KeyTuple, PortableValue, ShapeColumn, TableShape, ValueKind } from '../types.js';

export function quoteIdentifier(name: string): string {
  if (name.includes('\u0000')) throw new Error(`identifier contains a NUL character: ${JSON.stringify(name)}`);
  return `\`${name.replaceAll('`', '``')}\``;
}

/** The native type family, from `information_schema.COLUMNS.COLUMN_TYPE` (e.g. `bigint(20) unsigned`). */
export type NativeFamily =
  | 'string' // char, varchar, text types, enum, set
  | 'binary' // binary, varbinary, blob types
  | 'bit'
  | 'integer'
  | 'decimal'
  | 'float'
  | 'date'
  | 'datetime'
  | 'time'
  | 'json' // MySQL 8 JSON type (MariaDB's JSON is a longtext: family 'string')
  | 'uuid' // MariaDB 10.7+ UUID type
  | 'inet' // MariaDB inet4 / inet6
  | 'other';

const FAMILIES: Readonly<Record<string, NativeFamily>> = {
  char: 'string', varchar: 'string', tinytext: 'string', text: 'string', mediumtext: 'string', longtext: 'string',
  enum: 'string', set: 'string',
  binary: 'binary', varbinary: 'binary', tinyblob: 'binary', blob: 'binary', mediumblob: 'binary', longblob: 'binary',
  bit: 'bit',
  tinyint: 'integer', smallint: 'integer', mediumint: 'integer', int: 'integer', integer: 'integer', bigint: 'integer',
  year: 'integer',
  decimal: 'decimal', numeric: 'decimal', fixed: 'decimal',
  float: 'float', double: 'float', real: 'float',
  date: 'date', datetime: 'datetime', timestamp: 'datetime', time: 'time',
  json: 'json', uuid: 'uuid', inet4: 'inet', inet6: 'inet',
};

/** `bigint(20) unsigned` -> `bigint`. */
export function baseType(nativeType: string): string {
  return /^[a-z0-9_]+/i.exec(nativeType.trim())?.[0]?.toLowerCase() ?? '';
}

export function nativeFamily(nativeType: string): NativeFamily {
  return FAMILIES[baseType(nativeType)] ?? 'other';
}

/** FLOAT (single precision; FLOAT(p) with p > 24 is reported as `double`). */
export function isSinglePrecision(nativeType: string): boolean {
  return baseType(nativeType) === 'float';
}

/** Fraction digits of a `decimal(p,s)` column; 0 for `decimal(p)`, integers and anything else. */
export function decimalScale(nativeType: string): number {
  const match = /^(?:decimal|numeric|fixed)\s*\(\s*\d+\s*,\s*(\d+)\s*\)/i.exec(nativeType.trim());
  return match ? Number(match[1]) : 0;
}

/** Bits of a `bit(n)` column (MySQL: `bit` alone is `bit(1)`). */
export function bitWidth(nativeType: string): number {
  const match = /^bit\s*\((\d+)\)/i.exec(nativeType.trim());
  return match ? Number(match[1]) : 1;
}

// ------------------------------------------------------------------------------------------------
// literals

function hexLiteral(introducer: '_utf8mb4' | '_binary', bytes: Buffer): string {
  // `X''` is a valid empty literal on MariaDB and MySQL.
  return `${introducer} X'${bytes.toString('hex')}'`;
}

export function textLiteral(text: string): string {
  return hexLiteral('_utf8mb4', Buffer.from(text, 'utf8'));
}

const NUMERIC = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TEMPORAL = /^-?[0-9]{1,6}(?:[-: .T][0-9]{1,6})*$/;
const UUID_TEXT = /^[0-9a-fA-F-]{1,40}$/;

function numberLiteral(value: number, column: ShapeColumn): string {
  if (!Number.isFinite(value)) {
    throw new TypeError(`column ${column.name}: MySQL cannot store the number ${value}`);
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return BigInt(value).toString();
  // Exponent notation makes the server parse a DOUBLE (correctly rounded strtod) rather than a DECIMAL;
  // toExponential() without argument prints the shortest digits that round-trip.
  return value.toExponential();
}

/**
 * The literal of a portable value as written to / compared with the column itself (index-friendly:
 * the column is not wrapped). For text keys the comparison is the column's collation, so callers that
 * need exactness add `exactKeyExpr` = `exactLiteral`.
 */
export function valueLiteral(column: ShapeColumn, value: PortableValue): string {
  if (value === null) return 'NULL';
  const family = nativeFamily(column.nativeType);
  if (family === 'bit') {
    // A BIT column takes a number; its bytes (Buffer) are the big-endian bit string.
    if (Buffer.isBuffer(value)) return value.length === 0 ? '0' : BigInt(`0x${value.toString('hex')}`).toString();
    if (typeof value === 'boolean') return value ? '1' : '0';
    if (typeof value === 'number') return numberLiteral(value, column);
    if (/^\d+$/.test(value)) return value;
    return textLiteral(value);
  }
  switch (column.kind) {
    case 'integer':
    case 'decimal':
    case 'float':
    case 'boolean':
      if (typeof value === 'boolean') return value ? '1' : '0';
      if (typeof value === 'number') {
        // A FLOAT receives the single-precision value itself: the shortest form a reader prints
        // (3.4028235e38, PostgreSQL's too) lies above FLT_MAX as a double and would be refused.
        return numberLiteral(isSinglePrecision(column.nativeType) ? Math.fround(value) : value, column);
      }
      if (Buffer.isBuffer(value)) return hexLiteral('_binary', value);
      if (NUMERIC.test(value.trim())) return value.trim().replace(/^\+/, '');
      return textLiteral(value);
    case 'binary':
      if (Buffer.isBuffer(value)) return hexLiteral('_binary', value);
      return hexLiteral('_binary', Buffer.from(String(value), 'utf8'));
    case 'date':
    case 'datetime':
    case 'time': {
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      return TEMPORAL.test(text) ? `'${text}'` : textLiteral(text);
    }
    case 'uuid': {
      const text = Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
      return UUID_TEXT.test(text) ? `'${text}'` : textLiteral(text);
    }
    case 'text':
    case 'json':
      if (Buffer.isBuffer(value)) return hexLiteral('_binary', value);
      return textLiteral(String(value));
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** The literal to compare with `exactKeyExpr(column)`. */
export function exactLiteral(column: ShapeColumn, value: PortableValue): string {
  if (value === null) return 'NULL';
  if (column.kind === 'text' || column.kind === 'uuid') {
    let bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8');
    if (column.kind === 'uuid') bytes = Buffer.from(bytes.toString('utf8').toLowerCase(), 'utf8');
    return hexLiteral('_binary', bytes);
  }
  return valueLiteral(column, value);
}

// ------------------------------------------------------------------------------------------------
// expressions

/** Character sets whose bytes are already UTF-8 (utf8mb3 is UTF-8 limited to the BMP). */
const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'ascii']);

/**
 * The column as UTF-8 text (what mysql2 returns for a string column; CAST for other types). A string
 * column in a UTF-8 character set is used as it is: its bytes already are the text's UTF-8, and a
 * CONVERT costs about a tenth of a checksum scan.
 */
function textExpr(column: ShapeColumn): string {
  const c = quoteIdentifier(column.name);
  const family = nativeFamily(column.nativeType);
  if (family === 'string' && column.charset !== undefined && UTF8_CHARSETS.has(column.charset)) return c;
  if (family === 'string' || family === 'binary') return `CONVERT(${c} USING utf8mb4)`;
  return `CONVERT(CAST(${c} AS CHAR) USING utf8mb4)`;
}

/**
 * What a read selects for the column. Mostly the column itself; when the agreed kind is text but the
 * column is not a string type (an INT against a varchar, a DATETIME against text, inet6), the server's
 * own text of the value, so Node's canonicalText('text', value) is byte-identical to the SQL renderer.
 */
export function readExpr(column: ShapeColumn): string {
  const family = nativeFamily(column.nativeType);
  if (column.kind === 'text' && family !== 'string') return textExpr(column);
  if (column.kind === 'uuid' && family === 'uuid') return textExpr(column);
  if (family === 'inet') return textExpr(column);
  // The server prints a FLOAT with 6 significant digits ('3.40282e38'); its exact value as a DOUBLE is
  // lossless (MariaDB 10.4+, MySQL 8.0.17+ know CAST AS DOUBLE). mysql-values.ts shortens it again.
  if (family === 'float' && isSinglePrecision(column.nativeType)) return `CAST(${quoteIdentifier(column.name)} AS DOUBLE)`;
  return quoteIdentifier(column.name);
}

function isTextLikeKey(kind: ValueKind): boolean {
  return kind === 'text' || kind === 'uuid';
}

/**
 * The expression that orders and compares a key column the same way on both engines.
 *
 * Text keys compare as the bytes of their UTF-8 text: `CAST(CONVERT(c USING utf8mb4) AS BINARY)`.
 * Not `COLLATE utf8mb4_bin`: MariaDB's _bin collations are PAD SPACE ('a' = 'a '), and no
 * collation orders 'B' < 'a' < 'b' < 'é' by bytes under every charset. The price: a range over a text
 * key whose column collation is not binary cannot use the key index (a filesort over the range); an
 * index on such a column is only usable by `fetchByKeys` (equality, then exact filtering in Node).
 * MySQL 8: `CAST(... AS BINARY)` behaves the same (the `BINARY expr` operator is deprecated there,
 * hence CAST); its _0900 collations are NO PAD but still not byte order.
 *
 * uuid keys order as lowercase text (= uuid byte order; a CHAR(36) may hold uppercase). All other
 * kinds use the bare column, so integer, decimal, date and binary keys use the index.
 */
export function exactKeyExpr(column: ShapeColumn): string {
  if (column.kind === 'text') return `CAST(${textExpr(column)} AS BINARY)`;
  if (column.kind === 'uuid') return `CAST(LOWER(${textExpr(column)}) AS BINARY)`;
  return quoteIdentifier(column.name);
}

export function keyColumns(shape: TableShape): ShapeColumn[] {
  return shape.keyIndexes.map((index) => {
    const column = shape.columns[index];
    if (!column) throw new Error(`table ${shape.table}: key index ${index} outside the shape`);
    return column;
  });
}

export function orderByKey(shape: TableShape): string {
  return keyColumns(shape).map((column) => `${exactKeyExpr(column)} ASC`).join(', ');
}

/**
 * `lower <= key < upper` in lexicographic key order. A composite bound expands to
 * `a >= ? AND (a > ? OR (a = ? AND b >= ?))`: the leading conjunct gives MariaDB an index range on
 * the first key column (its optimizer does not turn a row comparison `(a,b) >= (?,?)` into a range).
 * A bound shorter than the key compares the prefix.
 */
export function rangePredicate(shape: TableShape, range: KeyRange): string {
  const columns = keyColumns(shape);
  const parts: string[] = [];
  if (range.lower) parts.push(boundPredicate(columns, range.lower, 'lower'));
  if (range.upper) parts.push(boundPredicate(columns, range.upper, 'upper'));
  return parts.length === 0 ? '1 = 1' : parts.map((part) => `(${part})`).join(' AND ');
}

function boundPredicate(columns: readonly ShapeColumn[], bound: KeyTuple, side: 'lower' | 'upper'): string {
  const width = Math.min(bound.length, columns.length);
  if (width === 0) return '1 = 1';
  const exprs = columns.slice(0, width).map(exactKeyExpr);
  const literals = columns.slice(0, width).map((column, index) => exactLiteral(column, bound[index] ?? null));
  const strict = side === 'lower' ? '>' : '<';
  const last = side === 'lower' ? '>=' : '<';
  if (width === 1) return `${exprs[0]} ${last} ${literals[0]}`;
  const alternatives: string[] = [];
  for (let index = 0; index < width; index += 1) {
    const equal = exprs.slice(0, index).map((expr, j) => `${expr} = ${literals[j]}`);
    const op = index === width - 1 ? last : strict;
    alternatives.push([...equal, `${exprs[index]} ${op} ${literals[index]}`].join(' AND '));
  }
  const leading = `${exprs[0]} ${side === 'lower' ? '>=' : '<='} ${literals[0]}`;
  return `${leading} AND (${alternatives.map((alternative) => `(${alternative})`).join(' OR ')})`;
}

/**
 * `predicate` restricted to the rows of the shape's filter (the user's `where`, in parentheses), for
 * reads; the predicate itself when the shape has none.
 */
export function withFilter(shape: TableShape, predicate: string): string {
  return shape.filter === undefined ? predicate : `(${predicate}) AND (${shape.filter})`;
}

/**
 * `key IN (...)` twice: over the bare columns (uses the primary key index; under a case-insensitive or
 * PAD SPACE collation it also matches 'ABC' and 'abc ') and over the exact expressions (byte-exact).
 */
export function keysPredicate(shape: TableShape, keys: readonly KeyTuple[]): string {
  const columns = keyColumns(shape);
  const tuple = (render: (column: ShapeColumn, value: PortableValue) => string, key: KeyTuple) => {
    const values = columns.map((column, index) => render(column, key[index] ?? null));
    return columns.length === 1 ? values[0]! : `(${values.join(', ')})`;
  };
  const head = (exprs: string[]) => (exprs.length === 1 ? exprs[0]! : `(${exprs.join(', ')})`);
  const plain = `${head(columns.map((column) => quoteIdentifier(column.name)))} IN (${keys.map((key) => tuple(valueLiteral, key)).join(', ')})`;
  if (!columns.some((column) => isTextLikeKey(column.kind))) return plain;
  const exact = `${head(columns.map(exactKeyExpr))} IN (${keys.map((key) => tuple(exactLiteral, key)).join(', ')})`;
  return `${plain} AND ${exact}`;
}

// ------------------------------------------------------------------------------------------------
// canonical text (see canonical.ts; inside rowHashExpr's binary CONCAT every token is UTF-8 bytes)

/**
 * The canonical text of a non-null value of the column, as SQL. Only for kinds rendered in SQL, and
 * only inside `rowHashExpr`'s CONCAT: where the column's own text already is the canonical text, it
 * is the bare column, which CONCAT converts to text itself (a third cheaper than `CAST(c AS CHAR)`
 * or `DATE_FORMAT`, measured on 1M rows; a checksum scan renders every column of every row).
 */
export function canonicalTextExpr(column: ShapeColumn): string {
  const c = quoteIdentifier(column.name);
  const family = nativeFamily(column.nativeType);
  switch (column.kind) {
    case 'integer':
      return numberText(c, family);
    case 'decimal': {
      // canonicalDecimal: trailing fraction zeros and the '.' go. MariaDB/MySQL print a DECIMAL with
      // exactly its scale's fraction digits, so a column with scale > 0 always has a '.' to trim
      // after, and one with scale 0 (or an integer type agreed as decimal) has nothing to trim.
      // DECIMAL has no negative zero on these servers (CAST(-0.00 AS DECIMAL(5,2)) is '0.00').
      const text = numberText(c, family);
      return decimalScale(column.nativeType) > 0 ? `TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${text}))` : text;
    }
    case 'boolean':
      // BIT(1) reads as a number 0/1 in Node; `+ 0` gives its digits in SQL. TINYINT(1) may hold 2.
      return numberText(c, family);
    case 'text':
      // Byte-exact. CHAR(n) trailing spaces are stripped on read by MariaDB, as by PostgreSQL's char(n)::text.
      return textExpr(column);
    case 'binary':
      // CAST(bit AS BINARY) keeps the leading zero bytes of a BIT(n) (HEX(bit) would print it as a number).
      return family === 'bit' ? `LOWER(HEX(CAST(${c} AS BINARY)))` : `LOWER(HEX(${c}))`;
    case 'date':
      // A DATE prints as 'YYYY-MM-DD' (years below 1000 zero-padded).
      return family === 'date' ? c : `DATE_FORMAT(${c}, '%Y-%m-%d')`;
    case 'datetime':
      // TIMESTAMPs render in the session time zone, which is UTC. A DATETIME(n) / TIMESTAMP(n) prints
      // exactly n fraction digits (none for n = 0): padded to the canonical 6. %f is always 6 digits.
      return family === 'datetime' ? withMicroseconds(c, fractionDigits(column.nativeType)) : `DATE_FORMAT(${c}, '%Y-%m-%d %H:%i:%s.%f')`;
    case 'time':
      // Keeps the sign and hours above 24 (TIME spans -838:59:59 .. 838:59:59), as a TIME(n) prints.
      return family === 'time' ? withMicroseconds(c, fractionDigits(column.nativeType)) : `TIME_FORMAT(${c}, '%H:%i:%s.%f')`;
    case 'uuid':
      return `LOWER(${textExpr(column)})`;
    case 'float':
    case 'json':
      throw new Error(`column ${column.name}: kind ${column.kind} is hashed in Node, not rendered in SQL`);
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/**
 * A number column's digits: a BIT's through `+ 0` (its bare value is bytes), an integer's or
 * decimal's as the bare column (CONCAT prints exactly what CAST AS CHAR would), anything else CAST.
 */
function numberText(c: string, family: NativeFamily): string {
  if (family === 'bit') return `CAST(${c} + 0 AS CHAR)`;
  return family === 'integer' || family === 'decimal' ? c : `CAST(${c} AS CHAR)`;
}

/** Fraction digits of a `datetime(n)`, `timestamp(n)` or `time(n)` column (0 without `(n)`). */
function fractionDigits(nativeType: string): number {
  const match = /^[a-z]+\s*\(\s*(\d+)\s*\)/i.exec(nativeType.trim());
  return match ? Number(match[1]) : 0;
}

/** The printed value of a temporal column with `digits` fraction digits, padded to 6 of them. */
function withMicroseconds(column: string, digits: number): string {
  if (digits >= 6) return column;
  return `CONCAT(${column}, '${digits === 0 ? '.' : ''}${'0'.repeat(6 - digits)}')`;
}

/**
 * `N` for NULL, else `<OCTET_LENGTH>:<text>` for free text and `<text>|` for the other kinds. Only
 * inside `rowHashExpr`'s binary CONCAT: each piece is taken as the bytes of its own character set,
 * which textExpr made UTF-8 (the other kinds render ASCII).
 */
export function canonicalTokenExpr(column: ShapeColumn): string {
  if (column.kind === 'text') {
    const text = canonicalTextExpr(column);
    // textExpr made the text UTF-8, so its byte length is the UTF-8 length canonical.ts counts.
    return `IF(${quoteIdentifier(column.name)} IS NULL, 'N', CONCAT(OCTET_LENGTH(${text}), ':', ${text}))`;
  }
  // Delimited token. IF evaluates the text once; the NULL test is on the column, not the text, so a
  // text that comes out NULL for a non-NULL value (HEX of a blob over max_allowed_packet) makes the
  // whole CONCAT NULL, which the checksum detects, instead of passing for SQL NULL.
  return `IF(${quoteIdentifier(column.name)} IS NULL, 'N', ${canonicalTextExpr(column)}), '|'`;
}

/**
 * MD5 hex of the concatenated tokens of `columns` (MD5('') when there are none). The leading
 * `CAST('' AS BINARY)` makes the CONCAT binary: its pieces join as bytes, with no character set
 * conversion and no "Illegal mix of collations" between columns of different collations (a binary
 * literal would not do: `_binary''` is only COERCIBLE, a column's collation IMPLICIT).
 */
export function rowHashExpr(columns: readonly ShapeColumn[]): string {
  if (columns.length === 0) return `MD5('')`;
  return `MD5(CONCAT(CAST('' AS BINARY), ${columns.map(canonicalTokenExpr).join(', ')}))`;
}
