import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { StoreSettings } from '../../src/stores/open-store.js';
import type { ResultStore, StoredNotice } from '../../src/stores/store.js';

const fixture = new URL('../fixtures/store-client.mjs', import.meta.url).pathname;

type Method = Exclude<keyof ResultStore, 'onStored' | 'close' | 'recordsView'>;
type Answer<M extends Method> = Awaited<ReturnType<ResultStore[M]>>;

/**
 * A handle on the same store in another process (the built store, as another gateway or
 * dispatcher would open it from its settings), for behaviour that must hold across processes.
 */
export class RemoteStore {
  readonly notices: StoredNotice[] = [];
  private readonly pending = new Map<number, { resolve(results: unknown[]): void; reject(error: Error): void }>();
  private next = 0;

  private constructor(private readonly child: ChildProcess) {}

  static async open(settings: StoreSettings): Promise<RemoteStore> {
    const child = spawn(process.execPath, [fixture, JSON.stringify(settings)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const remote = new RemoteStore(child);
    const lines = createInterface({ input: child.stdout });
    const ready = new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`store client exited with ${code} before it was ready`)));
      lines.on('line', (line) => {
        const message = JSON.parse(line) as { ready?: true; notice?: StoredNotice; n?: number; results?: unknown[]; error?: string };
        if (message.ready === true) resolve();
        else if (message.notice !== undefined) remote.notices.push(message.notice);
        else if (message.n !== undefined) remote.settle(message.n, message.results, message.error);
      });
    });
    await ready;
    child.removeAllListeners('exit');
    return remote;
  }

  /** Runs `method` once per argument list, all at once in the other process. */
  callMany<M extends Method>(method: M, calls: readonly Parameters<ResultStore[M]>[]): Promise<Answer<M>[]> {
    return this.send(method, calls) as Promise<Answer<M>[]>;
  }

  async call<M extends Method>(method: M, ...args: Parameters<ResultStore[M]>): Promise<Answer<M>> {
    const [result] = await this.callMany(method, [args]);
    return result as Answer<M>;
  }

  /** From now on the other process collects what its handle hears, in `notices`. */
  async listen(): Promise<void> {
    await this.send('onStored', []);
  }

  async close(): Promise<void> {
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    await exited;
  }

  private send(method: string, calls: readonly unknown[]): Promise<unknown[]> {
    const n = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(n, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ n, method, calls })}\n`);
    });
  }

  private settle(n: number, results: unknown[] | undefined, error: string | undefined): void {
    const waiting = this.pending.get(n);
    this.pending.delete(n);
    if (error !== undefined) waiting?.reject(new Error(error));
    else waiting?.resolve(results ?? []);
  }
}
