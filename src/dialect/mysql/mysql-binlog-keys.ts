/**
 * Exact primary-key values from the raw bytes of MySQL/MariaDB row events.
 *
 * Why rowsync patches its binlog decoder
 * --------------------------------------
 * The binlog reader is @rodrigogs/zongji 0.4 (on mysqljs/mysql), used directly rather than through
 * @rodrigogs/mysql-events (whose normalizer also turns any 1-byte Buffer, a 1-byte BLOB or BINARY(1)
 * key included, into a boolean). zongji's own value decoder is lossy: BIGINT comes back as a JS
 * number (wrong above 2^53: 9007199254740993 reads as ...992, another row's key; negative BIGINTs
 * below -2^53 come out as garbage), DECIMAL through parseFloat, DATETIME/TIMESTAMP fractions cut to
 * milliseconds, negative TIME values mangled, and text decoded by Node encoding names that do not
 * match MySQL's character sets (utf16 makes it throw). rowsync only needs the primary key of each
 * changed row (the row itself is read again from the source by key), but that key must be exact: a
 * key that is off by one microsecond or one unit in the last place names a different row, and the
 * change is lost.
 *
 * So rowsync wraps zongji's per-value decoder (`readMysqlValue` in lib/common.js, which rows_event.js
 * calls through the module object): for the primary-key columns of the tables a stream reads, the
 * wrapper lets zongji consume the value as before (zongji still decides where each value ends) and
 * keeps a copy of exactly those bytes with the column's binlog type and metadata. This module decodes
 * those bytes itself, by the binlog's storage format, into the very value the MySQL dialect's reads
 * return for the column (`toPortable` of what mysql2 returns with its lossless settings), so that
 * `fetchByKeys` finds the row and `keyIdentity` matches. Other columns and other zongji users in the
 * process are left untouched. A stream also gives zongji its table metadata itself, from
 * `describeTable`, instead of letting it query information_schema per table id (that query's failure
 * stalls zongji silently, and a table altered since the event was written crashes it).
 *
 * What is exact, per key column type (anything else as a key column is refused when a stream starts,
 * `SchemaError` UNSUPPORTED_TYPE naming connection.table.column):
 * - TINYINT..BIGINT, signed and unsigned: all 64 bits (BIGINT as a decimal string, as mysql2 returns
 *   it with `bigNumberStrings`); YEAR.
 * - DECIMAL(p,s): the binary decimal format decoded digit group by digit group, printed as the server
 *   prints it (exactly s fraction digits).
 * - CHAR/VARCHAR/TINYTEXT..LONGTEXT and ENUM: text decoded by the column's character set (UTF-8
 *   family, ascii, latin1 as MySQL defines it - cp1252 -, ucs2/utf16/utf16le/utf32); CHAR loses its
 *   trailing spaces as the server's reads do. Other character sets are refused: MySQL's tables for
 *   sjis, big5, gbk... differ from the WHATWG ones in corners.
 * - BINARY(n) (the zero bytes the binlog strips are put back), VARBINARY, BLOBs, BIT(n): bytes.
 * - DATE, DATETIME(fsp), TIMESTAMP(fsp) (the UTC instant), TIME(fsp): microseconds kept, in both the
 *   MySQL 5.6+ formats (DATETIME2/TIMESTAMP2/TIME2, MariaDB's default since 10.1.2) and the older
 *   whole-second ones. MariaDB's pre-10.1.2 fractional formats (tables created before and never
 *   rebuilt) are refused with a hint to rebuild the table.
 * - FLOAT/DOUBLE: the stored IEEE value (FLOAT shortened as the dialect's reads shorten it).
 *
 * Replays across a schema change: row events carry column types but no names; a row is matched to
 * the table's current columns. When the binlog's column count or a key column's binlog type does not
 * match the table as it is now (the event was written before an ALTER), the source does not guess: it
 * asks for a reconcile of that table instead of keys (mysql-binlog-source.ts). A change that keeps
 * count and key types (columns reordered) can give wrong keys for events before it; the ALTER itself,
 * later in the same stream, then reconciles the table, which converges every row those keys missed.
 *
 * Measured (MariaDB 10.11, this machine class): a backlog of 1M changed rows of an 8-column table
 * read at ~125k rows/s with keys decoded, heap below ~110 MB (the queue pauses the socket).
 */
