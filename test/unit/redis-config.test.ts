/**
 * The `redis` section: one server or a Redis Cluster. A cluster's prefix must carry a hash tag
 * (`{rowsync}` by default), `url` and `cluster` together contradict each other, node URLs are
 * checked without repeating their passwords; the Redis factory turns the section into a client of
 * the right kind. And the `rowsync concurrency` argument checks.
 */
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { parseConcurrency, parseJobKind } from '../../src/coordination/concurrency-overrides.js';
import { createRedisClient } from '../../src/coordination/redis-client.js';
import { ConfigError } from '../../src/errors/index.js';

const base = {
  connections: { a: 'mysql://u:p@db:3306/a', b: 'postgres://u@db2:5432/b' },
  pipelines: [{ name: 'p', source: 'a', targets: ['b'] }],
};
const nodes = ['redis://10.0.0.1:7001', 'redis://10.0.0.2:7002'];

function configError(redis: Record<string, unknown>): ConfigError {
  try {
    parseConfig({ ...base, redis });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(redis)}`);
}

describe('redis config', () => {
  it('one server: the defaults, and a hash-tagged prefix is allowed', () => {
    expect(parseConfig(base).redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'rowsync' });
    expect(parseConfig({ ...base, redis: { prefix: 'x{rowsync}y' } }).redis.prefix).toBe('x{rowsync}y');
  });

  it('a cluster gets {rowsync} as its default prefix, and keeps a hash-tagged one', () => {
    const config = parseConfig({ ...base, redis: { cluster: nodes } });
    expect(config.redis.prefix).toBe('{rowsync}');
    expect(config.redis.cluster).toEqual(nodes);
    expect(parseConfig({ ...base, redis: { cluster: nodes, prefix: '{shop}' } }).redis.prefix).toBe('{shop}');
    expect(Object.isFrozen(config.redis)).toBe(true);
  });

  it('a cluster with a prefix without hash tag is an error naming redis.prefix and the fix', () => {
    const error = configError({ cluster: nodes, prefix: 'shop' });
    expect(error.subject).toBe('redis.prefix');
    expect(error.message).toBe(
      "redis.prefix: 'shop' has no hash tag; with redis.cluster every key under the prefix must hash to one slot, so write it as '{shop}'",
    );
  });

  it('url and cluster together are an error naming redis.url', () => {
    const error = configError({ url: 'redis://r:6379', cluster: nodes });
    expect(error.subject).toBe('redis.url');
    expect(error.message).toMatch(/^redis\.url: give either redis\.url .* or redis\.cluster .*, not both$/);
  });

  it('a node that is not a redis:// URL is an error naming it, without repeating the URL', () => {
    const error = configError({ cluster: ['redis://10.0.0.1:7001', 'http://admin:hunter2@10.0.0.2:7002'] });
    expect(error.subject).toBe('redis.cluster[1]');
    expect(error.message).toBe('redis.cluster[1]: expected a redis://host:port (or rediss://host:port) URL');
    expect(configError({ cluster: [] }).message).toMatch(/^redis\.cluster: expected at least 1 entries/);
  });

  it('prefixes with a broken, empty or second hash tag are refused', () => {
    for (const prefix of ['a{b', 'a}b', '{}', '{a}{b}', 'a b', '']) {
      const error = configError({ prefix });
      expect(error.subject, prefix).toBe('redis.prefix');
    }
  });
});

describe('createRedisClient', () => {
  it('one server: a Redis client on redis.url', () => {
    const client = createRedisClient({ url: 'redis://127.0.0.1:1' }, { lazyConnect: true });
    try {
      expect(client).toBeInstanceOf(Redis);
      expect((client as Redis).options).toMatchObject({ host: '127.0.0.1', port: 1, maxRetriesPerRequest: null });
    } finally {
      client.disconnect();
    }
  });

  it("a cluster: a Cluster client on the startup nodes, with the first node's credentials and TLS for every node", () => {
    const client = createRedisClient(
      { url: 'unused', cluster: ['rediss://ops:s%40cret@10.0.0.1:7001', 'rediss://10.0.0.2'] },
      { lazyConnect: true, maxRetriesPerRequest: 3 },
    );
    try {
      expect(client).toBeInstanceOf(Cluster);
      const cluster = client as Cluster;
      expect(cluster.options.redisOptions).toMatchObject({ username: 'ops', password: 's@cret', tls: {}, maxRetriesPerRequest: 3 });
      expect((cluster as unknown as { startupNodes: unknown[] }).startupNodes).toEqual([
        { host: '10.0.0.1', port: 7001 },
        { host: '10.0.0.2', port: 6379 },
      ]);
    } finally {
      client.disconnect();
    }
  });
});

describe('concurrency arguments', () => {
  it('accepts the configured job kinds and whole numbers from 1 to 256', () => {
    expect(['table', 'chunk', 'apply', 'cdc'].map(parseJobKind)).toEqual(['table', 'chunk', 'apply', 'cdc']);
    expect(['1', '8', '256'].map(parseConcurrency)).toEqual([1, 8, 256]);
  });

  it('refuses anything else, naming the argument', () => {
    expect(() => parseJobKind('run')).toThrow("<kind>: unknown job kind 'run' (kinds: table, chunk, apply, cdc)");
    for (const bad of ['0', '257', '-1', '1.5', '1e2', 'eight', '']) {
      expect(() => parseConcurrency(bad), bad).toThrow(`<n>: expected a whole number from 1 to 256, got '${bad}'`);
    }
  });
});
