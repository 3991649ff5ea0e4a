import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { SpillwayError, type ErrorDetail } from '../protocol/errors.js';
import { embeddedIpv4, refusedClass } from './address-classes.js';
import { splitList } from './split-list.js';

/**
 * The egress guard decides whether Spillway may POST to a callback URL. A callback URL is chosen
 * by whoever submits a prediction, so without a guard it is a request forgery primitive: the
 * platform would fetch its own admin ports, the cloud metadata service or the office network on
 * the client's behalf. The guard resolves the name once and returns the addresses it judged, and
 * delivery connects to exactly those, so DNS cannot answer differently between check and connect.
 */

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** Operator-trusted destinations that the default refusals do not apply to. */
export interface EgressPolicy {
  /** Lower-case host names, without a trailing dot; every address they resolve to is allowed. */
  readonly hosts: ReadonlySet<string>;
  readonly addresses: BlockList;
  /** The entries as given, for logs and for error messages. */
  readonly entries: readonly string[];
}

export type EgressDecision =
  | {
      readonly ok: true;
      /** The normalised URL to send to (its host is what goes in Host and TLS SNI). */
      readonly url: string;
      /** The host name as in the URL, without IPv6 brackets. */
      readonly hostname: string;
      /** Connect to one of these and nothing else. */
      readonly addresses: readonly ResolvedAddress[];
    }
  | {
      readonly ok: false;
      readonly code: 'SPILLWAY_INVALID_CALLBACK' | 'SPILLWAY_CALLBACK_REFUSED';
      readonly reason: string;
      /** True only when trying again later can succeed (a DNS failure); a refusal is final. */
      readonly retryable: boolean;
    };

export interface CheckOptions {
  readonly resolve?: Resolver;
  readonly resolveTimeoutMs?: number;
}

export const maxCallbackUrlLength = 2048;

/** Names that reach a cloud control plane; their addresses are refused too, this catches them early. */
const refusedNames = new Set(['metadata.google.internal', 'metadata']);

export const emptyEgressPolicy: EgressPolicy = Object.freeze({
  hosts: new Set<string>(),
  addresses: new BlockList(),
  entries: [],
});

export async function checkCallbackUrl(
  raw: string,
  policy: EgressPolicy,
  options: CheckOptions = {},
): Promise<EgressDecision> {
  if (raw.length > maxCallbackUrlLength) return invalid(`the URL is longer than ${maxCallbackUrlLength} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return invalid('the URL cannot be parsed');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return invalid(`the scheme must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username !== '' || url.password !== '') return invalid('the URL must not carry credentials');
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (hostname === '') return invalid('the URL has no host');
  const name = normaliseHost(hostname);

  const trustedName = policy.hosts.has(name);
  if (!trustedName && refusedNames.has(name)) return refused(`${hostname} is a cloud metadata service`);

  let addresses: readonly ResolvedAddress[];
  const family = isIP(hostname);
  if (family === 4 || family === 6) {
    addresses = [{ address: hostname, family }];
  } else {
    try {
      addresses = await withTimeout(
        (options.resolve ?? resolveAll)(hostname),
        options.resolveTimeoutMs ?? 5000,
        `resolving ${hostname} took too long`,
      );
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const why = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
      return unresolved(`cannot resolve ${hostname} (${why})`);
    }
    if (addresses.length === 0) return unresolved(`${hostname} has no address`);
  }

  if (!trustedName) {
    // One bad address refuses the URL: a client must not pick a name with one public and one
    // private address and hope for the private one.
    for (const { address } of addresses) {
      if (isIP(address) === 0) return refused(`${hostname} resolves to ${JSON.stringify(address)}, not an IP address`);
      if (addressAllowed(address, policy)) continue;
      const cls = refusedClass(address);
      if (cls === undefined) continue;
      const via = address === hostname ? '' : `${hostname} resolves to `;
      return refused(`${via}${address} (${cls})`);
    }
  }
  return { ok: true, url: url.href, hostname, addresses: dedupe(addresses) };
}

