import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createHosts, hostsUnavailable, type Hosts } from '../helpers/hosts.js';
import { repoRoot } from '../helpers/paths.js';

const namespaces = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
const links = () => execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });

/** Runs createHosts in a process of its own, which prints the tag and folders, then waits to be killed. */
async function crashingRun(): Promise<{ tag: string; dirs: string[]; kill(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'spillway-hosts-crash-'));
  const script = join(dir, 'run.mts');
  writeFileSync(
    script,
    `import { createHosts } from ${JSON.stringify(join(repoRoot, 'test/helpers/hosts.ts'))};\n` +
      `const hosts = await createHosts(['one', 'two']);\n` +
      `console.log(JSON.stringify({ tag: hosts.tag, dirs: hosts.list.map((h) => h.dataDir) }));\n` +
      `hosts.host('one').spawn('sleep', ['600']);\n` +
      `setInterval(() => undefined, 1000);\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const info = JSON.parse(line.toString()) as { tag: string; dirs: string[] };
  return {
    ...info,
    kill: async () => {
      child.kill('SIGKILL');
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const unavailable = hostsUnavailable();

describe.skipIf(unavailable !== undefined)('the host harness', () => {
  const made: Hosts[] = [];
  afterAll(async () => {
    for (const h of made) await h.destroy();
  });

  it('removes what a crashed run left, and leaves a live run alone', async () => {
    const crashed = await crashingRun();
    expect(namespaces()).toContain(`spw-${crashed.tag}-one`);
    await crashed.kill();
    // Its sleep outlives it, in its namespace; its namespaces, bridge and folders are all there.
    expect(namespaces()).toContain(`spw-${crashed.tag}-two`);
    const live = await createHosts(['live']);
    made.push(live);
    expect(namespaces()).not.toContain(`spw-${crashed.tag}-`);
    expect(links()).not.toContain(`spwb${crashed.tag}`);
    for (const d of crashed.dirs) expect(existsSync(d)).toBe(false);
    // A second run while the first is alive (this process owns both) removes nothing of it.
    made.push(await createHosts(['other']));
    expect(namespaces()).toContain(`spw-${live.tag}-live`);
    expect(readFileSync(join(tmpdir(), 'spillway-test-hosts', `${live.tag}.json`), 'utf8')).toContain(String(process.pid));
  });

  it('destroy removes namespaces, links, bridge and folders, and kills what ran there', async () => {
    const hosts = await createHosts(['a', 'b']);
    const proc = hosts.host('a').spawn('sleep', ['600']);
    await hosts.destroy();
    expect(await proc.exited).toBe('SIGKILL');
    expect(namespaces()).not.toContain(`spw-${hosts.tag}-`);
    expect(links()).not.toContain(`spw${hosts.tag}`);
    for (const h of hosts.list) expect(existsSync(h.dataDir)).toBe(false);
    await hosts.destroy();
  });

  it('hosts reach each other and the bridge; a link down cuts one off', async () => {
    const hosts = await createHosts(['x', 'y']);
    made.push(hosts);
    const [x, y] = [hosts.host('x'), hosts.host('y')];
    const server = y.spawn('node', ['-e', `require('node:net').createServer((s) => s.end('hi')).listen(7000, '${y.address}', () => console.log('up'))`]);
    await server.waitForOutput(/up/);
    const probe = () => x.spawn('node', ['-e', `const s = require('node:net').connect(7000, '${y.address}'); s.setTimeout(1500, () => process.exit(3)); s.on('data', (d) => { console.log(String(d)); process.exit(0); }); s.on('error', () => process.exit(2));`]).exited;
    expect(await probe()).toBe(0);
    await x.linkDown();
    expect(await probe()).not.toBe(0);
    await x.linkUp();
    expect(await probe()).toBe(0);
  });
});

if (unavailable !== undefined) {
  describe('the host harness', () => {
    it.skip(`skipped: ${unavailable}`, () => undefined);
  });
}
