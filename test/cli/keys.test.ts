import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { predict } from '../helpers/http.js';
import { inBrokerLegSuite } from '../helpers/paths.js';
import { processesOfTest, runSpillway } from '../helpers/processes.js';

const processes = processesOfTest();
afterEach(() => processes.killAll());

const dataDir = () => mkdtempSync(join(tmpdir(), 'spillway-keys-'));

/** `spillway keys create` with --json: the key (shown once) and what was stored. */
async function create(data: string, ...args: string[]): Promise<{ key: string; id: string; tenant: string; scopes: string[] }> {
  const made = await runSpillway(['keys', 'create', '--data', data, '--json', ...args]);
  expect(made.code, made.output).toBe(0);
  return JSON.parse(made.output) as { key: string; id: string; tenant: string; scopes: string[] };
}

describe.skipIf(inBrokerLegSuite)('spillway keys', () => {
  it('creates a key shown once, lists keys without secrets, and a running gateway honours them', async () => {
    const data = dataDir();
    const gateway = await processes.start(['serve', '--data', data, '--port', '0']);
    expect((await predict(gateway.url, 'echo', 'open')).status).toBe(202);

    const acme = await create(data, '--tenant', 'acme', '--scopes', 'predict,read', '--name', 'ci');
    expect(acme.key).toMatch(/^spw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(acme).toMatchObject({ tenant: 'acme', scopes: ['predict', 'read'], name: 'ci' });
    expect(acme).not.toHaveProperty('hash');

    const listed = await runSpillway(['keys', 'list', '--data', data]);
    expect(listed.code).toBe(0);
    expect(listed.output).toContain(acme.id);
    expect(listed.output).toContain('active');
    expect(listed.output).not.toContain(acme.key.slice(-43));
    const json = await runSpillway(['keys', 'list', '--data', data, '--json']);
    expect(JSON.stringify(JSON.parse(json.output))).not.toContain(acme.key.slice(-43));

    const auth = { authorization: `Bearer ${acme.key}` };
    await expect.poll(async () => (await predict(gateway.url, 'echo', 'x')).status, { timeout: 15_000 }).toBe(401);
    expect((await predict(gateway.url, 'echo', 'x', auth)).status).toBe(202);

    expect((await runSpillway(['keys', 'revoke', '--data', data, '--key', acme.id])).code).toBe(0);
    await expect.poll(async () => (await predict(gateway.url, 'echo', 'x', auth)).status, { timeout: 15_000 }).toBe(401);
    expect((await runSpillway(['keys', 'list', '--data', data])).output).toContain('revoked');
  });

  it('rotates: the new key works at once and the old one until its grace ends', async () => {
    const data = dataDir();
    const gateway = await processes.start(['serve', '--data', data, '--port', '0']);
    const old = await create(data, '--tenant', 'acme', '--scopes', 'predict', '--rate-per-s', '100');
    const rotated = await runSpillway(['keys', 'rotate', '--data', data, '--key', old.id, '--grace-s', '2', '--json']);
    expect(rotated.code, rotated.output).toBe(0);
    const next = JSON.parse(rotated.output) as { key: string; id: string; tenant: string; limits: unknown };
    expect(next).toMatchObject({ tenant: 'acme', limits: { ratePerS: 100 } });
    expect(next.id).not.toBe(old.id);
    const oldAuth = { authorization: `Bearer ${old.key}` };
    const nextAuth = { authorization: `Bearer ${next.key}` };
    expect((await predict(gateway.url, 'echo', 'x', nextAuth)).status).toBe(202);
    // The old key ends 2 s after the rotation, whenever this check runs; until then it works.
    await expect.poll(async () => (await predict(gateway.url, 'echo', 'x', oldAuth)).status, { timeout: 15_000 }).toBe(401);
    expect((await predict(gateway.url, 'echo', 'x', nextAuth)).status).toBe(202);
    expect((await runSpillway(['keys', 'list', '--data', data])).output).toContain('expired');
  });

  it('says what is wrong with bad input, all at once, and touches nothing', async () => {
    const data = dataDir();
    const bad = await runSpillway(['keys', 'create', '--data', data, '--tenant', 'no spaces', '--scopes', 'predict,fly', '--burst', '0']);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--tenant "no spaces" must be');
    expect(bad.output).toContain('unknown scope "fly"');
    expect(bad.output).toContain('--burst must be a whole number of at least 1');
    const none = await runSpillway(['keys', 'list', '--data', data]);
    expect(none.output).toContain('no API keys');
    expect((await runSpillway(['keys', 'revoke', '--data', data, '--key', '0123456789abcdef'])).code).toBe(1);
    expect((await runSpillway(['keys', 'fly', '--data', data])).code).toBe(2);
  });
});

describe.skipIf(inBrokerLegSuite)('a gateway others can reach', () => {
  // 10.255.255.1 is never bound: the check comes before the gateway listens.
  it('refuses to start without keys, and names the way out', async () => {
    const refused = await runSpillway(['gateway', '--data', dataDir(), '--host', '10.255.255.1', '--port', '0']);
    expect(refused.code).toBe(2);
    expect(refused.output).toContain('which is not loopback, and no API key exists');
    expect(refused.output).toContain('spillway keys create');
  });

  it('starts with auth none, warning that anyone may use it', async () => {
    const open = await runSpillway(['gateway', '--data', dataDir(), '--host', '10.255.255.1', '--port', '0', '--auth', 'none']);
    // It then fails to listen on an address this machine does not have; the warning came first.
    expect(open.output).toContain('anyone who can reach this gateway may submit, read and cancel any prediction');
  });

  it('starts once a key exists', async () => {
    const data = dataDir();
    await create(data, '--tenant', 'acme', '--scopes', 'predict');
    const started = await runSpillway(['gateway', '--data', data, '--host', '10.255.255.1', '--port', '0']);
    expect(started.output).not.toContain('no API key exists');
    // Past the check, it meets the address this machine does not have.
    expect(started.output).toMatch(/EADDRNOTAVAIL|address not available/i);
  });
});
