/**
 * mysql2 result values -> portable values (types.ts). The pool reads losslessly (BIGINT and DECIMAL as
 * strings, DATE/DATETIME/TIMESTAMP as the server's text, JSON as text, binary as Buffer); this module
 * only normalizes the forms: 6 fraction digits for datetime/time, BIT as number or bytes.
 */
import type { PortableValue, ShapeColumn } from '../types.js';
import { isSinglePrecision, nativeFamily } from './mysql-sql.js';

type RawValue = string | number | bigint | boolean | Buffer | null | undefined | Date;

export function toPortable(column: ShapeColumn, raw: unknown): PortableValue {
  const value = raw as RawValue;
  if (value === null || value === undefined) return null;
  if (value instanceof Date) throw new Error(`column ${column.name}: unexpected Date (dateStrings must be on)`);
  const family = nativeFamily(column.nativeType);
  switch (column.kind) {
    case 'integer':
    case 'boolean':
      if (Buffer.isBuffer(value)) return unsignedOf(value); // BIT
      if (typeof value === 'bigint') return integerOf(value);
      if (typeof value === 'boolean') return value ? 1 : 0;
      return value; // a number, or for BIGINT a string (bigNumberStrings): never rounded
    case 'decimal':
      if (Buffer.isBuffer(value)) return String(unsignedOf(value));
      return String(value);
    case 'float': {
      if (Buffer.isBuffer(value)) return Number(unsignedOf(value));
      const number = typeof value === 'number' ? value : Number(value);
      return family === 'float' && isSinglePrecision(column.nativeType) ? shortestSingle(number) : number;
    }
    case 'text':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    case 'binary':
      if (Buffer.isBuffer(value)) return value;
      return Buffer.from(String(value), 'utf8');
    case 'date':
      return String(value);
    case 'datetime': {
      const text = String(value);
      // A DATE column whose agreed kind is datetime (the other side holds a timestamp).
      if (family === 'date' || /^-?\d+-\d\d-\d\d$/.test(text)) return `${text} 00:00:00.000000`;
      return sixFractionDigits(text);
    }
    case 'time':
      return sixFractionDigits(String(value));
    case 'json':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    case 'uuid':
      return Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
    default: {
      const unreachable: never = column.kind;
      throw new Error(`unknown kind ${String(unreachable)}`);
    }
  }
}

/** '10:00:00' -> '10:00:00.000000', '10:00:00.5' -> '10:00:00.500000'. */
export function sixFractionDigits(text: string): string {
  const dot = text.lastIndexOf('.');
  if (dot === -1) return `${text}.000000`;
  const fraction = text.slice(dot + 1);
  return fraction.length >= 6 ? text : `${text}${'0'.repeat(6 - fraction.length)}`;
}

function unsignedOf(bytes: Buffer): number | string {
  if (bytes.length === 0) return 0;
  return integerOf(BigInt(`0x${bytes.toString('hex')}`));
}

function integerOf(value: bigint): number | string {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

/**
 * A FLOAT read as its exact double (0.10000000149011612) -> the shortest decimal that rounds to the
 * same single-precision value (0.1), the form PostgreSQL prints a `real` in (float4out, shortest
 * round-trip), so a FLOAT and a real holding the same value read as the same number.
 */
export function shortestSingle(value: number): number {
  if (!Number.isFinite(value) || value === 0 || Math.fround(value) !== value) return value;
  for (let digits = 1; digits <= 9; digits += 1) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}
