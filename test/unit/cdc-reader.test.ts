/**
 * The CDC reader's algorithm with an in-memory change log and in-memory queue (the algorithm layer
 * only: the real sources, queues and databases are covered by test/integration/cdc.test.ts).
 * Checkpoints follow the longest applied prefix whatever order batches finish in, a dead-lettered
 * batch holds its target's checkpoint, restarts resume from the durable checkpoints, backpressure
 * stops reading, a lost position is answered by a reconcile, and a lost lock ends the session.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CdcReader, type BatchPart, type CdcReaderPorts, type PartCompletion, type ReaderStatus } from '../../src/cdc/cdc-reader.js';
import type { ChangeSource, ChangeStream, ChangeStreamHandler, ChangeTransaction } from '../../src/dialect/change-source.js';
import { PositionLostError } from '../../src/errors/index.js';
import { createLogger } from '../../src/logging/logger.js';

const logger = createLogger({ level: 'silent' });

async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A change log whose positions are the transaction numbers ("0" = before the first). */
class MemorySource implements ChangeSource {
  readonly mode = 'polling' as const;
  readonly log: ChangeTransaction[] = [];
  lostBefore = 0;
  delivered = 0;
  acknowledged: string[] = [];
  starts: string[] = [];
  /** The next stream's connection dies after delivering this many transactions (once). */
  failAfterDeliveries: number | undefined;

  commit(keys: number[], table = 't'): void {
    this.log.push({ position: String(this.log.length + 1), changes: [{ kind: 'keys', table, keys: keys.map((key) => [key]) }], committedAt: Date.now() });
  }
  async preflight() {}
  async setup() {}
  async teardown() {}
  async currentPosition() {
    return String(this.log.length);
  }
  async recover() {
    this.lostBefore = 0;
    return String(this.log.length);
  }
  comparePositions(a: string, b: string) {
    return Number(a) - Number(b);
  }
  async start(from: string, handler: ChangeStreamHandler): Promise<ChangeStream> {
    this.starts.push(from);
    if (Number(from) < this.lostBefore) throw new PositionLostError(`position ${from} is gone`, { position: from, subject: 'x' });
    let stopped = false;
    let resolveDone!: () => void;
    let rejectDone!: (error: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    const failAfter = this.failAfterDeliveries;
    this.failAfterDeliveries = undefined;
    void (async () => {
      let next = Number(from);
      let deliveries = 0;
      // A real source rejects `done` with whatever its handler threw.
      try {
        while (!stopped) {
          if (failAfter !== undefined && deliveries >= failAfter) {
            rejectDone(new Error('connection lost'));
            return;
          }
          if (next < this.log.length) {
            await handler.onTransaction(this.log[next]!);
            this.delivered += 1;
            deliveries += 1;
            next += 1;
          } else {
            await new Promise((resolve) => setTimeout(resolve, 5));
          }
        }
      } catch (error) {
        rejectDone(error as Error);
      }
    })();
    return {
      done,
      acknowledge: async (position) => {
        this.acknowledged.push(position);
      },
      stop: async () => {
        stopped = true;
        resolveDone();
      },
    };
  }
}

class MemoryPorts implements CdcReaderPorts {
  readonly checkpoints = new Map<string, string>();
  readonly queued: BatchPart[] = [];
  readonly completions: (PartCompletion & { epoch: string })[] = [];
  readonly reconciles: (readonly string[] | 'all')[] = [];
  lockHeld = false;
  lockFree = true;
  onLost: (() => void) | undefined;
  lastStatus: ReaderStatus | undefined;

  constructor(
    readonly source: MemorySource,
    readonly targets: readonly string[],
  ) {}
  async readCheckpoint(target: string) {
    return this.checkpoints.get(target);
  }
  async writeCheckpoint(target: string, position: string) {
    this.checkpoints.set(target, position);
  }
  async enqueue(part: BatchPart) {
    this.queued.push(part);
  }
  async takeCompletions(epoch: string) {
    const mine = this.completions.filter((completion) => completion.epoch === epoch);
    this.completions.splice(0, this.completions.length, ...this.completions.filter((completion) => completion.epoch !== epoch));
    return mine;
  }
  async partExists() {
    return true;
  }
  async enqueueReconcile(tables: readonly string[] | 'all') {
    this.reconciles.push(tables);
    return `run-${this.reconciles.length}`;
  }
  async waitForRun() {}
  async publishStatus(status: ReaderStatus) {
    this.lastStatus = status;
  }
  readonly lock = {
    tryAcquire: async (onLost: () => void) => {
      if (!this.lockFree) return false;
      this.lockFree = false;
      this.lockHeld = true;
      this.onLost = onLost;
      return true;
    },
    release: async () => {
      this.lockHeld = false;
      this.lockFree = true;
    },
  };

