import { createHash } from 'node:crypto';
import type { BucketChecksum, PortableValue, RangeChecksum, Row, ShapeColumn, TableShape, ValueKind } from './types.js';

/**
 * The canonical row text: the contract that makes two engines agree.
 *
 * A row renders to the concatenation of one token per column, in shape order. Two token forms, by kind:
 *   - free text (text, json), whose canonical text may contain any character:
 *       NULL -> `N`, any other -> `<length>:<text>`, `length` in bytes of the UTF-8 text (MySQL
 *       OCTET_LENGTH, PostgreSQL octet_length of the UTF-8 bytes). The length prefix makes the
 *       concatenation unambiguous: no value can imitate a column boundary, and NULL (`N`) differs
 *       from '' (`0:`). Bytes, not characters: MariaDB knows a string's byte length without reading
 *       it, while counting characters decodes every byte (6% of a checksum scan of the bench table).
 *   - every other kind, whose canonical text never contains `|` and is never `N`:
 *       NULL -> `N|`, any other -> `<text>|`. No length to compute: that is most of a row's
 *       rendering cost in SQL (measured on MariaDB: the length-prefixed form of every column made a
 *       checksum scan 2x slower).
 *
 * Row hash (hex MD5):
 *   - every column hashed in SQL:  md5(tokens)
 *   - some columns hashed in Node: md5(md5hex(tokens of the sql columns) + tokens of the node columns)
 *     (the database returns the inner MD5 and the raw node columns; Node finishes the row).
 *
 * Both dialects produce these tokens in SQL for the kinds they can render; this module is the
 * reference implementation, used for the node-hashed kinds and by tests to check the SQL renderers.
 */

const FRACTION_DIGITS = 6;

/** Canonical text of a non-null value of `kind`. Throws on a value that does not fit the kind. */
export function canonicalText(kind: ValueKind, value: Exclude<PortableValue, null>): string {
  switch (kind) {
    case 'integer':
      return String(value);
    case 'decimal':
      return canonicalDecimal(String(value));
    case 'float':
      return canonicalFloat(typeof value === 'number' ? value : Number(value));
    case 'boolean':
      if (typeof value === 'boolean') return value ? '1' : '0';
      return String(Number(value));
    case 'text':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    case 'binary':
      return Buffer.isBuffer(value) ? value.toString('hex') : Buffer.from(String(value), 'utf8').toString('hex');
    case 'date':
      return String(value);
    case 'datetime':
    case 'time':
      return padFraction(String(value));
    case 'json':
      return canonicalJson(String(value));
    case 'uuid':
      return String(value).toLowerCase();
    default: {
      const unreachable: never = kind;
      throw new Error(`unknown value kind ${String(unreachable)}`);
    }
  }
}

/** Kinds whose canonical text may contain any character, and so carry a length prefix. */
export function isFreeText(kind: ValueKind): boolean {
  return kind === 'text' || kind === 'json';
}

/** The token of one value (see the module comment): `N` / `<length>:<text>` or `N|` / `<text>|`. */
export function canonicalToken(kind: ValueKind, value: PortableValue): string {
  if (!isFreeText(kind)) return value === null ? 'N|' : `${canonicalText(kind, value)}|`;
  if (value === null) return 'N';
  const text = canonicalText(kind, value);
  return `${Buffer.byteLength(text, 'utf8')}:${text}`;
}

/** True when the two values render to the same canonical text (NULL equals only NULL). */
export function sameValue(kind: ValueKind, a: PortableValue, b: PortableValue): boolean {
  if (a === null || b === null) return a === b;
  return canonicalText(kind, a) === canonicalText(kind, b);
}

/** A stable string identity for a key tuple, for maps keyed by primary key. */
export function keyIdentity(shape: TableShape, key: readonly PortableValue[]): string {
  return shape.keyIndexes.map((index, position) => canonicalToken(shape.columns[index]!.kind, key[position] ?? null)).join('');
}

/** Hex MD5 of a row, exactly as the dialects compute it (see the module comment). */
export function rowHash(shape: TableShape, row: Row): string {
  let sqlTokens = '';
  let nodeTokens = '';
  let anyNode = false;
  shape.columns.forEach((column, index) => {
    const token = canonicalToken(column.kind, row[index] ?? null);
    if (column.hashSite === 'node') {
      anyNode = true;
      nodeTokens += token;
    } else {
      sqlTokens += token;
    }
  });
  return anyNode ? md5Hex(md5Hex(sqlTokens) + nodeTokens) : md5Hex(sqlTokens);
}