import { SchemaError } from '../../errors/index.js';
import type { ColumnSchema, PortableValue, ShapeColumn } from '../types.js';
import { baseType, bitWidth, decimalScale, nativeFamily } from './mysql-sql.js';
import { toPortable } from './mysql-values.js';

/** Column type codes of the binlog's TABLE_MAP event (enum_field_types), the ones keys can have. */
export const BinlogColumnType = {
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP: 7,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  TIME: 11,
  DATETIME: 12,
  YEAR: 13,
  VARCHAR: 15,
  BIT: 16,
  TIMESTAMP2: 17,
  DATETIME2: 18,
  TIME2: 19,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  BLOB: 252,
  STRING: 254,
} as const;

/** A column's TABLE_MAP metadata, under the names zongji gives them. */
export interface BinlogColumnMetadata {
  /** VARCHAR, STRING (CHAR/BINARY): maximum length in bytes (decides a 1- or 2-byte length prefix). */
  readonly max_length?: number;
  /** NEWDECIMAL. */
  readonly precision?: number;
  /** NEWDECIMAL: scale; TIMESTAMP2/DATETIME2/TIME2: fractional second digits. */
  readonly decimals?: number;
  /** BLOB/TEXT: bytes of the length prefix (1..4). */
  readonly length_size?: number;
  /** BIT(n): n. */
  readonly bits?: number;
  /** ENUM/SET: bytes of the stored value. */
  readonly size?: number;
}

/** One column value as it was in the row event: its bytes (exactly what the value occupied) and type. */
export interface RawBinlogValue {
  readonly type: number;
  readonly metadata: BinlogColumnMetadata | undefined;
  readonly bytes: Buffer;
}

export interface KeyColumnDecoder {
  readonly column: ColumnSchema;
  /**
   * Whether a binlog column of this type and metadata can be this column as it is now. False when the
   * event predates a change of the column (its type, length, scale or precision).
   */
  matches(type: number, metadata: BinlogColumnMetadata | undefined): boolean;
  /** The value as the MySQL dialect's reads return it (portable, exact). */
  decode(value: RawBinlogValue): PortableValue;
}

/**
 * The decoder of one primary-key column. Throws `SchemaError` UNSUPPORTED_TYPE (subject
 * `connection.table.column`) for a column type or character set whose binlog bytes it cannot turn
 * into the exact value.
 */
