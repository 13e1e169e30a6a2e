import { randomBytes } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Runtime } from '../../jobs/runtime.js';
import { readOverview } from './overview-data.js';
import { renderOverviewPage } from './overview-page.js';

export const OVERVIEW_PATH = '/overview';
export const OVERVIEW_JSON_PATH = '/overview.json';

/**
 * `GET /overview` (the page) and `GET /overview.json` (the same data), mounted by workers/board.ts
 * behind the board's own authentication. Read fresh on every request: nothing is cached, so the page
 * shows what Redis and the target databases hold now.
 */
export function overviewRouter(runtime: Runtime): express.Router {
  const router = express.Router();
  router.get(OVERVIEW_JSON_PATH, async (_request: Request, response: Response) => {
    const data = await gather(runtime, response);
    if (data) response.setHeader('Cache-Control', 'no-store').json(data);
  });
  router.get(OVERVIEW_PATH, async (_request: Request, response: Response) => {
    const data = await gather(runtime, response);
    if (!data) return;
    const nonce = randomBytes(16).toString('base64');
    response
      .setHeader('Cache-Control', 'no-store')
      // Only the page's own inline style and script run; nothing is fetched from anywhere.
      .setHeader(
        'Content-Security-Policy',
        `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      )
      .type('html')
      .send(renderOverviewPage(data, nonce));
  });
  return router;
}

/** The overview's data, or undefined after answering 503 when Redis or a query failed. */
async function gather(runtime: Runtime, response: Response) {
  try {
    return await readOverview(runtime);
  } catch (error) {
    runtime.logger.warn({ err: (error as Error).message }, 'overview: cannot read the status');
    response.status(503).type('text').send(`rowsync overview: cannot read the status now (${(error as Error).message})`);
    return undefined;
  }
}
