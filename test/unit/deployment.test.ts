/**
 * The container files agree with each other and with the CLI, since no Docker engine runs here to
 * build the image: the Dockerfile is multi-stage, runs as a non-root user and has the built CLI as
 * its entrypoint; the compose profile `rowsync` runs a real rowsync command with the mounted
 * config, beside the compose Redis; the example config loads and names the compose services; the
 * README's docker commands use the image, profile and services that exist, with real rowsync
 * commands; the compose Redis Cluster matches scripts/services.sh.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { loadConfigFile } from '../../src/config/index.js';
import { ROOT } from '../support/cli.js';

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  profiles?: string[];
  command?: string[] | string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
}

const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, ComposeService> };
const rowsync = compose.services.rowsync!;
const packageJson = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };

/** Dockerfile instructions (continuation lines joined, comments dropped), grouped by stage. */
function dockerStages(text: string): { name: string | undefined; instructions: { op: string; args: string }[] }[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  const stages: { name: string | undefined; instructions: { op: string; args: string }[] }[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1], instructions: [] });
    stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

/** `host:port` a compose port mapping publishes into the container: the container port. */
const containerPort = (mapping: string) => Number(mapping.split(':').at(-1));

/**
 * Parses `args` with the real commander program, every action replaced by a no-op: unknown
 * commands, unknown options, missing arguments or required options throw. Returns the command path.
 */
async function parseRowsyncCommand(args: readonly string[]): Promise<string> {
  const program = buildProgram();
  let ran = '';
  const silence = (command: Command) => {
    command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (command.commands.length === 0) {
      command.action(function (this: Command) {
        const path: string[] = [];
        for (let at: Command | null = this; at && at !== program; at = at.parent) path.unshift(at.name());
        ran = path.join(' ');
      });
    }
    command.commands.forEach(silence);
  };
  silence(program);
  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError && error.code === 'commander.helpDisplayed') return '--help';
    throw new Error(`rowsync ${args.join(' ')}: ${(error as Error).message}`);
  }
  return ran;
}

