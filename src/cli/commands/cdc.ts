import { cdcPipelines, cdcStreams, changeSourceOf, startCdcReaders } from '../../../workers/cdc-readers.js';
import { startWorkers } from '../../../workers/start-workers.js';
import { openRuntime, untilSignal, type GlobalOptions } from '../context.js';

export interface CdcOptions extends GlobalOptions {
  readonly pipeline?: string;
  readonly workers?: number;
}

/**
 * `rowsync cdc`: runs the CDC readers of every pipeline with `cdc` (or the one named) until SIGTERM.
 * Each reader streams only while it holds its pipeline's lock; a second process waits as a standby
 * and takes over within seconds when the first dies. Batches are applied by `rowsync worker`
 * processes, or by `--workers N` in this process.
 */
export async function cdcRunCommand(options: CdcOptions): Promise<number> {
  const { runtime, logger } = openRuntime(options, 'cdc');
  try {
    const workers = options.workers ? await startWorkers(runtime, { cdc: options.workers }) : undefined;
    const readers = await startCdcReaders(runtime, options.pipeline ? { pipeline: options.pipeline } : {});
    logger.info({ pipelines: readers.readers.length, workers: options.workers ?? 0 }, 'cdc readers started');
    process.stderr.write(`cdc: ${readers.readers.length} reader(s) started (standby while another process streams)\n`);
    await untilSignal();
    const forced = untilSignal().then(() => process.exit(130));
    void forced;
    await readers.stop();
    await workers?.close();
    return 0;
  } finally {
    await runtime.close();
  }
}

/** `rowsync cdc setup`: preflight, then create what the pipeline's mode needs on the source. */
export async function cdcSetupCommand(options: CdcOptions & { readonly pipeline: string }): Promise<number> {
  const { runtime } = openRuntime(options, 'cdc-setup');
  try {
    for (const pipeline of cdcPipelines(runtime, options.pipeline)) {
      for (const stream of cdcStreams(pipeline)) {
        const source = await changeSourceOf(runtime, stream);
        await source.setup();
        await source.preflight();
        process.stderr.write(`cdc setup: pipeline ${pipeline.name} (${source.mode} on ${stream.from}) is ready to stream\n`);
      }
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

/** `rowsync cdc teardown`: removes what setup created on the source and the targets' checkpoints. */
export async function cdcTeardownCommand(options: CdcOptions & { readonly pipeline: string }): Promise<number> {
  const { runtime } = openRuntime(options, 'cdc-teardown');
  try {
    for (const pipeline of cdcPipelines(runtime, options.pipeline)) {
      for (const stream of cdcStreams(pipeline)) {
        const source = await changeSourceOf(runtime, stream);
        await source.teardown();
        for (const target of stream.targets) await runtime.database(target).deleteCheckpoint(pipeline.name, stream.from);
        process.stderr.write(`cdc teardown: pipeline ${pipeline.name} (${source.mode} on ${stream.from}) removed, checkpoints deleted\n`);
      }
    }
    return 0;
  } finally {
    await runtime.close();
  }
}
