import type { ReconcileConfig } from '../src/config/index.js';
import type { TableContext } from './runtime.js';

/**
 * Reconcile settings one run may set for itself (the library's `reconcile(pipeline, { chunkSize,
 * compare, conflict, ... })`), over the pipeline's `reconcile` section. They travel in the payload
 * of every job of the run (run, table, chunk, apply), as every setting a job needs does: a worker
 * process with the plain config file then still compares and writes this run as it was asked to.
 * The values are resolved and validated by the caller's config (src/api/run-settings.ts).
 */
export const RUN_SETTING_KEYS = [
  'chunkSize', 'chunkTimeMs', 'applyBatchSize', 'compare', 'timestampColumn', 'conflict', 'conflictColumn', 'priority', 'deleteExtra',
] as const;

export type RunSettingKey = (typeof RUN_SETTING_KEYS)[number];
export type RunSettings = { readonly [K in RunSettingKey]?: ReconcileConfig[K] };

/** A table context whose pipeline's reconcile settings carry the run's own (unchanged without any). */
export function withRunSettings(context: TableContext, settings: RunSettings | undefined): TableContext {
  if (!settings || Object.keys(settings).length === 0) return context;
  return { ...context, pipeline: { ...context.pipeline, reconcile: { ...context.pipeline.reconcile, ...settings } } };
}