  /** Completes every queued part of `target` matching `which`, as a worker would. */
  complete(target: string, which: (part: BatchPart) => boolean = () => true, outcome: PartCompletion['outcome'] = 'applied'): BatchPart[] {
    const done = this.queued.filter((part) => part.target === target && which(part));
    for (const part of done) {
      this.queued.splice(this.queued.indexOf(part), 1);
      this.completions.push({ target, seq: part.seq, outcome, epoch: part.epoch });
    }
    return done;
  }
}

const options = { pipeline: 'p', batchSize: 2, batchWindowMs: 0, maxInFlightBatches: 100, initialReconcile: true, completionPollMs: 5, checkpointEveryMs: 0 };
let reader: CdcReader | undefined;
afterEach(async () => {
  await reader?.stop();
  reader = undefined;
});

describe('CDC reader', () => {
  it('first start: checkpoints at the current position, an initial reconcile, then only later changes', async () => {
    const source = new MemorySource();
    source.commit([1]);
    const ports = new MemoryPorts(source, ['a', 'b']);
    reader = new CdcReader(ports, options, logger);
    reader.start();
    await until(() => ports.reconciles.length === 1, 'initial reconcile');
    expect(ports.reconciles).toEqual(['all']);
    expect(ports.checkpoints.get('a')).toBe('1');
    source.commit([2, 3]);
    await until(() => ports.queued.length === 2, 'one part per target');
    expect(ports.queued.map((part) => [part.target, part.position, [...part.keys.get('t')!]])).toEqual([
      ['a', '2', [[2], [3]]],
      ['b', '2', [[2], [3]]],
    ]);
  });

  it('cuts a batch before a transaction that would push it past batchSize: no tiny second job', async () => {
    const source = new MemorySource();
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '0');
    reader = new CdcReader(ports, { ...options, batchSize: 5, batchWindowMs: 60_000 }, logger);
    reader.start();
    for (let index = 0; index < 4; index += 1) source.commit([index * 3, index * 3 + 1, index * 3 + 2]);
    await until(() => ports.queued.length === 3, 'three batches of whole transactions');
    expect(ports.queued.map((part) => [part.position, [...part.keys.get('t')!].length])).toEqual([['1', 3], ['2', 3], ['3', 3]]);
  });

  it('a checkpoint follows the longest applied prefix, whatever order batches finish in; acknowledges the smallest', async () => {
    const source = new MemorySource();
    const ports = new MemoryPorts(source, ['a', 'b']);
    ports.checkpoints.set('a', '0').set('b', '0');
    reader = new CdcReader(ports, options, logger);
    reader.start();
    for (let index = 1; index <= 3; index += 1) source.commit([index * 10, index * 10 + 1]);
    await until(() => ports.queued.length === 6, 'three batches for two targets');
    ports.complete('a', (part) => part.position !== '1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ports.checkpoints.get('a')).toBe('0');
    ports.complete('a');
    await until(() => ports.checkpoints.get('a') === '3', 'a at 3');
    expect(ports.checkpoints.get('b')).toBe('0');
    expect(source.acknowledged.at(-1) ?? '0').toBe('0');
    ports.complete('b');
    await until(() => source.acknowledged.at(-1) === '3', 'acknowledged 3');
  });

  it('a dead-lettered batch holds its checkpoint while later batches flow; its retry releases it', async () => {
    const source = new MemorySource();
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '0');
    reader = new CdcReader(ports, options, logger);
    reader.start();
    source.commit([1, 2]);
    source.commit([3, 4]);
    await until(() => ports.queued.length === 2, 'two batches');
    const [poisoned] = ports.complete('a', (part) => part.position === '1', 'dead');
    ports.complete('a');
    await until(() => ports.lastStatus?.targets[0]?.deadLettered === 1, 'dead letter counted');
    expect(ports.checkpoints.get('a')).toBe('0');
    ports.completions.push({ target: 'a', seq: poisoned!.seq, outcome: 'applied', epoch: poisoned!.epoch });
    await until(() => ports.checkpoints.get('a') === '2', 'checkpoint released by the retry');
  });

  it('a restart resumes from the smallest durable checkpoint and resends only to the targets behind', async () => {
    const source = new MemorySource();
    for (let index = 1; index <= 4; index += 1) source.commit([index]);
    const ports = new MemoryPorts(source, ['a', 'b']);
    ports.checkpoints.set('a', '1').set('b', '3');
    reader = new CdcReader(ports, { ...options, batchSize: 1 }, logger);
    reader.start();
    await until(() => ports.queued.length === 4, 'batches 2..4 for a, 4 for b');
    expect(source.starts).toEqual(['1']);
    expect(ports.queued.filter((part) => part.target === 'a').map((part) => part.position)).toEqual(['2', '3', '4']);
    expect(ports.queued.filter((part) => part.target === 'b').map((part) => part.position)).toEqual(['4']);
  });

  it('backpressure: stops taking transactions while the target has maxInFlightBatches queued', async () => {
    const source = new MemorySource();
    for (let index = 1; index <= 20; index += 1) source.commit([index]);
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '0');
    reader = new CdcReader(ports, { ...options, batchSize: 1, maxInFlightBatches: 3 }, logger);
    reader.start();
    await until(() => ports.queued.length === 3, 'three queued');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(ports.queued.length).toBe(3);
    expect(source.delivered).toBeLessThanOrEqual(3);
    while (ports.checkpoints.get('a') !== '20') {
      ports.complete('a');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(ports.queued.length).toBe(0);
  });

  it('a lost position is answered by a reconcile of every table, then streaming from a fresh position', async () => {
    const source = new MemorySource();
    for (let index = 1; index <= 5; index += 1) source.commit([index]);
    source.lostBefore = 3;
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '1');
    reader = new CdcReader(ports, options, logger);
    reader.start();
    await until(() => ports.reconciles.length === 1, 'reconcile after the loss');
    expect(ports.reconciles).toEqual(['all']);
    await until(() => source.starts.length === 2, 'second start');
    expect(source.starts).toEqual(['1', '5']);
    expect(ports.checkpoints.get('a')).toBe('5');
    source.commit([6]);
    await until(() => ports.queued.some((part) => part.position === '6'), 'later change streamed');
  });

