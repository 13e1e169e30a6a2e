/**
 * The pure parts of the binlog change source: position order, the preflight checks on what the
 * server reports (fake SHOW VARIABLES / SHOW GRANTS rows: changing the shared test server's global
 * settings would disturb other test files), and what a QUERY event means.
 */
import { describe, expect, it } from 'vitest';
import { classifyQueryEvent, tokenize } from '../../src/dialect/mysql/mysql-binlog-statements.js';
import {
  checkBinlogSettings, checkReplicationGrant, compareBinlogPositions, parseBinlogPosition,
} from '../../src/dialect/mysql/mysql-binlog-source.js';
import { CdcSetupError } from '../../src/errors/index.js';

describe('binlog positions', () => {
  it('parses file:offset and orders by file sequence number, then offset', () => {
    expect(parseBinlogPosition('mysql-bin.000042:1234')).toEqual({ file: 'mysql-bin.000042', offset: 1234 });
    expect(parseBinlogPosition('host:with:colons.000001:4')).toEqual({ file: 'host:with:colons.000001', offset: 4 });
    expect(parseBinlogPosition('mysql-bin.000042')).toBeUndefined();
    expect(compareBinlogPositions('mysql-bin.000001:900', 'mysql-bin.000002:4')).toBeLessThan(0);
    expect(compareBinlogPositions('mysql-bin.000002:4', 'mysql-bin.000001:900')).toBeGreaterThan(0);
    expect(compareBinlogPositions('mysql-bin.999999:4', 'mysql-bin.1000000:4')).toBeLessThan(0);
    expect(compareBinlogPositions('mysql-bin.000002:100', 'mysql-bin.000002:99')).toBeGreaterThan(0);
    expect(compareBinlogPositions('mysql-bin.000002:100', 'mysql-bin.000002:100')).toBe(0);
    expect(() => compareBinlogPositions('nonsense', 'mysql-bin.000002:100')).toThrow(/not a binlog position/);
  });
});

