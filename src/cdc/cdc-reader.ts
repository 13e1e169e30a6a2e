import { randomBytes } from 'node:crypto';
import type { ChangeSource, ChangeStream, ChangeTransaction } from '../dialect/change-source.js';
import type { KeyTuple } from '../dialect/types.js';
import { CdcSetupError, PositionLostError } from '../errors/index.js';
import type { Logger } from '../logging/logger.js';
import { ChangeBatcher, splitBatchKeys, type ChangeBatch } from './change-batcher.js';
import { TargetProgress } from './target-progress.js';

/** One job's worth of a batch for one target. */
export interface BatchPart {
  readonly target: string;
  readonly epoch: string;
  readonly seq: number;
  readonly part: number;
  readonly position: string;
  readonly committedAt: number;
  readonly keys: ReadonlyMap<string, readonly KeyTuple[]>;
}

/** A worker's report on one part: applied, or moved to the dead-letter queue. */
export interface PartCompletion {
  readonly target: string;
  readonly seq: number;
  readonly outcome: 'applied' | 'dead';
}

export interface TargetStatus {
  readonly target: string;
  /** Durable checkpoint (stored in the target database). */
  readonly checkpoint: string;
  /** Position up to which batches were queued for this target. */
  readonly queuedUpTo: string;
  /** Source commit to now of the oldest change not yet applied here; 0 when caught up. */
  readonly lagMs: number;
  readonly queuedJobs: number;
  readonly deadLettered: number;
  /** Queued work for this target was full while other targets had room: it catches up separately. */
  readonly detached: boolean;
}

export interface ReaderStatus {
  readonly pipeline: string;
  /** The stream: the pipeline, or `<pipeline><-<side B>` for the B -> A stream of a bidirectional one. */
  readonly stream: string;
  /** The connection the stream reads (set by the wiring). */
  readonly source?: string;
  readonly mode: string;
  readonly state: 'standby' | 'streaming' | 'recovering' | 'stopped' | 'failing';
  readonly epoch: string | undefined;
  readonly error?: string;
  readonly targets: readonly TargetStatus[];
  readonly updatedAt: number;
}

/** Everything the reader does outside itself: queues, checkpoints, locks (wired in workers/cdc-readers.ts). */
export interface CdcReaderPorts {
  readonly source: ChangeSource;
  readonly targets: readonly string[];
  readCheckpoint(target: string): Promise<string | undefined>;
  writeCheckpoint(target: string, position: string): Promise<void>;
  /** Queues one part as a job; adding the same (target, epoch, seq, part) again adds nothing. */
  enqueue(part: BatchPart): Promise<void>;
  /** Completions workers reported for this epoch since the last call. */
  takeCompletions(epoch: string): Promise<PartCompletion[]>;
  /** Whether the job of a queued part still exists (a flushed Redis loses jobs, not checkpoints). */
  partExists(target: string, epoch: string, seq: number): Promise<boolean>;
  /** Enqueues a reconcile run of some tables ('all': the pipeline's tables); resolves to its run id. */
  enqueueReconcile(tables: readonly string[] | 'all', reason: string): Promise<string>;
  /** Resolves once a run has finished (any outcome). */
  waitForRun(runId: string): Promise<void>;
  publishStatus(status: ReaderStatus): Promise<void>;
  readonly lock: { tryAcquire(onLost: () => void): Promise<boolean>; release(): Promise<void> };
}

export interface CdcReaderOptions {
  readonly pipeline: string;
  /** Names the stream in status (default: the pipeline). */
  readonly stream?: string;
  readonly batchSize: number;
  readonly batchWindowMs: number;
  readonly maxInFlightBatches: number;
  readonly initialReconcile: boolean;
  /** How often a standby tries the leader lock. @defaultValue 1000 */
  readonly standbyPollMs?: number;
  /** How often completions are collected and checkpoints written. @defaultValue 50 / 200 */
  readonly completionPollMs?: number;
  readonly checkpointEveryMs?: number;
  /** A queued part older than this whose job has vanished restarts the session from the checkpoints. @defaultValue 10000 */
  readonly auditAfterMs?: number;
  /** A target that alone blocks the stream for this long stops receiving and catches up later. @defaultValue 5000 */
  readonly detachAfterMs?: number;
}