/**
 * Completes a row hash whose SQL part the database computed: md5(sqlPartHex + the tokens of the
 * node-hashed columns), or sqlPartHex itself when there are none (as `rowHash`). The value of
 * `nodeColumns[i]` is `raw[offset + i]` as the driver returned it; `read` makes it portable.
 */
export function finishRowHash(
  sqlPartHex: string,
  nodeColumns: readonly ShapeColumn[],
  raw: readonly unknown[],
  offset: number,
  read: (column: ShapeColumn, value: unknown) => PortableValue,
): string {
  if (nodeColumns.length === 0) return sqlPartHex;
  let tokens = '';
  nodeColumns.forEach((column, index) => {
    tokens += canonicalToken(column.kind, read(column, raw[offset + index]));
  });
  return md5Hex(sqlPartHex + tokens);
}

export function md5Hex(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/** Accumulates row hashes into a `RangeChecksum` (the same sums the SQL aggregates compute). */
export class ChecksumAccumulator {
  private count = 0;
  private sum = 0n;

  add(rowHashHex: string): void {
    this.count += 1;
    this.sum += BigInt(`0x${rowHashHex.slice(0, 15)}`);
  }

  result(): RangeChecksum {
    return { count: this.count, sum: this.sum.toString() };
  }
}

/**
 * Bucket checksums computed in Node (for rows whose hash is finished in Node): the reference the
 * SQL aggregates must match. BigInt division truncates toward zero, as MySQL `DIV` and PostgreSQL
 * integer `/` do.
 */
export class BucketAccumulator {
  private readonly width: bigint;
  private readonly buckets = new Map<bigint, ChecksumAccumulator>();

  constructor(width: number) {
    this.width = BigInt(width);
  }

  add(key: PortableValue, rowHashHex: string): void {
    const bucket = BigInt(typeof key === 'number' ? key : String(key)) / this.width;
    let accumulator = this.buckets.get(bucket);
    if (!accumulator) {
      accumulator = new ChecksumAccumulator();
      this.buckets.set(bucket, accumulator);
    }
    accumulator.add(rowHashHex);
  }

  result(): BucketChecksum[] {
    return [...this.buckets.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([bucket, accumulator]) => ({ bucket: bucket.toString(), ...accumulator.result() }));
  }
}

export function checksumOfRows(shape: TableShape, rows: Iterable<Row>): RangeChecksum {
  const accumulator = new ChecksumAccumulator();
  for (const row of rows) accumulator.add(rowHash(shape, row));
  return accumulator.result();
}

export function sameChecksum(a: RangeChecksum, b: RangeChecksum): boolean {
  return a.count === b.count && a.sum === b.sum;
}

/** `1.10` -> `1.1`, `2.000` -> `2`, `-0.0` -> `0`; digits are never rounded. */
export function canonicalDecimal(text: string): string {
  let result = text.trim();
  if (result.startsWith('+')) result = result.slice(1);
  if (result.includes('.')) result = result.replace(/0+$/, '').replace(/\.$/, '');
  if (/^-0*$/.test(result)) result = '0';
  return result;
}

/**
 * 15 significant digits (DBL_DIG: every decimal with 15 digits survives a round trip through a
 * double), in plain notation without exponent, trailing zeros removed. -0 renders as `0`.
 * Non-finite values render as `NaN`, `Infinity`, `-Infinity`.
 */
export function canonicalFloat(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const [mantissa, exponentText] = value.toExponential(14).split('e') as [string, string];
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '').replace(/0+$/, '') || '0';
  const exponent = Number(exponentText);
  let plain: string;
  if (exponent >= digits.length - 1) {
    plain = digits + '0'.repeat(exponent - digits.length + 1);
  } else if (exponent >= 0) {
    plain = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  } else {
    plain = `0.${'0'.repeat(-exponent - 1)}${digits}`;
  }
  return negative ? `-${plain}` : plain;
}

function padFraction(text: string): string {
  const dot = text.lastIndexOf('.');
  if (dot === -1) return `${text}.${'0'.repeat(FRACTION_DIGITS)}`;
  const fraction = text.slice(dot + 1);
  return fraction.length >= FRACTION_DIGITS ? text : text + '0'.repeat(FRACTION_DIGITS - fraction.length);
}

