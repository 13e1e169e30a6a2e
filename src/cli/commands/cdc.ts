import { serveMetrics, type MetricsPortOption } from '../../metrics/serve-metrics.js';
import { openApi, serveUntilSignal, type GlobalOptions } from '../context.js';

export interface CdcOptions extends GlobalOptions {
  readonly pipeline?: string;
  readonly workers?: number;
  readonly metricsPort?: MetricsPortOption;
}

/**
 * `rowsync cdc`: runs the CDC readers of every pipeline with `cdc` (or the one named) until SIGTERM.
 * Each reader streams only while it holds its pipeline's lock; a second process waits as a standby
 * and takes over within seconds when the first dies. Batches are applied by `rowsync worker`
 * processes, or by `--workers N` in this process.
 */
export async function cdcRunCommand(options: CdcOptions): Promise<number> {
  const { rowsync, runtime, logger } = openApi(options, 'cdc');
  let metrics: Awaited<ReturnType<typeof serveMetrics>>;
  try {
    metrics = await serveMetrics(runtime, logger, options.metricsPort);
    const cdc = await rowsync.startCdc({
      ...(options.pipeline ? { pipeline: options.pipeline } : {}),
      ...(options.workers ? { workers: options.workers } : {}),
    });
    logger.info({ pipelines: cdc.readers, workers: options.workers ?? 0 }, 'cdc readers started');
    process.stderr.write(`cdc: ${cdc.readers} reader(s) started (standby while another process streams)\n`);
    return await serveUntilSignal(logger, () => cdc.stop());
  } finally {
    await metrics?.close();
    await rowsync.close();
  }
}

/** `rowsync cdc setup`: preflight, then create what the pipeline's mode needs on the source. */
export async function cdcSetupCommand(options: CdcOptions & { readonly pipeline: string }): Promise<number> {
  const { rowsync } = openApi(options, 'cdc-setup');
  try {
    await rowsync.setupCdc(options.pipeline, (stream) =>
      process.stderr.write(`cdc setup: pipeline ${stream.pipeline} (${stream.mode} on ${stream.from}) is ready to stream\n`),
    );
    return 0;
  } finally {
    await rowsync.close();
  }
}

/** `rowsync cdc teardown`: removes what setup created on the source and the targets' checkpoints. */
export async function cdcTeardownCommand(options: CdcOptions & { readonly pipeline: string }): Promise<number> {
  const { rowsync } = openApi(options, 'cdc-teardown');
  try {
    await rowsync.teardownCdc(options.pipeline, (stream) =>
      process.stderr.write(`cdc teardown: pipeline ${stream.pipeline} (${stream.mode} on ${stream.from}) removed, checkpoints deleted\n`),
    );
    return 0;
  } finally {
    await rowsync.close();
  }
}
