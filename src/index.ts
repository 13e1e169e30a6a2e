/**
 * rowsync as a library: `import { createRowsync } from 'rowsync'`. The same engine the `rowsync`
 * commands run (they call this API), documented in the README's "Use it from code".
 */
export {
  createRowsync, Rowsync,
  type BidirectionalHandle, type BoardHandle, type CdcHandle, type CdcStreamSetup, type ConfigSource, type EnqueueReconcileOptions,
  type ReconcileOptions, type RowsyncOptions, type SchedulerHandle, type StartBidirectionalOptions, type StartBoardOptions, type StartCdcOptions,
  type StartWorkersOptions, type WaitForRunOptions, type WorkersHandle,
} from './api/rowsync.js';
export type { ReconcileSettings } from './api/run-settings.js';
export type {
  CdcBatchEvent, CdcLagEvent, CdcStatusEvent, ConflictEvent, JobFailedEvent, RowsyncEventName, RowsyncEvents, RunCompletedEvent,
  RunEnqueuedEvent, RunFailedEvent, RunProgressEvent,
} from './api/events.js';
export { RunFailedError, type FailedJob } from './api/run-failed-error.js';
export type { CdcLinkStats, CdcStreamStats, PipelineSyncStats } from './api/sync-stats.js';
export type { ListConflictsOptions, PipelineConflictStats, ResolveConflictsOptions, TargetConflicts } from './api/conflicts.js';
export type { DeadLetter, DeadLetterFilter } from './api/dead-letters.js';
export type { KindConcurrency } from './api/concurrency.js';
export type { JobKind } from './coordination/concurrency-overrides.js';
export type { ConflictStats, LoggedConflict } from './dialect/conflict-log.js';
export type { RunProgressCounts } from '../jobs/run-progress.js';
export type { WorkerConcurrency } from '../workers/start-workers.js';
export type { StatusSnapshot } from '../workers/status-snapshot.js';
export type { RunReport, TableReport, RowCounts, RunStatus } from './reconcile/report.js';
export type { BidirectionalResult } from './sync/bidirectional-result.js';
export {
  loadConfigFile, parseConfig,
  type CompareMode, type Config, type ConfigInput, type ConflictPolicy, type PipelineConfig, type ReconcileConfig,
} from './config/index.js';
export { CdcSetupError, ConfigError, DatabaseError, PositionLostError, RowsyncError, SchemaError } from './errors/index.js';
export type { Logger } from './logging/logger.js';
