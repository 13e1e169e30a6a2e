import type { Database } from './dialect.js';
import type { KeyTuple } from './types.js';

/**
 * A change source: the role that turns one engine's change log into notices of changed keys
 * (ARCHITECTURE.md, CDC). One implementation per engine and mode, each in its own file:
 * `mysql/mysql-binlog-source.ts`, `postgres/postgres-logical-source.ts`,
 * `mysql/mysql-polling-source.ts`, `postgres/postgres-polling-source.ts`. Nothing above
 * `src/dialect` knows which one it holds.
 *
 * Contract shared by every implementation (tests check it per engine and mode):
 * - Only keys leave a source, never row images: the write path re-reads the source by key.
 * - Keys are exact portable values of the source's own column kinds (`describeTable`): BIGINT beyond
 *   2^53 as a decimal string, DECIMAL as its exact text, DATETIME/TIMESTAMP with microseconds, binary
 *   as a Buffer: `database.fetchByKeys(shape, keys)` finds the row the change was made to.
 * - An UPDATE that changes a primary key names both the old and the new key.
 * - Transactions arrive in commit order, each with the position right after its commit: resuming
 *   from that position replays nothing of it and loses nothing after it. A transaction may arrive in
 *   parts (a PostgreSQL polling transaction of more than 10,000 rows; MySQL polling, whose triggers
 *   cannot see transaction boundaries, delivers what one poll read), each part with such a position.
 * - A TRUNCATE or a schema change of a streamed table arrives as `{ kind: 'reconcile' }` for that
 *   table, in its place in the stream, where the engine's log shows them (documented per mode).
 * - The stream applies backpressure: it awaits `onTransaction` before it delivers the next one.
 */

export type CdcMode = 'binlog' | 'logical' | 'polling';

/** What one committed transaction changed in one streamed table. */
export type TableChange =
  | { readonly kind: 'keys'; readonly table: string; readonly keys: readonly KeyTuple[] }
  | { readonly kind: 'reconcile'; readonly table: string; readonly reason: 'truncate' | 'schema' };

/** One committed source transaction (only its changes to streamed tables; may be empty). */
export interface ChangeTransaction {
  /** Position right after this transaction's commit (opaque text; order with `comparePositions`). */
  readonly position: string;
  readonly changes: readonly TableChange[];
  /** Source commit time in ms since the epoch, when the log tells it (for lag). */
  readonly committedAt?: number;
}

export interface ChangeStreamHandler {
  /**
   * One committed transaction, in commit order. The source awaits the promise before it delivers the
   * next transaction (backpressure); a rejection stops the stream (`done` rejects with it).
   */
  onTransaction(transaction: ChangeTransaction): Promise<void>;
  /**
   * The source has nothing to deliver up to `position` (an idle stream still moves: heartbeats,
   * transactions that touched no streamed table). Optional; awaited like `onTransaction`.
   */
  onIdle?(position: string): Promise<void>;
}

export interface ChangeStream {
  /**
   * Settles when the stream ends: resolves after `stop()`, rejects when the stream fails (connection
   * lost or killed by the server, a decoding error, `PositionLostError`). The caller then reconnects
   * from its checkpoint with a new `start`.
   */
  readonly done: Promise<void>;
  /**
   * Tells the source that every change up to `position` is durable at every target: a PostgreSQL slot
   * may release WAL up to it, a polling change table may drop rows below it. Never called with a
   * position that was merely received. A no-op where the engine keeps no such state (binlog).
   */
  acknowledge(position: string): Promise<void>;
  /** Stops reading and closes the stream's connections; `done` then resolves. */
  stop(): Promise<void>;
}

export interface ChangeSourceOptions {
  /** The pipeline (names the PostgreSQL slot and publication, the polling triggers). */
  readonly pipeline: string;
  /** Connection name in the config (messages) and its URL (the stream opens its own connections). */
  readonly connectionName: string;
  readonly url: string;
  /** The source as a Database (introspection, queries); the caller owns and closes it. */
  readonly database: Database;
  /** Streamed tables (names on the source). */
  readonly tables: readonly string[];
  /** MySQL/MariaDB binlog: this reader's replica server id (unique per server). */
  readonly serverId: number;
  /** How often an idle stream reports its position / writes a heartbeat (ms). */
  readonly heartbeatMs: number;
  /** Polling: how often the change table is read when it had nothing (ms). */
  readonly pollIntervalMs: number;
}

export interface ChangeSource {
  readonly mode: CdcMode;
  /**
   * Checks what streaming needs on the server: settings (binlog on, ROW format, FULL image, no
   * compressed events; `wal_level=logical`, a free slot), privileges, and for modes with setup that
   * it was done. Throws `CdcSetupError` naming the setting or privilege and how to fix it.
   */
  preflight(): Promise<void>;
  /** Creates what the mode needs on the source (slot + publication, change table + triggers). Idempotent. */
  setup(): Promise<void>;
  /** Removes what `setup` created. Idempotent. */
  teardown(): Promise<void>;
  /**
   * A position from which streaming delivers every change committed from now on (binlog: the
   * current file and offset; logical: the slot's confirmed position; polling: the change table's
   * current watermark). Used for a first start and after a lost position.
   */
  currentPosition(): Promise<string>;
  /**
   * After `PositionLostError`: makes streaming possible again (a lost slot is dropped and created
   * anew) and returns a fresh position as `currentPosition` does.
   */
  recover(): Promise<string>;
  /** Orders two positions of this source (negative: a is earlier). */
  comparePositions(a: string, b: string): number;
  /**
   * Streams every transaction committed after `from` (exclusive). Rejects (or `done` rejects) with
   * `PositionLostError` when the source no longer has `from` (purged binlog, lost slot).
   */
  start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream>;
}
