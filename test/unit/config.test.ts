import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findPipeline, loadConfigFile, parseConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors/index.js';

const valid = {
  redis: { url: 'redis://127.0.0.1:6379', prefix: 'rowsync' },
  connections: { shop: 'mysql://app:${SHOP_PW}@10.0.0.5:3306/shop', replica: 'postgres://sync@10.0.0.9:5432/shop' },
  pipelines: [
    {
      name: 'shop-to-pg', source: 'shop', targets: ['replica'], tables: ['orders', 'order_lines'],
      reconcile: { schedule: '0 2 * * *', chunkSize: 10000, compare: 'checksum', conflict: 'source_wins', deleteExtra: true },
      cdc: { mode: 'binlog' },
    },
  ],
};

function errorOf(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('accepts the documented example, interpolates env vars and fills defaults', () => {
    const config = parseConfig(valid, { env: { SHOP_PW: 's3cret' } });
    expect(config.connections.shop!.url).toBe('mysql://app:s3cret@10.0.0.5:3306/shop');
    expect(config.connections.shop!.poolSize).toBe(4);
    const pipeline = findPipeline(config, 'shop-to-pg');
    expect(pipeline.reconcile.attempts).toBe(5);
    expect(pipeline.reconcile.timestampColumn).toBe('updated_at');
    expect(config.workers.lanes).toBe(8);
    expect(Object.isFrozen(pipeline.reconcile)).toBe(true);
  });

  it('names the offending field', () => {
    const bad = structuredClone(valid);
    (bad.pipelines[0]!.reconcile as Record<string, unknown>).chunkSize = 'big';
    expect(errorOf(() => parseConfig(bad, { env: { SHOP_PW: 'x' } })).message).toBe(
      'pipelines[0].reconcile.chunkSize: expected a number',
    );
  });

  it('names an unknown connection', () => {
    const bad = structuredClone(valid);
    bad.pipelines[0]!.targets = ['nowhere'];
    expect(errorOf(() => parseConfig(bad, { env: { SHOP_PW: 'x' } })).message).toBe(
      "pipelines[0].targets[0]: unknown connection 'nowhere'",
    );
  });

  it('names a missing environment variable and never prints the secret', () => {
    const error = errorOf(() => parseConfig(valid, { env: {} }));
    expect(error.message).toBe('connections.shop: environment variable SHOP_PW is not set');
    const bad = structuredClone(valid);
    (bad as Record<string, unknown>).extra = 1;
    const other = errorOf(() => parseConfig(bad, { env: { SHOP_PW: 'hunter2' } }));
    expect(other.message).toContain("unknown option 'extra'");
    expect(other.message).not.toContain('hunter2');
  });

  it('rejects a bad cron expression, enum value and unknown pipeline', () => {
    const bad = structuredClone(valid);
    bad.pipelines[0]!.reconcile.schedule = 'every night';
    expect(errorOf(() => parseConfig(bad, { env: { SHOP_PW: 'x' } })).message).toMatch(/^pipelines\[0\]\.reconcile\.schedule:/);
    const badEnum = structuredClone(valid);
    badEnum.pipelines[0]!.reconcile.conflict = 'newest';
    expect(errorOf(() => parseConfig(badEnum, { env: { SHOP_PW: 'x' } })).message).toMatch(
      /^pipelines\[0\]\.reconcile\.conflict: expected one of "source_wins"/,
    );
    const config = parseConfig(valid, { env: { SHOP_PW: 'x' } });
    expect(errorOf(() => findPipeline(config, 'nope')).message).toBe("--pipeline: unknown pipeline 'nope' (configured: shop-to-pg)");
  });

  it('loads YAML and JSON files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rowsync-config-'));
    const yamlFile = path.join(dir, 'rowsync.yml');
    writeFileSync(
      yamlFile,
      'connections:\n  a: mysql://root@127.0.0.1/a\n  b: postgres://u@127.0.0.1/b\npipelines:\n  - name: p\n    source: a\n    targets: [b]\n',
    );
    expect(loadConfigFile(yamlFile, {}).pipelines[0]!.reconcile.chunkSize).toBe(10000);
    const jsonFile = path.join(dir, 'rowsync.json');
    writeFileSync(jsonFile, JSON.stringify(valid));
    expect(loadConfigFile(jsonFile, { SHOP_PW: 'x' }).pipelines[0]!.name).toBe('shop-to-pg');
    expect(errorOf(() => loadConfigFile(undefined, {})).message).toMatch(/^--config: no config file given/);
    expect(errorOf(() => loadConfigFile(path.join(dir, 'missing.yml'), {})).message).toMatch(/cannot read/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the write policy belongs to the pipeline; reconcile.* overrides it for reconcile only', () => {
    const input = structuredClone(valid) as unknown as { pipelines: Record<string, unknown>[] };
    input.pipelines[0] = { ...input.pipelines[0], conflict: 'timestamp', conflictColumn: 'changed_at', applyBatchSize: 200 };
    input.pipelines[0]!.reconcile = { conflict: 'manual' };
    const pipeline = parseConfig(input, { env: { SHOP_PW: 'x' } }).pipelines[0]!;
    expect(pipeline.write).toEqual({ conflict: 'timestamp', conflictColumn: 'changed_at', resolvers: {}, applyBatchSize: 200 });
    expect(pipeline.reconcile).toMatchObject({ conflict: 'manual', conflictColumn: 'changed_at', applyBatchSize: 200, deleteExtra: true });
    const defaults = parseConfig(valid, { env: { SHOP_PW: 'x' } }).pipelines[0]!;
    expect(defaults.write).toEqual({ conflict: 'source_wins', conflictColumn: 'updated_at', resolvers: {}, applyBatchSize: 500 });
  });

  it('cdc: {} picks the source engine\'s own log and documented defaults; a log the engine lacks is an error', () => {
    const input = structuredClone(valid) as unknown as { pipelines: Record<string, unknown>[] };
    input.pipelines[0]!.cdc = {};
    const cdc = parseConfig(input, { env: { SHOP_PW: 'x' } }).pipelines[0]!.cdc!;
    expect(cdc).toMatchObject({ mode: 'binlog', batchSize: 1000, batchWindowMs: 100, heartbeatMs: 10_000, maxInFlightBatches: 16, attempts: 5 });
    expect(cdc.serverId).toBeGreaterThanOrEqual(1_000_000);
    expect(parseConfig(input, { env: { SHOP_PW: 'x' } }).pipelines[0]!.cdc!.serverId).toBe(cdc.serverId);
    input.pipelines[0]!.cdc = { mode: 'logical' };
    expect(errorOf(() => parseConfig(input, { env: { SHOP_PW: 'x' } })).message).toBe(
      "pipelines[0].cdc.mode: 'logical' needs a PostgreSQL source (use 'binlog' or 'polling')",
    );
    input.pipelines[0]!.cdc = { batchSize: 0 };
    expect(errorOf(() => parseConfig(input, { env: { SHOP_PW: 'x' } })).message).toBe('pipelines[0].cdc.batchSize: expected at least 1');
    input.pipelines[0]!.cdc = { mode: 'polling', pollIntervalMs: 50 };
    expect(parseConfig(input, { env: { SHOP_PW: 'x' } }).pipelines[0]!.cdc).toMatchObject({ mode: 'polling', pollIntervalMs: 50 });
    expect(parseConfig(valid, { env: { SHOP_PW: 'x' } }).pipelines[0]!.cdc!.mode).toBe('binlog');
  });

  it('bidirectional: one target, a bidirectional policy, a priority naming a side; errors name the field', () => {
    const bidi = (pipeline: Record<string, unknown>) => {
      const input = structuredClone(valid) as unknown as { connections: Record<string, string>; pipelines: Record<string, unknown>[] };
      input.connections.archive = 'postgres://sync@10.0.0.10:5432/archive';
      input.pipelines[0] = { name: 'main', source: 'shop', targets: ['replica'], mode: 'bidirectional', tables: ['items'], ...pipeline };
      return () => parseConfig(input, { env: { SHOP_PW: 'x' } });
    };
    const config = bidi({ conflict: 'priority', priority: 'replica', cdc: {} })();
    expect(config.pipelines[0]).toMatchObject({ mode: 'bidirectional', write: { conflict: 'priority', priority: 'replica' } });
    expect(config.pipelines[0]!.cdc).toMatchObject({ mode: 'binlog', modeB: 'logical' });
    expect(config.pipelines[0]!.cdc!.serverIdB).toBe(config.pipelines[0]!.cdc!.serverId + 1);
    expect(bidi({})().pipelines[0]!.write.conflict).toBe('timestamp');
    expect(bidi({ cdc: { mode: 'polling' } })().pipelines[0]!.cdc).toMatchObject({ mode: 'polling', modeB: 'polling' });
    expect(errorOf(bidi({ targets: ['replica', 'archive'] })).message).toBe(
      'pipelines[0].targets: a bidirectional pipeline has exactly one target (side B), got 2',
    );
    expect(errorOf(bidi({ conflict: 'priority', priority: 'nowhere' })).message).toBe(
      "pipelines[0].priority: 'nowhere' is neither side of the pipeline (shop, replica)",
    );
    expect(errorOf(bidi({ conflict: 'priority' })).message).toBe("pipelines[0].priority: required when conflict is 'priority' (the connection whose row wins)");
    expect(errorOf(bidi({ conflict: 'source_wins' })).message).toMatch(/^pipelines\[0\]\.conflict: 'source_wins' is for one-way pipelines/);
    expect(errorOf(bidi({ reconcile: { conflict: 'target_wins' } })).message).toMatch(/^pipelines\[0\]\.reconcile\.conflict: 'target_wins' is for one-way/);
    expect(errorOf(bidi({ cdc: { mode: 'binlog' } })).message).toMatch(/^pipelines\[0\]\.cdc\.mode: 'binlog' cannot read side B \(replica\)/);
    expect(errorOf(bidi({ mode: 'one-way', conflict: 'priority', priority: 'shop' })).message).toMatch(/^pipelines\[0\]\.conflict: 'priority' is for bidirectional pipelines/);
  });
});
