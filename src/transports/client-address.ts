/**
 * Who a connection comes from, for the per-address connection cap, and whether its page's origin may connect.
 * Pure: the transports pass in the socket address and the request headers.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The client's address: the last entry of the trusted proxy's header when one is configured and present (the
 * entry that proxy appended itself; earlier ones are whatever the client sent), else the socket's peer.
 */
export function clientAddress(
  socketAddress: string | undefined,
  headers: IncomingHttpHeaders,
  trustedProxyHeader: string | undefined,
): string {
  if (trustedProxyHeader) {
    const raw = headers[trustedProxyHeader];
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    const last = value
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .pop();
    if (last) return normalise(last);
  }
  return normalise(socketAddress ?? 'unknown');
}

/** One spelling per address: an IPv4 client on a dual-stack socket counts with its plain IPv4 form. */
function normalise(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/**
 * Whether a page from `origin` may use the transports. Without an allow-list every origin may (clients carry
 * their credentials themselves, never as cookies); with one, a browser request must come from a listed origin.
 * A request without `Origin` is not a browser page's cross-origin request and is judged by its credentials alone.
 */
export function originAllowed(origin: string | string[] | undefined, allowed: string[] | undefined): boolean {
  if (!allowed || origin === undefined) return true;
  if (Array.isArray(origin)) return false;
  return allowed.includes(origin.toLowerCase());
}
