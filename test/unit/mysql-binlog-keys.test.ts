/**
 * Exact key decoding from raw binlog bytes (src/dialect/mysql/mysql-binlog-keys.ts).
 *
 * The byte strings are real: each was captured from a MariaDB 10.11 row event (the bytes zongji's
 * decoder consumed for the value) after inserting the value named next to it; the DECIMAL(14,4)
 * pair is also the example in MySQL's strings/decimal.c. Expected values are what the MySQL
 * dialect's reads return for the same column (mysql2 with its lossless settings, then toPortable).
 */
import { describe, expect, it } from 'vitest';
import {
  BinlogColumnType as T, decimalBinarySize, decodeBinlogDatetime2, decodeBinlogDecimal, decodeBinlogInteger,
  decodeBinlogLegacyDatetime, decodeBinlogLegacyTime, decodeBinlogLegacyTimestamp, decodeBinlogTime2, decodeBinlogTimestamp2,
  enumLabels, keyColumnDecoder, legacyTemporalHint, type BinlogColumnMetadata,
} from '../../src/dialect/mysql/mysql-binlog-keys.js';
import type { ColumnSchema, PortableValue, ValueKind } from '../../src/dialect/types.js';
import { SchemaError } from '../../src/errors/index.js';

function column(nativeType: string, kind: ValueKind, charset?: string): ColumnSchema {
  return { name: 'k', nativeType, kind, nullable: false, generated: false, ...(charset ? { charset } : {}) };
}

/** Decodes `hex` as a value of a `nativeType` column logged with `type` and `metadata`. */
function decode(
  nativeType: string, kind: ValueKind, type: number, metadata: BinlogColumnMetadata | undefined, hex: string, charset?: string,
): PortableValue {
  const decoder = keyColumnDecoder('shop', 'orders', column(nativeType, kind, charset));
  expect(decoder.matches(type, metadata)).toBe(true);
  return decoder.decode({ type, metadata, bytes: Buffer.from(hex, 'hex') });
}

describe('integer keys', () => {
  it('decodes every width, signed and unsigned, exactly', () => {
    expect(decode('int(11)', 'integer', T.LONG, undefined, '01000000')).toBe(1);
    expect(decode('tinyint(4)', 'integer', T.TINY, undefined, '80')).toBe(-128);
    expect(decode('tinyint(3) unsigned', 'integer', T.TINY, undefined, 'ff')).toBe(255);
    expect(decode('smallint(6)', 'integer', T.SHORT, undefined, '0080')).toBe(-32768);
    expect(decode('mediumint(9)', 'integer', T.INT24, undefined, '000080')).toBe(-8388608);
    expect(decode('mediumint(8) unsigned', 'integer', T.INT24, undefined, 'ffffff')).toBe(16777215);
    expect(decode('int(10) unsigned', 'integer', T.LONG, undefined, 'ffffffff')).toBe(4294967295);
    expect(decode('tinyint(1)', 'boolean', T.TINY, undefined, '02')).toBe(2);
    expect(decode('year(4)', 'integer', T.YEAR, undefined, 'ff')).toBe(2155);
    expect(decode('year(4)', 'integer', T.YEAR, undefined, '00')).toBe(0);
  });

  it('returns BIGINT as its decimal string (as mysql2 does), exact beyond 2^53', () => {
    expect(decode('bigint(20)', 'integer', T.LONGLONG, undefined, 'ffffffffffffdfff')).toBe('-9007199254740993');
    expect(decode('bigint(20) unsigned', 'integer', T.LONGLONG, undefined, 'ffffffffffffffff')).toBe('18446744073709551615');
    expect(decode('bigint(20)', 'integer', T.LONGLONG, undefined, '0100000000002000')).toBe('9007199254740993');
    expect(decode('bigint(20)', 'integer', T.LONGLONG, undefined, '0500000000000000')).toBe('5');
    expect(decodeBinlogInteger(Buffer.from('ffffffffffffff7f', 'hex'), false)).toBe(9223372036854775807n);
  });

  it('refuses a value of the wrong width', () => {
    expect(() => decodeBinlogInteger(Buffer.from('0102030405', 'hex'), false)).toThrow(/5 bytes/);
  });
});

