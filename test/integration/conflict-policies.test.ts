/**
 * What a reconcile run writes for rows that exist on both sides and differ, under each
 * `reconcile.conflict` policy, and what `deleteExtra: false` keeps: exact reported counts and the
 * exact rows the target ends with, for every engine pair.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TablePair } from '../../src/dialect/table-pair.js';
import type { Row } from '../../src/dialect/types.js';
import type { RunReport, TableReport } from '../../src/reconcile/report.js';
import { NEWER, OLDER, SOURCE_ITEMS, TARGET_ITEMS, seedItems, targetItems } from '../support/conflict-fixture.js';
import { createHarness, type Harness } from '../support/harness.js';
import { ENGINE_PAIRS } from '../support/scratch.js';

type Outcome = Awaited<ReturnType<Harness['run']>>;

function completed(outcome: Outcome): RunReport {
  if (outcome.kind !== 'completed') throw new Error(`run ${outcome.runId} ended ${JSON.stringify(outcome)}`);
  return outcome.report;
}

function items(outcome: Outcome): TableReport {
  const found = completed(outcome).tables.find((entry) => entry.table === 'items');
  if (!found) throw new Error(`no report for items: ${JSON.stringify(outcome)}`);
  return found;
}

/** The report of a run over the fixture: the diff is the same under every policy, the writes are not. */
function expectedReport(writes: { inserted: number; updated: number; deleted: number; conflicts: number }): TableReport {
  return {
    table: 'items', target: 'dst', sourceRows: 7, targetRows: 7, chunks: 1, chunksDiffering: 1,
    missing: 1, extra: 1, changed: 5, ...writes, errors: [],
  };
}

const byId = (rows: readonly Row[], id: number): Row => rows.find((row) => row[0] === id)!;

// Resolver calls land here (the module runs in this process), so the test can see what it was asked.
const CALLS = Symbol.for('rowsync.test.resolverCalls');

const RESOLVER = `
export default async function resolve({ table, key, source, target }) {
  (globalThis[Symbol.for('rowsync.test.resolverCalls')] ??= []).push(key.id);
  switch (key.id) {
    case 2: return 'source';
    case 3: return 'target';
    case 4: return 'skip';
    case 5: return { name: table + ':' + target.name, qty: source.qty + 100 };
    default: return { qty: target.qty + 1, updated_at: target.updated_at };
  }
}
`;

const NO_DEFAULT_EXPORT = `export function resolve() { return 'source'; }\n`;

// Typos that must not pass for 'source': a miscased decision and a misspelt column.
const TYPO_RESOLVER = `
export default function resolve({ key }) {
  if (key.id === 2) return 'Source';
  if (key.id === 5) return { nmae: 'typo' };
  return 'target';
}
`;

