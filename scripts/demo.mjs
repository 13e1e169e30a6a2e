#!/usr/bin/env node
// `npm run demo`: rowsync's main job, end to end, on the project's throwaway servers.
//
//   1. starts (or reuses) Redis, MariaDB and PostgreSQL with `bash scripts/services.sh start`;
//   2. recreates a MariaDB database `shop` (customers, products, orders, order_lines: ~12,000 rows)
//      and a PostgreSQL copy in schema `shop` of the database `rowsync`, with known drift per table:
//      changed rows, rows missing from the copy, rows only the copy has;
//   3. runs `rowsync reconcile` through the real CLI (progress on stderr), which finds and repairs it;
//   4. runs it again, which finds nothing; checks both reports against the injected drift;
//   5. turns on change-data-capture (`rowsync cdc setup`, then a `rowsync cdc --workers 2` process
//      reading MariaDB's binlog), changes rows in MariaDB and shows them arriving in PostgreSQL;
//   6. runs a bidirectional pipeline (`notes` in both databases, `conflict: timestamp`): rows written
//      on either side reach the other, one row edited on both sides is a conflict the newer edit wins,
//      shown by the run report and `rowsync conflicts list`.
// Exit code 0 when both reports are what they must be. Running it again starts from scratch: the demo
// database, schema and Redis prefix (`rowsync-demo`) are recreated, nothing else is touched.
//
// Inputs: examples/demo.config.yml; ROWSYNC_*_PORT / ROWSYNC_TEST_*_URL as for scripts/services.sh.
// Imports rowsync from dist/ (built by `npm ci`; rebuilt here when missing or older than the sources).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const EXAMPLE_CONFIG = 'examples/demo.config.yml';
const PIPELINE = 'shop-to-pg';
const CLI = 'dist/src/cli/main.js';

const bold = (text) => (process.stdout.isTTY ? `\x1b[1m${text}\x1b[22m` : text);
const say = (text = '') => process.stdout.write(`${text}\n`);
const fmt = (n) => n.toLocaleString('en-US');

class DemoError extends Error {
  name = 'DemoError';
}

// ------------------------------------------------------------------------------------------------
// The demo shop. Deterministic: every run seeds the same rows and the same drift.

const pad = (n, width = 2) => String(n).padStart(width, '0');
const money = (cents) => `${Math.floor(cents / 100)}.${pad(cents % 100)}`;
const cents = (text) => Number(text.replace('.', ''));

/** 'YYYY-MM-DD HH:MM:SS.ffffff' from epoch seconds and microseconds (below 999999, so +1 µs never carries). */
function datetime(seconds, micros) {
  const d = new Date(seconds * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(micros, 6)}`;
}
const plusOneMicro = (text) => text.replace(/\.(\d{6})$/, (_, f) => `.${pad(Number(f) + 1, 6)}`);

const FIRST = ['Ada', 'Grace', 'Linus', 'Margaret', 'Ken', 'Barbara', 'Dennis', 'Frances', 'Edsger', 'Radia', 'Chloé', 'Jürgen'];
const LAST = ['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Thompson', 'Liskov', 'Ritchie', 'Allen', 'Dijkstra', 'Perlman', 'Dubois', 'Müller'];
const COUNTRIES = ['DE', 'FR', 'US', 'GB', 'NL', 'SE', 'JP', 'BR'];
const CATEGORIES = ['Mug', 'Shirt', 'Poster', 'Sticker', 'Cap'];
const COLORS = ['Red', 'Blue', 'Green', 'Black', 'White', 'Teal', 'Orange', 'Grey'];
const STATUSES = ['new', 'paid', 'shipped', 'delivered', 'returned'];
const CHANNELS = ['web', 'app', 'phone'];
// Order ids start above 2^53: JavaScript numbers cannot hold them, rowsync keeps them exact end to end.
const FIRST_ORDER_ID = 2n ** 53n + 1n;

function customerRow(id) {
  const first = FIRST[id % FIRST.length];
  const last = LAST[(id * 7) % LAST.length];
  return {
    id,
    name: `${first} ${last}`,
    email: id % 23 === 0 ? null : `${first}.${last}${id}@example.com`.toLowerCase(),
    country: COUNTRIES[id % COUNTRIES.length],
    vip: id % 17 === 0,
    created_at: datetime(1_672_531_200 + id * 10_800, (id * 37) % 999_999),
  };
}

function productRows() {
  const rows = [];
  for (const category of CATEGORIES) {
    for (const color of COLORS) {
      for (let size = 1; size <= 10; size += 1) {
        const sku = `${category}-${color}-${pad(size)}`;
        const n = rows.length;
        rows.push({
          sku,
          name: `${category.toLowerCase()}, ${color.toLowerCase()} #${pad(size)}`,
          description: n % 9 === 0 ? null : n % 4 === 0 ? `${category} « ${color} », édition limitée ☕` : `${color} ${category.toLowerCase()}`,
          price: money(499 + ((n * 137) % 4000)),
          weight_kg: n % 11 === 0 ? null : Math.round((0.05 + (n % 40) * 0.0375) * 10_000) / 10_000,
          stock: (n * 13) % 250,
        });
      }
    }
  }
  // Keys that differ only by case are different products: MariaDB needs a binary collation for that.
  for (let n = 0; n < 20; n += 1) {
    const twin = rows[n * 17];
    rows.push({ ...twin, sku: twin.sku.toUpperCase(), name: `${twin.name} (XL edition)`, price: money(cents(twin.price) + 300) });
  }
  return rows;
}

