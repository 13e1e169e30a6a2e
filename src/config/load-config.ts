import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validate as validateCron } from 'node-cron';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors/index.js';
import { createHash } from 'node:crypto';
import {
  BIDIRECTIONAL_POLICIES, configSchema, WRITE_POLICY_DEFAULTS, type CdcConfig, type CdcMode, type Config, type ConnectionConfig, type PipelineConfig,
  type TableEntryInput, type TableOptions, type WritePolicyConfig,
} from './config-schema.js';
import { completeRedisSettings } from './redis-settings.js';

/** Env var naming the config file when `--config` is not given. */
export const CONFIG_ENV = 'ROWSYNC_CONFIG';

/**
 * Reads, interpolates, validates and freezes a config file (JSON, or YAML by extension `.yml`/`.yaml`,
 * or by content when the extension is neither). Every failure is a `ConfigError` whose message starts
 * with the offending field (`pipelines[0].reconcile.chunkSize: expected a number`).
 */
export function loadConfigFile(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  const { input, file: absolute } = readConfigInput(file, env);
  return parseConfig(input, { file: absolute, env });
}

/**
 * Reads a config file (or $ROWSYNC_CONFIG) into the object it holds, not yet validated, with its
 * absolute path: what `loadConfigFile` parses, kept by the library to validate per-call settings
 * against the same file. Failures are the `ConfigError`s `loadConfigFile` throws.
 */
export function readConfigInput(file: string | undefined, env: NodeJS.ProcessEnv = process.env): { input: unknown; file: string } {
  const chosen = file ?? env[CONFIG_ENV];
  if (!chosen) {
    throw new ConfigError(`--config: no config file given (pass --config FILE or set ${CONFIG_ENV})`, {
      subject: '--config',
    });
  }
  const absolute = path.resolve(chosen);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    throw new ConfigError(`--config: cannot read ${chosen} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      subject: '--config',
    });
  }
  let raw: unknown;
  try {
    raw = /\.ya?ml$/i.test(absolute) || !/^\s*[{[]/.test(text) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${chosen}: not valid JSON/YAML: ${(error as Error).message.split('\n')[0]}`, {
      subject: '--config',
    });
  }
  return { input: raw, file: absolute };
}

