import { parseConcurrency, parseJobKind } from '../../coordination/concurrency-overrides.js';
import { CONCURRENCY_POLL_MS } from '../../../workers/concurrency-watcher.js';
import { openApi, type GlobalOptions } from '../context.js';

export interface ConcurrencyShowOptions extends GlobalOptions {
  readonly json?: boolean;
}

export interface ConcurrencySetOptions extends GlobalOptions {
  readonly kind: string;
  readonly n: string;
}

export interface ConcurrencyResetOptions extends GlobalOptions {
  readonly kind?: string;
}

/** `rowsync concurrency show`: per job kind, the config's value, the cluster-wide override, the value in force. */
export async function concurrencyShowCommand(options: ConcurrencyShowOptions): Promise<number> {
  const { rowsync } = openApi(options, 'concurrency');
  try {
    const kinds = await rowsync.concurrency();
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ kinds })}\n`);
      return 0;
    }
    const lines = ['kind    config  override  in force (jobs at once per worker process)'];
    for (const { kind, config: configured, override, effective } of kinds) {
      lines.push(`${kind.padEnd(8)}${String(configured).padEnd(8)}${String(override ?? '-').padEnd(10)}${effective}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await rowsync.close();
  }
}

/** `rowsync concurrency set <kind> <n>`: a cluster-wide override every worker process applies within seconds. */
export async function concurrencySetCommand(options: ConcurrencySetOptions): Promise<number> {
  // Arguments first: a bad one writes nothing, whatever the config.
  const kind = parseJobKind(options.kind);
  const concurrency = parseConcurrency(options.n);
  const { rowsync } = openApi(options, 'concurrency');
  try {
    const { before } = await rowsync.setConcurrency(kind, concurrency);
    process.stdout.write(
      `${kind}: ${concurrency} jobs at once per worker process, cluster-wide (was ${before.effective}` +
        `${before.override === null ? ", the config's" : ''}); workers apply it within ${CONCURRENCY_POLL_MS / 1000} s\n`,
    );
    return 0;
  } finally {
    await rowsync.close();
  }
}

/** `rowsync concurrency reset [kind]`: drops the override of one kind (or all): workers go back to their config. */
export async function concurrencyResetCommand(options: ConcurrencyResetOptions): Promise<number> {
  const kind = options.kind === undefined ? undefined : parseJobKind(options.kind);
  const { rowsync, config } = openApi(options, 'concurrency');
  try {
    const reset = await rowsync.resetConcurrency(kind);
    process.stdout.write(
      `${reset.map((name) => `${name}: back to the config's ${config.workers.concurrency[name]}`).join('\n')}\n` +
        `workers apply it within ${CONCURRENCY_POLL_MS / 1000} s\n`,
    );
    return 0;
  } finally {
    await rowsync.close();
  }
}
