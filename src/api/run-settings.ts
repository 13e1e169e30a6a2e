import { RUN_SETTING_KEYS, type RunSettings } from '../../jobs/run-settings.js';
import { findPipeline, parseConfig, type CompareMode, type ConflictPolicy } from '../config/index.js';

/**
 * The reconcile settings one call may set over the pipeline's `reconcile` section (the seed's
 * `executeBatchSync` options: batch size, compare method, conflict policy). Each means exactly what
 * the key of the same name under `pipelines[].reconcile` means in the config file.
 */
export interface ReconcileSettings {
  /** Rows per chunk (the batch size of a compare); fixed unless `chunkTimeMs` is set too. 1-1,000,000. */
  readonly chunkSize?: number;
  /** Adaptive chunks aiming at this many ms of checksum scan each; 0: fixed `chunkSize`. */
  readonly chunkTimeMs?: number;
  /** Keys per sync (one target transaction). 1-10,000. */
  readonly applyBatchSize?: number;
  /** `checksum`, `field_by_field` or `timestamp`. */
  readonly compare?: CompareMode;
  /** Column compared when `compare` is `timestamp`. */
  readonly timestampColumn?: string;
  /** The conflict policy of this run's writes. */
  readonly conflict?: ConflictPolicy;
  readonly conflictColumn?: string;
  /** The winning connection when `conflict` is `priority` (bidirectional). */
  readonly priority?: string;
  /** Delete rows only the target has. */
  readonly deleteExtra?: boolean;
}

/** Where a config came from: what `parseConfig` is given again with a call's settings merged in. */
export interface ConfigOrigin {
  readonly input: unknown;
  readonly file: string | undefined;
  readonly env: NodeJS.ProcessEnv;
}

/**
 * A call's settings validated as the config file is: merged into the pipeline's `reconcile` section
 * of the same input and parsed again by the same schema and checks, so a bad value fails with the
 * file's message naming the field (`pipelines[0].reconcile.chunkSize: expected at most 1000000`)
 * and nothing is enqueued. Resolves to the settings every job of the run carries (the pipeline's
 * resolved values of every run setting: a worker with another copy of the file runs it the same
 * way), or undefined when the call set none.
 */
export function resolveRunSettings(origin: ConfigOrigin, pipeline: string, settings: ReconcileSettings): RunSettings | undefined {
  const given = Object.fromEntries(Object.entries(settings).filter(([key, value]) => value !== undefined && (RUN_SETTING_KEYS as readonly string[]).includes(key)));
  if (Object.keys(given).length === 0) return undefined;
  const input = structuredClone(origin.input) as { pipelines?: { name?: unknown; reconcile?: Record<string, unknown> }[] };
  const entry = input.pipelines?.find((candidate) => candidate.name === pipeline);
  // The pipeline was found in the parsed config already; its raw entry has the same (literal) name.
  if (!entry) throw new Error(`pipeline '${pipeline}' is not in the config input`);
  entry.reconcile = { ...entry.reconcile, ...given };
  const reconcile = findPipeline(parseConfig(input, { ...(origin.file ? { file: origin.file } : {}), env: origin.env }), pipeline).reconcile;
  return Object.fromEntries(RUN_SETTING_KEYS.filter((key) => reconcile[key] !== undefined).map((key) => [key, reconcile[key]])) as RunSettings;
}