describe('Dockerfile', () => {
  const stages = dockerStages(read('Dockerfile'));
  const final = stages.at(-1)!;
  const last = (op: string) => final.instructions.filter((instruction) => instruction.op === op).at(-1)?.args;

  it('is multi-stage: the build stage compiles as `npm run build` does, the final stage copies dist/ from it', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages[0]!;
    expect(build.name).toBeDefined();
    const buildCommand = packageJson.scripts.build!;
    expect(build.instructions.some(({ op, args }) => op === 'RUN' && args.includes(buildCommand))).toBe(true);
    // What tsconfig.json compiles is copied in.
    const include = (JSON.parse(read('tsconfig.json')) as { include: string[] }).include.map((glob) => glob.split('/')[0]!);
    for (const dir of include) expect(build.instructions.some(({ op, args }) => op === 'COPY' && args.split(/\s+/)[0] === dir), dir).toBe(true);
    expect(final.instructions.some(({ op, args }) => op === 'COPY' && args.startsWith(`--from=${build.name} `) && /\/dist\s/.test(`${args} `))).toBe(true);
    // The final stage installs no dev dependencies.
    expect(final.instructions.some(({ op, args }) => op === 'RUN' && /npm ci\b.*--omit=dev/.test(args))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const user = last('USER');
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    // USER comes before the entrypoint takes effect, after every RUN that needs root.
    const ops = final.instructions.map((instruction) => instruction.op);
    expect(ops.lastIndexOf('USER')).toBeGreaterThan(ops.lastIndexOf('RUN'));
  });

  it("has the built CLI (package.json's bin) as its exec-form entrypoint", () => {
    const entrypoint = JSON.parse(last('ENTRYPOINT')!) as string[];
    const workdir = last('WORKDIR')!;
    expect(entrypoint).toEqual(['node', `${workdir}/${packageJson.bin.rowsync}`]);
    expect(packageJson.bin.rowsync).toBe('dist/src/cli/main.js');
    const cmd = JSON.parse(last('CMD')!) as string[];
    return expect(parseRowsyncCommand(cmd)).resolves.toBe('--help');
  });

  it('.dockerignore keeps local state out of the build context but not what the build copies', () => {
    const ignored = read('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
    for (const entry of ['node_modules', 'dist', '.services', '.git']) expect(ignored).toContain(entry);
    for (const needed of ['src', 'jobs', 'workers', 'package.json', 'package-lock.json', 'tsconfig.json']) expect(ignored).not.toContain(needed);
  });
});

describe('docker-compose.yml', () => {
  it('keeps the test servers out of any profile and puts rowsync in the profile "rowsync"', () => {
    for (const name of ['mariadb', 'postgres', 'redis', 'redis-cluster']) expect(compose.services[name]?.profiles, name).toBeUndefined();
    expect(rowsync.profiles).toEqual(['rowsync']);
  });

  it('builds rowsync from the Dockerfile and runs `start` with the mounted config, after Redis is healthy', async () => {
    expect(rowsync.build === '.' || (typeof rowsync.build === 'object' && (rowsync.build.context ?? '.') === '.')).toBe(true);
    const command = rowsync.command as string[];
    expect(await parseRowsyncCommand(command)).toBe('start');
    const configPath = command[command.indexOf('--config') + 1]!;
    // source:target[:ro], where the source may be `${VAR:-default}`
    const mount = rowsync.volumes!.map((volume) => /^(.+):(\/[^:]+)(?::ro|:rw)?$/.exec(volume)?.slice(1) ?? []).find(([, target]) => target === configPath);
    expect(mount, `a volume mounted at ${configPath}`).toBeDefined();
    // The default of `${ROWSYNC_CONFIG_FILE:-...}` exists in the repository.
    const source = /^\$\{\w+:-(.+)\}$/.exec(mount![0]!)?.[1] ?? mount![0]!;
    expect(existsSync(join(ROOT, source)), source).toBe(true);
    expect(rowsync.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
    // The board password is the operator's: no default in the compose file.
    expect(rowsync.environment?.ROWSYNC_BOARD_PASSWORD).toBe('${ROWSYNC_BOARD_PASSWORD:-}');
  });

  it('the example config loads and reaches the compose services on their container ports', () => {
    const config = loadConfigFile(join(ROOT, 'docker/rowsync.example.yml'), {});
    const portOf = (service: string) => containerPort(compose.services[service]!.ports![0]!);
    const redis = new URL(config.redis.url);
    expect([redis.hostname, Number(redis.port)]).toEqual(['redis', portOf('redis')]);
    for (const connection of Object.values(config.connections)) {
      const url = new URL(connection.url);
      expect(compose.services[url.hostname], `${connection.name} -> ${url.hostname}`).toBeDefined();
      expect(Number(url.port)).toBe(portOf(url.hostname));
    }
    expect(config.board.host).toBe('0.0.0.0');
    expect(rowsync.ports!.map(containerPort)).toContain(config.board.port);
  });

  it("runs the Redis Cluster on scripts/services.sh's default ports", () => {
    const services = read('scripts/services.sh');
    const first = Number(/DEFAULT_CLUSTER_PORT=(\d+)/.exec(services)?.[1]);
    const ports = [first, first + 1, first + 2];
    expect(compose.services['redis-cluster']!.ports).toEqual(ports.map((port) => `127.0.0.1:${port}:${port}`));
    const script = (compose.services['redis-cluster']!.command as string[]).join('\n');
    expect(script).toContain(`--cluster create ${ports.map((port) => `127.0.0.1:${port}`).join(' ')} --cluster-replicas 0`);
  });
});

describe("README's Containers section", () => {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Containers'), readme.indexOf('\n## ', readme.indexOf('## Containers') + 1));
  const commands = (/```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '').split('\n').filter((line) => line.trim());

  it('says the image is not built in CI', () => {
    expect(section).toMatch(/not built in CI/);
  });

  it('documents docker commands that match the image, the profile, the services and the CLI', async () => {
    expect(commands.length).toBeGreaterThanOrEqual(4);
    const composeText = read('docker-compose.yml');
    for (const line of commands) {
      const words = line.split(/\s+/);
      // Leading VAR=value assignments: variables the compose file reads.
      while (/^[A-Z_]+=/.test(words[0]!)) {
        const name = words.shift()!.split('=')[0]!;
        expect(composeText, `${line}: ${name}`).toContain(`\${${name}`);
      }
      expect(words[0], line).toBe('docker');
      if (words[1] === 'build') {
        expect(words.slice(2), line).toEqual(['-t', rowsync.image, '.']);
      } else if (words[1] === 'run') {
        const image = words.findIndex((word) => word === rowsync.image);
        expect(image, `${line}: runs ${rowsync.image}`).toBeGreaterThan(1);
        await parseRowsyncCommand(words.slice(image + 1));
      } else {
        expect(words[1], line).toBe('compose');
        const rest = words.slice(2);
        const profile = rest.indexOf('--profile');
        if (profile >= 0) expect(rowsync.profiles, line).toContain(rest[profile + 1]);
        const verb = rest.find((word, index) => !word.startsWith('-') && rest[index - 1] !== '--profile')!;
        const after = rest.slice(rest.indexOf(verb) + 1);
        const service = after.find((word) => !word.startsWith('-'));
        if (verb === 'run') {
          expect(service, line).toBe('rowsync');
          await parseRowsyncCommand(after.slice(after.indexOf(service!) + 1));
        } else {
          expect(['up', 'logs', 'down', 'ps'], line).toContain(verb);
          if (service) expect(compose.services[service], line).toBeDefined();
        }
      }
    }
  });
});
