/** One dispatched batch as one target sees it. */
interface Slot {
  readonly seq: number;
  readonly position: string;
  readonly committedAt: number;
  /** Jobs of this batch for this target not yet applied (a batch of many keys is several jobs). */
  partsLeft: number;
  /** A part moved to the dead-letter queue: the slot stays unfinished until it is retried or purged. */
  deadParts: number;
}

/**
 * What one target has of the stream: which batches were sent to it, which are applied, and the
 * checkpoint that follows from them. Batches complete out of order (several workers), so the
 * checkpoint is the position of the last batch of the longest fully applied prefix: below it every
 * change has been applied at the target (ARCHITECTURE.md: checkpoint only what is finished). A
 * dead-lettered batch holds the checkpoint where it is until it is retried or purged; batches after
 * it keep flowing (they only count against `inFlight` while they are queued).
 */
export class TargetProgress {
  private readonly slots: Slot[] = [];
  private readonly bySeq = new Map<number, Slot>();
  /** Position below which everything is applied (starts at the durable checkpoint). */
  applied: string;
  /** Position up to which batches were sent (or were already covered). */
  sentUpTo: string;
  /** Jobs queued for this target and neither applied nor dead-lettered. */
  inFlight = 0;
  /** Parts dead-lettered during this session. */
  deadLettered = 0;

  constructor(
    readonly target: string,
    checkpoint: string,
  ) {
    this.applied = checkpoint;
    this.sentUpTo = checkpoint;
  }

  /** Records a batch sent as `parts` jobs (0: nothing to apply, e.g. a heartbeat: done at once). */
  sent(seq: number, position: string, committedAt: number, parts: number): void {
    const slot: Slot = { seq, position, committedAt, partsLeft: parts, deadParts: 0 };
    this.slots.push(slot);
    this.bySeq.set(seq, slot);
    this.inFlight += parts;
    this.sentUpTo = position;
    this.advance();
  }

  /** A part of batch `seq` was applied (a dead-lettered part retried successfully counts too). */
  applyDone(seq: number): void {
    const slot = this.bySeq.get(seq);
    if (!slot) return; // an older session's batch, or a duplicate report
    if (slot.deadParts > 0) slot.deadParts -= 1;
    else this.inFlight -= 1;
    slot.partsLeft -= 1;
    this.advance();
  }

  /** A part of batch `seq` exhausted its attempts and went to the dead-letter queue. */
  deadLetter(seq: number): void {
    const slot = this.bySeq.get(seq);
    if (!slot) return;
    slot.deadParts += 1;
    this.inFlight -= 1;
    this.deadLettered += 1;
  }

  /** Commit time of the oldest change sent and not yet applied (undefined: caught up). */
  oldestPendingCommit(): number | undefined {
    return this.slots.find((slot) => slot.partsLeft > 0)?.committedAt;
  }

  /** The oldest unfinished batch that is still queued (not dead-lettered), for the audit. */
  oldestQueued(): { seq: number; committedAt: number } | undefined {
    const slot = this.slots.find((candidate) => candidate.partsLeft > candidate.deadParts);
    return slot ? { seq: slot.seq, committedAt: slot.committedAt } : undefined;
  }

  get pendingBatches(): number {
    return this.slots.length;
  }

  private advance(): void {
    while (this.slots.length > 0 && this.slots[0]!.partsLeft === 0) {
      const slot = this.slots.shift()!;
      this.bySeq.delete(slot.seq);
      this.applied = slot.position;
    }
  }
}