/**
 * JSON by value: object keys sorted (by UTF-16 code units), no insignificant whitespace, strings
 * re-escaped by JSON.stringify, numbers kept exact as canonical decimals (`1.0` = `1` = `1e0`;
 * digits beyond 2^53 are not rounded). Duplicate object keys keep the last value, as both engines do.
 */
export function canonicalJson(text: string): string {
  const parser = new ExactJsonParser(text);
  const value = parser.parseDocument();
  return renderJson(value);
}

type JsonValue = null | boolean | string | { readonly number: string } | JsonValue[] | Map<string, JsonValue>;

function renderJson(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(renderJson).join(',')}]`;
  if (value instanceof Map) {
    const keys = [...value.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((key) => `${JSON.stringify(key)}:${renderJson(value.get(key)!)}`).join(',')}}`;
  }
  return canonicalJsonNumber(value.number);
}

/** Exact decimal text of a JSON number literal: exponent applied, trailing zeros removed. */
export function canonicalJsonNumber(literal: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!match) throw new Error(`invalid JSON number ${literal}`);
  const [, sign, integerPart, fractionPart = '', exponentText = '0'] = match;
  let digits = `${integerPart}${fractionPart}`;
  let pointPosition = integerPart!.length + Number(exponentText);
  // Strip leading zeros while keeping the point position meaningful.
  while (digits.length > 1 && digits.startsWith('0')) {
    digits = digits.slice(1);
    pointPosition -= 1;
  }
  let result: string;
  if (pointPosition <= 0) result = `0.${'0'.repeat(-pointPosition)}${digits}`;
  else if (pointPosition >= digits.length) result = digits + '0'.repeat(pointPosition - digits.length);
  else result = `${digits.slice(0, pointPosition)}.${digits.slice(pointPosition)}`;
  return canonicalDecimal(`${sign}${result}`);
}

class ExactJsonParser {
  private position = 0;
  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    const value = this.parseValue();
    this.skipWhitespace();
    if (this.position !== this.text.length) this.fail('unexpected trailing characters');
    return value;
  }

  private parseValue(): JsonValue {
    this.skipWhitespace();
    const char = this.text[this.position];
    if (char === '{') return this.parseObject();
    if (char === '[') return this.parseArray();
    if (char === '"') return this.parseString();
    if (this.text.startsWith('true', this.position)) return this.literal('true', true);
    if (this.text.startsWith('false', this.position)) return this.literal('false', false);
    if (this.text.startsWith('null', this.position)) return this.literal('null', null);
    const match = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = this.position;
    const number = match.exec(this.text);
    if (!number) this.fail('unexpected character');
    this.position += number![0].length;
    return { number: number![0] };
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    this.position += word.length;
    return value;
  }

  private parseObject(): JsonValue {
    const result = new Map<string, JsonValue>();
    this.position += 1;
    this.skipWhitespace();
    if (this.text[this.position] === '}') {
      this.position += 1;
      return result;
    }
    for (;;) {
      this.skipWhitespace();
      const key = this.parseString();
      this.skipWhitespace();
      if (this.text[this.position] !== ':') this.fail("expected ':'");
      this.position += 1;
      result.set(key, this.parseValue());
      this.skipWhitespace();
      const separator = this.text[this.position++];
      if (separator === '}') return result;
      if (separator !== ',') this.fail("expected ',' or '}'");
    }
  }

  private parseArray(): JsonValue {
    const result: JsonValue[] = [];
    this.position += 1;
    this.skipWhitespace();
    if (this.text[this.position] === ']') {
      this.position += 1;
      return result;
    }
    for (;;) {
      result.push(this.parseValue());
      this.skipWhitespace();
      const separator = this.text[this.position++];
      if (separator === ']') return result;
      if (separator !== ',') this.fail("expected ',' or ']'");
    }
  }

  private parseString(): string {
    const match = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
    match.lastIndex = this.position;
    const found = match.exec(this.text);
    if (!found) this.fail('invalid string');
    this.position += found![0].length;
    return JSON.parse(found![0]) as string;
  }

  private skipWhitespace(): void {
    while (this.position < this.text.length && ' \t\n\r'.includes(this.text[this.position]!)) this.position += 1;
  }

  private fail(reason: string): never {
    throw new Error(`invalid JSON at position ${this.position}: ${reason}`);
  }
}