describe('DECIMAL keys', () => {
  it('decodes the binary format digit group by digit group, printed with the column scale', () => {
    expect(decode('decimal(14,4)', 'decimal', T.NEWDECIMAL, { precision: 14, decimals: 4 }, '810dfb38d204d2')).toBe('1234567890.1234');
    expect(decode('decimal(14,4)', 'decimal', T.NEWDECIMAL, { precision: 14, decimals: 4 }, '7ef204c72dfb2d')).toBe('-1234567890.1234');
    expect(decode('decimal(30,10)', 'decimal', T.NEWDECIMAL, { precision: 30, decimals: 10 }, '73eb655bcaf204c72dff439eb1f6')).toBe(
      '-12345678901234567890.0123456789',
    );
    expect(decode('decimal(30,10)', 'decimal', T.NEWDECIMAL, { precision: 30, decimals: 10 }, '8000000000000000000000000001')).toBe(
      '0.0000000001',
    );
    expect(decode('decimal(5,0)', 'decimal', T.NEWDECIMAL, { precision: 5, decimals: 0 }, '7e7960')).toBe('-99999');
  });

  it('sizes the format as decimal.c does and prints no negative zero', () => {
    expect(decimalBinarySize(14, 4)).toBe(7);
    expect(decimalBinarySize(30, 10)).toBe(14);
    expect(decimalBinarySize(65, 30)).toBe(30);
    // A negative zero (every byte of 0.00 inverted, sign bit clear) prints as the servers print 0.00.
    expect(decodeBinlogDecimal(Buffer.from('7fff', 'hex'), 4, 2)).toBe('0.00');
    expect(decodeBinlogDecimal(Buffer.from('8000', 'hex'), 4, 2)).toBe('0.00');
  });

  it('refuses a corrupt digit group', () => {
    // 10^9 in a 9-digit group.
    expect(() => decodeBinlogDecimal(Buffer.from('bb9aca00', 'hex'), 9, 0)).toThrow(/digit group/);
  });

  it('does not match a column whose precision or scale changed since the event', () => {
    const decoder = keyColumnDecoder('shop', 'orders', column('decimal(30,10)', 'decimal'));
    expect(decoder.matches(T.NEWDECIMAL, { precision: 30, decimals: 10 })).toBe(true);
    expect(decoder.matches(T.NEWDECIMAL, { precision: 30, decimals: 8 })).toBe(false);
    expect(decoder.matches(T.LONGLONG, undefined)).toBe(false);
  });
});