function orderAndLineRows(products) {
  const orders = [];
  const lines = [];
  for (let i = 0; i < 3000; i += 1) {
    // Ids step by 2, so the copy can hold extra orders between two source keys.
    const id = FIRST_ORDER_ID + 2n * BigInt(i);
    let total = 0;
    const lineCount = 1 + (i % 4);
    for (let line = 1; line <= lineCount; line += 1) {
      const product = products[(i * 31 + line * 7) % products.length];
      const qty = 1 + ((i + line) % 5);
      total += qty * cents(product.price);
      lines.push({ order_id: id, line_no: line, sku: product.sku, qty, unit_price: product.price });
    }
    orders.push({
      id,
      customer_id: 1 + ((i * 7) % 1000),
      status: STATUSES[i % STATUSES.length],
      total: money(total),
      placed_at: datetime(1_704_067_200 + i * 2_917, (i * 7919) % 999_999),
      details: JSON.stringify({
        channel: CHANNELS[i % CHANNELS.length],
        gift: i % 10 === 0,
        coupon: i % 7 === 0 ? `SPRING${i % 30}` : null,
        tags: i % 3 === 0 ? ['first-order'] : [],
      }),
    });
  }
  return { orders, lines };
}

const jsonEdit = (edit) => (row) => ({ ...row, details: JSON.stringify(edit(JSON.parse(row.details))) });

/**
 * Tables with their DDL on both engines, their source rows and the drift the PostgreSQL copy gets.
 * Drift positions index the source rows; `changed[i]` gets mutation i mod the number of mutations.
 */
