import { describe, expect, it } from 'vitest';
import { jobLogContext, withLogContext } from '../../src/logging/log-context.js';
import { createLogger, prettyLine, redactSecrets } from '../../src/logging/logger.js';

const SECRET = 'Sup3r-S3cret-pw-7731';

/** A destination that keeps what the logger wrote (pino writes one JSON line per entry). */
function capture(): { lines: string[]; write: (line: string) => void } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(...line.split('\n').filter((text) => text !== '')) };
}

describe('redactSecrets', () => {
  it.each([
    [`mysql://rowsync:${SECRET}@127.0.0.1:3306/shop`, 'mysql://rowsync:***@127.0.0.1:3306/shop'],
    [`connect to postgres://app:${SECRET}@db/x failed`, 'connect to postgres://app:***@db/x failed'],
    [`password=${SECRET} user=app`, 'password=*** user=app'],
    [`{"password":"${SECRET}","user":"app"}`, '{"password":"***","user":"app"}'],
    [`PGPASSWORD: ${SECRET}`, 'PGPASSWORD: ***'],
    [`ALTER USER app IDENTIFIED BY '${SECRET}'`, "ALTER USER app IDENTIFIED BY '***'"],
    [`CREATE ROLE app LOGIN PASSWORD '${SECRET}'`, "CREATE ROLE app LOGIN PASSWORD '***'"],
  ])('hides the secret in %s', (text, expected) => {
    expect(redactSecrets(text)).toBe(expected);
    expect(redactSecrets(text)).not.toContain(SECRET);
  });

  it('leaves a word alone that merely equals a password somewhere (names stay readable)', () => {
    // The test servers' password is `rowsync`, which is also the prefix of every test database.
    const text = "connection dst (mysql): unknown database 'rowsync_mysql_dialect' on rowsync";
    expect(redactSecrets(text)).toBe(text);
    const denied = "connection src (mysql): access denied: access denied for user 'rowsync'@'localhost' (using password: YES)";
    expect(redactSecrets(denied)).toBe(denied);
  });
});

describe('createLogger', () => {
  it('writes JSON lines with the bindings of its children and no secret anywhere', () => {
    const sink = capture();
    const logger = createLogger({ level: 'info', format: 'json', destination: sink });
    const job = logger.child({ runId: 'p.1', pipeline: 'p', table: 'orders', chunk: 3 });
    job.warn({ err: new Error(`cannot reach mysql://app:${SECRET}@db/x`), target: 'dst' }, 'chunk failed: %s', `password=${SECRET}`);
    job.info({ connection: { url: `mysql://app:${SECRET}@db/x`, password: SECRET } }, 'opened');
    expect(sink.lines).toHaveLength(2);
    for (const line of sink.lines) expect(line).not.toContain(SECRET);
    const first = JSON.parse(sink.lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 'warn', runId: 'p.1', pipeline: 'p', table: 'orders', chunk: 3, target: 'dst', msg: 'chunk failed: password=***' });
    expect(JSON.stringify(first.err)).toContain('mysql://app:***@db/x');
  });

  it('writes one readable line per entry in the pretty format', () => {
    const sink = capture();
    const logger = createLogger({ level: 'info', format: 'pretty', destination: sink });
    logger.child({ runId: 'p.1', table: 'orders' }).info({ rows: 10 }, 'table done');
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}table done runId=p\.1 table=orders rows=10$/);
  });

  it('passes a non-JSON line through the pretty format unchanged', () => {
    expect(prettyLine('plain text\n')).toBe('plain text');
  });
});

describe('job log context', () => {
  it("puts the running job's run id, pipeline, table, target and chunk on every line it writes, across awaits", async () => {
    const sink = capture();
    const logger = createLogger({ level: 'info', format: 'json', destination: sink });
    const payload = { runId: 'p.1', pipeline: 'p', table: 'orders', target: 'dst', index: 7, range: {}, dryRun: false };
    await withLogContext(jobLogContext('reconcile-chunk', 'job-1', payload), async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      logger.warn('deep inside the job');
    });
    logger.info('outside any job');
    expect(JSON.parse(sink.lines[0]!)).toMatchObject({
      msg: 'deep inside the job', queue: 'reconcile-chunk', jobId: 'job-1', runId: 'p.1', pipeline: 'p', table: 'orders', target: 'dst', chunk: 7,
    });
    expect(JSON.parse(sink.lines[1]!)).not.toHaveProperty('runId');
  });

  it('names a CDC batch by its sequence number and part', () => {
    expect(jobLogContext('cdc-batch', 'b', { pipeline: 'p', target: 'dst', seq: 12, part: 0, from: 'src' })).toEqual({
      queue: 'cdc-batch', jobId: 'b', pipeline: 'p', target: 'dst', batch: '12.0',
    });
  });
});