/** Validates an already-parsed config object (tests and embedding code use this directly). */
export function parseConfig(raw: unknown, options: { file?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const interpolated = interpolate(raw, [], options.env ?? process.env);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) throw fromZod(result.error);
  const parsed = result.data;
  const redis = completeRedisSettings(parsed.redis, (interpolated as { redis?: unknown } | null)?.redis);

  const connections: Record<string, ConnectionConfig> = {};
  for (const [name, value] of Object.entries(parsed.connections)) {
    const entry = typeof value === 'string' ? { url: value } : value;
    connections[name] = Object.freeze({
      name,
      url: entry.url,
      poolSize: 'poolSize' in entry && entry.poolSize !== undefined ? entry.poolSize : 4,
      maxConcurrentQueries: 'maxConcurrentQueries' in entry ? entry.maxConcurrentQueries : undefined,
    });
  }

  const names = new Set<string>();
  const pipelines: PipelineConfig[] = parsed.pipelines.map((input, index) => {
    const at = `pipelines[${index}]`;
    if (names.has(input.name)) fail(`${at}.name`, `duplicate pipeline name '${input.name}'`);
    names.add(input.name);
    if (!connections[input.source]) fail(`${at}.source`, `unknown connection '${input.source}'`);
    input.targets.forEach((target, targetIndex) => {
      if (!connections[target]) fail(`${at}.targets[${targetIndex}]`, `unknown connection '${target}'`);
      if (target === input.source) fail(`${at}.targets[${targetIndex}]`, `'${target}' is also the source`);
    });
    if (new Set(input.targets).size !== input.targets.length) fail(`${at}.targets`, 'duplicate target');
    const { conflict, conflictColumn, resolvers, applyBatchSize, priority, reconcile: reconcileInput, cdc: cdcInput, tables: tableEntries, ...rest } = input;
    const bidirectional = input.mode === 'bidirectional';
    const { tables, tableOptions } = parseTables(tableEntries, `${at}.tables`, { bidirectional, cdc: cdcInput !== undefined });
    if (bidirectional && input.targets.length !== 1) {
      fail(`${at}.targets`, `a bidirectional pipeline has exactly one target (side B), got ${input.targets.length}`);
    }
    const write: WritePolicyConfig = {
      // Bidirectional pipelines have no source that wins by default: the newer row does.
      conflict: conflict ?? (bidirectional ? 'timestamp' : WRITE_POLICY_DEFAULTS.conflict),
      conflictColumn: conflictColumn ?? WRITE_POLICY_DEFAULTS.conflictColumn,
      resolvers: resolvers ?? WRITE_POLICY_DEFAULTS.resolvers,
      applyBatchSize: applyBatchSize ?? WRITE_POLICY_DEFAULTS.applyBatchSize,
      priority: priority ?? WRITE_POLICY_DEFAULTS.priority,
    };
    const { chunkSize, chunkTimeMs, ...reconcileRest } = reconcileInput;
    reconcileRest.maxReplicaLag?.replicas.forEach((replica, replicaIndex) => {
      if (!connections[replica]) fail(`${at}.reconcile.maxReplicaLag.replicas[${replicaIndex}]`, `unknown connection '${replica}'`);
    });
    const reconcile = {
      ...reconcileRest,
      chunkSize: chunkSize ?? DEFAULT_CHUNK_SIZE,
      // A chunkSize set alone is a fixed size (what it always meant); adaptive sizes start from it
      // only when chunkTimeMs is set too.
      chunkTimeMs: chunkTimeMs ?? (chunkSize === undefined ? DEFAULT_CHUNK_TIME_MS : 0),
      conflict: reconcileInput.conflict ?? write.conflict,
      conflictColumn: reconcileInput.conflictColumn ?? write.conflictColumn,
      resolvers: reconcileInput.resolvers ?? write.resolvers,
      applyBatchSize: reconcileInput.applyBatchSize ?? write.applyBatchSize,
      priority: reconcileInput.priority ?? write.priority,
    };
    const checkPolicy = (policy: WritePolicyConfig, where: string) => {
      if (bidirectional && !(BIDIRECTIONAL_POLICIES as readonly string[]).includes(policy.conflict)) {
        fail(
          `${where}conflict`,
          `'${policy.conflict}' is for one-way pipelines; a bidirectional one takes ${BIDIRECTIONAL_POLICIES.map((name) => `'${name}'`).join(', ')} ` +
            `(the winning side of 'priority' is named by "priority")`,
        );
      }
      if (!bidirectional && policy.conflict === 'priority') {
        fail(`${where}conflict`, "'priority' is for bidirectional pipelines; a one-way pipeline uses 'source_wins' or 'target_wins'");
      }
      if (policy.conflict === 'priority') {
        if (!policy.priority) fail(`${where}priority`, "required when conflict is 'priority' (the connection whose row wins)");
        if (policy.priority !== input.source && !input.targets.includes(policy.priority)) {
          fail(`${where}priority`, `'${policy.priority}' is neither side of the pipeline (${[input.source, ...input.targets].join(', ')})`);
        }
      }
    };
    checkPolicy(write, `${at}.`);
    checkPolicy(reconcile, `${at}.reconcile.`);
    if (reconcile.schedule !== undefined && !validateCron(reconcile.schedule)) {
      fail(`${at}.reconcile.schedule`, `not a valid cron expression: '${reconcile.schedule}'`);
    }
    if (reconcile.timezone !== undefined && !isTimeZone(reconcile.timezone)) {
      fail(`${at}.reconcile.timezone`, `unknown time zone '${reconcile.timezone}'`);
    }
    const checkResolvers = (policy: WritePolicyConfig, where: string) => {
      if (policy.conflict !== 'custom') return;
      if (Object.keys(policy.resolvers).length === 0) fail(`${where}resolvers`, "required when conflict is 'custom' (a module path per table)");
      for (const table of tables ?? []) {
        if (!policy.resolvers[table]) fail(`${where}resolvers.${table}`, "missing: conflict is 'custom'");
      }
    };
    checkResolvers(reconcile, `${at}.reconcile.`);
    let cdc: CdcConfig | undefined;
    if (cdcInput) {
      checkResolvers(write, `${at}.`);
      const serverId = cdcInput.serverId ?? defaultServerId(redis.prefix, input.name);
      const targetUrl = connections[input.targets[0]!]!.url;
      const mode = cdcMode(cdcInput.mode, connections[input.source]!.url, `${at}.cdc.mode`);
      cdc = {
        ...cdcInput,
        mode,
        serverId,
        // Side B streams by its own log unless both sides poll; both sides may share one MySQL
        // server, so B's binlog reader needs an id of its own.
        modeB: bidirectional ? cdcMode(cdcInput.mode === 'polling' ? 'polling' : undefined, targetUrl, `${at}.cdc.mode`) : mode,
        serverIdB: serverId === 4_294_967_295 ? serverId - 1 : serverId + 1,
      };
      if (bidirectional && cdcInput.mode !== undefined && cdcInput.mode !== 'polling' && cdcMode(undefined, targetUrl, `${at}.cdc.mode`) !== cdcInput.mode) {
        fail(`${at}.cdc.mode`, `'${cdcInput.mode}' cannot read side B (${input.targets[0]}); leave mode unset (each side's own log) or use 'polling'`);
      }
    }
    return { ...rest, tables, tableOptions, write, reconcile, cdc } as PipelineConfig;
  });

  const config: Config = {
    file: options.file,
    redis: Object.freeze({ ...redis }),
    connections: Object.freeze(connections),
    pipelines: Object.freeze(pipelines.map((pipeline) => deepFreeze(pipeline))),
    workers: deepFreeze(parsed.workers),
    board: Object.freeze({ ...parsed.board }),
    metrics: Object.freeze({ ...parsed.metrics }),
  };
  return Object.freeze(config);
}