function shop() {
  const products = productRows();
  const { orders, lines } = orderAndLineRows(products);
  return [
    {
      name: 'customers',
      about: 'INT key, NULLs, BOOLEAN, DATETIME(6)',
      key: ['id'],
      mysql: 'CREATE TABLE customers (id INT NOT NULL PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NULL, ' +
        'country CHAR(2) NOT NULL, vip BOOLEAN NOT NULL, created_at DATETIME(6) NOT NULL)',
      postgres: 'CREATE TABLE customers (id integer PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200) NULL, ' +
        'country char(2) NOT NULL, vip boolean NOT NULL, created_at timestamp(6) NOT NULL)',
      rows: Array.from({ length: 1000 }, (_, index) => customerRow(index + 1)),
      drift: {
        changed: [16, 100, 201, 302, 403, 504, 605, 706],
        mutations: [
          ['email case', (row) => ({ ...row, email: row.email.replace(/^./, (c) => c.toUpperCase()) })],
          ['trailing space in name', (row) => ({ ...row, name: `${row.name} ` })],
          ['vip flipped', (row) => ({ ...row, vip: !row.vip })],
          ['created_at +1 µs', (row) => ({ ...row, created_at: plusOneMicro(row.created_at) })],
        ],
        // The first and the last key: ranges must reach the ends of the table.
        missing: [0, 250, 750, 999],
        extra: [customerRow(0), customerRow(1001), customerRow(1002)],
      },
    },
    {
      name: 'products',
      about: "VARCHAR key, case-sensitive ('Mug-Red-01' and 'MUG-RED-01' are two products), DECIMAL, DOUBLE",
      key: ['sku'],
      mysql: 'CREATE TABLE products (sku VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, ' +
        'name VARCHAR(200) NOT NULL, description TEXT NULL, price DECIMAL(10,2) NOT NULL, weight_kg DOUBLE NULL, stock INT NOT NULL)',
      postgres: 'CREATE TABLE products (sku varchar(40) PRIMARY KEY, name varchar(200) NOT NULL, description text NULL, ' +
        'price numeric(10,2) NOT NULL, weight_kg double precision NULL, stock integer NOT NULL)',
      rows: products,
      drift: {
        changed: [5, 44, 90, 133, 211, 377],
        mutations: [
          ['price +0.01', (row) => ({ ...row, price: money(cents(row.price) + 1) })],
          ['name case', (row) => ({ ...row, name: row.name.replace(/^./, (c) => c.toUpperCase()) })],
          ["NULL vs ''", (row) => ({ ...row, description: row.description === null ? '' : null })],
        ],
        missing: [0, 60, 250, 399],
        extra: [
          { ...products[1], sku: 'mug-red-02', name: 'lower-case twin, only in the copy' },
          { ...products[2], sku: 'Aaa-Test-00', name: 'sorts before every source key' },
          { ...products[3], sku: 'zzz-test-99', name: 'sorts after every source key' },
        ],
      },
    },
    {
      name: 'orders',
      about: 'BIGINT key above 2^53, DECIMAL, DATETIME(6), JSON',
      key: ['id'],
      mysql: 'CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(20) NOT NULL, ' +
        'total DECIMAL(14,2) NOT NULL, placed_at DATETIME(6) NOT NULL, details JSON NOT NULL)',
      postgres: 'CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, status varchar(20) NOT NULL, ' +
        'total numeric(14,2) NOT NULL, placed_at timestamp(6) NOT NULL, details jsonb NOT NULL)',
      rows: orders,
      drift: {
        changed: [3, 480, 999, 1500, 1501, 2222, 2700, 2998, 700, 1234],
        mutations: [
          ['total +0.01', (row) => ({ ...row, total: money(cents(row.total) + 1) })],
          ['placed_at +1 µs', (row) => ({ ...row, placed_at: plusOneMicro(row.placed_at) })],
          ['JSON gift flag', jsonEdit((details) => ({ ...details, gift: !details.gift }))],
          ['JSON key added', jsonEdit((details) => ({ ...details, note: 'leave at door' }))],
          ['status', (row) => ({ ...row, status: row.status === 'paid' ? 'shipped' : 'paid' })],
        ],
        missing: [0, 1000, 2000, 2500, 2999],
        extra: [
          { ...orders[0], id: FIRST_ORDER_ID - 1n },
          { ...orders[1600], id: orders[1600].id + 1n },
          { ...orders[2999], id: orders[2999].id + 10n },
        ],
      },
    },
    {
      name: 'order_lines',
      about: 'composite key (order_id, line_no)',
      key: ['order_id', 'line_no'],
      mysql: 'CREATE TABLE order_lines (order_id BIGINT NOT NULL, line_no INT NOT NULL, sku VARCHAR(40) NOT NULL, ' +
        'qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line_no))',
      postgres: 'CREATE TABLE order_lines (order_id bigint NOT NULL, line_no integer NOT NULL, sku varchar(40) NOT NULL, ' +
        'qty integer NOT NULL, unit_price numeric(10,2) NOT NULL, PRIMARY KEY (order_id, line_no))',
      rows: lines,
      drift: {
        changed: [10, 777, 1500, 2048, 3333, 4096, 5000, 6000, 6500, 7000, 7200, 7400],
        mutations: [
          ['qty +1', (row) => ({ ...row, qty: row.qty + 1 })],
          ['unit_price -0.01', (row) => ({ ...row, unit_price: money(cents(row.unit_price) - 1) })],
          ['sku case', (row) => ({ ...row, sku: row.sku.toLowerCase() })],
        ],
        missing: [0, 1, 900, 2500, 3900, 5200, 6100, lines.length - 1],
        extra: [
          { ...lines[5], line_no: 9 },
          { ...lines[400], line_no: 9 },
          { ...lines[4000], line_no: 9 },
          { ...lines[6666], line_no: 8 },
          { ...lines[lines.length - 1], line_no: 9 },
        ],
      },
    },
  ];
}

/** The PostgreSQL copy of a table: the source rows with its drift applied, and the counts it makes. */
function driftedCopy(table) {
  const keyOf = (row) => table.key.map((column) => String(row[column])).join('\u0000');
  const copy = new Map(table.rows.map((row) => [keyOf(row), row]));
  const { changed, mutations, missing, extra } = table.drift;
  const touched = new Set();
  const touch = (position) => {
    const row = table.rows[position];
    if (!row || touched.has(position)) throw new DemoError(`${table.name}: drift position ${position} is out of range or used twice`);
    touched.add(position);
    return row;
  };
  changed.forEach((position, index) => {
    const row = touch(position);
    const mutated = mutations[index % mutations.length][1](row);
    if (JSON.stringify(mutated, (_, v) => (typeof v === 'bigint' ? String(v) : v)) ===
        JSON.stringify(row, (_, v) => (typeof v === 'bigint' ? String(v) : v))) {
      throw new DemoError(`${table.name}: mutation ${index} left row ${position} unchanged`);
    }
    copy.set(keyOf(row), mutated);
  });
  for (const position of missing) copy.delete(keyOf(touch(position)));
  for (const row of extra) {
    if (copy.has(keyOf(row))) throw new DemoError(`${table.name}: extra row ${keyOf(row)} is a source key`);
    copy.set(keyOf(row), row);
  }
  return {
    rows: [...copy.values()],
    counts: { changed: changed.length, missing: missing.length, extra: extra.length },
    what: mutations.map(([label]) => label).join(', '),
  };
}

