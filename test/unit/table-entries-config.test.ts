/**
 * The config of issue 12: table entries as objects beside plain names, the reconcile keys of load,
 * lag and adaptive chunks, their defaults and the errors that name the offending field.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, sourceTableOf, targetTableOf, type ConfigInput } from '../../src/config/index.js';

function config(pipeline: Record<string, unknown>, connections: Record<string, string> = {}): ConfigInput {
  return {
    connections: { a: 'mysql://u@h/db', b: 'postgres://u@h/db', ...connections },
    pipelines: [{ name: 'p', source: 'a', targets: ['b'], ...pipeline }],
  } as ConfigInput;
}
const pipelineOf = (pipeline: Record<string, unknown>, connections?: Record<string, string>) => parseConfig(config(pipeline, connections)).pipelines[0]!;
const failure = (pipeline: Record<string, unknown>, connections?: Record<string, string>) => {
  try {
    parseConfig(config(pipeline, connections));
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected a config error');
};

describe('table entries', () => {
  it('plain names and objects: names in order, options of the objects with their defaults', () => {
    const pipeline = pipelineOf({
      tables: ['customers', { name: 'orders', targetName: 'orders_2024', where: "region = 'eu'", excludeColumns: ['last_seen'] }, { name: 'moved', targetSchema: 'archive' }],
    });
    expect(pipeline.tables).toEqual(['customers', 'orders', 'moved']);
    expect(pipeline.tableOptions).toEqual({
      orders: { name: 'orders', targetName: 'orders_2024', targetSchema: undefined, where: "region = 'eu'", targetWhere: "region = 'eu'", excludeColumns: ['last_seen'] },
      moved: { name: 'moved', targetName: 'moved', targetSchema: 'archive', where: undefined, targetWhere: undefined, excludeColumns: [] },
    });
    expect(targetTableOf(pipeline, 'orders')).toBe('orders_2024');
    expect(targetTableOf(pipeline, 'customers')).toBe('customers');
    expect(sourceTableOf(pipeline, 'orders_2024')).toBe('orders');
    expect(sourceTableOf(pipeline, 'customers')).toBe('customers');
  });

  it('targetWhere gives the targets their own condition', () => {
    const pipeline = pipelineOf({ tables: [{ name: 'orders', where: "created_at >= now() - interval '7 days'", targetWhere: 'created_at >= now() - INTERVAL 7 DAY' }] });
    expect(pipeline.tableOptions.orders).toMatchObject({ where: "created_at >= now() - interval '7 days'", targetWhere: 'created_at >= now() - INTERVAL 7 DAY' });
  });

  it.each([
    [{ tables: ['x', { name: 'x' }] }, "pipelines[0].tables[1].name: duplicate table 'x'"],
    [{ tables: [{ name: 'x' }, 'x'] }, "pipelines[0].tables[1]: duplicate table 'x'"],
    [{ tables: ['orders_2024', { name: 'orders', targetName: 'orders_2024' }] }, "pipelines[0].tables[1].targetName: 'orders_2024' is also where table 'orders_2024' goes on the targets"],
    [{ tables: [{ name: 'x', bogus: 1 }] }, "pipelines[0].tables[0]: unknown option 'bogus'"],
    [{ tables: [{ targetName: 'y' }] }, 'pipelines[0].tables[0]: expected a table name or an object with "name"'],
    [{ tables: [{ name: 'x', targetWhere: 'a = 1' }] }, 'pipelines[0].tables[0].targetWhere: needs where (the filter on the source)'],
    [{ mode: 'bidirectional', tables: [{ name: 'x', where: 'a = 1' }] }, 'pipelines[0].tables[0].where: a bidirectional pipeline takes no row filter'],
    [{ mode: 'bidirectional', cdc: {}, tables: [{ name: 'x', targetSchema: 's' }] }, 'pipelines[0].tables[0].targetSchema: a bidirectional pipeline with cdc'],
  ])('%j is refused, naming the field', (pipeline, message) => {
    expect(failure(pipeline)).toContain(message);
  });

  it('a bidirectional pipeline may rename a table and leave columns out', () => {
    const pipeline = pipelineOf({ mode: 'bidirectional', cdc: {}, tables: [{ name: 'items', targetName: 'items_b', excludeColumns: ['note'] }] });
    expect(pipeline.tableOptions.items).toMatchObject({ targetName: 'items_b', excludeColumns: ['note'] });
  });
});

describe('reconcile: load, lag and chunk sizes', () => {
  it('defaults: maxLoad 25, adaptive chunks of 500 ms from 10,000 rows, no replicas watched', () => {
    expect(pipelineOf({}).reconcile).toMatchObject({ maxLoad: 25, chunkSize: 10_000, chunkTimeMs: 500 });
    expect(pipelineOf({}).reconcile.maxReplicaLag).toBeUndefined();
  });

  it('chunkSize alone is a fixed size; with chunkTimeMs it is the starting size; chunkTimeMs 0 turns adaptation off', () => {
    expect(pipelineOf({ reconcile: { chunkSize: 400 } }).reconcile).toMatchObject({ chunkSize: 400, chunkTimeMs: 0 });
    expect(pipelineOf({ reconcile: { chunkSize: 400, chunkTimeMs: 250 } }).reconcile).toMatchObject({ chunkSize: 400, chunkTimeMs: 250 });
    expect(pipelineOf({ reconcile: { chunkTimeMs: 0 } }).reconcile).toMatchObject({ chunkSize: 10_000, chunkTimeMs: 0 });
  });

  it('maxLoad takes a whole number or false', () => {
    expect(pipelineOf({ reconcile: { maxLoad: false } }).reconcile.maxLoad).toBe(false);
    expect(pipelineOf({ reconcile: { maxLoad: 60 } }).reconcile.maxLoad).toBe(60);
    expect(failure({ reconcile: { maxLoad: 0 } })).toBe('pipelines[0].reconcile.maxLoad: expected at least 1');
    expect(failure({ reconcile: { maxLoad: 'high' } })).toBe('pipelines[0].reconcile.maxLoad: expected a whole number >= 1 or false');
  });

  it('maxReplicaLag names configured connections', () => {
    const pipeline = pipelineOf({ reconcile: { maxReplicaLag: { seconds: 10, replicas: ['r1'] } } }, { r1: 'mysql://u@replica/db' });
    expect(pipeline.reconcile.maxReplicaLag).toEqual({ seconds: 10, replicas: ['r1'] });
    expect(failure({ reconcile: { maxReplicaLag: { seconds: 10, replicas: ['nope'] } } })).toBe(
      "pipelines[0].reconcile.maxReplicaLag.replicas[0]: unknown connection 'nope'",
    );
    expect(failure({ reconcile: { maxReplicaLag: { seconds: 10, replicas: [] } } })).toBe('pipelines[0].reconcile.maxReplicaLag.replicas: expected at least 1 entries');
  });
});
