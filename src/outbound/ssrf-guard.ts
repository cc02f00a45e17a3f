/**
 * Server-side request forgery guard for outbound webhooks: which addresses a receiver URL may reach. Checked when an
 * endpoint is created (its host and the host's DNS answers) and again on every connection, through the `lookup` of
 * the HTTP agent, so the address actually dialled is the one checked (a DNS answer that changes between the two,
 * "rebinding", fails the attempt with `blocked_address`).
 */
import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

// Two lists: Node checks an IPv4 address against IPv6 rules too (as IPv4-mapped), so `::ffff:0:0/96` in a shared
// list would block every IPv4 address.
const blocked4 = new BlockList();
const blocked6 = new BlockList();
// IPv4: unspecified, "this network", loopback, RFC 1918, carrier-grade NAT, link-local (cloud metadata lives at
// 169.254.169.254), IETF protocol assignments, documentation and benchmarking ranges, multicast, reserved, broadcast.
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked4.addSubnet(net, prefix, 'ipv4');
}
// IPv6: unspecified, loopback, IPv4-mapped and IPv4-compatible (they reach IPv4 hosts; refused outright),
// NAT64, unique local (RFC 4193), link-local, site-local (deprecated), multicast, documentation.
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['::', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
] as const) {
  blocked6.addSubnet(net, prefix, 'ipv6');
}

/** True for an address no receiver should be on unless private networks are allowed. Non-addresses are blocked. */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked4.check(address, 'ipv4');
  if (family === 6) return blocked6.check(address.split('%')[0], 'ipv6');
  return true;
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Host name → addresses. The default is the system resolver; tests inject their own. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))),
    ),
  );

/** The error a blocked connection fails with; the sender maps it to the attempt error `blocked_address`. */
export class BlockedAddressError extends Error {
  readonly code = 'EBLOCKEDADDRESS';
  constructor(readonly address: string) {
    super(`connection to ${address} refused: private, loopback or reserved address`);
    this.name = 'BlockedAddressError';
  }
}

/**
 * Resolves a host at create time and says which answer is blocked, if any (null = every answer is allowed).
 * A literal address is checked as is. Throws what the resolver throws (e.g. ENOTFOUND).
 */
export async function firstBlockedAddress(hostname: string, resolver: Resolver): Promise<string | null> {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(host)) return isBlockedAddress(host) ? host : null;
  const answers = await resolver(host);
  if (answers.length === 0) throw new Error(`${host} has no address`);
  for (const a of answers) if (isBlockedAddress(a.address)) return a.address;
  return null;
}

/**
 * A `lookup` for http(s) agents: resolves with `resolver` and refuses blocked answers, so the socket can only connect
 * to an allowed address. Node skips `lookup` for literal IPs: the sender checks those itself before connecting.
 */
export function guardedLookup(resolver: Resolver, allowPrivateNetworks: boolean): LookupFunction {
  return (hostname, options, callback) => {
    const wantAll = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    const family =
      typeof options === 'object' && options !== null ? (options as { family?: number }).family : undefined;
    resolver(hostname).then(
      (answers) => {
        let list = answers;
        if (family === 4 || family === 6) list = answers.filter((a) => a.family === family);
        if (list.length === 0) {
          const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
          return (callback as (e: Error) => void)(err);
        }
        if (!allowPrivateNetworks) {
          const bad = list.find((a) => isBlockedAddress(a.address));
          if (bad) return (callback as (e: Error) => void)(new BlockedAddressError(bad.address));
        }
        if (wantAll) (callback as (e: null, a: ResolvedAddress[]) => void)(null, list);
        else (callback as (e: null, a: string, f: number) => void)(null, list[0].address, list[0].family);
      },
      (err: Error) => (callback as (e: Error) => void)(err),
    );
  };
}
