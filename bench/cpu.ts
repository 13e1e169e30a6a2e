/**
 * CPU accounting per phase from /proc (Linux): the whole machine, and the servers the bench started
 * (MariaDB's threads are one process; PostgreSQL forks a backend per connection, whose CPU reaches
 * the postmaster's cumulative children time when it exits). On a 2-core machine this tells whether a
 * phase waited on MariaDB, PostgreSQL, Node or nothing. Other users of the same servers (a test run
 * in parallel) are counted too: the machine's total says when that happened.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export interface CpuSnapshot {
  readonly at: number;
  readonly busyTicks: number;
  readonly totalTicks: number;
  readonly mariadb?: number;
  readonly redis?: number;
  /** CPU of this (bench) process, microseconds. */
  readonly self: number;
  /** Per live postgres process: own CPU; plus the postmaster's reaped-children CPU. */
  readonly postgres?: { readonly live: ReadonlyMap<number, number>; readonly reaped: number };
}

export interface CpuPhase {
  readonly wallMs: number;
  /** Cores' worth of CPU the whole machine used (2.0 = both cores of a 2-core machine, busy). */
  readonly machineCores: number;
  readonly machineCpuMs: number;
  readonly mariadbCpuMs?: number;
  readonly postgresCpuMs?: number;
  readonly redisCpuMs?: number;
  /** The bench process itself (setup connections, the in-process profile run). */
  readonly selfCpuMs: number;
  /** The tool's own process (rowsync CLI, pt-table-sync), when known. */
  readonly toolCpuMs?: number;
  /**
   * Cores used by everything else (machine minus servers, bench and tool): anything above ~0.1 means
   * something outside the benchmark competed for the CPU and inflated this phase's time.
   */
  readonly otherCores: number;
}

