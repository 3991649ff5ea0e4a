import { execFile, spawn as spawnChild, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './paths.js';

/**
 * Machines for tests: one Linux network namespace per host, each with its own address on a
 * bridge in the root namespace (which holds .1, so the test process reaches every host), its own
 * data folder and its own processes. Needs root and iproute2; `hostsUnavailable()` says why not.
 *
 * Everything a run creates is named `spw<tag>…` / `spw-<tag>-…` and listed in a state file
 * before it is created, so a later run can remove what a crashed one left, and only that: a run
 * whose owner process is still alive is left alone, even if it is another test run's.
 */

const run = promisify(execFile);

export interface HostProcess {
  readonly pid: number;
  readonly label: string;
  readonly logFile: string;
  /** The exit code (or the signal's name) once the process ended. */
  readonly exited: Promise<number | string>;
  running(): boolean;
  /** Everything the process wrote so far (stdout and stderr, interleaved). */
  output(): string;
  /** Resolves once the output matches; rejects if the process exits first or the time runs out. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export interface Host {
  /** The name the test gave it (`gw-a`). */
  readonly name: string;
  readonly namespace: string;
  readonly address: string;
  readonly dataDir: string;
  /** Runs `cmd` inside the host's namespace; its output goes to a log file in the data folder. */
  spawn(cmd: string, args: readonly string[], env?: Record<string, string>, options?: { label?: string }): HostProcess;
  /** SIGKILL every process in the namespace (also those the tracked ones started, like a JVM). */
  killAll(): Promise<void>;
  /** Takes the host's cable out: its veth end on the bridge goes down. */
  linkDown(): Promise<void>;
  linkUp(): Promise<void>;
}

export interface Hosts {
  readonly tag: string;
  /** The root namespace's address on the bridge: what hosts connect to to reach the test. */
  readonly bridgeAddress: string;
  readonly subnet: string;
  readonly list: readonly Host[];
  host(name: string): Host;
  /** The last lines of every log under every data folder, for a failed test's report. */
  logTails(lines?: number): string;
  /** Kills everything and removes namespaces, links, bridge and folders; safe to call twice. */
  destroy(): Promise<void>;
}

/** Why the host tests cannot run here, or undefined when they can. */
export function hostsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces needs root (CI runs this suite as root)';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error !== undefined || ip.status !== 0) return 'the `ip` command (iproute2) is not installed';
  // Root in a container may still lack CAP_SYS_ADMIN / CAP_NET_ADMIN: try once, for a clear message.
  const probe = `spw-probe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  if (added.status !== 0) return `cannot create a network namespace here: ${added.stderr.trim()}`;
  return undefined;
}

const stateDir = join(tmpdir(), 'spillway-test-hosts');

interface RunState {
  readonly pid: number;
  /** The owner's start time (jiffies since boot): a recycled pid does not pass for the owner. */
  readonly started: string;
  readonly subnet: string;
  readonly bridge: string;
  readonly namespaces: readonly string[];
  readonly links: readonly string[];
  readonly dirs: string[];
}

function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces, so count from after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function writeState(tag: string, state: RunState): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, `${tag}.json`), JSON.stringify(state));
}

async function ip(args: readonly string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 20_000 });
  return stdout;
}

/** Runs `ip …` and ignores failure: teardown removes whatever is still there. */
async function tryIp(args: readonly string[]): Promise<void> {
  await ip(args).catch(() => undefined);
}

async function namespacePids(namespace: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', namespace]).catch(() => '');
  return out
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** SIGKILLs the namespace's processes until none is left (a dying parent may still fork). */
async function killNamespace(namespace: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pids = await namespacePids(namespace);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (Date.now() > deadline) throw new Error(`processes in ${namespace} survive SIGKILL: ${pids.join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function removeRun(state: RunState, tag: string): Promise<void> {
  const errors: string[] = [];
  for (const ns of state.namespaces) await killNamespace(ns).catch((e: unknown) => errors.push(String(e)));
  // Deleting a namespace deletes the veth end inside it, and with it the peer on the bridge.
  for (const ns of state.namespaces) await tryIp(['netns', 'del', ns]);
  for (const link of state.links) await tryIp(['link', 'del', link]);
  await tryIp(['link', 'del', state.bridge]);
  for (const dir of state.dirs) rmSync(dir, { recursive: true, force: true });
  rmSync(join(stateDir, `${tag}.json`), { force: true });
  if (errors.length > 0) throw new Error(errors.join('\n'));
}

/** Removes what earlier runs left behind when their owner died without tearing down. */
async function removeStaleRuns(): Promise<void> {
  if (!existsSync(stateDir)) return;
  for (const file of readdirSync(stateDir)) {
    if (!file.endsWith('.json')) continue;
    let state: RunState;
    try {
      state = JSON.parse(readFileSync(join(stateDir, file), 'utf8')) as RunState;
    } catch {
      // Being written by a run starting right now, or torn: leave it to its owner, unless old.
      if (Date.now() - statSync(join(stateDir, file)).mtimeMs > 3600_000) rmSync(join(stateDir, file), { force: true });
      continue;
    }
    if (processStart(state.pid) === state.started) continue;
    await removeRun(state, file.slice(0, -'.json'.length)).catch(() => undefined);
  }
}

function parseCidrs(text: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const m of text.matchAll(/\b(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\/(\d+))?/g)) {
    const value = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
    const bits = m[5] === undefined ? 32 : Number(m[5]);
    out.push([value, bits]);
  }
  return out;
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  const bits = Math.min(a[1], b[1]);
  if (bits === 0) return false; // the default route covers everything and clashes with nothing
  const mask = bits === 32 ? 0xffffffff : ~(0xffffffff >>> bits) >>> 0;
  return ((a[0] & mask) >>> 0) === ((b[0] & mask) >>> 0);
}

/** A 10.x.y.0/24 no address, route or other test run on this machine uses. */
async function pickSubnet(): Promise<string> {
  const taken = parseCidrs(`${await ip(['-4', '-o', 'addr'])}\n${await ip(['-4', 'route', 'show', 'table', 'all'])}`);
  if (existsSync(stateDir)) {
    for (const file of readdirSync(stateDir)) {
      try {
        taken.push(...parseCidrs((JSON.parse(readFileSync(join(stateDir, file), 'utf8')) as RunState).subnet));
      } catch {
        // A state file being written: its subnet will be in the routes table in a moment anyway.
      }
    }
  }
  for (let i = 0; i < 200; i++) {
    const x = 64 + Math.floor(Math.random() * 190);
    const y = Math.floor(Math.random() * 256);
    const candidate: [number, number] = [((10 << 24) | (x << 16) | (y << 8)) >>> 0, 24];
    if (!taken.some((t) => overlaps(t, candidate))) return `10.${x}.${y}`;
  }
  throw new Error('no free 10.x.y.0/24 subnet found');
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
  } catch {
    return '(unreadable)';
  }
}

function logFilesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.log'))
    .map((f) => join(dir, f))
    .sort();
}

/**
 * Creates one network namespace per name, on a bridge of its own. Call `destroy()` in an
 * afterAll whatever happened; it also runs if creation fails half-way.
 */
export async function createHosts(names: readonly string[]): Promise<Hosts> {
  if (new Set(names).size !== names.length) throw new Error(`host names must be unique: ${names.join(', ')}`);
  if (names.length > 99) throw new Error('at most 99 hosts: interface names have 15 characters');
  await removeStaleRuns();
  // 6 characters of [a-z0-9]: `spwb` + tag and `spw` + tag + index + `n` stay within 15.
  const tag = randomBytes(8).toString('base64url').replace(/[^a-z0-9]/gi, '').toLowerCase().slice(0, 6).padEnd(6, '0');
  const prefix = await pickSubnet();
  const bridge = `spwb${tag}`;
  const bridgeAddress = `${prefix}.1`;
  const hostsSpec = names.map((name, i) => ({
    name,
    namespace: `spw-${tag}-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    outside: `spw${tag}${i}`,
    inside: `spw${tag}${i}n`,
    address: `${prefix}.${10 + i}`,
    dataDir: mkdtempSync(join(tmpdir(), `spillway-host-${name}-`)),
  }));
  const state: RunState = {
    pid: process.pid,
    started: processStart(process.pid) ?? '',
    subnet: `${prefix}.0/24`,
    bridge,
    namespaces: hostsSpec.map((h) => h.namespace),
    links: hostsSpec.map((h) => h.outside),
    dirs: hostsSpec.map((h) => h.dataDir),
  };
  // Written before anything exists, so a crash at any point below leaves a complete inventory.
  writeState(tag, state);
  const spawned = new Set<HostProcess>();
  let destroyed: Promise<void> | undefined;
  const destroy = () =>
    (destroyed ??= (async () => {
      for (const p of spawned) p.kill('SIGKILL');
      await removeRun(state, tag);
    })());

  try {
    await ip(['link', 'add', bridge, 'type', 'bridge']);
    await ip(['addr', 'add', `${bridgeAddress}/24`, 'dev', bridge]);
    await ip(['link', 'set', bridge, 'up']);
    for (const h of hostsSpec) {
      await ip(['netns', 'add', h.namespace]);
      await ip(['link', 'add', h.outside, 'type', 'veth', 'peer', 'name', h.inside]);
      await ip(['link', 'set', h.inside, 'netns', h.namespace]);
      await ip(['link', 'set', h.outside, 'master', bridge]);
      await ip(['link', 'set', h.outside, 'up']);
      const inNs = (args: readonly string[]) => ip(['-n', h.namespace, ...args]);
      await inNs(['link', 'set', 'lo', 'up']);
      await inNs(['link', 'set', h.inside, 'name', 'eth0']);
      await inNs(['addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      await inNs(['link', 'set', 'eth0', 'up']);
      await inNs(['route', 'add', 'default', 'via', bridgeAddress]);
    }
  } catch (error) {
    await destroy().catch(() => undefined);
    throw error;
  }

  const list: Host[] = hostsSpec.map((h) => {
    const logDir = join(h.dataDir, 'logs');
    mkdirSync(logDir, { recursive: true });
    return {
      name: h.name,
      namespace: h.namespace,
      address: h.address,
      dataDir: h.dataDir,
      spawn: (cmd, args, env = {}, options = {}) => {
        const p = spawnInNamespace(h.namespace, logDir, cmd, args, env, options.label ?? cmd.split('/').at(-1) ?? cmd);
        spawned.add(p);
        void p.exited.then(() => spawned.delete(p));
        return p;
      },
      killAll: () => killNamespace(h.namespace),
      linkDown: async () => void (await ip(['link', 'set', h.outside, 'down'])),
      linkUp: async () => void (await ip(['link', 'set', h.outside, 'up'])),
    };
  });
  return {
    tag,
    bridgeAddress,
    subnet: state.subnet,
    list,
    host: (name) => {
      const found = list.find((h) => h.name === name);
      if (found === undefined) throw new Error(`no host ${name}`);
      return found;
    },
    logTails: (lines = 40) =>
      list
        .flatMap((h) => logFilesUnder(h.dataDir).map((f) => `----- ${h.name}: ${f} -----\n${tail(f, lines)}`))
        .join('\n'),
    destroy,
  };
}

function spawnInNamespace(
  namespace: string,
  logDir: string,
  cmd: string,
  args: readonly string[],
  env: Record<string, string>,
  label: string,
): HostProcess {
  const logFile = join(logDir, `${label}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}.log`);
  const fd = openSync(logFile, 'a');
  // The log file is the child's stdout and stderr: nothing is lost if this process dies first,
  // and nothing depends on this process reading pipes fast enough.
  const child = spawnChild('ip', ['netns', 'exec', namespace, cmd, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    child.once('error', (error) => resolve(`spawn failed: ${error.message}`));
  });
  let done = false;
  void exited.then(() => (done = true));
  const output = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return {
    // `ip netns exec` execs the command in place, so this is the command's own pid.
    pid: child.pid ?? -1,
    label,
    logFile,
    exited,
    running: () => !done,
    output,
    waitForOutput: async (pattern, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (pattern.test(output())) return;
        if (done) throw new Error(`${label} in ${namespace} exited (${String(await exited)}) before printing ${pattern}:\n${output().slice(-4000)}`);
        if (Date.now() > deadline) throw new Error(`${label} in ${namespace} did not print ${pattern} within ${timeoutMs} ms:\n${output().slice(-4000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    kill: (signal = 'SIGTERM') => {
      if (!done) child.kill(signal);
    },
  };
}

/** Resolves once something accepts TCP connections on address:port (from the root namespace). */
export async function waitForPort(address: string, port: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: address, port, timeout: 1000 });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.once('timeout', () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${address}:${port} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Sends one inline Redis command and returns the first reply line. */
function redisCommand(address: string, port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, timeout: 2000 });
    let reply = '';
    socket.once('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) {
        socket.destroy();
        resolve(reply.split('\r\n')[0] ?? '');
      }
    });
    socket.once('error', reject);
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`redis at ${address}:${port}: no answer to ${command}`));
    });
  });
}

