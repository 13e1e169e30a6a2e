import { ConfigError } from '../errors/index.js';

/** The `redis.prefix` a cluster gets when the config names none. */
export const CLUSTER_DEFAULT_PREFIX = '{rowsync}';

/**
 * A prefix with a hash tag: the part between the first `{` and the next `}` is all Redis Cluster
 * hashes, so `{rowsync}:reconcile-chunk:wait` and `{rowsync}:key-lease:42` share one slot.
 */
const HASH_TAGGED = /\{[^{}]+\}/;

export interface RedisSettingsInput {
  readonly url: string;
  readonly prefix: string;
  readonly cluster?: readonly string[] | undefined;
}

/**
 * Checks and completes the `redis` section once parsed. `redis.cluster` replaces `redis.url` (both
 * given is a contradiction), each node must be a redis:// URL, and the prefix must carry a hash tag:
 * BullMQ runs multi-key scripts over a queue's keys and a flow spans several queues, and rowsync's
 * key leases take many keys in one script, so every key under the prefix has to live in one slot.
 * `given` is the section as written (before defaults), to tell an explicit value from a default.
 */
export function completeRedisSettings<T extends RedisSettingsInput>(parsed: T, given: unknown): T {
  if (!parsed.cluster) return parsed;
  const written = given !== null && typeof given === 'object' ? (given as Record<string, unknown>) : {};
  if (written.url !== undefined) {
    throw new ConfigError('redis.url: give either redis.url (one server) or redis.cluster (the startup nodes of a Redis Cluster), not both', {
      subject: 'redis.url',
    });
  }
  parsed.cluster.forEach((url, index) => parseRedisNodeUrl(url, `redis.cluster[${index}]`));
  const prefix = written.prefix === undefined ? CLUSTER_DEFAULT_PREFIX : parsed.prefix;
  if (!HASH_TAGGED.test(prefix)) {
    throw new ConfigError(
      `redis.prefix: '${prefix}' has no hash tag; with redis.cluster every key under the prefix must hash to one slot, so write it as '{${prefix}}'`,
      { subject: 'redis.prefix' },
    );
  }
  return { ...parsed, prefix };
}

export interface RedisNodeAddress {
  readonly host: string;
  readonly port: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

/**
 * `redis://[user:password@]host[:port]`, or `rediss://...` for TLS. The error never repeats the
 * URL: it may hold a password.
 */
export function parseRedisNodeUrl(url: string, field: string): RedisNodeAddress {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || !parsed.hostname) {
    throw new ConfigError(`${field}: expected a redis://host:port (or rediss://host:port) URL`, { subject: field });
  }
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: parsed.port ? Number(parsed.port) : 6379,
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    tls: parsed.protocol === 'rediss:',
  };
}