describe('temporal keys', () => {
  it('keeps DATETIME microseconds (every fsp)', () => {
    expect(decode('datetime(6)', 'datetime', T.DATETIME2, { decimals: 6 }, '99b2bb7efa01e240')).toBe('2024-02-29 23:59:58.123456');
    expect(decode('datetime(3)', 'datetime', T.DATETIME2, { decimals: 3 }, '8cb24200001388')).toBe('1000-01-01 00:00:00.500000');
    expect(decode('datetime', 'datetime', T.DATETIME2, { decimals: 0 }, 'fef3ff7efb')).toBe('9999-12-31 23:59:59.000000');
    expect(decodeBinlogDatetime2(Buffer.from('99b2420000000000', 'hex'), 6)).toBe('2024-01-01 00:00:00.000000');
  });

  it('reads TIMESTAMP as the UTC instant', () => {
    expect(decode('timestamp(6)', 'datetime', T.TIMESTAMP2, { decimals: 6 }, '7fffffff0f423f')).toBe('2038-01-19 03:14:07.999999');
    expect(decode('timestamp', 'datetime', T.TIMESTAMP2, { decimals: 0 }, '00000001')).toBe('1970-01-01 00:00:01.000000');
    expect(decodeBinlogTimestamp2(Buffer.from('00000000', 'hex'), 0)).toBe('0000-00-00 00:00:00.000000');
  });

  it('reads negative TIMEs with fractions, stored counted back from the next second', () => {
    expect(decode('time(6)', 'time', T.TIME2, { decimals: 6 }, '4b9104ffffff')).toBe('-838:59:59.000001');
    expect(decode('time(6)', 'time', T.TIME2, { decimals: 6 }, '800000000000')).toBe('00:00:00.000000');
    expect(decode('time(1)', 'time', T.TIME2, { decimals: 1 }, '7ffffff6')).toBe('-00:00:00.100000');
    expect(decode('time(1)', 'time', T.TIME2, { decimals: 1 }, '7fffffa6')).toBe('-00:00:00.900000');
    expect(decode('time(3)', 'time', T.TIME2, { decimals: 3 }, '80c8b81ed2')).toBe('12:34:56.789000');
    expect(decode('time(3)', 'time', T.TIME2, { decimals: 3 }, '7ffffefff6')).toBe('-00:00:01.001000');
    expect(decode('time', 'time', T.TIME2, { decimals: 0 }, '7ff000')).toBe('-01:00:00.000000');
    expect(decodeBinlogTime2(Buffer.from('80f000', 'hex'), 0)).toBe('15:00:00.000000');
  });

  it('reads DATE and the pre-5.6 whole-second formats', () => {
    expect(decode('date', 'date', T.DATE, undefined, '210200')).toBe('0001-01-01');
    expect(decodeBinlogLegacyDatetime(Buffer.from((20240229235958n).toString(16).padStart(16, '0'), 'hex').reverse())).toBe(
      '2024-02-29 23:59:58.000000',
    );
    expect(decodeBinlogLegacyTimestamp(Buffer.from('01000000', 'hex'))).toBe('1970-01-01 00:00:01.000000');
    const minusOneHour = Buffer.alloc(3);
    minusOneHour.writeIntLE(-10000, 0, 3);
    expect(decodeBinlogLegacyTime(minusOneHour)).toBe('-01:00:00.000000');
  });

  it('matches the temporal format only with the same fractional digits', () => {
    const decoder = keyColumnDecoder('shop', 'orders', column('datetime(6)', 'datetime'));
    expect(decoder.matches(T.DATETIME2, { decimals: 6 })).toBe(true);
    expect(decoder.matches(T.DATETIME2, { decimals: 3 })).toBe(false);
    expect(decoder.matches(T.DATETIME, undefined)).toBe(false);
    expect(keyColumnDecoder('shop', 'orders', column('datetime', 'datetime')).matches(T.DATETIME, undefined)).toBe(true);
    expect(legacyTemporalHint(column('datetime(6)', 'datetime'), T.DATETIME)).toMatch(/pre-10\.1\.2.*FORCE/);
    expect(legacyTemporalHint(column('datetime(6)', 'datetime'), T.DATETIME2)).toBeUndefined();
  });
});

