/**
 * Where a profiled `rowsync cdc` child spent its CPU: the V8 profile Node writes with `--cpu-prof`
 * at exit, its self time summed per code area (a package under node_modules, rowsync's own files,
 * Node internals, garbage collection) and per function.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  /** Profiled wall time (ms). */
  readonly wallMs: number;
  /** Sampled time not idle (ms). */
  readonly busyMs: number;
  readonly areas: { readonly area: string; readonly ms: number }[];
  readonly functions: { readonly name: string; readonly area: string; readonly ms: number }[];
}

function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (V8/native)';
    return functionName || 'native';
  }
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const own = /\/dist\/((?:src|jobs|workers|bench)\/(?:[^/]+\/)?)/.exec(url);
  if (own) return `rowsync ${own[1]}`;
  return url;
}

/** Summarises the newest .cpuprofile in `dir` (undefined when there is none). */
export function summarizeProfile(dir: string, top = 25): ProfileSummary | undefined {
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).sort();
  const file = files[files.length - 1];
  if (!file) return undefined;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index += 1) {
    const id = profile.samples[index]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, { name: string; area: string; us: number }>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    if (area !== 'idle') busyUs += us;
    const name = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|dist)\//, '')}:${lineNumber + 1}` : ''}`.trim();
    const entry = functions.get(name) ?? { name, area, us: 0 };
    entry.us += us;
    functions.set(name, entry);
  }
  return {
    wallMs: (profile.endTime - profile.startTime) / 1000,
    busyMs: busyUs / 1000,
    areas: [...areas].map(([area, us]) => ({ area, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()].map((entry) => ({ name: entry.name, area: entry.area, ms: entry.us / 1000 })).sort((a, b) => b.ms - a.ms).slice(0, top),
  };
}
