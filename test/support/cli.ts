/**
 * The `rowsync` binary as a separate process: one shared build of dist/, spawn helpers that collect
 * output and never leak a child, and a fixture (scratch namespaces seeded with the orders drift, a
 * config file in a temp dir, its own Redis prefix) for the end-to-end suites.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/index.js';
import type { Database } from '../../src/dialect/dialect.js';
import type { Engine } from '../../src/dialect/types.js';
import { createLogger } from '../../src/logging/logger.js';
import { Runtime } from '../../jobs/runtime.js';
import { seedOrders, type Tables } from './orders-fixture.js';
import { deleteRedisKeys, dropScratch, openScratch, scanRedisKeys, scratchUrl } from './scratch.js';
import { testServers } from './servers.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_MAIN = join(ROOT, 'dist/src/cli/main.js');

const BUILD_LOCK = join(ROOT, 'dist/.cli-test-build.lock');
const BUILD_STAMP = join(ROOT, 'dist/.cli-test-build.stamp');
const SOURCE_DIRS = ['src', 'jobs', 'workers'];

function newestSourceMtime(): number {
  let newest = statSync(join(ROOT, 'tsconfig.json')).mtimeMs;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  for (const dir of SOURCE_DIRS) walk(join(ROOT, dir));
  return newest;
}

function stampMtime(): number {
  try {
    return statSync(BUILD_STAMP).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Compiles dist/ (`tsc -p tsconfig.json`, what `npm run build` does) unless it is newer than every
 * source file. Test files run in parallel processes: a directory lock keeps two of them from
 * writing dist/ at once, and the second finds the first one's build fresh.
 */
