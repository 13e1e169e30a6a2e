import type { Runtime } from '../../jobs/runtime.js';
import type { Config } from '../config/index.js';
import {
  ConcurrencyOverrides, JOB_KINDS, parseConcurrency, parseJobKind, type ConcurrencyOverride, type JobKind,
} from '../coordination/concurrency-overrides.js';

/**
 * Jobs at once per worker process, per job kind, and the cluster-wide overrides every running worker
 * follows within seconds (`rowsync concurrency show|set|reset`).
 */

/** One kind's concurrency: the config's value, the cluster-wide override (if any), and the one in force. */
export interface KindConcurrency {
  readonly kind: JobKind;
  readonly config: number;
  readonly override: number | null;
  readonly effective: number;
}

export async function readConcurrency(runtime: Runtime): Promise<KindConcurrency[]> {
  return describe(runtime.config, await overridesOf(runtime).read());
}

/**
 * Overrides one kind for every worker process (`kind`: table, chunk, apply or cdc; `jobs`: 1-256).
 * Both are checked before anything is written. Resolves with the kind's concurrency before and after.
 */
export async function setConcurrency(
  runtime: Runtime,
  kind: string,
  jobs: number | string,
): Promise<{ readonly before: KindConcurrency; readonly after: KindConcurrency }> {
  const chosen = parseJobKind(kind);
  const concurrency = parseConcurrency(String(jobs));
  const overrides = overridesOf(runtime);
  const before = describe(runtime.config, await overrides.read()).find((entry) => entry.kind === chosen)!;
  await overrides.set(chosen, concurrency);
  return { before, after: { ...before, override: concurrency, effective: concurrency } };
}

/** Drops the override of one kind (or of every kind): workers go back to the config's value. Resolves with the kinds reset. */
export async function resetConcurrency(runtime: Runtime, kind?: string): Promise<readonly JobKind[]> {
  const chosen = kind === undefined ? undefined : parseJobKind(kind);
  await overridesOf(runtime).reset(chosen);
  return chosen ? [chosen] : JOB_KINDS;
}

function overridesOf(runtime: Runtime): ConcurrencyOverrides {
  return new ConcurrencyOverrides(runtime.redis, runtime.config.redis.prefix);
}

function describe(config: Config, overrides: ConcurrencyOverride): KindConcurrency[] {
  return JOB_KINDS.map((kind) => {
    const configured = config.workers.concurrency[kind];
    const override = overrides[kind] ?? null;
    return { kind, config: configured, override, effective: override ?? configured };
  });
}