function statFields(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may contain spaces: field 3 (state) is index 0.
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime (own), cutime + cstime (reaped children), in ticks. */
function processTicks(pid: number): { own: number; children: number } | undefined {
  const fields = statFields(pid);
  if (!fields) return undefined;
  return { own: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
}

function postgresProcesses(postmaster: number): Map<number, number> {
  const live = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const fields = statFields(pid);
    // Field 4 (ppid) is index 1.
    if (!fields || (pid !== postmaster && Number(fields[1]) !== postmaster)) continue;
    live.set(pid, Number(fields[11]) + Number(fields[12]));
  }
  return live;
}

export function cpuSnapshot(pids: { mariadb?: number; postgres?: number; redis?: number }): CpuSnapshot {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal: idle, iowait and steal (time the hypervisor
  // gave to another guest) are not work done on this machine.
  const idle = (values[3] ?? 0) + (values[4] ?? 0) + (values[7] ?? 0);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  const snapshot: {
    at: number; busyTicks: number; totalTicks: number; mariadb?: number; redis?: number;
    postgres?: { live: Map<number, number>; reaped: number }; self: number;
  } = { at: performance.now(), busyTicks: total - idle, totalTicks: total, self: cpuMicros() };
  if (pids.mariadb) snapshot.mariadb = processTicks(pids.mariadb)?.own;
  if (pids.redis) snapshot.redis = processTicks(pids.redis)?.own;
  if (pids.postgres) {
    const postmaster = processTicks(pids.postgres);
    if (postmaster) snapshot.postgres = { live: postgresProcesses(pids.postgres), reaped: postmaster.children };
  }
  return snapshot;
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** CPU time of a process so far (ms), or undefined once it is gone. */
export function processCpuMs(pid: number): number | undefined {
  const ticks = processTicks(pid);
  return ticks === undefined ? undefined : (ticks.own * 1000) / TICKS_PER_SECOND;
}

export function cpuPhase(before: CpuSnapshot, after: CpuSnapshot, toolCpuMs?: number): CpuPhase {
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  const wallMs = after.at - before.at;
  const machineCpuMs = ms(after.busyTicks - before.busyTicks);
  const selfCpuMs = (after.self - before.self) / 1000;
  const phase: {
    wallMs: number; machineCores: number; machineCpuMs: number; mariadbCpuMs?: number; postgresCpuMs?: number; redisCpuMs?: number;
    selfCpuMs: number; toolCpuMs?: number; otherCores: number;
  } = { wallMs, machineCpuMs, machineCores: wallMs > 0 ? machineCpuMs / wallMs : 0, selfCpuMs, otherCores: 0 };
  if (toolCpuMs !== undefined) phase.toolCpuMs = toolCpuMs;
  if (before.mariadb !== undefined && after.mariadb !== undefined) phase.mariadbCpuMs = ms(after.mariadb - before.mariadb);
  if (before.redis !== undefined && after.redis !== undefined) phase.redisCpuMs = ms(after.redis - before.redis);
  if (before.postgres && after.postgres) {
    let ticks = after.postgres.reaped - before.postgres.reaped;
    for (const [pid, value] of after.postgres.live) ticks += value - (before.postgres.live.get(pid) ?? 0);
    // A backend that exited in between: its whole lifetime is in `reaped`; its earlier part was counted before.
    for (const [pid, value] of before.postgres.live) if (!after.postgres.live.has(pid)) ticks -= value;
    phase.postgresCpuMs = ms(ticks);
  }
  const known = (phase.mariadbCpuMs ?? 0) + (phase.postgresCpuMs ?? 0) + (phase.redisCpuMs ?? 0) + selfCpuMs + (toolCpuMs ?? 0);
  phase.otherCores = wallMs > 0 ? Math.max(0, machineCpuMs - known) / wallMs : 0;
  return phase;
}

/** Measures `work` with CPU accounting. */
export async function measured<T>(pids: { mariadb?: number; postgres?: number; redis?: number }, work: () => Promise<T>): Promise<{ value: T; cpu: CpuPhase }> {
  const before = cpuSnapshot(pids);
  const value = await work();
  return { value, cpu: cpuPhase(before, cpuSnapshot(pids)) };
}

/**
 * Cores the machine keeps busy while the bench itself is idle (sampled for `ms`): on a shared machine
 * (a test suite running against the same servers) the next timed phase would be slowed by that much.
 */
export async function idleLoad(ms = 1000): Promise<number> {
  const before = cpuSnapshot({});
  await new Promise((resolve) => setTimeout(resolve, ms));
  return cpuPhase(before, cpuSnapshot({})).machineCores;
}

/** Waits (at most `maxMs`) until the machine is quiet; returns the last load seen. */
export async function waitForQuiet(maxMs: number, threshold = 0.25, log?: (message: string) => void): Promise<number> {
  const deadline = performance.now() + maxMs;
  let load = await idleLoad();
  while (load > threshold && performance.now() < deadline) {
    log?.(`machine busy (${load.toFixed(2)} cores used by other processes): waiting for it to calm down`);
    load = await idleLoad(2000);
  }
  return load;
}

/** A phase's CPU as cores busy on average, per process, for the benches' printouts. */
export function cpuText(cpu: CpuPhase, toolName = 'tool process'): string {
  const parts = [`machine ${cpu.machineCores.toFixed(2)} cores`];
  const share = (name: string, ms: number | undefined) => {
    if (ms !== undefined) parts.push(`${name} ${(ms / cpu.wallMs).toFixed(2)}`);
  };
  share('mariadb', cpu.mariadbCpuMs);
  share('postgres', cpu.postgresCpuMs);
  share('redis', cpu.redisCpuMs);
  share(toolName, cpu.toolCpuMs);
  share('bench process', cpu.selfCpuMs);
  parts.push(`other ${cpu.otherCores.toFixed(2)}${cpu.otherCores > 0.15 ? ' (NOISY: something else used the CPU)' : ''}`);
  return parts.join(', ');
}