export async function buildCli(): Promise<void> {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(BUILD_LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // A lock older than any build is left by a killed test process.
      const lockedAt = statSync(BUILD_LOCK, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      if (Date.now() - lockedAt > 90_000) rmSync(BUILD_LOCK, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${BUILD_LOCK}`);
      await sleep(200);
    }
  }
  try {
    if (stampMtime() > newestSourceMtime()) return;
    const startedAt = Date.now();
    try {
      await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT });
    } catch (error) {
      // tsc still emits on type errors (noEmitOnError is off): other engineers' half-done edits
      // must not stop these tests; `npm test` type-checks separately and reports them.
      const output = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
      if (!/error TS\d+/.test(output)) throw error;
      console.warn(`tsc reported type errors; testing the emitted build anyway:\n${output.slice(0, 2000)}`);
    }
    writeFileSync(BUILD_STAMP, new Date(startedAt).toISOString());
    // Dated to the build's start: a source edited while tsc ran is newer, so the next call rebuilds.
    utimesSync(BUILD_STAMP, startedAt / 1000, startedAt / 1000);
  } finally {
    rmdirSync(BUILD_LOCK);
  }
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Added to (or, with `undefined`, removed from) the test process's environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The process is killed (SIGKILL) after this long. @defaultValue 60000 */
  readonly timeoutMs?: number;
}

const running = new Set<CliProcess>();

/** A running `rowsync` process: its output so far, its exit, and ways to wait for either. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly args: readonly string[],
    readonly child: ChildProcess,
    timeoutMs: number,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (this.stdout += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (this.stderr += text));
    this.timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    this.exited = new Promise((resolvePromise, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(this.timer);
        running.delete(this);
        resolvePromise({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
    running.add(this);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first match of `pattern` on stderr or stdout; rejects if the process exits first. */
  async waitForOutput(pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const match = pattern.exec(this.stderr) ?? pattern.exec(this.stdout);
      if (match) return match;
      if (exited || Date.now() > deadline) {
        throw new Error(`rowsync ${this.args.join(' ')}: no ${String(pattern)} ${exited ? 'before exit' : `within ${timeoutMs} ms`}\nstderr: ${this.stderr}\nstdout: ${this.stdout}`);
      }
      await sleep(50);
    }
  }

  /** Sends a signal and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<CliResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

function childEnv(overrides: Readonly<Record<string, string | undefined>> = {}): NodeJS.ProcessEnv {
  // Warnings and errors only: the assertions read stderr, and info logs would bury them.
  const env: NodeJS.ProcessEnv = { ...process.env, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_CLI_LOG_LEVEL ?? 'warn' };
  delete env.ROWSYNC_CONFIG;
  delete env.ROWSYNC_BOARD_USER;
  delete env.ROWSYNC_BOARD_PASSWORD;
  // Every long-running process serves /metrics; on any free port, so that the processes of parallel
  // test files never contend for the default one.
  env.ROWSYNC_METRICS_PORT = '0';
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** Starts `node dist/src/cli/main.js ...args` (build it first with `buildCli`). */
export function startCli(args: readonly string[], options: CliOptions = {}): CliProcess {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], {
    cwd: ROOT,
    env: childEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new CliProcess(args, child, options.timeoutMs ?? 60_000);
}

/** Runs `rowsync ...args` to its exit. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return startCli(args, options).exited;
}

/** SIGKILLs every process a test left running (a failed assertion must not leak workers). */
export async function killLeftoverProcesses(): Promise<void> {
  await Promise.all([...running].map((process) => process.stop('SIGKILL')));
}

/** The single JSON object a `--json` command printed on stdout (fails on anything else there). */
export function parseJsonOutput<T = Record<string, unknown>>(result: CliResult): T {
  const lines = result.stdout.split('\n').filter((line) => line.trim() !== '');
  if (lines.length !== 1) throw new Error(`expected one JSON line on stdout, got ${lines.length}:\n${result.stdout}\nstderr: ${result.stderr}`);
  return JSON.parse(lines[0]!) as T;
}

export function describeResult(result: CliResult): string {
  return `exit ${result.code}${result.signal ? ` (${result.signal})` : ''}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

export interface StatusRun {
  readonly runId: string;
  readonly pipeline: string;
  readonly state: string;
  readonly dryRun: boolean;
  readonly tables?: number;
  readonly durationMs?: number;
  readonly progress: Record<string, number>;
}

export interface StatusOutput {
  readonly workers: number;
  readonly queues: { queue: string; counts: Record<string, number>; workers: number }[];
  readonly runs: StatusRun[];
}

/** `rowsync status --json`, parsed. */
export async function cliStatus(configFile: string): Promise<StatusOutput> {
  const result = await runCli(['status', '--config', configFile, '--json']);
  if (result.code !== 0) throw new Error(`rowsync status: ${describeResult(result)}`);
  return parseJsonOutput<StatusOutput>(result);
}

/** Polls `rowsync status --json` until `predicate` holds. */
export async function waitForStatus(configFile: string, predicate: (status: StatusOutput) => boolean, timeoutMs = 40_000): Promise<StatusOutput> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await cliStatus(configFile);
    if (predicate(status)) return status;
    if (Date.now() > deadline) throw new Error(`status never matched within ${timeoutMs} ms: ${JSON.stringify(status)}`);
    await sleep(300);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

export interface CliFixture {
  readonly dir: string;
  readonly prefix: string;
  /** The config file of pipeline `p` (src -> dst), as the CLI reads it. */
  readonly configFile: string;
  /** The object written to `configFile`, to derive broken or changed variants from. */
  readonly configInput: Record<string, unknown> & { pipelines: Record<string, unknown>[] };
  readonly source: Database;
  readonly target: Database;
  readonly tables: Tables;
  /** The same queues the CLI uses, for inspection and cleanup. */
  readonly runtime: Runtime;
  /** Writes a variant of the config (a function of the original input) and returns its path. */
  writeConfig(name: string, change: (input: CliFixture['configInput']) => unknown): string;
  close(): Promise<void>;
}

/**
 * Scratch namespaces `<tag>_src` / `<tag>_dst` seeded with the orders drift, and a config file
 * with pipeline `p` under a Redis prefix of its own.
 */
export async function createCliFixture(options: {
  readonly tag: string;
  readonly sourceEngine: Engine;
  readonly targetEngine: Engine;
  readonly tables?: readonly string[];
  readonly reconcile?: Record<string, unknown>;
  readonly workers?: Record<string, unknown>;
}): Promise<CliFixture> {
  const dir = mkdtempSync(join(tmpdir(), `rowsync-${options.tag}-`));
  const prefix = `t-${options.tag}-${randomBytes(3).toString('hex')}`;
  const sourceNamespace = `${options.tag}_src`;
  const targetNamespace = `${options.tag}_dst`;
  const source = await openScratch(options.sourceEngine, sourceNamespace, 'src');
  const target = await openScratch(options.targetEngine, targetNamespace, 'dst');
  const tables = await seedOrders(source, target);
  const configInput = {
    redis: { url: testServers().redisUrl, prefix },
    connections: {
      src: scratchUrl(options.sourceEngine, sourceNamespace),
      dst: scratchUrl(options.targetEngine, targetNamespace),
    },
    pipelines: [
      {
        name: 'p',
        source: 'src',
        targets: ['dst'],
        tables: options.tables ?? ['orders', 'order_lines'],
        reconcile: { chunkSize: 400, attempts: 2, backoffMs: 100, ...options.reconcile },
      },
    ],
    workers: { lanes: 4, ...options.workers },
  };
  const configFile = writeJson(dir, 'rowsync.json', configInput);
  const runtime = new Runtime(parseConfig(configInput, { file: configFile }), createLogger({ level: 'silent' }));
  return {
    dir,
    prefix,
    configFile,
    configInput,
    source,
    target,
    tables,
    runtime,
    writeConfig(name, change) {
      return writeJson(dir, name, change(structuredClone(configInput)));
    },
    async close() {
      await killLeftoverProcesses();
      await Promise.all(runtime.queues.all().map((queue) => queue.obliterate({ force: true }).catch(() => undefined)));
      await deleteKeys(runtime, `${prefix}*`);
      await runtime.close();
      await source.close();
      await target.close();
      await dropScratch(options.sourceEngine, sourceNamespace);
      await dropScratch(options.targetEngine, targetNamespace);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Redis keys matching a pattern (SCAN, not KEYS: the test Redis is shared by parallel files; every master of a cluster). */
export async function scanKeys(runtime: Runtime, pattern: string): Promise<string[]> {
  return scanRedisKeys(runtime.redis, pattern);
}

/** Removes what obliterate leaves (run progress hashes, semaphores, queue meta of other prefixes). */
export async function deleteKeys(runtime: Runtime, pattern: string): Promise<void> {
  await deleteRedisKeys(runtime.redis, pattern);
}
