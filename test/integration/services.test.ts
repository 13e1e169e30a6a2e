import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { testServers, withDatabaseUrl } from '../support/servers.js';

const servers = testServers();

describe('test servers', () => {
  const redis = new Redis(servers.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  afterAll(async () => {
    redis.disconnect();
  });

  it('redis answers PING', async () => {
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
  });

  it('mariadb has a row-based full-image binlog', async () => {
    const conn = await mysql.createConnection(servers.mysqlUrl);
    try {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        "SHOW VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image')",
      );
      const vars = Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
      expect(vars).toEqual({ log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL' });
      const [[db]] = await conn.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
      expect(db?.db).toBe('rowsync');
      // CDC reads the binlog: the user needs replication privileges.
      const [grants] = await conn.query<mysql.RowDataPacket[]>('SHOW GRANTS');
      expect(grants.map((g) => String(Object.values(g)[0])).join('\n')).toMatch(/ALL PRIVILEGES|REPLICATION SLAVE/);
    } finally {
      await conn.end();
    }
  });

  it('postgres has wal_level=logical and a replication-capable user', async () => {
    const client = new pg.Client({ connectionString: servers.postgresUrl });
    await client.connect();
    try {
      const wal = await client.query<{ wal_level: string }>('SHOW wal_level');
      expect(wal.rows[0]?.wal_level).toBe('logical');
      const role = await client.query<{ rolreplication: boolean; db: string }>(
        'SELECT rolreplication, current_database() AS db FROM pg_roles WHERE rolname = current_user',
      );
      expect(role.rows[0]).toEqual({ rolreplication: true, db: 'rowsync' });
    } finally {
      await client.end();
    }
  });

  it('withDatabaseUrl swaps only the database name', () => {
    expect(withDatabaseUrl('mysql://u:p@h:1/a?x=1', 'b')).toBe('mysql://u:p@h:1/b?x=1');
    expect(withDatabaseUrl('postgres://u:p@h:5432/rowsync', 'other')).toBe('postgres://u:p@h:5432/other');
  });
});
