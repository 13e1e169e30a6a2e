import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Runtime } from '../../jobs/runtime.js';
import { clusterRegistry, type ClusterMetricsOptions } from './cluster-metrics.js';
import { HealthChecker, type HealthOptions } from './health.js';
import { processRegistry } from './instruments.js';

export interface MetricsServerOptions {
  /** 0: any free port (see `MetricsServer.port`). */
  readonly port: number;
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  readonly cluster?: ClusterMetricsOptions;
  readonly health?: HealthOptions;
}

export interface MetricsServer {
  /** `http://host:port/` (the endpoints are `metrics` and `healthz` below it). */
  readonly url: string;
  readonly host: string;
  /** The port listened on (the chosen one when 0 was asked for). */
  readonly port: number;
  /** Stops listening, drops open connections, closes the health checks' connections. */
  close(): Promise<void>;
}

/**
 * Serves this process's metrics and health over HTTP:
 * - `GET /metrics`: Prometheus text format: this process's work (instruments.ts), Node's process
 *   metrics, and the cluster gauges read from Redis and the conflict logs (cluster-metrics.ts).
 * - `GET /healthz`: 200 `{"status":"ok",...}` when Redis and every configured database answer, else
 *   503 `{"status":"unavailable","unreachable":["redis","connections.dst"],...}` (health.ts).
 * Rejects (the server's `error`, e.g. EADDRINUSE) when it cannot listen.
 */
export async function startMetricsServer(runtime: Runtime, options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const registry = Registry.merge([processRegistry(), clusterRegistry(runtime, options.cluster)]);
  const health = new HealthChecker(runtime, options.health);
  const server = createServer((request, response) => {
    handle(request, response, registry, health).catch((error: unknown) => {
      if (!response.headersSent) respond(response, 500, 'text/plain; charset=utf-8', `${error instanceof Error ? error.message : String(error)}\n`);
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => {
      server.off('listening', listening);
      reject(error);
    };
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(options.port, host);
  }).catch(async (error: unknown) => {
    await health.close();
    throw error;
  });
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    host,
    port,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await health.close();
    },
  };
}

async function handle(request: IncomingMessage, response: ServerResponse, registry: Registry, health: HealthChecker): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://metrics').pathname;
  if (path !== '/metrics' && path !== '/healthz') {
    respond(response, 404, 'text/plain; charset=utf-8', 'not found: GET /metrics or /healthz\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    respond(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  if (path === '/metrics') {
    respond(response, 200, registry.contentType, await registry.metrics(), request.method === 'HEAD');
    return;
  }
  const report = await health.check();
  respond(response, report.status === 'ok' ? 200 : 503, 'application/json; charset=utf-8', `${JSON.stringify(report)}\n`, request.method === 'HEAD');
}

function respond(response: ServerResponse, status: number, contentType: string, body: string, headOnly = false): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(headOnly ? undefined : body);
}
