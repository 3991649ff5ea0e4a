import { describe, expect, it } from 'vitest';
import {
  checkCallbackUrl,
  emptyEgressPolicy,
  parseEgressPolicy,
  type EgressDecision,
  type Resolver,
} from '../../src/callbacks/egress-guard.js';
import { SpillwayError } from '../../src/protocol/errors.js';

/** A resolver that answers from a table, so name tests do not depend on the machine's DNS. */
function table(entries: Record<string, string[]>): Resolver {
  return async (hostname) => {
    const found = entries[hostname];
    if (found === undefined) throw Object.assign(new Error(`no such host ${hostname}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }));
  };
}

function refusal(decision: EgressDecision): { code: string; reason: string } {
  if (decision.ok) throw new Error(`expected a refusal, got ${JSON.stringify(decision)}`);
  return decision;
}

describe('egress guard: refused destinations', () => {
  it.each([
    ['http://127.0.0.1/hook', 'loopback'],
    ['http://127.9.8.7:8080/', 'loopback'],
    ['http://[::1]/', 'loopback'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://[::]/', 'unspecified'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.0.1/', 'private'],
    ['http://172.31.255.255/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://[fc00::1]/', 'private (unique local)'],
    ['http://[fd12:3456::1]/', 'private (unique local)'],
    ['http://169.254.1.1/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://100.64.0.1/', 'carrier-grade NAT'],
    ['http://100.127.255.254/', 'carrier-grade NAT'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://239.255.255.250/', 'multicast'],
    ['http://[ff02::1]/', 'multicast'],
    ['http://255.255.255.255/', 'broadcast'],
    ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['http://[fd00:ec2::254]/', 'cloud metadata'],
    ['http://192.0.2.10/', 'documentation'],
    ['http://203.0.113.5/', 'documentation'],
    ['http://[2001:db8::1]/', 'documentation'],
    ['http://198.18.0.1/', 'benchmarking'],
    ['http://240.0.0.1/', 'reserved'],
    ['http://192.0.0.192/', 'reserved'],
    ['http://[2002:7f00:1::1]/', '6to4 (deprecated)'],
    ['http://[::7f00:1]/', 'IPv4-compatible (deprecated)'],
    ['http://[100::1]/', 'discard-only'],
    ['http://[4000::1]/', 'reserved (outside global unicast 2000::/3)'],
  ])('%s is refused as %s', async (url, cls) => {
    const r = refusal(await checkCallbackUrl(url, emptyEgressPolicy));
    expect(r.code).toBe('SPILLWAY_CALLBACK_REFUSED');
    expect(r.reason).toContain(`(${cls})`);
  });

  it.each([
    ['http://[::ffff:127.0.0.1]/', 'loopback, IPv4-mapped 127.0.0.1'],
    ['http://[::ffff:a00:1]/', 'private, IPv4-mapped 10.0.0.1'],
    ['http://[::ffff:169.254.169.254]/', 'cloud metadata, IPv4-mapped 169.254.169.254'],
    ['http://[64:ff9b::7f00:1]/', 'loopback, NAT64 127.0.0.1'],
  ])('%s is judged by the IPv4 address it embeds', async (url, reason) => {
    const r = refusal(await checkCallbackUrl(url, emptyEgressPolicy));
    expect(r.code).toBe('SPILLWAY_CALLBACK_REFUSED');
    expect(r.reason).toContain(reason);
  });

  it('IPv4 written in other notations is normalised before it is judged', async () => {
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://0177.0.0.1/']) {
      expect(refusal(await checkCallbackUrl(url, emptyEgressPolicy)).reason).toContain('loopback');
    }
  });

  it('a name that resolves to loopback (localhost, through the real resolver) is refused', async () => {
    const r = refusal(await checkCallbackUrl('http://localhost:9/hook', emptyEgressPolicy));
    expect(r.code).toBe('SPILLWAY_CALLBACK_REFUSED');
    expect(r.reason).toMatch(/^localhost resolves to (127\.0\.0\.1|::1) \(loopback\)$/);
  });

  it('one refused address among several refuses the name', async () => {
    const resolve = table({ 'mixed.example': ['93.184.215.14', '10.0.0.7'] });
    const r = refusal(await checkCallbackUrl('https://mixed.example/', emptyEgressPolicy, { resolve }));
    expect(r.reason).toBe('mixed.example resolves to 10.0.0.7 (private)');
  });

  it('the cloud metadata name is refused without being resolved', async () => {
    let asked = false;
    const resolve: Resolver = async () => {
      asked = true;
      return [{ address: '93.184.215.14', family: 4 }];
    };
    for (const url of ['http://metadata.google.internal/computeMetadata/v1/', 'http://METADATA.google.internal./']) {
      const r = refusal(await checkCallbackUrl(url, emptyEgressPolicy, { resolve }));
      expect(r.reason).toContain('cloud metadata');
    }
    expect(asked).toBe(false);
  });

  it('a resolver that answers an IPv4-mapped address in dotted form is judged by the IPv4 address', async () => {
    const resolve = table({ 'mapped.example': ['::ffff:10.0.0.1'] });
    const r = refusal(await checkCallbackUrl('https://mapped.example/', emptyEgressPolicy, { resolve }));
    expect(r.reason).toBe('mapped.example resolves to ::ffff:10.0.0.1 (private, IPv4-mapped 10.0.0.1)');
  });

  it('a resolver that does not answer in time is refused as retryable', async () => {
    const resolve: Resolver = () => new Promise(() => {});
    const decision = await checkCallbackUrl('https://slow.example/', emptyEgressPolicy, { resolve, resolveTimeoutMs: 50 });
    expect(decision).toMatchObject({ ok: false, code: 'SPILLWAY_CALLBACK_REFUSED', retryable: true });
    expect(refusal(decision).reason).toContain('took too long');
  });

  it('a resolver answer that is not an IP address is refused', async () => {
    const resolve = table({ 'odd.example': ['93.184.215.14', 'not-an-ip'] });
    const r = refusal(await checkCallbackUrl('https://odd.example/', emptyEgressPolicy, { resolve }));
    expect(r.reason).toContain('not an IP address');
  });

  it('a name that does not resolve is refused as retryable', async () => {
    const decision = await checkCallbackUrl('https://nowhere.example/', emptyEgressPolicy, { resolve: table({}) });
    expect(decision).toMatchObject({ ok: false, code: 'SPILLWAY_CALLBACK_REFUSED', retryable: true });
    expect(refusal(decision).reason).toContain('ENOTFOUND');
  });
});

describe('egress guard: invalid URLs', () => {
  it.each([
    ['ftp://93.184.215.14/x', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['javascript:alert(1)', 'scheme'],
    ['not a url', 'cannot be parsed'],
    ['http://', 'cannot be parsed'],
    ['//93.184.215.14/relative', 'cannot be parsed'],
    ['https://user:secret@93.184.215.14/', 'credentials'],
    ['https://user@93.184.215.14/', 'credentials'],
    [`https://93.184.215.14/${'a'.repeat(2100)}`, 'longer than'],
  ])('%s is invalid (%s)', async (url, why) => {
    const decision = await checkCallbackUrl(url, emptyEgressPolicy);
    expect(decision).toMatchObject({ ok: false, code: 'SPILLWAY_INVALID_CALLBACK', retryable: false });
    expect(refusal(decision).reason).toContain(why);
  });
});