describe.each(ENGINE_PAIRS)('conflict policies %s -> %s', (sourceEngine, targetEngine) => {
  const pairTag = `${sourceEngine.slice(0, 2)}${targetEngine.slice(0, 2)}`;
  let resolverDir: string;

  beforeAll(async () => {
    resolverDir = await mkdtemp(path.join(tmpdir(), 'rowsync-resolvers-'));
    await writeFile(path.join(resolverDir, 'items-resolver.mjs'), RESOLVER);
    await writeFile(path.join(resolverDir, 'no-default.mjs'), NO_DEFAULT_EXPORT);
    await writeFile(path.join(resolverDir, 'typo-resolver.mjs'), TYPO_RESOLVER);
    await writeFile(path.join(resolverDir, 'broken-resolver.mjs'), 'export default function resolve( {\n');
  });

  afterAll(async () => {
    if (resolverDir) await rm(resolverDir, { recursive: true, force: true });
  });

  /** A fresh pipeline with these reconcile options over freshly seeded items, torn down afterwards. */
  async function withPipeline(
    tag: string,
    reconcile: Record<string, unknown>,
    body: (harness: Harness, pair: TablePair) => Promise<void>,
  ): Promise<void> {
    const fullTag = `cpol_${pairTag}_${tag}`;
    const harness = await createHarness({
      tag: fullTag,
      sourceEngine,
      targetEngine,
      tables: ['items'],
      reconcile,
      workers: { lanes: 2 },
    });
    try {
      const pair = await seedItems(harness.source, harness.target);
      await harness.startWorkers();
      await body(harness, pair);
    } finally {
      await harness?.close();
    }
  }

  it('source_wins (the default) makes the target equal to the source', async () => {
    await withPipeline('sw', {}, async (harness, pair) => {
      expect(harness.config.pipelines[0]!.reconcile.conflict).toBe('source_wins');
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 5, deleted: 1, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual(SOURCE_ITEMS);
    });
  });

  it('target_wins inserts missing rows and leaves differing rows as the target has them', async () => {
    await withPipeline('tw', { conflict: 'target_wins' }, async (harness, pair) => {
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 0, deleted: 1, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual([
        ...TARGET_ITEMS.filter((row) => Number(row[0]) < 6),
        byId(SOURCE_ITEMS, 6),
        byId(TARGET_ITEMS, 8),
      ]);
    });
  });

  it('timestamp: the newer conflictColumn wins, a tie goes to the source, a value beats NULL', async () => {
    await withPipeline('ts', { conflict: 'timestamp' }, async (harness, pair) => {
      // 2: source newer, 4 and 5: tie -> source; 3: target newer, 8: source has no timestamp -> target.
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 3, deleted: 1, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual([
        [1, 'same', 1, OLDER],
        [2, 'src-newer', 2, NEWER],
        [3, 'dst-newer', 30, NEWER],
        [4, 'src-tie', 4, OLDER],
        [5, null, 5, OLDER],
        [6, 'src-only', 6, OLDER],
        [8, 'dst-timed', 80, OLDER],
      ]);
    });
  });

  it("merge writes the source's non-null columns over the target's", async () => {
    await withPipeline('mg', { conflict: 'merge' }, async (harness, pair) => {
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 5, deleted: 1, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual([
        [1, 'same', 1, OLDER],
        [2, 'src-newer', 2, NEWER],
        [3, 'src-older', 3, OLDER],
        [4, 'src-tie', 4, OLDER],
        [5, 'dst-name', 5, OLDER],
        [6, 'src-only', 6, OLDER],
        [8, 'src-no-time', 8, OLDER],
      ]);
    });
  });

  it('manual writes no differing row, records each pair once in rowsync_conflicts, still inserts missing rows', async () => {
    await withPipeline('mn', { conflict: 'manual' }, async (harness, pair) => {
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 0, deleted: 1, conflicts: 5 }));
      const expectedRows = [...TARGET_ITEMS.filter((row) => row[0] !== 7), byId(SOURCE_ITEMS, 6)].sort(
        (a, b) => Number(a[0]) - Number(b[0]),
      );
      expect(await targetItems(harness.target, pair)).toEqual(expectedRows);

      const readConflicts = async () => {
        const rows = await harness.target.execute(
          'SELECT pipeline, table_name, row_key, source_row, target_row, detected_at, status FROM rowsync_conflicts',
        );
        const json = (value: unknown) => (typeof value === 'string' ? JSON.parse(value) : value) as Record<string, unknown>;
        return rows
          .map((row) => ({
            pipeline: row.pipeline,
            table_name: row.table_name,
            row_key: json(row.row_key),
            source_row: json(row.source_row),
            target_row: json(row.target_row),
            detected_at: row.detected_at,
            status: row.status,
          }))
          .sort((a, b) => Number(a.row_key.id) - Number(b.row_key.id));
      };
      const asObject = (row: Row) => ({ id: row[0], name: row[1], qty: row[2], updated_at: row[3] });
      const expected = [2, 3, 4, 5, 8].map((id) => ({
        pipeline: 'p',
        table_name: 'items',
        row_key: { id },
        source_row: asObject(byId(SOURCE_ITEMS, id)),
        target_row: asObject(byId(TARGET_ITEMS, id)),
        detected_at: expect.anything(),
        status: 'pending',
      }));
      const first = await readConflicts();
      expect(first).toEqual(expected);
      for (const record of first) expect(String(record.detected_at)).toMatch(/^\d{4}-\d{2}-\d{2}/);

      // Still in conflict: reported again, recorded once.
      expect(items(await harness.run())).toMatchObject({ changed: 5, inserted: 0, updated: 0, deleted: 0, conflicts: 5 });
      expect(await readConflicts()).toEqual(expected);
      expect(await targetItems(harness.target, pair)).toEqual(expectedRows);
    });
  });

  it("custom applies the table's resolver module: source, target, skip, or a row object", async () => {
    const calls: number[] = [];
    (globalThis as Record<symbol, unknown>)[CALLS] = calls;
    const resolver = path.join(resolverDir, 'items-resolver.mjs');
    await withPipeline('cu', { conflict: 'custom', resolvers: { items: resolver } }, async (harness, pair) => {
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 3, deleted: 1, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual([
        [1, 'same', 1, OLDER],
        [2, 'src-newer', 2, NEWER],
        [3, 'dst-newer', 30, NEWER],
        [4, 'dst-tie', 40, OLDER],
        [5, 'items:dst-name', 105, OLDER],
        [6, 'src-only', 6, OLDER],
        [8, 'src-no-time', 81, OLDER],
      ]);
      // Asked only about rows present on both sides and different.
      expect([...calls].sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 8]);
    });
  });

  it('a resolver module without a default export fails the jobs naming reconcile.resolvers.<table>', async () => {
    const resolver = path.join(resolverDir, 'no-default.mjs');
    await withPipeline('nd', { conflict: 'custom', resolvers: { items: resolver } }, async (harness, pair) => {
      const outcome = await harness.run();
      if (outcome.kind !== 'stuck') throw new Error(`expected a stuck run, got ${JSON.stringify(outcome)}`);
      expect(outcome.stuck.length).toBeGreaterThan(0);
      for (const job of outcome.stuck) expect(job.reason).toMatch(/reconcile\.resolvers\.items\b.*default export/);
      expect(await targetItems(harness.target, pair)).toEqual(TARGET_ITEMS);
    });
  });

  it('a resolver module that cannot be loaded fails its jobs at once (no retry can fix it), naming the field and the cause', async () => {
    for (const [tag, module] of [['br', 'broken-resolver.mjs'], ['nf', 'no-such-resolver.mjs']] as const) {
      const resolver = path.join(resolverDir, module);
      await withPipeline(tag, { conflict: 'custom', resolvers: { items: resolver } }, async (harness, pair) => {
        const outcome = await harness.run();
        if (outcome.kind !== 'stuck') throw new Error(`expected a stuck run, got ${JSON.stringify(outcome)}`);
        expect(outcome.stuck.length).toBeGreaterThan(0);
        for (const job of outcome.stuck) {
          // The cause follows (the wording is the module loader's: Node's, or vitest's here).
          expect(job.reason).toMatch(new RegExp(`reconcile\\.resolvers\\.items: cannot load \\S*${module.replace('.', '\\.')}: .+`));
          // One attempt, not reconcile.attempts of them.
          expect(job.attemptsMade).toBe(1);
        }
        expect(await targetItems(harness.target, pair)).toEqual(TARGET_ITEMS);
      });
    }
  });

  it('a resolver decision that is neither a keyword nor a row object fails its batch and writes nothing of it', async () => {
    const resolver = path.join(resolverDir, 'typo-resolver.mjs');
    await withPipeline('ty', { conflict: 'custom', resolvers: { items: resolver } }, async (harness, pair) => {
      const outcome = await harness.run();
      if (outcome.kind !== 'stuck') throw new Error(`expected a stuck run, got ${JSON.stringify(outcome)}`);
      for (const job of outcome.stuck) expect(job.reason).toMatch(/reconcile\.resolvers\.items: resolver returned (string Source|unknown column\(s\) nmae)/);
      const rows = await targetItems(harness.target, pair);
      for (const id of [2, 5]) expect(byId(rows, id)).toEqual(byId(TARGET_ITEMS, id));
    });
  });

  it('deleteExtra: false keeps rows only the target has', async () => {
    await withPipeline('dx', { deleteExtra: false }, async (harness, pair) => {
      expect(items(await harness.run())).toEqual(expectedReport({ inserted: 1, updated: 5, deleted: 0, conflicts: 0 }));
      expect(await targetItems(harness.target, pair)).toEqual(
        [...SOURCE_ITEMS, byId(TARGET_ITEMS, 7)].sort((a, b) => Number(a[0]) - Number(b[0])),
      );
    });
  });
});
