/**
 * Adaptive chunk sizes (src/reconcile/chunk-sizer.ts) against a simulated table whose scans take a
 * fixed cost plus a per-row cost: sizes move toward `chunkTimeMs`, by at most 4x a step, within the
 * bounds, and follow a change of speed; the adaptive planner (chunk-planner.ts) over an in-memory
 * table: chained bounds covering every row once, at most `lookahead` ahead, and a resume from a saved
 * position after a crash. The planner on real servers: test/integration/adaptive-chunks.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { KeyRange, Row, TableShape } from '../../src/dialect/types.js';
import { planAdaptiveChunks, type AdaptivePlanPorts, type AdaptivePlanPosition } from '../../src/reconcile/chunk-planner.js';
import { ADAPTIVE_MAX_ROWS, ADAPTIVE_MIN_ROWS, ChunkSizer, chunkSizing } from '../../src/reconcile/chunk-sizer.js';
import { MemoryDatabase } from '../support/memory-database.js';

/** Plans and "scans" `chunks` chunks one at a time; returns the sizes planned and the scan times. */
function simulate(sizer: ChunkSizer, chunks: number, scanMs: (rows: number, index: number) => number) {
  const totals = { rows: 0, ms: 0 };
  const sizes: number[] = [];
  const times: number[] = [];
  for (let index = 0; index < chunks; index += 1) {
    const size = sizer.next({ ...totals });
    const ms = scanMs(size, index);
    sizes.push(size);
    times.push(ms);
    totals.rows += size;
    totals.ms += ms;
  }
  return { sizes, times };
}

describe('ChunkSizer', () => {
  it('keeps the starting size until a scan was measured', () => {
    const sizer = new ChunkSizer(chunkSizing(10_000, 500));
    expect(sizer.next({ rows: 0, ms: 0 })).toBe(10_000);
    expect(sizer.size).toBe(10_000);
  });

  it('grows small chunks toward the target time, 4x a step at most, and settles there', () => {
    // 2 ms per query plus 10 µs per row: 500 ms is about 49,800 rows.
    const { sizes, times } = simulate(new ChunkSizer(chunkSizing(1_000, 500)), 12, (rows) => 2 + rows * 0.01);
    expect(sizes.slice(0, 3)).toEqual([1_000, 4_000, 16_000]);
    for (let index = 1; index < sizes.length; index += 1) expect(sizes[index]! / sizes[index - 1]!).toBeLessThanOrEqual(4);
    for (const ms of times.slice(-4)) expect(ms).toBeGreaterThan(400), expect(ms).toBeLessThan(600);
  });

  it('shrinks chunks that take far too long, down to the lower bound at most', () => {
    // 1 ms per row: 500 ms is 500 rows, under the 1,000-row floor.
    const { sizes } = simulate(new ChunkSizer(chunkSizing(50_000, 500)), 8, (rows) => rows);
    expect(sizes[1]).toBe(12_500);
    expect(sizes.at(-1)).toBe(ADAPTIVE_MIN_ROWS);
  });

  it('never exceeds the upper bound, however fast the scans', () => {
    const { sizes } = simulate(new ChunkSizer(chunkSizing(10_000, 500)), 10, (rows) => rows * 0.0001);
    expect(Math.max(...sizes)).toBe(ADAPTIVE_MAX_ROWS);
  });

  it('bounds widen to a configured size outside them', () => {
    expect(chunkSizing(200, 500)).toMatchObject({ min: 200, max: ADAPTIVE_MAX_ROWS });
    expect(chunkSizing(500_000, 500)).toMatchObject({ min: ADAPTIVE_MIN_ROWS, max: 500_000 });
  });

  it('follows the server slowing down (load) within a few chunks', () => {
    const { sizes } = simulate(new ChunkSizer(chunkSizing(10_000, 100)), 20, (rows, index) => rows * (index < 10 ? 0.001 : 0.004));
    // 100 ms: 100,000 rows at 1 µs a row (capped), then 25,000 at 4 µs.
    expect(sizes[9]).toBe(ADAPTIVE_MAX_ROWS);
    expect(sizes.at(-1)! / 25_000).toBeGreaterThan(0.8);
    expect(sizes.at(-1)! / 25_000).toBeLessThan(1.25);
  });

  it('a resumed plan starts from the size it had reached', () => {
    const sizer = new ChunkSizer(chunkSizing(1_000, 500), 40_000);
    expect(sizer.next({ rows: 0, ms: 0 })).toBe(40_000);
  });
});

