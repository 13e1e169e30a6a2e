/**
 * Where a process serves its metrics: the `metrics` config section's defaults and errors, and the
 * layering default < file < ROWSYNC_METRICS_PORT < --metrics-port (with `off` and `enabled: false`).
 * The position numbers of the CDC gauges, per mode.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import type { ConfigError } from '../../src/errors/index.js';
import { positionNumber } from '../../src/dialect/position-number.js';
import { resolveMetricsListen } from '../../src/metrics/serve-metrics.js';

const base = {
  connections: { a: 'mysql://u:p@h/db', b: 'postgres://u:p@h/db' },
  pipelines: [{ name: 'p', source: 'a', targets: ['b'] }],
};

function configError(raw: unknown): ConfigError {
  try {
    parseConfig(raw);
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('parseConfig accepted it');
}

describe('metrics config', () => {
  it('serves on 127.0.0.1:9464 by default, the default port not being explicit', () => {
    const config = parseConfig(base);
    expect(config.metrics).toEqual({ enabled: true, host: '127.0.0.1' });
    expect(resolveMetricsListen(config, undefined, {})).toEqual({ enabled: true, host: '127.0.0.1', port: 9464, from: undefined });
  });

  it('layers the file, ROWSYNC_METRICS_PORT and --metrics-port, each naming itself', () => {
    const config = parseConfig({ ...base, metrics: { host: '0.0.0.0', port: 9500 } });
    expect(resolveMetricsListen(config, undefined, {})).toEqual({ enabled: true, host: '0.0.0.0', port: 9500, from: 'metrics.port' });
    expect(resolveMetricsListen(config, undefined, { ROWSYNC_METRICS_PORT: '0' })).toEqual({ enabled: true, host: '0.0.0.0', port: 0, from: 'ROWSYNC_METRICS_PORT' });
    expect(resolveMetricsListen(config, 9600, { ROWSYNC_METRICS_PORT: '0' })).toEqual({ enabled: true, host: '0.0.0.0', port: 9600, from: '--metrics-port' });
    expect(resolveMetricsListen(config, 'off', { ROWSYNC_METRICS_PORT: '0' })).toEqual({ enabled: false });
    expect(resolveMetricsListen(config, undefined, { ROWSYNC_METRICS_PORT: 'off' })).toEqual({ enabled: false });
  });

  it('is off with enabled: false unless a port is asked for explicitly', () => {
    const config = parseConfig({ ...base, metrics: { enabled: false, port: 9500 } });
    expect(resolveMetricsListen(config, undefined, {})).toEqual({ enabled: false });
    expect(resolveMetricsListen(config, 0, {})).toMatchObject({ enabled: true, port: 0 });
  });

  it('names the option that is wrong', () => {
    expect(configError({ ...base, metrics: { port: 70000 } }).message).toMatch(/^metrics\.port: expected at most 65535/);
    expect(configError({ ...base, metrics: { path: '/m' } }).message).toMatch(/^metrics: unknown option 'path'/);
    expect(() => resolveMetricsListen(parseConfig(base), undefined, { ROWSYNC_METRICS_PORT: 'x' })).toThrow(/^ROWSYNC_METRICS_PORT: expected a port/);
  });
});

describe('positionNumber', () => {
  it('turns each mode’s positions into numbers that grow with the stream', () => {
    expect(positionNumber('logical', '1/0')).toBe(2 ** 32);
    expect(positionNumber('logical', '0/16B3748')).toBe(0x16b3748);
    expect(positionNumber('binlog', 'mysql-bin.000002:4')).toBe(2 * 2 ** 32 + 4);
    expect(positionNumber('binlog', 'mysql-bin.000003:4')!).toBeGreaterThan(positionNumber('binlog', 'mysql-bin.000002:999999999')!);
    expect(positionNumber('polling', '5f3a:1200:17')).toBe(1200);
    expect(positionNumber('polling', JSON.stringify({ generation: 'g', next: 42, gaps: [] }))).toBe(42);
    expect(positionNumber('logical', 'mysql-bin.000002:4')).toBeUndefined();
    expect(positionNumber('binlog', '0/16B3748')).toBeUndefined();
  });
});
