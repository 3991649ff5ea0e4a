import { connect } from 'node:net';
import { lazyTempDir, repoScript } from './repo-script.js';

/**
 * Runs scripts/redis and returns its last line of output (`up` and `start` print the URL), or
 * all of it. A non-zero exit rejects, with the exit status in the error's `code`.
 */
export async function redisScript(args: readonly string[], env: Record<string, string> = {}, output: 'last' | 'all' = 'last'): Promise<string> {
  return repoScript('redis', args, env, output, 120_000);
}

export interface TestRedis {
  /** The server's own folder (SPILLWAY_REDIS_DIR): config, log, pid, port and AOF. */
  readonly dir: string;
  /** The environment that points scripts/redis at this server. */
  readonly env: Record<string, string>;
  /** Starts the server, or finds it up; returns its URL (redis://127.0.0.1:PORT). */
  up(): Promise<string>;
  /** SIGKILLs the server, as a crash would; what it acknowledged stays in its AOF. */
  kill(): Promise<void>;
  /** Starts the server again on its folder and port; resolves once the AOF is loaded. */
  start(): Promise<string>;
  /** Runs another scripts/redis command on this server. */
  run(args: readonly string[]): Promise<string>;
  /** Stops the server and deletes its folder. */
  destroy(): Promise<void>;
}

/**
 * A Redis server that one test file owns, for tests that kill and restart it: a fresh folder,
 * and a port scripts/redis picks free on the first start (REDIS_PORT=auto) and keeps for later
 * starts. Whatever REDIS_PORT the caller exported, it never meets the Redis the suites share
 * (SPILLWAY_TEST_REDIS), another test's, another checkout's, or one on 6379.
 */
export function testRedis(options: { appendfsync?: 'always' | 'everysec' | 'no' } = {}): TestRedis {
  const folder = lazyTempDir('spillway-test-redis-');
  const env = () => ({ SPILLWAY_REDIS_DIR: folder.path, REDIS_PORT: 'auto', REDIS_APPENDFSYNC: options.appendfsync ?? 'always' });
  const runScript = (args: readonly string[]) => redisScript(args, env());
  return {
    get dir() {
      return folder.path;
    },
    get env() {
      return env();
    },
    up: () => runScript(['up']),
    kill: async () => {
      await runScript(['kill']);
    },
    start: () => runScript(['start']),
    run: runScript,
    destroy: async () => {
      if (!folder.made) return;
      await runScript(['down', '--wipe']);
      folder.remove();
    },
  };
}

/** A decoded RESP2 reply; an error reply is an Error. */
export type RespReply = string | number | null | Error | RespReply[];

/**
 * Sends commands to a Redis on one connection, pipelined, and resolves with their replies once
 * every one has been answered. For tests of the server itself (the scripts, durability), which
 * must not depend on the client library the adapters use.
 */
export async function redisCommands(url: string, commands: readonly (readonly (string | number)[])[]): Promise<RespReply[]> {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  const payload = commands
    .map((args) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${String(a)}\r\n`).join(''))
    .join('');
  try {
    return await new Promise<RespReply[]>((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const replies: RespReply[] = [];
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`${url} closed the connection after ${replies.length} of ${commands.length} replies`)));
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (let parsed = parseReply(buffer, 0); parsed !== undefined; parsed = parseReply(buffer, 0)) {
          replies.push(parsed.value);
          buffer = buffer.subarray(parsed.end);
        }
        if (replies.length === commands.length) resolve(replies);
      });
      socket.write(payload);
    });
  } finally {
    socket.destroy();
  }
}

/** One reply starting at `at`, or undefined while the buffer does not hold all of it yet. */
function parseReply(buffer: Buffer, at: number): { value: RespReply; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd === -1) return undefined;
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (String.fromCharCode(buffer[at]!)) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length === -1) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count === -1) return { value: null, end: next };
      const items: RespReply[] = [];
      let end = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, end);
        if (item === undefined) return undefined;
        items.push(item.value);
        end = item.end;
      }
      return { value: items, end };
    }
    default:
      throw new Error(`not a RESP2 reply: ${JSON.stringify(buffer.toString('utf8', at, lineEnd))}`);
  }
}