export function keyColumnDecoder(connectionName: string, table: string, column: ColumnSchema): KeyColumnDecoder {
  const refuse = (why: string): never => {
    throw new SchemaError(
      'UNSUPPORTED_TYPE',
      `key column ${column.name} of table ${table} on connection ${connectionName} has type ${column.nativeType}: ` +
        `${why}, so binlog CDC cannot name its rows exactly (use polling CDC or reconcile only for this table)`,
      { subject: `${connectionName}.${table}.${column.name}` },
    );
  };
  const shapeColumn: ShapeColumn = {
    name: column.name,
    nativeType: column.nativeType,
    kind: column.kind,
    hashSite: 'sql',
    generated: column.generated,
    ...(column.charset ? { charset: column.charset } : {}),
  };
  const portable = (raw: unknown): PortableValue => toPortable(shapeColumn, raw);
  const make = (
    matches: (type: number, metadata: BinlogColumnMetadata | undefined) => boolean,
    decodeRaw: (value: RawBinlogValue) => unknown,
  ): KeyColumnDecoder => ({ column, matches, decode: (value) => portable(decodeRaw(value)) });

  const type = column.nativeType.toLowerCase();
  const base = baseType(column.nativeType);
  const T = BinlogColumnType;
  const family = nativeFamily(column.nativeType);
  switch (family) {
    case 'integer': {
      if (base === 'year') return make((code) => code === T.YEAR, (value) => decodeBinlogYear(value.bytes));
      const code = INTEGER_TYPES[base];
      if (code === undefined) return refuse('an unknown integer type');
      const unsigned = /\bunsigned\b/.test(type);
      return make(
        (actual) => actual === code,
        (value) => {
          const integer = decodeBinlogInteger(value.bytes, unsigned);
          // mysql2 with bigNumberStrings returns every BIGINT as a string, the smaller types as numbers.
          return code === T.LONGLONG ? integer.toString() : Number(integer);
        },
      );
    }
    case 'decimal': {
      const precision = decimalPrecision(column.nativeType);
      const scale = decimalScale(column.nativeType);
      if (precision === undefined) return refuse('a decimal without a known precision');
      return make(
        (code, metadata) => code === T.NEWDECIMAL && metadata?.precision === precision && metadata.decimals === scale,
        (value) => decodeBinlogDecimal(value.bytes, precision, scale),
      );
    }
    case 'float':
      return make(
        (code) => code === (base === 'float' ? T.FLOAT : T.DOUBLE),
        (value) => (value.type === T.FLOAT ? exactLength(value.bytes, 4).readFloatLE(0) : exactLength(value.bytes, 8).readDoubleLE(0)),
      );
    case 'bit': {
      const bits = bitWidth(column.nativeType);
      return make(
        (code, metadata) => code === T.BIT && metadata?.bits === bits,
        (value) => Buffer.from(exactLength(value.bytes, Math.ceil(bits / 8))),
      );
    }
    case 'string': {
      if (column.kind !== 'text') return refuse(`its values are compared as ${column.kind}`);
      const decodeText = textDecoderFor(column.charset, refuse);
      if (base === 'enum') {
        const labels = enumLabels(column.nativeType);
        return make(
          (code, metadata) => code === T.ENUM && (metadata?.size === 1 || metadata?.size === 2),
          (value) => {
            const index = value.bytes.readUIntLE(0, exactLength(value.bytes, value.metadata?.size ?? 1).length);
            // Index 0 is the '' a non-strict sql_mode stores for an invalid value.
            if (index === 0) return '';
            const label = labels[index - 1];
            if (label === undefined) throw new Error(`column ${column.name}: ENUM index ${index} outside ${column.nativeType}`);
            return label;
          },
        );
      }
      if (base === 'char') {
        // The server strips a CHAR's trailing spaces on every read (PAD_CHAR_TO_FULL_LENGTH is off); a
        // multi-byte CHAR keeps them in the binlog, a single-byte one does not.
        return make(
          (code) => code === T.STRING,
          (value) => decodeText(lengthPrefixed(value.bytes, stringPrefixBytes(value.metadata))).replace(/ +$/, ''),
        );
      }
      if (base === 'varchar') {
        return make((code) => code === T.VARCHAR, (value) => decodeText(lengthPrefixed(value.bytes, stringPrefixBytes(value.metadata))));
      }
      if (BLOB_TYPES.has(base)) {
        return make((code) => code === T.BLOB, (value) => decodeText(lengthPrefixed(value.bytes, value.metadata?.length_size ?? 0)));
      }
      return refuse('its binlog form (a SET bitmap) is not decoded');
    }
    case 'binary': {
      if (base === 'binary') {
        // The binlog strips a BINARY(n)'s trailing zero bytes; the stored value has all n.
        const width = Number(/^binary\s*\(\s*(\d+)\s*\)/.exec(type)?.[1] ?? 1);
        return make(
          (code) => code === T.STRING,
          (value) => zeroPadded(lengthPrefixed(value.bytes, stringPrefixBytes(value.metadata)), width),
        );
      }
      if (base === 'varbinary') {
        return make((code) => code === T.VARCHAR, (value) => Buffer.from(lengthPrefixed(value.bytes, stringPrefixBytes(value.metadata))));
      }
      return make((code) => code === T.BLOB, (value) => Buffer.from(lengthPrefixed(value.bytes, value.metadata?.length_size ?? 0)));
    }
    case 'date':
      return make((code) => code === T.DATE, (value) => decodeBinlogDate(value.bytes));
    case 'datetime': {
      const fsp = fractionalDigits(column.nativeType);
      const timestamp = base === 'timestamp';
      const modern = timestamp ? T.TIMESTAMP2 : T.DATETIME2;
      const legacy = timestamp ? T.TIMESTAMP : T.DATETIME;
      return make(
        (code, metadata) => (code === modern && (metadata?.decimals ?? 0) === fsp) || (code === legacy && fsp === 0),
        (value) => {
          if (value.type === T.DATETIME2) return decodeBinlogDatetime2(value.bytes, fsp);
          if (value.type === T.TIMESTAMP2) return decodeBinlogTimestamp2(value.bytes, fsp);
          if (value.type === T.DATETIME) return decodeBinlogLegacyDatetime(value.bytes);
          return decodeBinlogLegacyTimestamp(value.bytes);
        },
      );
    }
    case 'time': {
      const fsp = fractionalDigits(column.nativeType);
      return make(
        (code, metadata) => (code === T.TIME2 && (metadata?.decimals ?? 0) === fsp) || (code === T.TIME && fsp === 0),
        (value) => (value.type === T.TIME2 ? decodeBinlogTime2(value.bytes, fsp) : decodeBinlogLegacyTime(value.bytes)),
      );
    }
    case 'json':
    case 'uuid':
    case 'inet':
    case 'other':
      return refuse('its binlog form is not decoded by rowsync');
    default: {
      const unreachable: never = family;
      return refuse(`unknown type family ${String(unreachable)}`);
    }
  }
}