  it('losing the lock ends the session; the next one resumes from the durable checkpoint', async () => {
    const source = new MemorySource();
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '0');
    reader = new CdcReader(ports, options, logger);
    reader.start();
    source.commit([1]);
    await until(() => ports.queued.length === 1, 'queued');
    const firstEpoch = ports.queued[0]!.epoch;
    // Redis lost everything: the lock is free again and the queued job is gone.
    ports.queued.length = 0;
    ports.lockFree = true;
    ports.onLost!();
    await until(() => ports.queued.length === 1 && ports.queued[0]!.epoch !== firstEpoch, 'resent by a new session');
    expect(ports.queued[0]!.position).toBe('1');
  });
});

describe('CDC reader: failing targets and failing streams', () => {
  it('a target that alone blocks the stream stops receiving; the others go on; once drained it catches up from its checkpoint', async () => {
    const source = new MemorySource();
    const ports = new MemoryPorts(source, ['fast', 'stuck']);
    ports.checkpoints.set('fast', '0').set('stuck', '0');
    reader = new CdcReader(ports, { ...options, batchSize: 1, maxInFlightBatches: 2, detachAfterMs: 50 }, logger);
    reader.start();
    for (let index = 1; index <= 10; index += 1) source.commit([index]);
    // `fast` applies everything it gets; `stuck` applies nothing.
    await until(() => {
      ports.complete('fast');
      return ports.checkpoints.get('fast') === '10';
    }, 'the fast target at the end of the stream');
    expect(ports.checkpoints.get('stuck')).toBe('0');
    const stuckQueued = ports.queued.filter((part) => part.target === 'stuck').map((part) => part.position);
    expect(stuckQueued.length).toBeLessThan(10);
    // The stuck target recovers: its queue drains, the stream restarts from its checkpoint and
    // resends what it missed to it alone.
    await until(() => {
      ports.complete('stuck');
      ports.complete('fast');
      return ports.checkpoints.get('stuck') === '10';
    }, 'the stuck target caught up');
    expect(source.starts.length).toBeGreaterThanOrEqual(2);
    expect(ports.queued.filter((part) => part.target === 'fast')).toEqual([]);
  });

  it('a failed stream reconnects from the checkpoint within the session, without queueing again what is queued', async () => {
    const source = new MemorySource();
    source.failAfterDeliveries = 1;
    const ports = new MemoryPorts(source, ['a']);
    ports.checkpoints.set('a', '0');
    reader = new CdcReader(ports, { ...options, batchSize: 1 }, logger);
    reader.start();
    source.commit([1]);
    source.commit([2]);
    await until(() => ports.queued.length === 2, 'both batches, across the reconnect');
    expect(source.starts).toEqual(['0', '0']);
    expect(ports.queued.map((part) => part.position)).toEqual(['1', '2']);
    expect(new Set(ports.queued.map((part) => part.epoch)).size).toBe(1);
    ports.complete('a');
    await until(() => ports.checkpoints.get('a') === '2', 'checkpoint 2');
  });
});
