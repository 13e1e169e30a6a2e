import type { KeyRange, PortableValue } from '../dialect/types.js';

/**
 * Job payloads are JSON (BullMQ stores them in Redis): portable values survive the trip except
 * Buffers, which become `{ "$bytes": "<base64>" }`. Everything else (strings for big integers and
 * decimals, numbers, booleans, null) is JSON already.
 */
export type EncodedValue = string | number | boolean | null | { readonly $bytes: string };

export function encodeValue(value: PortableValue): EncodedValue {
  return Buffer.isBuffer(value) ? { $bytes: value.toString('base64') } : value;
}

export function decodeValue(value: EncodedValue): PortableValue {
  return value !== null && typeof value === 'object' ? Buffer.from(value.$bytes, 'base64') : value;
}

export const encodeTuple = (tuple: readonly PortableValue[]): EncodedValue[] => tuple.map(encodeValue);
export const decodeTuple = (tuple: readonly EncodedValue[]): PortableValue[] => tuple.map(decodeValue);

export interface EncodedRange {
  readonly lower?: EncodedValue[];
  readonly upper?: EncodedValue[];
}

export function encodeRange(range: KeyRange): EncodedRange {
  return {
    ...(range.lower ? { lower: encodeTuple(range.lower) } : {}),
    ...(range.upper ? { upper: encodeTuple(range.upper) } : {}),
  };
}

export function decodeRange(range: EncodedRange): KeyRange {
  return {
    ...(range.lower ? { lower: decodeTuple(range.lower) } : {}),
    ...(range.upper ? { upper: decodeTuple(range.upper) } : {}),
  };
}
