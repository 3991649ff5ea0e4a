import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request through the proxy and what answered it. */
export interface Exchange {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly status: number;
  /** The prediction id a POST was answered with. */
  readonly id: string | undefined;
}

// Hop-by-hop headers belong to one connection, not to the request the proxy passes on.
const hopByHop = ['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length'];

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = { ...headers };
  for (const name of hopByHop) delete out[name];
  return out;
}

function idOf(body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { id?: unknown }).id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An HTTP proxy in front of `target` that records every exchange: what the bench really sent
 * (its Authorization header on every request) and which prediction ids each POST got back.
 */
export async function recordingProxy(target: string): Promise<{ url: string; exchanges: Exchange[]; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true });
  const exchanges: Exchange[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...withoutHopByHop(req.headers), 'content-length': body.length };
      const upstream = http.request(new URL(req.url ?? '/', target), { method: req.method, headers, agent }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          const text = Buffer.concat(parts);
          const status = answer.statusCode ?? 502;
          exchanges.push({
            method: req.method ?? '',
            path: req.url ?? '',
            authorization: req.headers.authorization,
            status,
            id: req.method === 'POST' ? idOf(text.toString('utf8')) : undefined,
          });
          res.writeHead(status, { ...withoutHopByHop(answer.headers), 'content-length': text.length });
          res.end(text);
        });
      });
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
