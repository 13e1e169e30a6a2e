import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseRedisNodeUrl } from '../config/redis-settings.js';

/**
 * A connection to rowsync's Redis: one server (`redis.url`) or a Redis Cluster (`redis.cluster`).
 * Both speak the same commands; with a cluster, a command goes to the master serving its keys'
 * slot, which is why every key rowsync writes starts with the hash-tagged `redis.prefix`: the
 * multi-key Lua scripts (key leases) and BullMQ's scripts and flows need all their keys in one slot.
 */
export type RedisClient = Redis | Cluster;

/** The part of `Config['redis']` a connection needs. */
export interface RedisConnectionSettings {
  readonly url: string;
  /** Startup nodes of a Redis Cluster; when set, `url` is not used. */
  readonly cluster?: readonly string[] | undefined;
}

export interface RedisClientOptions {
  /**
   * How often a command is retried across reconnects before it fails; `null` waits for Redis to
   * come back, which BullMQ requires of connections its workers block on. @defaultValue null
   */
  readonly maxRetriesPerRequest?: number | null;
  /** Connect on the first command instead of at once. @defaultValue false */
  readonly lazyConnect?: boolean;
}

/**
 * The one place rowsync opens a Redis connection (the Runtime's, which BullMQ duplicates for its
 * blocking workers, and the tests'). A cluster is reached through any of its startup nodes; the
 * others are discovered from CLUSTER SLOTS and followed on MOVED/ASK redirections.
 */
export function createRedisClient(settings: RedisConnectionSettings, options: RedisClientOptions = {}): RedisClient {
  const common: RedisOptions = {
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? null : options.maxRetriesPerRequest,
    lazyConnect: options.lazyConnect ?? false,
  };
  if (!settings.cluster) return new Redis(settings.url, common);
  const nodes = settings.cluster.map((url, index) => parseRedisNodeUrl(url, `redis.cluster[${index}]`));
  // Credentials and TLS of the first node apply to every node, discovered ones included: a
  // cluster's nodes share them, and discovered nodes come with an address only.
  const { username, password, tls } = nodes[0]!;
  return new Cluster(
    nodes.map(({ host, port }) => ({ host, port })),
    {
      lazyConnect: common.lazyConnect,
      redisOptions: {
        maxRetriesPerRequest: common.maxRetriesPerRequest,
        ...(username ? { username } : {}),
        ...(password ? { password } : {}),
        ...(tls ? { tls: {} } : {}),
      },
    },
  );
}

/** The masters of a cluster (each holds only its own slots' keys), or the one server. */
export function redisMasters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}
