import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server under test, in its own process so that it never shares an event loop with the load. */
export interface ChildServer {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  readonly name: string;
  /** Arguments to `node` (the script and its flags); {port} is replaced by the chosen port. */
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Path that answers 2xx once the server is ready. */
  readonly readyPath?: string;
  /**
   * For a process with no HTTP port (a `spillway worker`): ready once this text appears in its
   * output. Give this or readyPath.
   */
  readonly readyText?: string;
  readonly timeoutMs?: number;
}

/** A port that was free a moment ago (the kernel picks it; the race with other programs is tiny). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('could not read the port of a probe socket');
  return address.port;
}

/** Starts `node ...args` and resolves once `readyPath` answers 2xx (or `readyText` is printed). */
export async function startServer(o: StartOptions): Promise<ChildServer> {
  if ((o.readyPath === undefined) === (o.readyText === undefined)) throw new Error(`${o.name}: give exactly one of readyPath and readyText`);
  const port = await freePort();
  const args = o.args.map((a) => a.replaceAll('{port}', String(port)));
  const child = spawn(process.execPath, args, {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = tail(child);
  let seen = false;
  const readyText = o.readyText;
  if (readyText !== undefined) {
    // Kept across chunks: the text may arrive split over two reads.
    let recent = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      recent = (recent + chunk.toString('utf8')).slice(-4 * readyText.length - 4096);
      if (recent.includes(readyText)) seen = true;
    });
  }
  const url = `http://127.0.0.1:${port}`;
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (exited !== undefined) {
      throw new Error(`${o.name} exited during start-up (code ${exited.code}, signal ${exited.signal}):\n${output()}`);
    }
    if (o.readyPath !== undefined) {
      try {
        const response = await fetch(`${url}${o.readyPath}`, { signal: AbortSignal.timeout(1000) });
        await response.arrayBuffer();
        if (response.ok) break;
      } catch {
        // Not listening yet.
      }
    } else if (seen) {
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      const awaited = o.readyPath !== undefined ? `at ${url}${o.readyPath}` : `(never printed ${JSON.stringify(o.readyText)})`;
      throw new Error(`${o.name} did not become ready ${awaited}:\n${output()}`);
    }
    await sleep(50);
  }

  return {
    name: o.name,
    url,
    pid: child.pid ?? -1,
    stop: async (graceMs = 15_000) => {
      if (exited !== undefined) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exit;
      clearTimeout(timer);
      const unexpected = result.code !== 0 && result.signal !== 'SIGTERM';
      if (unexpected) process.stderr.write(`${o.name} exited with code ${result.code} signal ${result.signal}:\n${output()}\n`);
      return result;
    },
  };
}

/** Keeps the last few kilobytes a child printed, for error messages; never blocks its pipes. */
function tail(child: ChildProcess, maxChars = 8000): () => string {
  let text = '';
  const keep = (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-maxChars);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => text;
}

