import { createServer } from 'node:net';

/** A port with nothing listening on it (never 6379 or 6390, which other suites' servers use). */
export async function closedPort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    if (port !== 6379 && port !== 6390) return port;
  }
}