describe('binlog preflight checks', () => {
  const good: Record<string, string> = {
    log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', log_bin_compress: 'OFF', server_id: '1',
  };
  const failure = (variables: Record<string, string>): CdcSetupError => {
    try {
      checkBinlogSettings('shop', new Map(Object.entries(variables)));
    } catch (error) {
      if (error instanceof CdcSetupError) return error;
      throw error;
    }
    throw new Error('no failure');
  };

  it('accepts a server logging ROW with FULL images (MariaDB and MySQL 8 variable sets)', () => {
    expect(() => checkBinlogSettings('shop', new Map(Object.entries(good)))).not.toThrow();
    const mysql8 = { log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', binlog_transaction_compression: 'OFF', binlog_row_value_options: '' };
    expect(() => checkBinlogSettings('shop', new Map(Object.entries(mysql8)))).not.toThrow();
  });

  it('names binlog_format and says how to fix it (MariaDB defaults to MIXED)', () => {
    const error = failure({ ...good, binlog_format: 'MIXED' });
    expect(error.subject).toBe('binlog_format');
    expect(error.message).toContain("SET GLOBAL binlog_format = 'ROW'");
    expect(error.message).toContain('binlog_format = ROW under [mysqld] in my.cnf');
    expect(error.message).toContain('MIXED');
  });

  it.each([
    [{ log_bin: 'OFF' }, 'log_bin', /restart/],
    [{ binlog_row_image: 'MINIMAL' }, 'binlog_row_image', /SET GLOBAL binlog_row_image = 'FULL'/],
    [{ log_bin_compress: 'ON' }, 'log_bin_compress', /SET GLOBAL log_bin_compress = OFF/],
    [{ binlog_transaction_compression: 'ON' }, 'binlog_transaction_compression', /SET GLOBAL binlog_transaction_compression = OFF/],
    [{ binlog_row_value_options: 'PARTIAL_JSON' }, 'binlog_row_value_options', /binlog_row_value_options = ''/],
  ] as const)('names %o', (change, subject, fix) => {
    const error = failure({ ...good, ...change });
    expect(error.subject).toBe(subject);
    expect(error.message).toMatch(fix);
  });

  it('finds REPLICATION SLAVE in SHOW GRANTS (direct, ALL PRIVILEGES), and names it when missing', () => {
    const grant = (privileges: string) => [`GRANT ${privileges} ON *.* TO \`cdc\`@\`%\` IDENTIFIED BY PASSWORD '*AB'`];
    expect(() => checkReplicationGrant('shop', 'cdc', grant('ALL PRIVILEGES'))).not.toThrow();
    expect(() => checkReplicationGrant('shop', 'cdc', grant('SELECT, REPLICATION SLAVE, BINLOG MONITOR'))).not.toThrow();
    expect(() => checkReplicationGrant('shop', 'cdc', grant('SELECT, REPLICATION CLIENT'))).toThrow(CdcSetupError);
    expect(() => checkReplicationGrant('shop', 'cdc', ['GRANT REPLICATION SLAVE ON `shop`.* TO `cdc`@`%`'])).toThrow(/REPLICATION SLAVE/);
    // SUPER does not allow a binlog dump.
    const error = (() => {
      try {
        checkReplicationGrant('shop', 'cdc', grant('SUPER'));
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(CdcSetupError);
    expect((error as CdcSetupError).subject).toBe('REPLICATION SLAVE');
    expect((error as CdcSetupError).message).toContain('GRANT REPLICATION SLAVE');
  });
});

describe('QUERY event meanings', () => {
  it('frames transactions', () => {
    expect(classifyQueryEvent('BEGIN')).toEqual({ kind: 'begin' });
    expect(classifyQueryEvent('COMMIT')).toEqual({ kind: 'commit' });
    expect(classifyQueryEvent('ROLLBACK')).toEqual({ kind: 'rollback' });
    expect(classifyQueryEvent('ROLLBACK TO SAVEPOINT a')).toEqual({ kind: 'none' });
    expect(classifyQueryEvent('SAVEPOINT a')).toEqual({ kind: 'none' });
    expect(classifyQueryEvent("XA START X'01'")).toEqual({ kind: 'begin' });
    expect(classifyQueryEvent("XA END X'01'")).toEqual({ kind: 'none' });
    expect(classifyQueryEvent("XA PREPARE X'01'")).toEqual({ kind: 'commit' });
    expect(classifyQueryEvent('# Dummy event replacing event type 160 that slave cannot handle.')).toEqual({ kind: 'none' });
  });

  it('reads table names through quoting, qualifiers and comments', () => {
    expect(classifyQueryEvent('TRUNCATE t')).toMatchObject({ kind: 'change', truncated: [{ table: 't' }] });
    expect(classifyQueryEvent('truncate table `shop`.`my``table`')).toMatchObject({
      truncated: [{ schema: 'shop', table: 'my`table' }],
    });
    expect(classifyQueryEvent('/* app */ ALTER /* x */ TABLE -- y\n `orders` ADD COLUMN c INT')).toMatchObject({
      altered: [{ table: 'orders' }],
    });
    expect(classifyQueryEvent('ALTER ONLINE IGNORE TABLE IF EXISTS shop . orders RENAME TO archive')).toMatchObject({
      altered: [{ schema: 'shop', table: 'orders' }, { table: 'archive' }],
    });
    expect(classifyQueryEvent('ALTER TABLE orders RENAME COLUMN a TO b')).toMatchObject({ altered: [{ table: 'orders' }] });
    expect(classifyQueryEvent('ALTER TABLE p EXCHANGE PARTITION p0 WITH TABLE q')).toMatchObject({
      altered: [{ table: 'p' }, { table: 'q' }],
    });
    expect(classifyQueryEvent('DROP TABLE IF EXISTS `a`, b.c /* generated by server */')).toMatchObject({
      altered: [{ table: 'a' }, { schema: 'b', table: 'c' }],
    });
    expect(classifyQueryEvent('RENAME TABLE a TO b, c WAIT 5 TO d')).toMatchObject({
      altered: [{ table: 'a' }, { table: 'b' }, { table: 'c' }, { table: 'd' }],
    });
    expect(classifyQueryEvent('CREATE OR REPLACE TABLE IF NOT EXISTS "ansi" (id INT)')).toMatchObject({ altered: [{ table: 'ansi' }] });
    expect(classifyQueryEvent('/*!40000 ALTER TABLE `t` DISABLE KEYS */')).toMatchObject({ altered: [{ table: 't' }] });
    expect(classifyQueryEvent('/*M!100301 ALTER TABLE t FORCE */')).toMatchObject({ altered: [{ table: 't' }] });
    expect(classifyQueryEvent('DROP DATABASE IF EXISTS `shop`')).toMatchObject({ droppedDatabases: ['shop'] });
    expect(classifyQueryEvent('DROP INDEX `PRIMARY` ON t')).toMatchObject({ altered: [{ table: 't' }] });
  });

  it('ignores what changes no streamed rows', () => {
    for (const sql of [
      'CREATE TEMPORARY TABLE t (id INT)',
      'DROP TEMPORARY TABLE IF EXISTS t',
      'CREATE INDEX i ON t (c)',
      'DROP INDEX i ON t',
      'ALTER DATABASE shop CHARACTER SET utf8mb4',
      "GRANT SELECT ON *.* TO 'u'@'%'",
      'FLUSH PRIVILEGES',
      'ANALYZE TABLE t',
      '',
    ]) {
      expect(classifyQueryEvent(sql), sql).toEqual({ kind: 'none' });
    }
  });

  it('treats statement-format DML as rewriting every table it names', () => {
    expect(classifyQueryEvent("INSERT INTO `orders` VALUES (1, 'a -- not a comment')")).toMatchObject({
      kind: 'change',
      rewritten: expect.arrayContaining([{ table: 'orders' }]),
    });
    expect(classifyQueryEvent('UPDATE shop.orders o JOIN items i ON i.o = o.id SET o.n = 1')).toMatchObject({
      rewritten: expect.arrayContaining([{ schema: 'shop', table: 'orders' }, { table: 'items' }]),
    });
  });

  it('tokenizes strings, doubled quotes and escapes without mistaking them for names', () => {
    expect(tokenize("a 'it''s' \"q\"\"x\" `b``c` 'back\\'slash' # tail")).toEqual([
      { kind: 'word', text: 'a' },
      { kind: 'string', text: "it's" },
      { kind: 'quoted', text: 'q"x' },
      { kind: 'quoted', text: 'b`c' },
      { kind: 'string', text: "back'slash" },
    ]);
  });
});