describe('text and binary keys', () => {
  it('decodes text by the column character set; CHAR loses trailing spaces as on reads', () => {
    expect(decode('varchar(300)', 'text', T.VARCHAR, { max_length: 1200 }, `1400${'c3a9'.repeat(10)}`, 'utf8mb4')).toBe('é'.repeat(10));
    expect(decode('char(5)', 'text', T.STRING, { max_length: 20 }, '026162', 'utf8mb4')).toBe('ab');
    expect(decode('char(5)', 'text', T.STRING, { max_length: 20 }, '0461622020', 'utf8mb4')).toBe('ab');
    expect(decode('varchar(5)', 'text', T.VARCHAR, { max_length: 20 }, '0461622020', 'utf8mb4')).toBe('ab  ');
    expect(decode('char(5)', 'text', T.STRING, { max_length: 5 }, '03e98078', 'latin1')).toBe('é€x');
    expect(decode('varchar(5)', 'text', T.VARCHAR, { max_length: 5 }, '04819fa0ff', 'latin1')).toBe('\u0081\u0178\u00a0\u00ff');
    expect(decode('varchar(5)', 'text', T.VARCHAR, { max_length: 20 }, '04006820ac', 'utf16')).toBe('h€');
    expect(decode('varchar(5)', 'text', T.VARCHAR, { max_length: 20 }, '040001f600', 'utf32')).toBe('\u{1f600}');
    expect(decode('text', 'text', T.BLOB, { length_size: 2 }, '0300616263', 'utf8mb4')).toBe('abc');
  });

  it('decodes ENUM to its label', () => {
    const type = "enum('a','it''s','b\\\\c')";
    expect(enumLabels(type)).toEqual(['a', "it's", 'b\\c']);
    expect(decode(type, 'text', T.ENUM, { size: 1 }, '03', 'utf8mb4')).toBe('b\\c');
    expect(decode(type, 'text', T.ENUM, { size: 1 }, '02', 'utf8mb4')).toBe("it's");
    expect(decode(type, 'text', T.ENUM, { size: 1 }, '00', 'utf8mb4')).toBe('');
  });

  it('returns binary keys as Buffers, BINARY(n) zero-padded back to n bytes', () => {
    expect(decode('binary(4)', 'binary', T.STRING, { max_length: 4 }, '0161')).toEqual(Buffer.from('61000000', 'hex'));
    expect(decode('binary(1)', 'binary', T.STRING, { max_length: 1 }, '00')).toEqual(Buffer.from('00', 'hex'));
    expect(decode('varbinary(4)', 'binary', T.VARCHAR, { max_length: 4 }, '0100')).toEqual(Buffer.from('00', 'hex'));
    expect(decode('varbinary(4)', 'binary', T.VARCHAR, { max_length: 4 }, '00')).toEqual(Buffer.alloc(0));
    expect(decode('tinyblob', 'binary', T.BLOB, { length_size: 1 }, '0101')).toEqual(Buffer.from('01', 'hex'));
    expect(decode('bit(9)', 'binary', T.BIT, { bits: 9 }, '0101')).toEqual(Buffer.from('0101', 'hex'));
    expect(decode('bit(1)', 'boolean', T.BIT, { bits: 1 }, '01')).toBe(1);
  });

  it('refuses a length prefix that does not fit the value', () => {
    const decoder = keyColumnDecoder('shop', 'orders', column('varbinary(4)', 'binary'));
    expect(() => decoder.decode({ type: T.VARCHAR, metadata: { max_length: 4 }, bytes: Buffer.from('0300', 'hex') })).toThrow(/length/);
  });
});

describe('float keys', () => {
  it('reads the stored IEEE value (FLOAT shortened as the dialect reads it)', () => {
    expect(decode('float', 'float', T.FLOAT, { size: 4 }, 'cdcccc3d')).toBe(0.1);
    expect(decode('double', 'float', T.DOUBLE, { size: 8 }, '2f30b7b3a7c9ba81')).toBe(-2.5e-300);
  });
});

describe('unsupported key columns', () => {
  it.each([
    ['json', 'json', undefined],
    ['longtext', 'json', 'utf8mb4'],
    ['set(\'a\',\'b\')', 'text', 'utf8mb4'],
    ['uuid', 'uuid', undefined],
    ['inet6', 'text', undefined],
    ['varchar(10)', 'text', 'sjis'],
    ['point', 'text', undefined],
  ] as const)('refuses %s (%s) naming connection.table.column', (nativeType, kind, charset) => {
    let error: unknown;
    try {
      keyColumnDecoder('shop', 'orders', column(nativeType, kind, charset));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SchemaError);
    expect((error as SchemaError).code).toBe('UNSUPPORTED_TYPE');
    expect((error as SchemaError).subject).toBe('shop.orders.k');
  });
});
