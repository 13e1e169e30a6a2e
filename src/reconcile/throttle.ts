import type { Database } from '../dialect/dialect.js';
import type { LoadReading, ReplicaLagReading } from '../dialect/types.js';
import { ConfigError } from '../errors/index.js';

/**
 * Load and replica-lag gates of reconcile chunks (pt-table-checksum's `--max-load` and `--max-lag`):
 * before a chunk runs, the load of its source and target is read, and, when the chunk may write, the
 * lag of the watched replicas; over a limit, the chunk waits and tries again later.
 *
 * Readings are cached per database for `PROBE_TTL_MS` in this process, shared by every chunk job:
 * with 4 chunks in flight on 2 servers that is at most 2 probe statements a second however short the
 * chunks are, instead of 2 per chunk.
 */
export const PROBE_TTL_MS = 1000;

/** First wait of a held-back chunk; doubled on each further wait up to `MAX_WAIT_MS`. */
export const FIRST_WAIT_MS = 500;
export const MAX_WAIT_MS = 5000;

export interface ThrottleSettings {
  /** `reconcile.maxLoad`: the highest load a chunk starts under; false: load is not read. */
  readonly maxLoad: number | false;
  /** `reconcile.maxReplicaLag`: the replicas watched while chunks may write. */
  readonly maxReplicaLag?: { readonly seconds: number; readonly replicas: readonly string[] };
}

export interface ThrottleSides {
  readonly source: Database;
  readonly target: Database;
  /** The connection of a watched replica, by name. */
  replica(name: string): Database;
  /** Where the settings come from (`pipelines.<name>.reconcile`), for messages. */
  readonly field: string;
}

interface CachedReading {
  readonly at: number;
  readonly reading: Promise<unknown>;
}

const readings = new WeakMap<Database, Map<'load' | 'lag', CachedReading>>();

/** A reading of `database`, fresh or at most `PROBE_TTL_MS` old; a failed read is not kept. */
function probe<T>(database: Database, kind: 'load' | 'lag', read: () => Promise<T>, now: number): Promise<T> {
  let byKind = readings.get(database);
  if (!byKind) {
    byKind = new Map();
    readings.set(database, byKind);
  }
  const cached = byKind.get(kind);
  if (cached && now - cached.at < PROBE_TTL_MS) return cached.reading as Promise<T>;
  const reading = read();
  const entry = { at: now, reading };
  byKind.set(kind, entry);
  reading.catch(() => {
    if (byKind.get(kind) === entry) byKind.delete(kind);
  });
  return reading;
}

/** Forgets every cached reading of `database` (tests that change the load on purpose). */
export function forgetReadings(database: Database): void {
  readings.delete(database);
}

/**
 * Why a chunk must wait now (`source src: Threads_running 31 > maxLoad 25`), or undefined when it
 * may run. `writes`: the chunk may write (not a dry run), so the replicas' lag counts too. A watched
 * connection that is not a replica is a `ConfigError` naming it: waiting would never end.
 */
export async function throttleReason(settings: ThrottleSettings, sides: ThrottleSides, writes: boolean, now = Date.now()): Promise<string | undefined> {
  const checks: Promise<string | undefined>[] = [];
  if (settings.maxLoad !== false) {
    const limit = settings.maxLoad;
    const servers = sides.source === sides.target ? [['source', sides.source] as const] : ([['source', sides.source], ['target', sides.target]] as const);
    for (const [role, database] of servers) {
      checks.push(
        probe<LoadReading>(database, 'load', () => database.readLoad(), now).then((load) =>
          load.value > limit ? `${role} ${database.connectionName}: ${load.measure} ${load.value} > maxLoad ${limit}` : undefined,
        ),
      );
    }
  }
  const lag = settings.maxReplicaLag;
  if (writes && lag) {
    for (const name of lag.replicas) {
      const database = sides.replica(name);
      checks.push(
        probe<ReplicaLagReading>(database, 'lag', () => database.readReplicaLag(), now).then((reading) => {
          if (!reading.replica) {
            throw new ConfigError(
              `${sides.field}.maxReplicaLag.replicas: connection '${name}' is not a replica (its server reports no replication)`,
              { subject: `${sides.field}.maxReplicaLag.replicas` },
            );
          }
          if (reading.seconds === null) return `replica ${name}: replication not running (${reading.measure} unknown)`;
          return reading.seconds > lag.seconds ? `replica ${name}: ${reading.measure} ${reading.seconds} s > maxReplicaLag ${lag.seconds} s` : undefined;
        }),
      );
    }
  }
  if (checks.length === 0) return undefined;
  const reasons = (await Promise.all(checks)).filter((reason): reason is string => reason !== undefined);
  return reasons.length === 0 ? undefined : reasons.join('; ');
}

/** How long a chunk held back for the `waits`-th time in a row waits before it probes again. */
export function throttleWaitMs(waits: number): number {
  return Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * 2 ** Math.max(0, waits - 1));
}

/**
 * Checks once that every watched replica is one (at run start, before any chunk writes): a
 * `ConfigError` naming the first that is not.
 */
export async function checkReplicas(settings: ThrottleSettings, sides: Pick<ThrottleSides, 'replica' | 'field'>): Promise<void> {
  for (const name of settings.maxReplicaLag?.replicas ?? []) {
    const reading = await sides.replica(name).readReplicaLag();
    if (!reading.replica) {
      throw new ConfigError(`${sides.field}.maxReplicaLag.replicas: connection '${name}' is not a replica (its server reports no replication)`, {
        subject: `${sides.field}.maxReplicaLag.replicas`,
      });
    }
  }
}
