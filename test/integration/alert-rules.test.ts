/**
 * The example alert rules (docker/prometheus/rowsync-alerts.yml): `promtool check rules` accepts
 * them, `promtool test rules` shows each alert firing on series shaped like rowsync's and staying
 * quiet on healthy ones (rowsync-alerts.test.yml), and every rowsync metric a rule names is one that
 * rowsync serves. promtool comes from Debian's `prometheus` package (scripts/install-test-tools.sh);
 * without it these tests fail under CI=true and are skipped elsewhere.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logging/logger.js';
import { clusterRegistry } from '../../src/metrics/cluster-metrics.js';
import { processRegistry } from '../../src/metrics/instruments.js';
import { Runtime } from '../../jobs/runtime.js';
import { testServers } from '../support/servers.js';

const RULES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../docker/prometheus');
const RULES = join(RULES_DIR, 'rowsync-alerts.yml');
const RULE_TESTS = join(RULES_DIR, 'rowsync-alerts.test.yml');

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0 ? 'promtool' : undefined;
const MISSING =
  'promtool is not installed: run `bash scripts/install-test-tools.sh` as root (Debian package `prometheus`), ' +
  'or `apt-get install -y --no-install-recommends prometheus`';
// Under CI a missing promtool is a failure, never a silent skip.
const runOrSkip = promtool || process.env.CI === 'true' ? it : it.skip;

async function runPromtool(args: readonly string[]): Promise<{ code: number; output: string }> {
  if (!promtool) throw new Error(MISSING);
  try {
    const { stdout, stderr } = await promisify(execFile)(promtool, args, { cwd: RULES_DIR });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string }[] }[];
}

const runtime = new Runtime(
  parseConfig({
    redis: { url: testServers().redisUrl, prefix: `t-alert-rules-${process.pid}` },
    connections: { src: 'mysql://u:p@127.0.0.1:1/a', dst: 'postgres://u:p@127.0.0.1:1/b' },
    pipelines: [{ name: 'p', source: 'src', targets: ['dst'] }],
  }),
  createLogger({ level: 'silent' }),
);

afterAll(async () => {
  await runtime.close();
});

describe('docker/prometheus/rowsync-alerts.yml', () => {
  runOrSkip('passes promtool check rules', async () => {
    const { code, output } = await runPromtool(['check', 'rules', RULES]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  runOrSkip('passes its unit tests (promtool test rules): each alert fires on its series and not on healthy ones', async () => {
    const { code, output } = await runPromtool(['test', 'rules', RULE_TESTS]);
    expect(code, output).toBe(0);
    expect(output).toMatch(/SUCCESS/);
  });

  it('tests every alert it defines, and names only metrics rowsync serves', () => {
    const rules = parseYaml(readFileSync(RULES, 'utf8')) as RuleFile;
    const alerts = rules.groups.flatMap((group) => group.rules.map((rule) => rule.alert)).filter(Boolean);
    expect(alerts.length).toBeGreaterThanOrEqual(8);
    const tests = parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const firing = new Set(tests.tests.flatMap((test) => test.alert_rule_test.filter((entry) => entry.exp_alerts.length > 0).map((entry) => entry.alertname)));
    expect(alerts.filter((alert) => !firing.has(alert!))).toEqual([]);

    const served = new Set(
      [...processRegistry().getMetricsAsArray(), ...clusterRegistry(runtime).getMetricsAsArray()].flatMap(({ name, type }) =>
        String(type) === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name],
      ),
    );
    const named = new Set(rules.groups.flatMap((group) => group.rules.flatMap((rule) => rule.expr.match(/\browsync_[a-z0-9_]+/g) ?? [])));
    expect(named.size).toBeGreaterThanOrEqual(8);
    expect([...named].filter((name) => !served.has(name))).toEqual([]);
  });
});
