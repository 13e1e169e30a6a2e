import { createHash } from 'node:crypto';
import type { Config } from './config-schema.js';

/**
 * What a job needs of the configuration that enqueued it, as a short hash: the pipeline's name,
 * mode and tables (with their target names, filters and excluded columns), and the address of every database it touches (engine, host, port, database or
 * schema, user; never a password). A worker runs a job only when its own config gives the same hash
 * for the job's pipeline: a process started with another config (another checkout, another
 * environment sharing the Redis prefix by mistake) leaves the job to a worker that can run it,
 * instead of failing it with the wrong credentials or databases.
 */
export function pipelineFingerprint(config: Config, pipelineName: string): string | undefined {
  // Every job a worker takes asks: computed once per config (frozen) and pipeline.
  let byPipeline = computed.get(config);
  if (!byPipeline) computed.set(config, (byPipeline = new Map()));
  if (!byPipeline.has(pipelineName)) byPipeline.set(pipelineName, fingerprintOf(config, pipelineName));
  return byPipeline.get(pipelineName);
}

const computed = new WeakMap<Config, Map<string, string | undefined>>();

function fingerprintOf(config: Config, pipelineName: string): string | undefined {
  const pipeline = config.pipelines.find((candidate) => candidate.name === pipelineName);
  if (!pipeline) return undefined;
  const address = (connection: string) => {
    const url = config.connections[connection]?.url;
    return url ? connectionAddress(url) : `unknown:${connection}`;
  };
  const identity = {
    pipeline: pipeline.name,
    mode: pipeline.mode,
    tables: pipeline.tables ?? null,
    tableOptions: pipeline.tableOptions,
    source: address(pipeline.source),
    targets: pipeline.targets.map(address),
  };
  return createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16);
}

/** `engine://user@host:port/database?schema=...` without the password or other parameters. */
export function connectionAddress(url: string): string {
  try {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get('schema') ?? parsed.searchParams.get('search_path') ?? '';
    return `${parsed.protocol}//${decodeURIComponent(parsed.username)}@${parsed.hostname}:${parsed.port}${parsed.pathname}${schema ? `?schema=${schema}` : ''}`;
  } catch {
    return 'unparsable';
  }
}
