#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, RowsyncError } from '../errors/index.js';
import { redactSecrets } from '../logging/logger.js';
import { EXIT } from './exit-codes.js';

export { EXIT } from './exit-codes.js';

function count(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`${name}: expected a whole number, got '${value}'`);
    return parsed;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--metrics-port`: a port, 0 for any free one, or `off`. */
function metricsPort(value: string): number | 'off' {
  if (value === 'off') return 'off';
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) {
    throw new InvalidArgumentError(`--metrics-port: expected a port (0-65535, 0: any free port) or 'off', got '${value}'`);
  }
  return parsed;
}

/** The version in package.json (two levels up from src/cli in the sources and in dist/). */
function packageVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    try {
      const manifest = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'rowsync' && manifest.version) return manifest.version;
    } catch {
      // not at this level
    }
  }
  return 'unknown';
}

export function buildProgram(): Command {
  const program = new Command('rowsync')
    .description('Keeps tables equal between MySQL/MariaDB and PostgreSQL: chunked checksum reconciliation and change-data-capture on BullMQ.')
    .version(packageVersion(), '-V, --version', 'print the version of rowsync')
    .showHelpAfterError()
    .exitOverride();
  const configOption = () => new Option('-c, --config <file>', 'config file (JSON or YAML); default: $ROWSYNC_CONFIG');
  const metricsPortOption = () =>
    new Option('--metrics-port <port>', 'serve /metrics and /healthz on this port (0: any free port, off: not at all); default: metrics.port (9464)').argParser(
      metricsPort,
    );

  program
    .command('reconcile')
    .description('enqueue a reconcile run of a pipeline, process it and wait for its report')
    .addOption(configOption())
    .requiredOption('-p, --pipeline <name>', 'pipeline to reconcile')
    .option('-t, --table <name>', 'only this table (repeatable)', collect)
    .option('--dry-run', 'report exactly what would be written, write nothing')
    .option('--fail-on-diff', 'exit 3 when the run found differences (monitoring: usually with --dry-run)')
    .option('--json', 'print the report as one JSON object on stdout')
    .option('-w, --workers <n>', 'in-process chunk workers (0: leave the work to `rowsync worker` processes); default: workers.concurrency.chunk', count('--workers'))
    .option('--no-wait', 'enqueue and exit at once (prints the run id)')
    .option('--run-id <id>', 'use this run id (enqueuing an existing id again is a no-op)')
    .option('--print-keys <file>', 'list the differing keys with their kind (missing, extra, changed) as JSON lines in FILE (- : stdout, not with --json)')
    .option('--print-limit <n>', 'most keys --print-keys lists; default 10000', count('--print-limit'))
    .action(run(async () => (await import('./commands/reconcile.js')).reconcileCommand));

  program
    .command('worker')
    .description('process rowsync jobs until SIGTERM (active jobs finish first)')
    .addOption(configOption())
    .option('--concurrency <n>', 'chunk jobs at once in this process; default: workers.concurrency.chunk', count('--concurrency'))
    .addOption(metricsPortOption())
    .action(run(async () => (await import('./commands/worker.js')).workerCommand));

  program
    .command('scheduler')
    .description("enqueue each pipeline's reconcile.schedule (any number of schedulers start a tick once)")
    .addOption(configOption())
    .addOption(metricsPortOption())
    .action(run(async () => (await import('./commands/scheduler.js')).schedulerCommand));

  program
    .command('board')
    .description('serve Bull Board for every rowsync queue (basic auth from ROWSYNC_BOARD_USER / ROWSYNC_BOARD_PASSWORD)')
    .addOption(configOption())
    .option('--host <host>', 'listen address; non-loopback requires basic auth; default: board.host (127.0.0.1)')
    .option('--port <port>', 'listen port; default: board.port (3000)', count('--port'))
    .addOption(metricsPortOption())
    .action(run(async () => (await import('./commands/board.js')).boardCommand));

  program
    .command('status')
    .description('queues, workers, and current and recent runs with their counts')
    .addOption(configOption())
    .option('--json', 'print one JSON object')
    .action(run(async () => (await import('./commands/status.js')).statusCommand));

  program
    .command('retry')
    .description('retry the failed jobs of a run (as Bull Board does), then process and wait for it')
    .addOption(configOption())
    .requiredOption('--run <id>', 'run id (printed by reconcile, shown by status)')
    .option('-w, --workers <n>', 'in-process chunk workers (0: leave the work to `rowsync worker` processes)', count('--workers'))
    .option('--no-wait', 'retry and exit at once')
    .option('--json', 'print the report as one JSON object on stdout')
    .action(run(async () => (await import('./commands/retry.js')).retryCommand));

  const cdc = program.command('cdc').description('change-data-capture: run the readers, or set up / tear down a source');
  cdc
    .command('run', { isDefault: true })
    .description('run the CDC readers of every pipeline with cdc (or --pipeline) until SIGTERM; a second process waits as a standby')
    .addOption(configOption())
    .option('-p, --pipeline <name>', 'only this pipeline')
    .option('-w, --workers <n>', 'also apply batches in this process with N concurrent jobs (default 0: rowsync worker processes do)', count('--workers'))
    .addOption(metricsPortOption())
    .action(run(async () => (await import('./commands/cdc.js')).cdcRunCommand));
  cdc
    .command('setup')
    .description("create what the pipeline's CDC mode needs on the source (slot + publication, or change table + triggers), then check it")
    .addOption(configOption())
    .requiredOption('-p, --pipeline <name>', 'pipeline to prepare')
    .action(run(async () => (await import('./commands/cdc.js')).cdcSetupCommand));
  cdc
    .command('teardown')
    .description('remove what setup created on the source, and the checkpoints in the targets')
    .addOption(configOption())
    .requiredOption('-p, --pipeline <name>', 'pipeline to remove')
    .action(run(async () => (await import('./commands/cdc.js')).cdcTeardownCommand));

  const dlq = program.command('dlq').description('dead-lettered CDC batches: list, retry through the write path, purge');
  const dlqOptions = (command: Command) =>
    command
      .addOption(configOption())
      .option('-p, --pipeline <name>', 'only this pipeline')
      .option('--id <id>', 'only this dead letter (repeatable)', collect);
  dlqOptions(dlq.command('list').description('dead letters with their target, keys and error'))
    .option('--json', 'print one JSON array')
    .action(run(async () => (await import('./commands/dlq.js')).dlqListCommand));
  dlqOptions(dlq.command('retry').description('sync their keys again (the source rows as they are now); waits and exits 1 if any fails again'))
    .option('--no-wait', 'requeue and exit at once (a rowsync worker applies them)')
    .action(run(async () => (await import('./commands/dlq.js')).dlqRetryCommand));
  dlqOptions(dlq.command('purge').description('drop them for good (a reconcile then repairs their keys)'))
    .action(run(async () => (await import('./commands/dlq.js')).dlqPurgeCommand));

  const conflicts = program.command('conflicts').description('conflicts of a pipeline: statistics, the log, and resolving pending ones by hand');
  conflicts
    .command('list')
    .description('statistics and pending conflicts per target (--all: every logged one)')
    .addOption(configOption())
    .requiredOption('-p, --pipeline <name>', 'pipeline')
    .option('--all', 'resolved ones too')
    .option('--json', 'print one JSON array')
    .action(run(async () => (await import('./commands/conflicts.js')).conflictsListCommand));
  conflicts
    .command('resolve')
    .description("settle pending conflicts by keeping one side's current row (written to the other side)")
    .addOption(configOption())
    .requiredOption('-p, --pipeline <name>', 'pipeline')
    .requiredOption('--keep <side>', 'a / source, b / target, or a connection name')
    .option('--id <id>', 'only this conflict (repeatable)', collect)
    .option('--all', 'every pending conflict of the pipeline')
    .action(run(async () => (await import('./commands/conflicts.js')).conflictsResolveCommand));

  program
    .command('start')
    .description('scheduler + workers + CDC readers + board in one process, for a single machine')
    .addOption(configOption())
    .addOption(metricsPortOption())
    .action(run(async () => (await import('./commands/start.js')).startCommand));

  const concurrency = program
    .command('concurrency')
    .description('jobs at once per worker process, per job kind (table, chunk, apply, cdc): show, or change cluster-wide at run time');
  concurrency
    .command('show')
    .description("per kind: the config's value, the cluster-wide override, the value in force")
    .addOption(configOption())
    .option('--json', 'print one JSON object')
    .action(run(async () => (await import('./commands/concurrency.js')).concurrencyShowCommand));
  concurrency
    .command('set')
    .description('override a kind for every worker process; running workers apply it within seconds, no restart')
    .argument('<kind>', 'table, chunk, apply or cdc')
    .argument('<n>', 'jobs at once per worker process (1-256)')
    .addOption(configOption())
    .action((kind: string, n: string, options: object) =>
      run(async () => (await import('./commands/concurrency.js')).concurrencySetCommand)({ ...options, kind, n }));
  concurrency
    .command('reset')
    .description("drop the override of a kind (or of every kind): workers go back to the config's value")
    .argument('[kind]', 'table, chunk, apply or cdc (default: all)')
    .addOption(configOption())
    .action((kind: string | undefined, options: object) =>
      run(async () => (await import('./commands/concurrency.js')).concurrencyResetCommand)({ ...options, ...(kind ? { kind } : {}) }));

  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv as string[], { from: 'user' });
    return exitCode;
  } catch (error) {
    return report(error);
  }
}

/** Set by the command that ran (commander does not pass an action's result back). */
let exitCode: number = EXIT.ok;

/**
 * Wraps a command so its numeric result becomes the process exit code. The command's module is
 * imported when it runs: `reconcile` then does not load Bull Board and express (about 0.3 s of start-up).
 */
function run<T>(load: () => Promise<(options: T) => Promise<number>>) {
  return async (options: T) => {
    const command = await load();
    exitCode = await command(options);
  };
}


function report(error: unknown): number {
  if (error instanceof CommanderError) {
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT.ok;
    return EXIT.usage;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`error: ${error.message}\n`);
    return EXIT.usage;
  }
  if (error instanceof RowsyncError) {
    process.stderr.write(`error: ${redactSecrets(error.message)}\n`);
    return EXIT.failed;
  }
  process.stderr.write(`error: ${redactSecrets(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`);
  return EXIT.failed;
}

// Run when executed as the `rowsync` binary (not when imported by tests).
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  // Workers, pools and timers are closed by the commands; exit explicitly in case a driver lingers.
  setTimeout(() => process.exit(code), 200).unref();
}