class SessionEnded extends Error {
  constructor(readonly why: 'lost-lock' | 'stop' | 'vanished' | 'catch-up') {
    super(`session ended: ${why}`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The CDC reader of one pipeline (ARCHITECTURE.md, CDC): the only process streaming that source
 * (leader lock), it batches changed keys, queues them per target as jobs for the one write path,
 * follows their completion, writes each target's checkpoint durably into the target database and
 * acknowledges to the source only what every target has stored.
 *
 * - Restart (any process, any time) resumes from the smallest durable checkpoint; replays are
 *   harmless because a job only names keys and sync converges them to the source's current state.
 * - Backpressure: while every target has `maxInFlightBatches` jobs queued, the reader stops taking
 *   transactions, and the source stops reading. A target that alone keeps the stream blocked for
 *   `detachAfterMs` is detached (it stops receiving; its checkpoint stays) and, once its queue has
 *   drained, the stream restarts from its checkpoint and resends only to the targets behind: a
 *   failing target does not hold up the others.
 * - A position the source no longer has is answered with a full reconcile of the pipeline's tables,
 *   then streaming goes on from a fresh position taken before that reconcile started.
 * - Losing the lock (a stalled process, Redis restarted empty) or a queued job that vanished ends the
 *   session; the next one starts from the durable checkpoints.
 */
export class CdcReader {
  private readonly options: Required<CdcReaderOptions>;
  private stopping = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private status: ReaderStatus;

  constructor(
    private readonly ports: CdcReaderPorts,
    options: CdcReaderOptions,
    private readonly logger: Logger,
  ) {
    this.options = {
      stream: options.pipeline,
      standbyPollMs: 1000,
      completionPollMs: 50,
      checkpointEveryMs: 200,
      auditAfterMs: 10_000,
      detachAfterMs: 5000,
      ...options,
    };
    this.status = {
      pipeline: options.pipeline, stream: options.stream ?? options.pipeline, mode: ports.source.mode, state: 'standby', epoch: undefined, targets: [], updatedAt: Date.now(),
    };
  }

  get state(): ReaderStatus['state'] {
    return this.status.state;
  }

  /** Starts the standby/lead loop in the background. */
  start(): void {
    this.running ??= this.loop();
  }

  /** Stops streaming, writes the checkpoints of what was applied, frees the lock. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let waitingLogged = false;
    while (!this.stopping) {
      let lost = false;
      let acquired = false;
      try {
        acquired = await this.ports.lock.tryAcquire(() => {
          lost = true;
          this.wake?.();
        });
      } catch (error) {
        this.logger.warn({ pipeline: this.options.pipeline, err: errorText(error) }, 'cannot reach Redis for the reader lock');
      }
      if (!acquired) {
        // A standby publishes nothing: the status belongs to the reader that streams.
        if (!waitingLogged) {
          this.logger.info({ pipeline: this.options.pipeline }, 'standby: another reader streams this pipeline');
          waitingLogged = true;
        }
        await this.pause(this.options.standbyPollMs);
        continue;
      }
      waitingLogged = false;
      try {
        await this.lead(() => lost);
        failures = 0;
      } catch (error) {
        if (error instanceof SessionEnded) {
          if (error.why !== 'stop') this.logger.warn({ pipeline: this.options.pipeline, why: error.why }, 'reader session ended: resuming from the checkpoints');
          failures = 0;
        } else {
          failures += 1;
          const setup = error instanceof CdcSetupError;
          this.logger[setup ? 'error' : 'warn'](
            { pipeline: this.options.pipeline, err: errorText(error), attempt: failures },
            setup ? 'the source cannot stream: %s' : 'stream failed: reconnecting from the checkpoints',
            errorText(error),
          );
          await this.publish({ state: 'failing', error: errorText(error) });
        }
      } finally {
        if (!lost) await this.ports.lock.release().catch(() => undefined);
      }
      if (failures > 0 && !this.stopping) await this.pause(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)));
    }
    await this.publish({ state: 'stopped', epoch: undefined });
  }

  /** One leadership session: a fresh epoch, checkpoints read from the targets, stream segments. */
  private async lead(lost: () => boolean): Promise<void> {
    const { source } = this.ports;
    const epoch = randomBytes(6).toString('hex');
    // A lost position can show up here already (a dropped slot): the session below answers it.
    const preflightLost = await source.preflight().then(
      () => undefined,
      (error: unknown) => {
        if (error instanceof PositionLostError) return error;
        throw error;
      },
    );
    const progress = new Map<string, TargetProgress>();
    const missing: string[] = [];
    for (const target of this.ports.targets) {
      const checkpoint = await this.ports.readCheckpoint(target);
      if (checkpoint === undefined) missing.push(target);
      else progress.set(target, new TargetProgress(target, checkpoint));
    }
    // After a lost position every target starts over from a fresh one anyway (Session.resetTo).
    if (missing.length > 0 && !preflightLost) {
      // First start for these targets: stream from now on, and bring them level with the source by a
      // reconcile (the initial snapshot) that runs while the stream flows.
      const position = await source.currentPosition();
      for (const target of missing) {
        await this.ports.writeCheckpoint(target, position);
        progress.set(target, new TargetProgress(target, position));
      }
      if (this.options.initialReconcile) {
        const runId = await this.ports.enqueueReconcile('all', 'initial');
        this.logger.info({ pipeline: this.options.pipeline, targets: missing, position, runId }, 'first start: streaming from now on; initial reconcile enqueued');
      }
    }
    const session = new Session(this, this.ports, this.options, this.logger, epoch, progress, lost);
    let failures = 0;
    let lostAtStart = preflightLost;
    while (!this.stopping) {
      try {
        if (lostAtStart) throw lostAtStart;
        await session.streamSegment();
        failures = 0;
      } catch (error) {
        if (error instanceof SessionEnded || error instanceof CdcSetupError) throw error;
        if (!(error instanceof PositionLostError)) {
          // A dropped connection or a killed session: reconnect within this session, so batches still
          // queued keep counting toward the checkpoints. Repeated failures start a new session.
          failures += 1;
          if (failures > 5) throw error;
          this.logger.warn({ pipeline: this.options.pipeline, err: errorText(error), attempt: failures }, 'stream failed: reconnecting from the checkpoints');
          await this.publish({ state: 'failing', error: errorText(error) });
          await this.pause(Math.min(10_000, 250 * 2 ** failures));
          continue;
        }
        lostAtStart = undefined;
        await this.publish({ state: 'recovering', error: error.message });
        this.logger.error(
          { pipeline: this.options.pipeline, position: error.position, err: error.message },
          'the source no longer has the checkpoint position: reconciling every table, then streaming from a fresh position',
        );
        const fresh = await source.recover();
        await session.resetTo(fresh);
        const runId = await this.ports.enqueueReconcile('all', 'position-lost');
        this.logger.info({ pipeline: this.options.pipeline, runId, position: fresh }, 'waiting for the reconcile run before streaming on');
        await this.ports.waitForRun(runId);
      }
    }
    await session.close();
    throw new SessionEnded('stop');
  }

  /** Sleeps up to `ms`, waking early on stop or a lost lock. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  async publish(change: Partial<ReaderStatus>): Promise<void> {
    const { error: _previousError, ...rest } = this.status;
    this.status = { ...rest, ...change, updatedAt: Date.now() };
    await this.ports.publishStatus(this.status).catch(() => undefined);
  }
}

/** The state of one leadership session, shared by its stream segments. */
class Session {
  private seq = 0;
  private readonly batcher: ChangeBatcher;
  private stream: ChangeStream | undefined;
  private acknowledged: string | undefined;
  private durable = new Map<string, string>();
  private blockedSince = new Map<string, number>();
  private readonly detached = new Set<string>();
  private lastCheckpointAt = 0;
  private lastAuditAt = Date.now();
  private reconcileQueued = new Set<string>();
  private dispatching: Promise<void> = Promise.resolve();

  constructor(
    private readonly reader: CdcReader,
    private readonly ports: CdcReaderPorts,
    private readonly options: Required<CdcReaderOptions>,
    private readonly logger: Logger,
    private readonly epoch: string,
    private readonly progress: Map<string, TargetProgress>,
    private readonly lost: () => boolean,
  ) {
    this.batcher = new ChangeBatcher(options.batchSize);
    for (const [target, state] of progress) this.durable.set(target, state.applied);
  }

  /** Resets every target to a fresh position (after a lost position): nothing before it is owed. */
  async resetTo(position: string): Promise<void> {
    for (const target of this.ports.targets) {
      await this.ports.writeCheckpoint(target, position);
      this.progress.set(target, new TargetProgress(target, position));
      this.durable.set(target, position);
    }
    this.acknowledged = undefined;
  }

  /**
   * Streams from the smallest applied position until the stream ends, the session must end, or a
   * detached target has drained (then the next segment resends to it from its checkpoint).
   */
  async streamSegment(): Promise<void> {
    this.detached.clear();
    this.blockedSince.clear();
    this.reconcileQueued.clear();
    const from = this.smallest([...this.progress.values()].map((state) => state.applied));
    const { source } = this.ports;
    let failure: unknown;
    let settled = false;
    const stream = await source.start(from, {
      onTransaction: (transaction) => this.onTransaction(transaction),
      onIdle: async (position) => {
        this.batcher.extendTo(position);
        if (this.batcher.age() >= this.options.batchWindowMs || this.batcher.isFull) await this.dispatch();
      },
    });
    this.stream = stream;
    stream.done.then(
      () => {
        settled = true;
      },
      (error: unknown) => {
        failure = error;
        settled = true;
      },
    );
    await this.reader.publish({ state: 'streaming', epoch: this.epoch, error: undefined });
    this.logger.info({ pipeline: this.options.pipeline, from, epoch: this.epoch }, 'streaming');
    try {
      while (!settled) {
        this.assertLeading();
        if (this.batcher.age() >= this.options.batchWindowMs) await this.dispatch();
        await this.housekeeping();
        if (this.catchUpDue()) throw new SessionSegmentRestart();
        await this.reader.pause(this.options.completionPollMs);
      }
      if (failure) throw failure;
      if (!this.reader.isStopping) throw new Error('the change stream ended');
    } catch (error) {
      if (error instanceof SessionSegmentRestart) {
        this.logger.info({ pipeline: this.options.pipeline, targets: [...this.detached] }, 'detached targets drained: resending to them from their checkpoints');
        return;
      }
      throw error;
    } finally {
      this.stream = undefined;
      await stream.stop().catch(() => undefined);
      // What the batcher held was never queued: the next segment reads it again.
      this.batcher.cut();
      await this.housekeeping(true).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.housekeeping(true).catch(() => undefined);
  }

  private async onTransaction(transaction: ChangeTransaction): Promise<void> {
    this.assertLeading();
    // Cut before a transaction that would push the batch past batchSize: a batch of 1,000-1,099 keys
    // became a 1,000-key job and a tiny one (measured: 191 jobs instead of ~100 for 100k changes).
    const keys = transaction.changes.reduce((count, change) => count + (change.kind === 'keys' ? change.keys.length : 0), 0);
    if (!this.batcher.isEmpty && this.batcher.size + keys > this.options.batchSize) await this.dispatch();
    this.batcher.add(transaction);
    if (this.batcher.isFull || this.batcher.age() >= this.options.batchWindowMs) await this.dispatch();
  }

  /**
   * Cuts the open batch and queues it for every target that does not have it yet; then waits for room.
   * Serialised: the stream's delivery and the batch-window timer both dispatch, and every target must
   * see batches in stream order.
   */
  private dispatch(): Promise<void> {
    const next = this.dispatching.then(() => this.dispatchNow());
    this.dispatching = next.catch(() => undefined);
    return next;
  }

  private async dispatchNow(): Promise<void> {
    const batch = this.batcher.cut();
    if (!batch) return;
    await this.queueReconciles(batch);
    const seq = (this.seq += 1);
    const parts = batch.keyCount > 0 ? splitBatchKeys(batch.keys, this.options.batchSize) : [];
    for (const state of this.progress.values()) {
      if (this.detached.has(state.target)) continue;
      // Already covered: this target's checkpoint (or what was queued for it) is at or past the batch.
      if (this.ports.source.comparePositions(batch.position, state.sentUpTo) <= 0) continue;
      state.sent(seq, batch.position, batch.committedAt, parts.length);
      for (const [index, keys] of parts.entries()) {
        await this.ports.enqueue({
          target: state.target, epoch: this.epoch, seq, part: index, position: batch.position, committedAt: batch.committedAt, keys,
        });
      }
    }
    await this.waitForRoom();
  }

  private async queueReconciles(batch: ChangeBatch): Promise<void> {
    const tables = [...batch.reconcile].filter((table) => !this.reconcileQueued.has(table));
    if (tables.length === 0) return;
    for (const table of tables) this.reconcileQueued.add(table);
    const runId = await this.ports.enqueueReconcile(tables, 'truncate-or-schema-change');
    this.logger.info({ pipeline: this.options.pipeline, tables, runId }, 'TRUNCATE or schema change seen in the stream: reconcile enqueued');
  }

  /**
   * Backpressure: returns once no attached target has `maxInFlightBatches` jobs queued. A target that
   * stays full for `detachAfterMs` while another has room is detached (see the class comment), so a
   * failing target holds the others up for that long once, not for as long as it fails.
   */
  private async waitForRoom(): Promise<void> {
    for (;;) {
      this.assertLeading();
      const attached = [...this.progress.values()].filter((state) => !this.detached.has(state.target));
      if (attached.length === 0) {
        // Every target fell behind: read nothing more until one has drained and can catch up.
        if (this.catchUpDue()) return;
      } else {
        const full = attached.filter((state) => state.inFlight >= this.options.maxInFlightBatches);
        if (full.length === 0) {
          this.blockedSince.clear();
          return;
        }
        const now = Date.now();
        let detachedOne = false;
        for (const state of full) {
          const since = this.blockedSince.get(state.target) ?? now;
          this.blockedSince.set(state.target, since);
          // All targets full is plain backpressure: everyone is slow, nobody is left behind.
          if (full.length < attached.length && now - since >= this.options.detachAfterMs) {
            this.detached.add(state.target);
            this.blockedSince.delete(state.target);
            detachedOne = true;
            this.logger.warn(
              { pipeline: this.options.pipeline, target: state.target, queued: state.inFlight },
              'target is not keeping up: it stops receiving and catches up from its checkpoint once its queue drains',
            );
          }
        }
        if (detachedOne) continue;
      }
      await this.housekeeping();
      await this.reader.pause(this.options.completionPollMs);
    }
  }

  /** A detached target whose queue has drained: the next segment resends to it. */
  private catchUpDue(): boolean {
    for (const target of this.detached) if (this.progress.get(target)!.inFlight === 0) return true;
    return false;
  }

  /** Completions, checkpoints, acknowledgement, status and the vanished-job audit. */
  private async housekeeping(force = false): Promise<void> {
    for (const completion of await this.ports.takeCompletions(this.epoch)) {
      const state = this.progress.get(completion.target);
      if (!state) continue;
      if (completion.outcome === 'applied') state.applyDone(completion.seq);
      else {
        state.deadLetter(completion.seq);
        this.logger.error({ pipeline: this.options.pipeline, target: completion.target, seq: completion.seq }, 'a batch moved to the dead-letter queue; its target checkpoint waits for it (rowsync dlq retry)');
      }
    }
    const now = Date.now();
    if (!force && now - this.lastCheckpointAt < this.options.checkpointEveryMs) return;
    this.lastCheckpointAt = now;
    for (const state of this.progress.values()) {
      if (this.durable.get(state.target) === state.applied) continue;
      try {
        await this.ports.writeCheckpoint(state.target, state.applied);
        this.durable.set(state.target, state.applied);
      } catch (error) {
        this.logger.warn({ pipeline: this.options.pipeline, target: state.target, err: errorText(error) }, 'cannot write the checkpoint yet');
      }
    }
    const durable = this.smallest([...this.durable.values()]);
    if (this.stream && this.acknowledged !== durable) {
      await this.stream.acknowledge(durable);
      this.acknowledged = durable;
    }
    await this.reader.publish({ targets: this.targetStatuses(now) });
    if (now - this.lastAuditAt >= this.options.auditAfterMs / 2) {
      this.lastAuditAt = now;
      await this.audit(now);
    }
  }

  /** A part queued long ago whose job no longer exists (Redis lost it): start over from the checkpoints. */
  private async audit(now: number): Promise<void> {
    for (const state of this.progress.values()) {
      const oldest = state.oldestQueued();
      if (!oldest || now - oldest.committedAt < this.options.auditAfterMs) continue;
      if (!(await this.ports.partExists(state.target, this.epoch, oldest.seq))) {
        this.logger.warn({ pipeline: this.options.pipeline, target: state.target, seq: oldest.seq }, 'a queued batch vanished from Redis');
        throw new SessionEnded('vanished');
      }
    }
  }

  private targetStatuses(now: number): TargetStatus[] {
    return [...this.progress.values()].map((state) => {
      const oldest = state.oldestPendingCommit();
      return {
        target: state.target,
        checkpoint: this.durable.get(state.target) ?? state.applied,
        queuedUpTo: state.sentUpTo,
        lagMs: oldest === undefined ? 0 : Math.max(0, now - oldest),
        queuedJobs: state.inFlight,
        deadLettered: state.deadLettered,
        detached: this.detached.has(state.target),
      };
    });
  }

  private assertLeading(): void {
    if (this.lost()) throw new SessionEnded('lost-lock');
    if (this.reader.isStopping) throw new SessionEnded('stop');
  }

  private smallest(positions: readonly string[]): string {
    return positions.reduce((low, position) => (this.ports.source.comparePositions(position, low) < 0 ? position : low));
  }
}

class SessionSegmentRestart extends Error {}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