/**
 * The message for a key column whose binlog type is a format this module does not read although the
 * column type is supported: MariaDB's own fractional temporal format of tables created before 10.1.2.
 */
export function legacyTemporalHint(column: ColumnSchema, type: number): string | undefined {
  const T = BinlogColumnType;
  const family = nativeFamily(column.nativeType);
  if ((family === 'datetime' || family === 'time') && fractionalDigits(column.nativeType) > 0) {
    if (type === T.DATETIME || type === T.TIMESTAMP || type === T.TIME) {
      return (
        `column ${column.name} (${column.nativeType}) is stored in MariaDB's pre-10.1.2 fractional format, ` +
        'which the binlog reader does not decode: rebuild the table with mysql56_temporal_format=ON (ALTER TABLE ... FORCE)'
      );
    }
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------------
// storage formats (exported for the unit tests)

const INTEGER_TYPES: Readonly<Record<string, number>> = {
  tinyint: BinlogColumnType.TINY,
  smallint: BinlogColumnType.SHORT,
  mediumint: BinlogColumnType.INT24,
  int: BinlogColumnType.LONG,
  integer: BinlogColumnType.LONG,
  bigint: BinlogColumnType.LONGLONG,
};

const BLOB_TYPES = new Set(['tinytext', 'text', 'mediumtext', 'longtext', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/** Integers are stored little-endian in their type's width (1, 2, 3, 4 or 8 bytes), two's complement. */
export function decodeBinlogInteger(bytes: Buffer, unsigned: boolean): bigint {
  if (![1, 2, 3, 4, 8].includes(bytes.length)) throw new Error(`binlog integer of ${bytes.length} bytes`);
  if (bytes.length === 8) return unsigned ? bytes.readBigUInt64LE(0) : bytes.readBigInt64LE(0);
  return BigInt(unsigned ? bytes.readUIntLE(0, bytes.length) : bytes.readIntLE(0, bytes.length));
}

/** YEAR: one byte, years since 1900; 0 is the year 0000. */
export function decodeBinlogYear(bytes: Buffer): number {
  const value = exactLength(bytes, 1)[0]!;
  return value === 0 ? 0 : 1900 + value;
}

const DIGITS_PER_GROUP = 9;
/** Bytes that hold 0..9 leftover decimal digits. */
const BYTES_FOR_DIGITS = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4] as const;

/** Bytes of a DECIMAL(precision, scale) in the binary format. */
export function decimalBinarySize(precision: number, scale: number): number {
  const integral = precision - scale;
  return (
    Math.floor(integral / DIGITS_PER_GROUP) * 4 + BYTES_FOR_DIGITS[integral % DIGITS_PER_GROUP]! +
    Math.floor(scale / DIGITS_PER_GROUP) * 4 + BYTES_FOR_DIGITS[scale % DIGITS_PER_GROUP]!
  );
}

/**
 * MySQL's binary DECIMAL (strings/decimal.c, decimal2bin): the integer digits then the fraction
 * digits, each part in groups of 9 digits per 4 big-endian bytes, the leftover digits of the integer
 * part first and those of the fraction last, in as few bytes as they need. The first bit is flipped
 * (1 = non-negative) and a negative number has every byte inverted, so the bytes sort as the numbers.
 * Printed as the server prints the column: no leading zeros, exactly `scale` fraction digits.
 */
export function decodeBinlogDecimal(bytes: Buffer, precision: number, scale: number): string {
  const size = decimalBinarySize(precision, scale);
  const data = Buffer.from(exactLength(bytes, size));
  const negative = (data[0]! & 0x80) === 0;
  data[0] = data[0]! ^ 0x80;
  if (negative) for (let index = 0; index < data.length; index += 1) data[index] = data[index]! ^ 0xff;

  let offset = 0;
  const group = (byteCount: number, digits: number): string => {
    const value = byteCount === 0 ? 0 : data.readUIntBE(offset, byteCount);
    offset += byteCount;
    if (value >= 10 ** digits) throw new Error(`binlog DECIMAL(${precision},${scale}): digit group ${value} has more than ${digits} digits`);
    return String(value).padStart(digits, '0');
  };
  const integral = precision - scale;
  let integerDigits = group(BYTES_FOR_DIGITS[integral % DIGITS_PER_GROUP]!, integral % DIGITS_PER_GROUP);
  for (let index = 0; index < Math.floor(integral / DIGITS_PER_GROUP); index += 1) integerDigits += group(4, DIGITS_PER_GROUP);
  let fractionDigits = '';
  for (let index = 0; index < Math.floor(scale / DIGITS_PER_GROUP); index += 1) fractionDigits += group(4, DIGITS_PER_GROUP);
  fractionDigits += group(BYTES_FOR_DIGITS[scale % DIGITS_PER_GROUP]!, scale % DIGITS_PER_GROUP);

  const integer = integerDigits.replace(/^0+/, '') || '0';
  const isZero = integer === '0' && !/[1-9]/.test(fractionDigits);
  // The servers print no negative zero (CAST(-0.00 AS DECIMAL(5,2)) is 0.00).
  const sign = negative && !isZero ? '-' : '';
  return scale > 0 ? `${sign}${integer}.${fractionDigits}` : `${sign}${integer}`;
}

/** DATE: 3 bytes little-endian, day in bits 0-4, month in 5-8, year from bit 9. */
export function decodeBinlogDate(bytes: Buffer): string {
  const packed = exactLength(bytes, 3).readUIntLE(0, 3);
  return `${pad(packed >>> 9, 4)}-${pad((packed >>> 5) & 0x0f, 2)}-${pad(packed & 0x1f, 2)}`;
}

/**
 * The fractional part that follows a DATETIME2/TIMESTAMP2/TIME2 (my_time.c): fsp 1-2 in one byte
 * (hundredths of a second), 3-4 in two (1/10000 s), 5-6 in three (microseconds), big-endian.
 */
function fractionBytes(fsp: number): number {
  return Math.ceil(fsp / 2);
}

/** The fraction of a non-negative DATETIME2/TIMESTAMP2 in microseconds. */
function fractionMicroseconds(bytes: Buffer, offset: number, fsp: number): number {
  const size = fractionBytes(fsp);
  if (size === 0) return 0;
  const stored = bytes.readUIntBE(offset, size);
  return stored * (size === 1 ? 10_000 : size === 2 ? 100 : 1);
}

/**
 * DATETIME2 (MySQL 5.6.4+, MariaDB 10.1.2+): 5 bytes big-endian, offset by 2^39: year*13+month in
 * bits 22-38, day 17-21, hour 12-16, minute 6-11, second 0-5; then the fraction.
 */
export function decodeBinlogDatetime2(bytes: Buffer, fsp: number): string {
  exactLength(bytes, 5 + fractionBytes(fsp));
  const packed = bytes.readUIntBE(0, 5) - 0x80_0000_0000;
  const yearMonthDay = Math.floor(packed / 2 ** 17);
  const hms = packed % 2 ** 17;
  const yearMonth = Math.floor(yearMonthDay / 32);
  return datetimeText(
    Math.floor(yearMonth / 13), yearMonth % 13, yearMonthDay % 32,
    Math.floor(hms / 4096), Math.floor(hms / 64) % 64, hms % 64,
    fractionMicroseconds(bytes, 5, fsp),
  );
}

/**
 * TIMESTAMP2: seconds since the epoch, 4 bytes big-endian, then the fraction: printed as the UTC
 * instant (the dialect's sessions read TIMESTAMPs in UTC). 0 is the zero timestamp.
 */
export function decodeBinlogTimestamp2(bytes: Buffer, fsp: number): string {
  exactLength(bytes, 4 + fractionBytes(fsp));
  return instantText(bytes.readUInt32BE(0), fractionMicroseconds(bytes, 4, fsp));
}

/**
 * TIME2: fsp 0-4: 3 bytes big-endian (offset 2^23) with hour in bits 12-21, minute 6-11, second 0-5,
 * then the fraction, which a negative time stores counted back from the next whole second; fsp 5-6:
 * one 6-byte number (offset 2^47) of (hms << 24) + microseconds. Signed: TIME spans -838:59:59.999999
 * to 838:59:59.999999.
 */
export function decodeBinlogTime2(bytes: Buffer, fsp: number): string {
  exactLength(bytes, 3 + fractionBytes(fsp));
  let packed: number; // (hms << 24) + microseconds, signed
  if (fsp >= 5) {
    packed = bytes.readUIntBE(0, 6) - 0x8000_0000_0000;
  } else {
    let integer = bytes.readUIntBE(0, 3) - 0x80_0000;
    let fraction = fsp === 0 ? 0 : bytes.readUIntBE(3, fractionBytes(fsp));
    if (integer < 0 && fraction !== 0) {
      // my_time_packed_from_binary: stored as (integer - 1) and (2^(8n) - |fraction|) to keep byte order.
      integer += 1;
      fraction -= fractionBytes(fsp) === 1 ? 0x100 : 0x10000;
    }
    packed = integer * 2 ** 24 + fraction * (fractionBytes(fsp) === 1 ? 10_000 : 100);
  }
  const negative = packed < 0;
  const magnitude = Math.abs(packed);
  const hms = Math.floor(magnitude / 2 ** 24);
  const microseconds = magnitude % 2 ** 24;
  return timeText(negative, Math.floor(hms / 4096) % 1024, Math.floor(hms / 64) % 64, hms % 64, microseconds);
}

/** Pre-5.6 DATETIME: 8 bytes little-endian holding the decimal number YYYYMMDDhhmmss. */
export function decodeBinlogLegacyDatetime(bytes: Buffer): string {
  const digits = exactLength(bytes, 8).readBigUInt64LE(0).toString().padStart(14, '0');
  return `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)} ${digits.slice(8, 10)}:${digits.slice(10, 12)}:${digits.slice(12, 14)}.000000`;
}

/** Pre-5.6 TIMESTAMP: seconds since the epoch, 4 bytes little-endian. */
export function decodeBinlogLegacyTimestamp(bytes: Buffer): string {
  return instantText(exactLength(bytes, 4).readUInt32LE(0), 0);
}

/** Pre-5.6 TIME: 3 bytes little-endian, signed, holding the decimal number hhmmss. */
export function decodeBinlogLegacyTime(bytes: Buffer): string {
  const value = exactLength(bytes, 3).readIntLE(0, 3);
  const magnitude = Math.abs(value);
  return timeText(value < 0, Math.floor(magnitude / 10_000), Math.floor(magnitude / 100) % 100, magnitude % 100, 0);
}

/** The bytes after a little-endian length prefix of `prefixBytes` bytes, checked against the value's size. */
export function lengthPrefixed(bytes: Buffer, prefixBytes: number): Buffer {
  if (prefixBytes < 1 || prefixBytes > 4 || bytes.length < prefixBytes) throw new Error(`binlog string: bad length prefix of ${prefixBytes} bytes`);
  const length = bytes.readUIntLE(0, prefixBytes);
  if (prefixBytes + length !== bytes.length) throw new Error(`binlog string: length ${length} does not fit ${bytes.length - prefixBytes} bytes`);
  return bytes.subarray(prefixBytes);
}

/** CHAR/BINARY/VARCHAR/VARBINARY: a 1-byte length unless the column can hold more than 255 bytes. */
function stringPrefixBytes(metadata: BinlogColumnMetadata | undefined): number {
  return (metadata?.max_length ?? 0) > 255 ? 2 : 1;
}

function zeroPadded(bytes: Buffer, width: number): Buffer {
  const padded = Buffer.alloc(Math.max(width, bytes.length));
  bytes.copy(padded);
  return padded;
}

// ------------------------------------------------------------------------------------------------
// text

/**
 * Character sets whose bytes this module turns into exactly the text the server sends a UTF-8 client.
 * Multi-byte Asian sets are left out: MySQL's tables differ from the WHATWG ones in corners
 * (sjis/cp932, big5/HKSCS), and a key that decodes differently names another row.
 */
const TEXT_DECODERS: Readonly<Record<string, (bytes: Buffer) => string>> = {
  utf8mb4: (bytes) => bytes.toString('utf8'),
  utf8mb3: (bytes) => bytes.toString('utf8'),
  utf8: (bytes) => bytes.toString('utf8'),
  ascii: (bytes) => bytes.toString('utf8'),
  latin1: decodeMysqlLatin1,
  ucs2: utf16BigEndian,
  utf16: utf16BigEndian,
  utf16le: (bytes) => bytes.toString('utf16le'),
  utf32: decodeUtf32,
};

function textDecoderFor(charset: string | undefined, refuse: (why: string) => never): (bytes: Buffer) => string {
  const decoder = TEXT_DECODERS[charset ?? 'utf8mb4'];
  return decoder ?? refuse(`its character set ${charset} is not one the binlog reader decodes exactly`);
}

/**
 * MySQL's latin1 is cp1252 with its five unassigned bytes mapped to the C1 controls (ctype-latin1.c).
 * Not Node's TextDecoder('windows-1252'): Node decodes that label as ISO-8859-1 (0x80 -> U+0080, not €).
 */
const CP1252_HIGH = [
  0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
  0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
];

function decodeMysqlLatin1(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte >= 0x80 && byte <= 0x9f ? CP1252_HIGH[byte - 0x80]! : byte);
  return text;
}

function utf16BigEndian(bytes: Buffer): string {
  if (bytes.length % 2 !== 0) throw new Error('binlog utf16 text: odd length');
  const swapped = Buffer.from(bytes);
  swapped.swap16();
  return swapped.toString('utf16le');
}

function decodeUtf32(bytes: Buffer): string {
  if (bytes.length % 4 !== 0) throw new Error('binlog utf32 text: length not a multiple of 4');
  let text = '';
  for (let offset = 0; offset < bytes.length; offset += 4) text += String.fromCodePoint(bytes.readUInt32BE(offset));
  return text;
}

/**
 * The labels of `enum('a','it''s','b\\c')` as information_schema prints them: quotes doubled,
 * backslashes escaped.
 */
export function enumLabels(nativeType: string): string[] {
  const body = /^enum\s*\((.*)\)$/is.exec(nativeType.trim())?.[1] ?? '';
  const labels: string[] = [];
  let index = 0;
  while (index < body.length) {
    if (body[index] !== "'") {
      index += 1;
      continue;
    }
    let label = '';
    index += 1;
    while (index < body.length) {
      const char = body[index]!;
      if (char === "'" && body[index + 1] === "'") {
        label += "'";
        index += 2;
      } else if (char === "'") {
        index += 1;
        break;
      } else if (char === '\\' && index + 1 < body.length) {
        label += UNESCAPES[body[index + 1]!] ?? body[index + 1]!;
        index += 2;
      } else {
        label += char;
        index += 1;
      }
    }
    labels.push(label);
  }
  return labels;
}

const UNESCAPES: Readonly<Record<string, string>> = { '0': '\u0000', n: '\n', r: '\r', t: '\t', Z: '\u001a', b: '\b' };

// ------------------------------------------------------------------------------------------------
// helpers

function exactLength(bytes: Buffer, length: number): Buffer {
  if (bytes.length !== length) throw new Error(`binlog value of ${bytes.length} bytes where ${length} were expected`);
  return bytes;
}

function decimalPrecision(nativeType: string): number | undefined {
  const match = /^(?:decimal|numeric|fixed)\s*(?:\(\s*(\d+)\s*(?:,\s*\d+\s*)?\))?/i.exec(nativeType.trim());
  if (!match) return undefined;
  return match[1] === undefined ? 10 : Number(match[1]); // DECIMAL alone is DECIMAL(10,0)
}

/** Fractional second digits of `datetime(n)`, `timestamp(n)`, `time(n)` (0 without `(n)`). */
function fractionalDigits(nativeType: string): number {
  return Number(/^[a-z]+\s*\(\s*(\d+)\s*\)/i.exec(nativeType.trim())?.[1] ?? 0);
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

function datetimeText(year: number, month: number, day: number, hour: number, minute: number, second: number, microseconds: number): string {
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)} ${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(microseconds, 6)}`;
}

function instantText(seconds: number, microseconds: number): string {
  if (seconds === 0 && microseconds === 0) return '0000-00-00 00:00:00.000000';
  const date = new Date(seconds * 1000);
  return datetimeText(
    date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(),
    date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), microseconds,
  );
}

function timeText(negative: boolean, hour: number, minute: number, second: number, microseconds: number): string {
  return `${negative ? '-' : ''}${pad(hour, 2)}:${pad(minute, 2)}:${pad(second, 2)}.${pad(microseconds, 6)}`;
}