export interface BrokerService {
  readonly url: string;
  readonly process: HostProcess;
}

/**
 * A Redis for the broker or the store, on the host's address, persisting every write (AOF,
 * fsync always), data in the host's data folder. The one place that starts Redis: when
 * scripts/redis can listen on another address (REDIS_HOST), run it here instead.
 */
export async function startRedis(host: Host, port = 6379): Promise<BrokerService> {
  const dir = join(host.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const proc = host.spawn(
    '/usr/bin/redis-server',
    // protected-mode refuses every client not on loopback when no password is set; the bridge is
    // the test's own, so no password.
    ['--bind', host.address, '--port', String(port), '--protected-mode', 'no', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
    {},
    { label: 'redis' },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    const pong = await redisCommand(host.address, port, 'PING').catch(() => '');
    if (pong === '+PONG') break;
    if (!proc.running() || Date.now() > deadline) throw new Error(`redis on ${host.name} did not answer PING:\n${proc.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url: `redis://${host.address}:${port}`, process: proc };
}

/**
 * A one-node Kafka on the host's address, through scripts/kafka (KAFKA_HOST). The namespace has
 * a port space of its own, so the default ports are free; its state lives in the data folder.
 */
export async function startKafka(host: Host): Promise<BrokerService> {
  const env = { KAFKA_HOST: host.address, KAFKA_PORT: '9092', KAFKA_CONTROLLER_PORT: '9093', SPILLWAY_KAFKA_DIR: join(host.dataDir, 'kafka') };
  const proc = host.spawn('bash', [join(repoRoot, 'scripts', 'kafka'), 'up'], env, { label: 'kafka-up' });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`scripts/kafka up on ${host.name} exited with ${String(code)}:\n${proc.output().slice(-4000)}`);
  const bootstrap = proc.output().trim().split('\n').at(-1) ?? '';
  if (bootstrap !== `${host.address}:9092`) throw new Error(`scripts/kafka up printed ${bootstrap}, not ${host.address}:9092`);
  return { url: `kafka://${bootstrap}`, process: proc };
}
