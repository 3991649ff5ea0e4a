import { BlockList, isIP } from 'node:net';

/**
 * Which special-purpose range an IP address falls in, for the egress guard. Ranges follow the
 * IANA special-purpose registries (RFC 6890 and successors). The aim is that a callback can only
 * reach the public Internet: anything that routes to this host, the local network, the cloud
 * provider's control plane or nowhere at all is refused unless an operator allowlists it.
 */

type Family = 'ipv4' | 'ipv6';

interface Range {
  readonly label: string;
  readonly list: BlockList;
}

function range(label: string, family: Family, cidrs: readonly string[]): Range {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [net, prefix] = cidr.split('/');
    list.addSubnet(net!, Number(prefix), family);
  }
  return { label, list };
}

// Order matters: the first match names the reason, so narrow ranges come before the wide ones
// that contain them (metadata before link-local, broadcast before reserved).
const ipv4Ranges: readonly Range[] = [
  range('cloud metadata', 'ipv4', ['169.254.169.254/32', '169.254.170.2/32']),
  range('broadcast', 'ipv4', ['255.255.255.255/32']),
  range('unspecified', 'ipv4', ['0.0.0.0/8']),
  range('loopback', 'ipv4', ['127.0.0.0/8']),
  range('private', 'ipv4', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']),
  range('link-local', 'ipv4', ['169.254.0.0/16']),
  range('carrier-grade NAT', 'ipv4', ['100.64.0.0/10']),
  range('multicast', 'ipv4', ['224.0.0.0/4']),
  range('documentation', 'ipv4', ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']),
  range('benchmarking', 'ipv4', ['198.18.0.0/15']),
  // 192.0.0.0/24 holds protocol assignments (and a legacy cloud metadata address, 192.0.0.192);
  // 192.88.99.0/24 is the retired 6to4 relay anycast; 240/4 is reserved for future use.
  range('reserved', 'ipv4', ['192.0.0.0/24', '192.88.99.0/24', '240.0.0.0/4']),
];

const ipv6Ranges: readonly Range[] = [
  range('cloud metadata', 'ipv6', ['fd00:ec2::254/128']),
  range('unspecified', 'ipv6', ['::/128']),
  range('loopback', 'ipv6', ['::1/128']),
  // Deprecated (RFC 4291); no stack should route these, so nothing legitimate uses them.
  range('IPv4-compatible (deprecated)', 'ipv6', ['::/96']),
  range('private (unique local)', 'ipv6', ['fc00::/7']),
  range('link-local', 'ipv6', ['fe80::/10']),
  range('site-local (deprecated)', 'ipv6', ['fec0::/10']),
  range('multicast', 'ipv6', ['ff00::/8']),
  range('documentation', 'ipv6', ['2001:db8::/32', '3fff::/20']),
  // Teredo (2001::/32) and 6to4 (2002::/16) tunnel to IPv4 addresses we could not judge reliably.
  range('IETF protocol assignments (Teredo, benchmarking, ...)', 'ipv6', ['2001::/23']),
  range('6to4 (deprecated)', 'ipv6', ['2002::/16']),
  range('NAT64 local use', 'ipv6', ['64:ff9b:1::/48']),
  range('discard-only', 'ipv6', ['100::/64']),
];

/** Prefixes whose last 32 bits are an IPv4 address that the packet really goes to. */
const embedsIpv4: readonly { readonly label: string; readonly list: BlockList }[] = [
  range('IPv4-mapped', 'ipv6', ['::ffff:0:0/96']),
  range('NAT64', 'ipv6', ['64:ff9b::/96']),
];

const globalUnicast = range('global unicast', 'ipv6', ['2000::/3']).list;

/** The IPv4 address an IPv4-mapped or NAT64 IPv6 address stands for, with the prefix's name. */
export function embeddedIpv4(address: string): { readonly ipv4: string; readonly via: string } | undefined {
  if (isIP(address) !== 6) return undefined;
  const via = embedsIpv4.find((r) => r.list.check(address, 'ipv6'));
  if (via === undefined) return undefined;
  const bytes = ipv6Bytes(address);
  return { ipv4: bytes.subarray(12).join('.'), via: via.label };
}

/**
 * The name of the refused class `address` belongs to, or undefined when it is an ordinary public
 * address. An IPv6 address that embeds an IPv4 one is judged by the IPv4 address it reaches.
 */
export function refusedClass(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return ipv4Ranges.find((r) => r.list.check(address, 'ipv4'))?.label;
  if (family !== 6) return 'not an IP address';
  const embedded = embeddedIpv4(address);
  if (embedded !== undefined) {
    const inner = refusedClass(embedded.ipv4);
    return inner === undefined ? undefined : `${inner}, ${embedded.via} ${embedded.ipv4}`;
  }
  const label = ipv6Ranges.find((r) => r.list.check(address, 'ipv6'))?.label;
  if (label !== undefined) return label;
  // Everything outside 2000::/3 is unassigned or special; only global unicast reaches a receiver.
  return globalUnicast.check(address, 'ipv6') ? undefined : 'reserved (outside global unicast 2000::/3)';
}

/** The 16 bytes of an IPv6 address (which must already be valid: `isIP(address) === 6`). */
export function ipv6Bytes(address: string): Uint8Array {
  let text = address.replace(/%.*$/, '');
  const bytes = new Uint8Array(16);
  // A trailing dotted quad fills the last two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: 8 - headGroups.length - tailGroups.length }, () => '0');
  const groups = tail === undefined ? headGroups : [...headGroups, ...zeros, ...tailGroups];
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[i * 2] = value >> 8;
    bytes[i * 2 + 1] = value & 0xff;
  });
  return bytes;
}