function addressAllowed(address: string, policy: EgressPolicy): boolean {
  const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
  if (policy.addresses.check(address, family)) return true;
  // Judge an IPv4-mapped or NAT64 address like the IPv4 address it reaches, here as in refusals.
  const embedded = embeddedIpv4(address);
  return embedded !== undefined && policy.addresses.check(embedded.ipv4, 'ipv4');
}

const resolveAll: Resolver = async (hostname) => {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function dedupe(addresses: readonly ResolvedAddress[]): ResolvedAddress[] {
  const seen = new Set<string>();
  return addresses.filter((a) => {
    if (seen.has(a.address)) return false;
    seen.add(a.address);
    return true;
  });
}

function normaliseHost(hostname: string): string {
  return hostname.toLowerCase().replace(/\.$/, '');
}

function invalid(reason: string): EgressDecision {
  return { ok: false, code: 'SPILLWAY_INVALID_CALLBACK', reason, retryable: false };
}

/** DNS can fail for a while; the dispatcher checks again at the next attempt. */
function unresolved(reason: string): EgressDecision {
  return { ok: false, code: 'SPILLWAY_CALLBACK_REFUSED', reason, retryable: true };
}

function refused(reason: string): EgressDecision {
  return { ok: false, code: 'SPILLWAY_CALLBACK_REFUSED', reason, retryable: false };
}

const hostLabel = '[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?';
const hostnamePattern = new RegExp(`^(?=.{1,253}$)${hostLabel}(\\.${hostLabel})*$`);

/**
 * Builds the policy from `callbacks.allow` (config) or `SPILLWAY_CALLBACKS_ALLOW` (env). As with
 * every setting, the environment, when set and not empty, replaces the file's value. Each entry is
 * a host name (exact, case-insensitive), an IPv4/IPv6 address, or a CIDR range. Every bad entry is
 * reported at once as SPILLWAY_INVALID_CONFIG.
 */
export function parseEgressPolicy(sources: {
  readonly allow?: readonly unknown[];
  readonly env?: string;
}): EgressPolicy {
  const fromEnv = sources.env !== undefined && sources.env.trim() !== '';
  const entries: readonly unknown[] = fromEnv ? splitList(sources.env ?? '') : (sources.allow ?? []);
  const where = (i: number) => (fromEnv ? 'SPILLWAY_CALLBACKS_ALLOW' : `callbacks.allow[${i}]`);
  const hosts = new Set<string>();
  const addresses = new BlockList();
  const problems: ErrorDetail[] = [];
  entries.forEach((entry, i) => {
    const problem = addEntry(entry, hosts, addresses);
    if (problem !== undefined) problems.push({ pointer: where(i), message: problem });
  });
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.pointer}: ${p.message}`).join('\n');
    throw new SpillwayError('SPILLWAY_INVALID_CONFIG', `invalid callback allowlist:\n${lines}`, { details: problems });
  }
  return Object.freeze({ hosts, addresses, entries: entries.map(String) });
}

function addEntry(entry: unknown, hosts: Set<string>, addresses: BlockList): string | undefined {
  if (typeof entry !== 'string' || entry.trim() === '') return 'expected a host name, an IP address or a CIDR range';
  const text = entry.trim().replace(/^\[(.*)\]$/, '$1');
  const slash = text.indexOf('/');
  if (slash >= 0) {
    const net = text.slice(0, slash).replace(/^\[(.*)\]$/, '$1');
    const prefixText = text.slice(slash + 1);
    const family = isIP(net);
    const max = family === 4 ? 32 : 128;
    const prefix = Number(prefixText);
    if (family === 0) return `${JSON.stringify(entry)}: the network of a CIDR range must be an IP address`;
    if (!/^\d{1,3}$/.test(prefixText) || prefix > max) {
      return `${JSON.stringify(entry)}: the prefix length must be 0 to ${max}`;
    }
    addresses.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return undefined;
  }
  const family = isIP(text);
  if (family !== 0) {
    addresses.addAddress(text, family === 4 ? 'ipv4' : 'ipv6');
    return undefined;
  }
  const name = normaliseHost(text);
  if (!hostnamePattern.test(name)) return `${JSON.stringify(entry)} is not a host name, an IP address or a CIDR range`;
  hosts.add(name);
  return undefined;
}