describe('egress guard: allowed destinations', () => {
  it('a public IPv4 literal is allowed, with a port, and the address is returned (nothing connects)', async () => {
    const decision = await checkCallbackUrl('https://93.184.215.14:8443/hooks?x=1', emptyEgressPolicy);
    expect(decision).toEqual({
      ok: true,
      url: 'https://93.184.215.14:8443/hooks?x=1',
      hostname: '93.184.215.14',
      addresses: [{ address: '93.184.215.14', family: 4 }],
    });
  });

  it('a public IPv6 literal and a public IPv4-mapped address are allowed', async () => {
    const v6 = await checkCallbackUrl('https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/', emptyEgressPolicy);
    expect(v6).toMatchObject({ ok: true, hostname: '2606:2800:21f:cb07:6820:80da:af6b:8b2c' });
    const mapped = await checkCallbackUrl('https://[::ffff:93.184.215.14]/', emptyEgressPolicy);
    expect(mapped).toMatchObject({ ok: true, addresses: [{ address: '::ffff:5db8:d70e', family: 6 }] });
  });

  it('a name is resolved once and all its (public) addresses are returned, deduplicated', async () => {
    const resolve = table({ 'hooks.example': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c', '93.184.215.14'] });
    const decision = await checkCallbackUrl('https://Hooks.Example/in', emptyEgressPolicy, { resolve });
    expect(decision).toEqual({
      ok: true,
      url: 'https://hooks.example/in',
      hostname: 'hooks.example',
      addresses: [
        { address: '93.184.215.14', family: 4 },
        { address: '2606:2800:21f:cb07:6820:80da:af6b:8b2c', family: 6 },
      ],
    });
  });

  it('the allowlist opens loopback by address, by CIDR range and by host name', async () => {
    const byAddress = parseEgressPolicy({ allow: ['127.0.0.1'] });
    expect(await checkCallbackUrl('http://127.0.0.1:8080/', byAddress)).toMatchObject({ ok: true });
    expect(refusal(await checkCallbackUrl('http://127.0.0.2/', byAddress)).reason).toContain('loopback');
    // The mapped form reaches the same address, so the same entry opens it.
    expect(await checkCallbackUrl('http://[::ffff:127.0.0.1]/', byAddress)).toMatchObject({ ok: true });

    // ::1 too, because some machines resolve localhost to both.
    const byRange = parseEgressPolicy({ allow: ['127.0.0.0/8', '::1'] });
    expect(await checkCallbackUrl('http://127.9.9.9/', byRange)).toMatchObject({ ok: true });
    expect(await checkCallbackUrl('http://localhost:9/', byRange)).toMatchObject({ ok: true, hostname: 'localhost' });

    const byName = parseEgressPolicy({ allow: ['LocalHost'] });
    const decision = await checkCallbackUrl('http://localhost:9/', byName);
    expect(decision).toMatchObject({ ok: true, hostname: 'localhost' });
    expect(decision.ok && decision.addresses.length).toBeGreaterThan(0);
    // A name entry opens that name only, not its addresses written out.
    expect(refusal(await checkCallbackUrl('http://127.0.0.1/', byName)).reason).toContain('loopback');
  });

  it('IPv6 ranges in the allowlist', async () => {
    const policy = parseEgressPolicy({ allow: ['fd00:1234::/32', '[fe80::1]'] });
    expect(await checkCallbackUrl('http://[fd00:1234:5::9]/', policy)).toMatchObject({ ok: true });
    expect(await checkCallbackUrl('http://[fe80::1]/', policy)).toMatchObject({ ok: true });
    expect(refusal(await checkCallbackUrl('http://[fd00:1235::9]/', policy)).reason).toContain('unique local');
  });
});

describe('egress guard: parsing the allowlist', () => {
  it('reads SPILLWAY_CALLBACKS_ALLOW (comma-separated) in place of the config value', async () => {
    const policy = parseEgressPolicy({ allow: ['10.0.0.0/8'], env: ' 192.168.0.0/16, hooks.internal ,' });
    expect(policy.entries).toEqual(['192.168.0.0/16', 'hooks.internal']);
    expect(await checkCallbackUrl('http://192.168.3.4/', policy)).toMatchObject({ ok: true });
    expect(await checkCallbackUrl('http://10.0.0.1/', policy)).toMatchObject({ ok: false });
    // An empty variable does not erase the file's list.
    expect(parseEgressPolicy({ allow: ['10.0.0.0/8'], env: '' }).entries).toEqual(['10.0.0.0/8']);
  });

  it('reports every bad entry at once, with where it came from', () => {
    let error: unknown;
    try {
      parseEgressPolicy({ allow: ['10.0.0.0/33', 'not a host!', 42, 'fd00::/129', '1.2.3/8', 'ok.example'] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SpillwayError);
    const e = error as SpillwayError;
    expect(e.code).toBe('SPILLWAY_INVALID_CONFIG');
    expect(e.details.map((d) => d.pointer)).toEqual([
      'callbacks.allow[0]',
      'callbacks.allow[1]',
      'callbacks.allow[2]',
      'callbacks.allow[3]',
      'callbacks.allow[4]',
    ]);
    expect(() => parseEgressPolicy({ env: 'localhost,300.1.1.1/8' })).toThrow(/SPILLWAY_CALLBACKS_ALLOW/);
  });
});