/** `reconcile.chunkSize` when unset. */
const DEFAULT_CHUNK_SIZE = 10_000;
/** `reconcile.chunkTimeMs` when neither it nor chunkSize is set (pt-table-checksum's --chunk-time 0.5). */
const DEFAULT_CHUNK_TIME_MS = 500;

/**
 * `tables` as source names plus the options of the object entries. A `where` is refused on a
 * bidirectional pipeline (a row leaving the filter on one side would read as deleted there), and a
 * `targetSchema` on a bidirectional one that streams changes (side B's stream reads its connection's
 * own schema).
 */
function parseTables(
  entries: readonly (string | TableEntryInput)[] | undefined,
  at: string,
  pipeline: { bidirectional: boolean; cdc: boolean },
): { tables: readonly string[] | undefined; tableOptions: Record<string, TableOptions> } {
  if (!entries) return { tables: undefined, tableOptions: {} };
  const tables: string[] = [];
  const tableOptions: Record<string, TableOptions> = {};
  const targetNames = new Map<string, string>();
  entries.forEach((entry, index) => {
    const where = `${at}[${index}]`;
    const name = typeof entry === 'string' ? entry : entry.name;
    if (tables.includes(name)) fail(typeof entry === 'string' ? where : `${where}.name`, `duplicate table '${name}'`);
    tables.push(name);
    if (typeof entry === 'string') {
      targetNames.set(`\u0000${name}`, name);
      return;
    }
    if (pipeline.bidirectional && (entry.where !== undefined || entry.targetWhere !== undefined)) {
      fail(`${where}.where`, 'a bidirectional pipeline takes no row filter (a row leaving it on one side would look deleted there)');
    }
    if (entry.targetWhere !== undefined && entry.where === undefined) fail(`${where}.targetWhere`, 'needs where (the filter on the source)');
    if (pipeline.bidirectional && pipeline.cdc && entry.targetSchema !== undefined) {
      fail(`${where}.targetSchema`, "a bidirectional pipeline with cdc streams side B's own schema; name the schema in its connection instead");
    }
    const options: TableOptions = {
      name,
      targetName: entry.targetName ?? name,
      targetSchema: entry.targetSchema,
      where: entry.where,
      targetWhere: entry.targetWhere ?? entry.where,
      excludeColumns: entry.excludeColumns ?? [],
    };
    const onTargets = `${options.targetSchema ?? ''}\u0000${options.targetName}`;
    const clash = targetNames.get(onTargets);
    if (clash !== undefined) fail(`${where}.targetName`, `'${options.targetName}' is also where table '${clash}' goes on the targets`);
    targetNames.set(onTargets, name);
    tableOptions[name] = options;
  });
  return { tables, tableOptions };
}