// ------------------------------------------------------------------------------------------------
// Setup

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', ...options });
  if (result.error) throw new DemoError(`${command} ${args.join(' ')}: ${result.error.message}`);
  return result.status ?? 1;
}

/**
 * scripts/services.sh reuses its running servers where they run: without ROWSYNC_*_PORT that can be
 * another port than the default. The ports `services.sh env` reports feed the example config's
 * ${ROWSYNC_*_PORT} (servers named by ROWSYNC_TEST_*_URL, or ports set by the caller, stay as they are).
 */
function adoptServicePorts() {
  const result = spawnSync('bash', ['scripts/services.sh', 'env'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new DemoError(`bash scripts/services.sh env failed: ${result.stderr}`);
  const portVariables = {
    ROWSYNC_TEST_REDIS_URL: 'ROWSYNC_REDIS_PORT',
    ROWSYNC_TEST_MYSQL_URL: 'ROWSYNC_MYSQL_PORT',
    ROWSYNC_TEST_POSTGRES_URL: 'ROWSYNC_PG_PORT',
  };
  for (const line of result.stdout.split('\n')) {
    const match = /^export (\w+)=(.*)$/.exec(line.trim());
    const portVariable = match && portVariables[match[1]];
    if (!portVariable || process.env[match[1]] || process.env[portVariable]) continue;
    process.env[portVariable] = new URL(match[2]).port;
  }
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

/** dist/ is what the demo runs; a checkout edited since its last build would demo stale code. */
function ensureBuilt() {
  let built = 0;
  try {
    built = statSync(path.join(ROOT, CLI)).mtimeMs;
  } catch {
    // not built yet
  }
  const sources = Math.max(...['src', 'jobs', 'workers'].map((dir) => newestMtime(path.join(ROOT, dir))));
  if (built >= sources) return;
  say(built ? 'dist/ is older than the sources: rebuilding (npm run build)' : 'dist/ is missing: building (npm run build)');
  if (run('npm', ['run', '--silent', 'build']) === 0) return;
  // tsc still emits on type errors; a half-edited checkout can demo what it has.
  if (!built) throw new DemoError('npm run build failed');
  say('npm run build reported errors: running the demo with the dist/ it produced');
}

/**
 * The example config, unless the servers are named by ROWSYNC_TEST_*_URL (docker compose, CI
 * services): then a copy with those URLs in .services/, since a config cannot derive one URL from another.
 */
async function chooseConfig() {
  const env = process.env;
  if (!env.ROWSYNC_TEST_REDIS_URL && !env.ROWSYNC_TEST_MYSQL_URL && !env.ROWSYNC_TEST_POSTGRES_URL) return EXAMPLE_CONFIG;
  const { parse, stringify } = await import('yaml');
  const config = parse(readFileSync(path.join(ROOT, EXAMPLE_CONFIG), 'utf8'));
  const withPath = (url, pathname, search) => {
    const parsed = new URL(url);
    parsed.pathname = pathname;
    if (search) parsed.search = search;
    return parsed.toString();
  };
  if (env.ROWSYNC_TEST_REDIS_URL) config.redis.url = env.ROWSYNC_TEST_REDIS_URL;
  if (env.ROWSYNC_TEST_MYSQL_URL) config.connections.shop = withPath(env.ROWSYNC_TEST_MYSQL_URL, '/shop');
  if (env.ROWSYNC_TEST_POSTGRES_URL) {
    const pathname = new URL(env.ROWSYNC_TEST_POSTGRES_URL).pathname;
    config.connections.replica = withPath(env.ROWSYNC_TEST_POSTGRES_URL, pathname, '?schema=shop');
  }
  const file = path.join('.services', 'demo.config.yml');
  mkdirSync(path.join(ROOT, '.services'), { recursive: true });
  writeFileSync(path.join(ROOT, file), `# written by scripts/demo.mjs from ${EXAMPLE_CONFIG} with the ROWSYNC_TEST_*_URL servers\n${stringify(config)}`);
  return file;
}

/** Deletes every key under the demo's prefix: queues, run history and progress of earlier demos. */
async function clearRedisPrefix(config) {
  const { Redis } = await import('ioredis');
  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    let removed = 0;
    for await (const keys of redis.scanStream({ match: `${config.redis.prefix}:*`, count: 1000 })) {
      if (keys.length > 0) removed += await redis.del(...keys);
    }
    return removed;
  } finally {
    redis.disconnect();
  }
}

// ------------------------------------------------------------------------------------------------
// Seeding

const quote = { mysql: (name) => `\`${name}\``, postgres: (name) => `"${name}"` };

async function seedMysql(url, tables) {
  const { default: mysql } = await import('mysql2/promise');
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.slice(1));
  // Connect without a database: the demo database is dropped and created here.
  const connection = await mysql.createConnection({
    host: parsed.hostname,
    port: Number(parsed.port || 3306),
    user: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  try {
    await connection.query(`DROP DATABASE IF EXISTS ${quote.mysql(database)}`);
    await connection.query(`CREATE DATABASE ${quote.mysql(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    await connection.query(`USE ${quote.mysql(database)}`);
    for (const table of tables) {
      await connection.query(table.mysql);
      const columns = Object.keys(table.rows[0]);
      for (let start = 0; start < table.rows.length; start += 1000) {
        const batch = table.rows.slice(start, start + 1000).map((row) => columns.map((column) => row[column]));
        await connection.query(`INSERT INTO ${quote.mysql(table.name)} (${columns.map(quote.mysql).join(', ')}) VALUES ?`, [batch]);
      }
    }
    // The BIGINT keys went in as JavaScript BigInts: check one came back exact, not rounded to a double.
    const [[first]] = await connection.query('SELECT CAST(MIN(id) AS CHAR) AS id FROM orders');
    if (first.id !== String(FIRST_ORDER_ID)) throw new DemoError(`orders: first id is ${first.id}, expected ${FIRST_ORDER_ID}`);
  } finally {
    await connection.end();
  }
  return { host: `${parsed.hostname}:${parsed.port || 3306}`, database };
}

async function seedPostgres(url, tables, copies) {
  const { default: pg } = await import('pg');
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.search = '';
  const client = new pg.Client({ connectionString: parsed.toString() });
  await client.connect();
  try {
    await client.query('SET client_min_messages = warning');
    if (schema !== 'public') {
      await client.query(`DROP SCHEMA IF EXISTS ${quote.postgres(schema)} CASCADE`);
      await client.query(`CREATE SCHEMA ${quote.postgres(schema)}`);
    } else {
      for (const table of tables) await client.query(`DROP TABLE IF EXISTS public.${quote.postgres(table.name)}`);
    }
    await client.query(`SET search_path = ${quote.postgres(schema)}`);
    for (const table of tables) {
      await client.query(table.postgres);
      const rows = copies.get(table.name).rows;
      const columns = Object.keys(table.rows[0]);
      for (let start = 0; start < rows.length; start += 1000) {
        const params = [];
        const tuples = rows.slice(start, start + 1000).map((row) => {
          const placeholders = columns.map((column) => {
            const value = row[column];
            params.push(typeof value === 'bigint' ? String(value) : value);
            return `$${params.length}`;
          });
          return `(${placeholders.join(', ')})`;
        });
        await client.query(`INSERT INTO ${quote.postgres(table.name)} (${columns.map(quote.postgres).join(', ')}) VALUES ${tuples.join(', ')}`, params);
      }
    }
  } finally {
    await client.end();
  }
  return { host: `${parsed.hostname}:${parsed.port || 5432}`, database: decodeURIComponent(parsed.pathname.slice(1)), schema };
}

// ------------------------------------------------------------------------------------------------
// Reconcile runs and their reports

async function readReport(config, runId) {
  const [{ Queue }, { Redis }, { QUEUE_NAMES }] = await Promise.all([
    import('bullmq'),
    import('ioredis'),
    import(pathToFileURL(path.join(ROOT, 'dist/jobs/queues.js')).href),
  ]);
  const connection = new Redis(config.redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE_NAMES.run, { connection, prefix: config.redis.prefix });
  try {
    const job = await queue.getJob(runId);
    return job?.returnvalue ?? undefined;
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** Differences between a report and what it must say; empty when it says exactly that. */
function checkReport(report, tables, expected) {
  if (!report) return ['no report found in Redis'];
  const problems = [];
  if (report.status !== 'completed') problems.push(`status ${report.status}`);
  for (const table of tables) {
    const entry = report.tables.find((candidate) => candidate.table === table.name);
    if (!entry) {
      problems.push(`${table.name}: not in the report`);
      continue;
    }
    const want = expected(table);
    for (const [field, value] of Object.entries(want)) {
      if (entry[field] !== value) problems.push(`${table.name}.${field} = ${entry[field]}, expected ${value}`);
    }
    for (const error of entry.errors) problems.push(`${table.name}: ${error}`);
  }
  return problems;
}

function reconcile(configFile, runId) {
  const args = [CLI, 'reconcile', '--config', configFile, '--pipeline', PIPELINE, '--run-id', runId];
  say(`$ node ${args.filter((arg, index) => index < args.length - 2).join(' ')}`);
  // stdio inherited: on a terminal the CLI draws its progress bar on stderr; its report goes to stdout.
  const env = { ...process.env, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_LOG_LEVEL ?? 'warn' };
  const status = run(process.execPath, args, { env });
  if (status !== 0) throw new DemoError(`rowsync reconcile exited with ${status}`);
}

// ------------------------------------------------------------------------------------------------
// Change-data-capture

async function cdcDemo(configFile, sourceUrl, targetUrl) {
  const env = { ...process.env, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_LOG_LEVEL ?? 'warn' };
  const setupArgs = [CLI, 'cdc', 'setup', '--config', configFile, '--pipeline', PIPELINE];
  say(`$ node ${setupArgs.join(' ')}`);
  if (run(process.execPath, setupArgs, { env }) !== 0) throw new DemoError('rowsync cdc setup failed');
  const readerArgs = [CLI, 'cdc', '--config', configFile, '--pipeline', PIPELINE, '--workers', '2'];
  say(`$ node ${readerArgs.join(' ')} &`);
  const { spawn } = await import('node:child_process');
  const reader = spawn(process.execPath, readerArgs, { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((resolve) => reader.once('exit', resolve));
  const { default: mysql } = await import('mysql2/promise');
  const { default: pg } = await import('pg');
  const source = await mysql.createConnection(sourceUrl);
  const parsed = new URL(targetUrl);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.search = '';
  const target = new pg.Client({ connectionString: parsed.toString() });
  await target.connect();
  try {
    // The reader's first start records the binlog position and reconciles once (its initial snapshot);
    // changes committed from then on stream. Wait until it streams: its checkpoint appears in PostgreSQL.
    await waitFor(async () => {
      const rows = await target.query(`SELECT 1 FROM ${quote.postgres(schema)}.rowsync_cdc_checkpoints WHERE pipeline = $1`, [PIPELINE]).catch(() => ({ rows: [] }));
      return rows.rows.length > 0;
    }, 'the CDC reader to start', 60_000);
    const name = `Demo Customer ${Date.now() % 100000}`;
    const changes = [
      ["INSERT INTO customers VALUES (5000, ?, 'demo@example.com', 'DE', 1, '2026-12-01 12:00:00.123456')", [name]],
      ["UPDATE customers SET name = 'Ada Lovelace (renamed)' WHERE id = 1", []],
      ['DELETE FROM customers WHERE id = 2', []],
    ];
    const committed = Date.now();
    await source.beginTransaction();
    for (const [sql, params] of changes) {
      say(`   MariaDB> ${sql.replace('?', `'${name}'`)}`);
      await source.query(sql, params);
    }
    await source.commit();
    await waitFor(async () => {
      const { rows } = await target.query(`SELECT id, name FROM ${quote.postgres(schema)}.customers WHERE id IN (1, 2, 5000) ORDER BY id`);
      return rows.length === 2 && rows[0].name === 'Ada Lovelace (renamed)' && rows[1].id === 5000 && rows[1].name === name;
    }, 'the changes to reach PostgreSQL', 60_000);
    say(`   OK: all three changes are in PostgreSQL ${Date.now() - committed} ms after the MariaDB COMMIT (insert, update, delete).`);
  } finally {
    await source.end();
    await target.end();
    reader.kill('SIGTERM');
    await exited;
  }
}

// ------------------------------------------------------------------------------------------------
// Bidirectional

async function bidirectionalDemo(configFile, sourceUrl, targetUrl) {
  const { default: mysql } = await import('mysql2/promise');
  const { default: pg } = await import('pg');
  const mariadb = await mysql.createConnection(sourceUrl);
  const parsed = new URL(targetUrl);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  parsed.search = '';
  const postgres = new pg.Client({ connectionString: parsed.toString() });
  await postgres.connect();
  const notes = `${quote.postgres(schema)}.notes`;
  const both = async (mysqlSql, pgSql = mysqlSql.replace('DATETIME(6)', 'TIMESTAMP(6)')) => {
    await mariadb.query(mysqlSql);
    await postgres.query(pgSql.replace(/\bnotes\b/, notes));
  };
  const reconcile = (runId) => {
    const args = [CLI, 'reconcile', '--config', configFile, '--pipeline', 'notes-both-ways', '--run-id', runId];
    say(`$ node ${args.slice(0, -2).join(' ')}`);
    const env = { ...process.env, ROWSYNC_LOG_LEVEL: process.env.ROWSYNC_LOG_LEVEL ?? 'warn' };
    if (run(process.execPath, args, { env }) !== 0) throw new DemoError('rowsync reconcile (bidirectional) failed');
  };
  try {
    await both('CREATE TABLE notes (id INT NOT NULL PRIMARY KEY, body VARCHAR(100) NOT NULL, updated_at DATETIME(6) NOT NULL)');
    await both("INSERT INTO notes VALUES (1, 'buy milk', '2026-12-01 09:00:00'), (2, 'call Ada', '2026-12-01 09:00:00'), (3, 'ship order', '2026-12-01 09:00:00')");
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    say('   Both sides hold notes 1-3. The first run records every row\'s state (who last agreed on what):');
    reconcile(`notes-both-ways.demo.${stamp}.baseline`);
    const edits = [
      ['MariaDB', "INSERT INTO notes VALUES (4, 'written in MariaDB', '2026-12-01 10:00:00')"],
      ['PostgreSQL', "INSERT INTO notes VALUES (5, 'written in PostgreSQL', '2026-12-01 10:00:00')"],
      ['PostgreSQL', 'DELETE FROM notes WHERE id = 3'],
      ['MariaDB', "UPDATE notes SET body = 'buy oat milk (MariaDB, 10:05)', updated_at = '2026-12-01 10:05:00' WHERE id = 1"],
      ['PostgreSQL', "UPDATE notes SET body = 'buy milk and eggs (PostgreSQL, 10:07)', updated_at = '2026-12-01 10:07:00' WHERE id = 1"],
    ];
    for (const [side, sql] of edits) {
      say(`   ${side}> ${sql}`);
      if (side === 'MariaDB') await mariadb.query(sql);
      else await postgres.query(sql.replace(/\bnotes\b/, notes));
    }
    say('   Note 1 was edited on both sides since they last agreed: a conflict; the newer edit (10:07) must win on both.');
    reconcile(`notes-both-ways.demo.${stamp}.changes`);
    const [[mine]] = await mariadb.query('SELECT body FROM notes WHERE id = 1');
    const { rows: [theirs] } = await postgres.query(`SELECT body FROM ${notes} WHERE id = 1`);
    const [countA] = await mariadb.query('SELECT COUNT(*) AS n FROM notes');
    const { rows: [countB] } = await postgres.query(`SELECT COUNT(*) AS n FROM ${notes}`);
    if (mine.body !== theirs.body || !mine.body.includes('10:07') || Number(countA[0].n) !== 4 || Number(countB.n) !== 4) {
      throw new DemoError(`bidirectional: sides differ (${mine.body} / ${theirs.body}, ${countA[0].n} / ${countB.n} rows)`);
    }
    const listArgs = [CLI, 'conflicts', 'list', '--config', configFile, '--pipeline', 'notes-both-ways', '--all'];
    say(`$ node ${listArgs.join(' ')}`);
    if (run(process.execPath, listArgs) !== 0) throw new DemoError('rowsync conflicts list failed');
    say("   OK: 4 notes on both sides (4 from MariaDB, 5 from PostgreSQL, 3 deleted on both), note 1 is PostgreSQL's newer edit.");
  } finally {
    await mariadb.end();
    await postgres.end();
  }
}

async function waitFor(probe, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new DemoError(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ------------------------------------------------------------------------------------------------

async function main() {
  say(bold('rowsync demo: a full reconcile of a MariaDB shop into PostgreSQL'));
  say();
  say(bold('1. Servers') + ' (scripts/services.sh: own ports and data directories under .services/)');
  if (run('bash', ['scripts/services.sh', 'start']) !== 0) throw new DemoError('bash scripts/services.sh start failed');
  adoptServicePorts();
  ensureBuilt();

  const configFile = await chooseConfig();
  const { loadConfigFile, findPipeline } = await import(pathToFileURL(path.join(ROOT, 'dist/src/config/index.js')).href);
  const config = loadConfigFile(path.join(ROOT, configFile));
  const pipeline = findPipeline(config, PIPELINE);
  const sourceUrl = config.connections[pipeline.source].url;
  const targetUrl = config.connections[pipeline.targets[0]].url;

  const tables = shop();
  const copies = new Map(tables.map((table) => [table.name, driftedCopy(table)]));
  const cleared = await clearRedisPrefix(config);

  say();
  const source = await seedMysql(sourceUrl, tables);
  say(bold(`2. Source: MariaDB ${source.host}, database \`${source.database}\``) + ' (dropped and recreated)');
  for (const table of tables) say(`   ${table.name.padEnd(12)} ${fmt(table.rows.length).padStart(6)} rows   ${table.about}`);
  const total = tables.reduce((sum, table) => sum + table.rows.length, 0);
  say(`   ${'total'.padEnd(12)} ${fmt(total).padStart(6)} rows`);

  say();
  const target = await seedPostgres(targetUrl, tables, copies);
  say(bold(`3. Target: PostgreSQL ${target.host}, database \`${target.database}\`, schema \`${target.schema}\``) +
    ': a copy with drift (recreated)');
  say(`   ${'table'.padEnd(12)} ${'changed'.padStart(7)} ${'missing'.padStart(7)} ${'extra'.padStart(5)}   what changed`);
  let drifted = 0;
  for (const table of tables) {
    const { counts, what } = copies.get(table.name);
    drifted += counts.changed + counts.missing + counts.extra;
    say(`   ${table.name.padEnd(12)} ${String(counts.changed).padStart(7)} ${String(counts.missing).padStart(7)} ${String(counts.extra).padStart(5)}   ${what}`);
  }
  say(`   ${drifted} of ${fmt(total)} rows differ. "missing" = only MariaDB has the row, "extra" = only PostgreSQL has it.`);
  say('   Every change is small on purpose (1 µs, 0.01, one letter\'s case, NULL vs \'\'): checksums must see each one.');
  say(`   Redis: queues under the prefix \`${config.redis.prefix}\`${cleared ? ` (cleared ${cleared} keys of earlier demos)` : ''}.`);

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const first = `${PIPELINE}.demo.${stamp}.run1`;
  const second = `${PIPELINE}.demo.${stamp}.run2`;
  const chunks = Math.ceil(total / pipeline.reconcile.chunkSize);

  say();
  say(bold('4. Reconcile') + `: about ${chunks} chunks of ${pipeline.reconcile.chunkSize} keys; each chunk is checksummed inside both databases,`);
  say('   mismatching chunks are narrowed down to the differing keys, and those keys are re-read from MariaDB and written.');
  reconcile(configFile, first);
  const firstProblems = checkReport(await readReport(config, first), tables, (table) => {
    const { counts } = copies.get(table.name);
    return {
      sourceRows: table.rows.length,
      targetRows: copies.get(table.name).rows.length,
      ...counts,
      inserted: counts.missing,
      updated: counts.changed,
      deleted: counts.extra,
    };
  });
  if (firstProblems.length > 0) throw new DemoError(`the first run's report is not the injected drift:\n  ${firstProblems.join('\n  ')}`);
  say(`   OK: the report names exactly the ${drifted} injected differences, and all were repaired.`);

  say();
  say(bold('5. Reconcile again') + ': the tables are equal now, so every chunk checksum matches and nothing is written.');
  reconcile(configFile, second);
  const secondProblems = checkReport(await readReport(config, second), tables, (table) => ({
    sourceRows: table.rows.length,
    targetRows: table.rows.length,
    chunksDiffering: 0,
    changed: 0,
    missing: 0,
    extra: 0,
    inserted: 0,
    updated: 0,
    deleted: 0,
  }));
  if (secondProblems.length > 0) throw new DemoError(`the second run still found differences:\n  ${secondProblems.join('\n  ')}`);
  say('   OK: zero differences. MariaDB `shop` and PostgreSQL `shop` hold equal tables.');

  say();
  say(bold('6. Change-data-capture') + ': MariaDB\'s binlog streamed into PostgreSQL through the same write path.');
  await cdcDemo(configFile, sourceUrl, targetUrl);

  say();
  say(bold('7. Bidirectional') + ': `notes` takes writes in both databases; pipeline notes-both-ways, conflict: timestamp.');
  await bidirectionalDemo(configFile, sourceUrl, targetUrl);

  say();
  say(bold('Next') + ' (the servers keep running; `npm run services:stop` stops them):');
  say(`   node ${CLI} status --config ${configFile}                        # the two runs above`);
  say(`   node ${CLI} reconcile --config ${configFile} --pipeline ${PIPELINE} --dry-run --json`);
  say(`   node ${CLI} board --config ${configFile}                         # Bull Board on http://127.0.0.1:3000`);
  say(`   node ${CLI} start --config ${configFile}                         # scheduler + workers + CDC + board`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`demo failed: ${error instanceof DemoError ? error.message : (error?.stack ?? String(error))}\n`);
    process.exit(1);
  },
);
