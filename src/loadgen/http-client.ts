import http from 'node:http';
import https from 'node:https';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A request that got no HTTP answer; `code` is the system error (ECONNREFUSED…) or TIMEOUT/ABORTED. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * HTTP to one base URL over keep-alive sockets with no client-side limit: a limit would queue
 * sends inside the client, which is exactly the hidden waiting an open-loop generator must not do.
 */
export class HttpClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  /** `headers` go on every request (an API key, say), so no caller can forget them. */
  constructor(
    base: string,
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {
    this.base = new URL(base.endsWith('/') ? base : `${base}/`);
    const options: http.AgentOptions = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo' };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
  }

  /** `path` is relative to the base URL, without a leading slash. */
  url(path: string): string {
    return new URL(path, this.base).href;
  }

  request(
    method: 'GET' | 'POST',
    path: string,
    o: { headers?: Record<string, string>; body?: string; timeoutMs: number; signal?: AbortSignal },
  ): Promise<HttpAnswer> {
    const url = new URL(path, this.base);
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise<HttpAnswer>((resolve, reject) => {
      if (o.signal?.aborted === true) {
        reject(new TransportError('ABORTED', 'the run ended before the request was sent'));
        return;
      }
      const headers: Record<string, string | number> = { accept: 'application/json', ...this.headers, ...o.headers };
      if (o.body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(o.body);
      }
      const req = lib.request(url, { method, agent: this.agent, headers });
      let settled = false;
      const fail = (code: string, message: string) => {
        if (settled) return;
        settled = true;
        cleanup();
        req.destroy();
        reject(new TransportError(code, message));
      };
      const timer = setTimeout(() => fail('TIMEOUT', `no answer from ${url.href} within ${o.timeoutMs} ms`), o.timeoutMs);
      const onAbort = () => fail('ABORTED', 'the run ended before the answer came');
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      };
      req.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'EIO', `${url.href}: ${error.message}`));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error: NodeJS.ErrnoException) => fail(error.code ?? 'EIO', `${url.href}: ${error.message}`));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          cleanup();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end(o.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The headers that send `apiKey` (none without one), for every request of a client. */
export function bearerHeaders(apiKey: string | undefined): Record<string, string> {
  return apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
}
