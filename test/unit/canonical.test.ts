import { describe, expect, it } from 'vitest';
import {
  canonicalDecimal, canonicalFloat, canonicalJson, canonicalJsonNumber, canonicalText, canonicalToken,
  checksumOfRows, rowHash, sameChecksum,
} from '../../src/dialect/canonical.js';
import type { TableShape } from '../../src/dialect/types.js';

const shape: TableShape = {
  table: 't',
  keyIndexes: [0],
  columns: [
    { name: 'id', nativeType: 'int', kind: 'integer', hashSite: 'sql', generated: false },
    { name: 'a', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    { name: 'b', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
  ],
};

describe('canonical text', () => {
  it('keeps decimals exact and drops only trailing fraction zeros', () => {
    expect(canonicalDecimal('1.10')).toBe('1.1');
    expect(canonicalDecimal('2.000')).toBe('2');
    expect(canonicalDecimal('100')).toBe('100');
    expect(canonicalDecimal('-0.00')).toBe('0');
    expect(canonicalDecimal('12345678901234567890123456789.000000000000000000000000000001')).toBe(
      '12345678901234567890123456789.000000000000000000000000000001',
    );
  });

  it('renders floats at 15 significant digits in plain notation', () => {
    expect(canonicalFloat(0.1 + 0.2)).toBe('0.3');
    expect(canonicalFloat(1e20)).toBe('100000000000000000000');
    expect(canonicalFloat(1.5e-7)).toBe('0.00000015');
    expect(canonicalFloat(123456789012345678)).toBe('123456789012346000');
    expect(canonicalFloat(-2.5)).toBe('-2.5');
    expect(canonicalFloat(-0)).toBe('0');
    expect(canonicalFloat(Math.fround(0.1))).toBe('0.100000001490116');
    expect(canonicalFloat(1.0000000000000002)).toBe('1');
    expect(canonicalFloat(1.00000000000001)).toBe('1.00000000000001');
  });

  it('compares JSON by value with exact numbers', () => {
    expect(canonicalJson('{ "b": [1, 2.0], "a": {"y": null, "x": true} }')).toBe('{"a":{"x":true,"y":null},"b":[1,2]}');
    expect(canonicalJson('{"a":1e2}')).toBe(canonicalJson('{"a": 100.00}'));
    expect(canonicalJson('{"n":12345678901234567890123}')).toBe('{"n":12345678901234567890123}');
    expect(canonicalJson('"caf\\u00e9"')).toBe('"café"');
    expect(canonicalJson('{"a":1}')).not.toBe(canonicalJson('{"a":"1"}'));
    expect(canonicalJsonNumber('-0.5e-2')).toBe('-0.005');
    expect(canonicalJsonNumber('0.0')).toBe('0');
    expect(() => canonicalJson('{"a":}')).toThrow(/invalid JSON/);
  });

  it('renders the other kinds as documented', () => {
    expect(canonicalText('boolean', true)).toBe('1');
    expect(canonicalText('boolean', 0)).toBe('0');
    expect(canonicalText('boolean', 2)).toBe('2');
    expect(canonicalText('binary', Buffer.from([0, 255]))).toBe('00ff');
    expect(canonicalText('datetime', '2024-01-02 03:04:05')).toBe('2024-01-02 03:04:05.000000');
    expect(canonicalText('datetime', '2024-01-02 03:04:05.12')).toBe('2024-01-02 03:04:05.120000');
    expect(canonicalText('time', '-838:59:59')).toBe('-838:59:59.000000');
    expect(canonicalText('uuid', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11')).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(canonicalText('integer', '18446744073709551615')).toBe('18446744073709551615');
  });
});

describe('row tokens', () => {
  it('distinguishes NULL from the empty string', () => {
    expect(canonicalToken('text', null)).toBe('N');
    expect(canonicalToken('text', '')).toBe('0:');
    expect(rowHash(shape, [1, null, 'x'])).not.toBe(rowHash(shape, [1, '', 'x']));
  });

  it('does not let a value imitate a column boundary', () => {
    expect(rowHash(shape, [1, 'ab', 'c'])).not.toBe(rowHash(shape, [1, 'a', 'bc']));
    expect(rowHash(shape, [1, '1:a', 'N'])).not.toBe(rowHash(shape, [1, '1:aN', null]));
  });

  it('counts the bytes of the UTF-8 text, not characters or UTF-16 units', () => {
    expect(canonicalToken('text', '😀é')).toBe('6:😀é');
    expect(canonicalToken('text', 'abc')).toBe('3:abc');
  });
});

describe('checksum aggregate', () => {
  it('is order independent and exact', () => {
    const rows = [[1, 'a', 'b'], [2, 'c', 'd'], [3, null, '']] as const;
    const forward = checksumOfRows(shape, rows);
    const backward = checksumOfRows(shape, [...rows].reverse());
    expect(sameChecksum(forward, backward)).toBe(true);
    expect(forward.count).toBe(3);
  });

  it('does not cancel two equal changes (unlike CRC32 + XOR)', () => {
    const before = checksumOfRows(shape, [[1, 'x', 'y'], [2, 'x', 'y']]);
    const after = checksumOfRows(shape, [[1, 'x', 'z'], [2, 'x', 'z']]);
    expect(sameChecksum(before, after)).toBe(false);
    const duplicated = checksumOfRows(shape, [[1, 'x', 'y'], [1, 'x', 'y']]);
    const empty = checksumOfRows(shape, []);
    expect(sameChecksum(duplicated, empty)).toBe(false);
  });

  it('uses node hashing for node columns', () => {
    const jsonShape: TableShape = {
      ...shape,
      columns: [shape.columns[0]!, { name: 'j', nativeType: 'json', kind: 'json', hashSite: 'node', generated: false }],
    };
    expect(rowHash(jsonShape, [1, '{"a":1,"b":2}'])).toBe(rowHash(jsonShape, [1, '{"b": 2.0, "a": 1}']));
    expect(rowHash(jsonShape, [1, '{"a":1}'])).not.toBe(rowHash(jsonShape, [1, '{"a":2}']));
  });
});