describe('planAdaptiveChunks', () => {
  const shape: TableShape = {
    table: 'items',
    keyIndexes: [0],
    columns: [
      { name: 'id', nativeType: 'int', kind: 'integer', hashSite: 'sql', generated: false },
      { name: 'name', nativeType: 'text', kind: 'text', hashSite: 'sql', generated: false },
    ],
  };
  const ROWS = 50_000;

  /** A source table, and chunk "workers" that compare one planned chunk per pause at 2 ms + 10 µs a row. */
  function setup() {
    const database = new MemoryDatabase('src', shape);
    database.rows = Array.from({ length: ROWS }, (_, index): Row => [index * 3, `row ${index}`]);
    const planned: KeyRange[] = [];
    const totals = { checked: 0, rows: 0, ms: 0 };
    const saved: AdaptivePlanPosition[] = [];
    const compareOne = async () => {
      const range = planned[totals.checked];
      if (!range) return;
      const rows = await database.countRange(shape, range);
      totals.checked += 1;
      totals.rows += rows;
      totals.ms += 2 + rows * 0.01;
    };
    const ports: AdaptivePlanPorts = {
      scans: async () => ({ ...totals }),
      pause: compareOne,
      async commit(batch, position) {
        saved.push(position);
        planned.push(...batch);
      },
    };
    return { database, planned, saved, ports, source: { database, shape } };
  }

  /** Rows per planned range, each row counted once per range that holds it. */
  async function coverage(database: MemoryDatabase, ranges: readonly KeyRange[]): Promise<number[]> {
    return Promise.all(ranges.map((range) => database.countRange(shape, range)));
  }

  it('chains bounds from unbounded to unbounded, covers every row once, and sizes chunks toward the target', async () => {
    const { database, planned, ports, source } = setup();
    const chunks = await planAdaptiveChunks(source, new ChunkSizer(chunkSizing(500, 50)), undefined, 4, ports);
    expect(chunks).toBe(planned.length);
    expect(planned[0]!.lower).toBeUndefined();
    expect(planned.at(-1)!.upper).toBeUndefined();
    for (let index = 1; index < planned.length; index += 1) expect(planned[index]!.lower).toEqual(planned[index - 1]!.upper);
    const rows = await coverage(database, planned);
    expect(rows.reduce((total, count) => total + count, 0)).toBe(ROWS);
    // 50 ms is 4,800 rows at 10 µs a row plus 2 ms: the first 4 chunks have 500 rows, the later ones near 4,800.
    expect(rows.slice(0, 4)).toEqual([500, 500, 500, 500]);
    expect(rows.slice(-4, -1).every((count) => count > 3_500 && count < 6_000)).toBe(true);
  });

  it('never runs more than `lookahead` chunks ahead of the comparisons', async () => {
    const { ports, source, saved } = setup();
    const ahead: number[] = [];
    const scans = ports.scans;
    let checked = 0;
    await planAdaptiveChunks(source, new ChunkSizer(chunkSizing(2_000, 50)), undefined, 3, {
      ...ports,
      scans: async () => {
        const totals = await scans();
        checked = totals.checked;
        return totals;
      },
      async commit(batch, position) {
        ahead.push(position.chunks - checked);
        await ports.commit(batch, position);
      },
    });
    expect(Math.max(...ahead)).toBeLessThanOrEqual(3);
    expect(saved.at(-1)!.done).toBe(true);
  });

  it('resumed from a saved position after a crash, every row is still in exactly one chunk', async () => {
    const first = setup();
    let commits = 0;
    const crash = new Error('worker killed');
    await expect(
      planAdaptiveChunks(first.source, new ChunkSizer(chunkSizing(500, 50)), undefined, 4, {
        ...first.ports,
        async commit(batch, position) {
          await first.ports.commit(batch, position);
          commits += 1;
          if (commits === 5) throw crash;
        },
      }),
    ).rejects.toBe(crash);
    const position = first.saved.at(-1)!;
    expect(position.done).toBe(false);
    // Another process: a new sizer from the saved size, the same planned list (the queue) going on.
    const total = await planAdaptiveChunks(first.source, new ChunkSizer(chunkSizing(500, 50), position.size), position, 4, first.ports);
    expect(total).toBe(first.planned.length);
    const rows = await coverage(first.database, first.planned);
    expect(rows.reduce((sum, count) => sum + count, 0)).toBe(ROWS);
    for (let index = 1; index < first.planned.length; index += 1) expect(first.planned[index]!.lower).toEqual(first.planned[index - 1]!.upper);
  });
});
