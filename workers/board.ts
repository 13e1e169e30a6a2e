import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import { isIP } from 'node:net';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ConfigError } from '../src/errors/index.js';
import type { Runtime } from '../jobs/runtime.js';
import { OVERVIEW_PATH, overviewRouter } from './overview/overview-routes.js';

export const BOARD_USER_ENV = 'ROWSYNC_BOARD_USER';
export const BOARD_PASSWORD_ENV = 'ROWSYNC_BOARD_PASSWORD';

export interface BoardOptions {
  readonly host: string;
  readonly port: number;
  readonly user?: string;
  readonly password?: string;
}

export interface RunningBoard {
  readonly url: string;
  /** The overview page (same server, same auth). */
  readonly overviewUrl: string;
  close(): Promise<void>;
}

/**
 * Bull Board at `/` (its API under `/api/`) over every rowsync queue, with retries enabled: a failed
 * chunk or apply job retried there (`PUT /api/queues/<queue>/retry/failed`, or the job's own retry)
 * completes its run. Beside it, the overview page at `/overview` (data at `/overview.json`):
 * pipelines, runs, CDC lag, dead letters and conflicts, linking to the queues in Bull Board.
 * Basic auth on every path when user and password are set; without them the board refuses to
 * listen anywhere but loopback, since it can retry, promote and delete jobs.
 */
export async function startBoard(runtime: Runtime, options: BoardOptions): Promise<RunningBoard> {
  const withAuth = Boolean(options.user && options.password);
  if (Boolean(options.user) !== Boolean(options.password)) {
    throw new ConfigError(`${BOARD_USER_ENV} and ${BOARD_PASSWORD_ENV} must be set together`, { subject: BOARD_USER_ENV });
  }
  if (!withAuth && !isLoopback(options.host)) {
    throw new ConfigError(
      `--host: refusing to serve the board on ${options.host} without ${BOARD_USER_ENV} and ${BOARD_PASSWORD_ENV} (basic auth)`,
      { subject: '--host' },
    );
  }
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('');
  createBullBoard({
    queues: runtime.queues.all().map((queue) => new BullMQAdapter(queue, { allowRetries: true, readOnlyMode: false })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'rowsync', miscLinks: [{ text: 'rowsync overview', url: OVERVIEW_PATH }] } },
  });
  const app = express();
  app.disable('x-powered-by');
  // First: the overview and Bull Board share it.
  if (withAuth) app.use(basicAuth(options.user!, options.password!));
  app.use('/', overviewRouter(runtime));
  app.use('/', serverAdapter.getRouter() as express.Router);

  const server = await new Promise<Server>((resolve, reject) => {
    const listening = app.listen(options.port, options.host, () => resolve(listening));
    listening.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/`,
    overviewUrl: `http://${host}:${port}${OVERVIEW_PATH}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function basicAuth(user: string, password: string) {
  const expected = Buffer.from(`${user}:${password}`);
  return (request: Request, response: Response, next: NextFunction) => {
    const header = request.headers.authorization ?? '';
    const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64') : Buffer.alloc(0);
    if (given.length === expected.length && timingSafeEqual(given, expected)) {
      next();
      return;
    }
    response.setHeader('WWW-Authenticate', 'Basic realm="rowsync"');
    response.status(401).send('authentication required');
  };
}