/** The target-side name of a source table (its entry's targetName, else its own name). */
export function targetTableOf(pipeline: PipelineConfig, table: string): string {
  return pipeline.tableOptions[table]?.targetName ?? table;
}

/** The source table whose target-side name is `targetTable` (the inverse of `targetTableOf`). */
export function sourceTableOf(pipeline: PipelineConfig, targetTable: string): string {
  const entry = Object.values(pipeline.tableOptions).find((options) => options.targetName === targetTable && options.targetSchema === undefined);
  return entry ? entry.name : targetTable;
}

export function findPipeline(config: Config, name: string): PipelineConfig {
  const pipeline = config.pipelines.find((candidate) => candidate.name === name);
  if (!pipeline) {
    const known = config.pipelines.map((candidate) => candidate.name).join(', ');
    throw new ConfigError(`--pipeline: unknown pipeline '${name}' (configured: ${known})`, { subject: '--pipeline' });
  }
  return pipeline;
}

const ENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** `${VAR}` and `${VAR:-default}` in every string; a missing variable without default is an error. */
function interpolate(value: unknown, at: readonly (string | number)[], env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REFERENCE, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      return fail(formatPath(at), `environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((item, index) => interpolate(item, [...at, index], env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([key, item]) => [key, interpolate(item, [...at, key], env)]),
    );
  }
  return value;
}

function fromZod(error: z.ZodError): ConfigError {
  const lines = error.issues.slice(0, 10).map((issue) => {
    const where = formatPath(issue.path as (string | number)[]) || '(root)';
    return `${where}: ${describeIssue(issue)}`;
  });
  const first = error.issues[0];
  return new ConfigError(lines.join('\n'), { subject: first ? formatPath(first.path as (string | number)[]) : undefined });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return /received undefined/.test(issue.message)
        ? `required (expected ${article(issue.expected)})`
        : `expected ${article(issue.expected)}`;
    case 'unrecognized_keys':
      return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `'${key}'`).join(', ')}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array' ? `expected at least ${String(issue.minimum)} entries` : `expected at least ${String(issue.minimum)}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}`;
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  const words: Record<string, string> = { number: 'a number', string: 'a string', boolean: 'a boolean', object: 'an object', array: 'an array', int: 'an integer' };
  return words[expected] ?? expected;
}

function formatPath(at: readonly (string | number | symbol)[]): string {
  return at
    .map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? String(part) : `.${String(part)}`))
    .join('');
}

function fail(where: string, message: string): never {
  throw new ConfigError(`${where}: ${message}`, { subject: where });
}

/** The source engine's own log unless the config says otherwise; a log the engine does not have is an error. */
function cdcMode(mode: CdcMode | undefined, sourceUrl: string, where: string): CdcMode {
  const engine = /^(mysql|mariadb):/i.test(sourceUrl) ? 'mysql' : 'postgres';
  const chosen = mode ?? (engine === 'mysql' ? 'binlog' : 'logical');
  if (chosen === 'binlog' && engine !== 'mysql') fail(where, "'binlog' needs a MySQL/MariaDB source (use 'logical' or 'polling')");
  if (chosen === 'logical' && engine !== 'postgres') fail(where, "'logical' needs a PostgreSQL source (use 'binlog' or 'polling')");
  return chosen;
}

/**
 * A binlog reader's server id when the config names none: stable per installation and pipeline (a
 * restarted reader reuses it; two installations sharing a MySQL server differ by their Redis
 * prefix), in 1,000,000..2^31 so it does not collide with the small ids servers are usually given.
 */
function defaultServerId(prefix: string, pipeline: string): number {
  return 1_000_000 + (createHash('sha1').update(`${prefix}\u0000${pipeline}`).digest().readUInt32BE(0) % 2_000_000_000);
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value as object)) deepFreeze(item);
  }
  return value;
}
