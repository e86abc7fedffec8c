import { isIP } from 'node:net';

/** A peer address split into what `net.connect` takes. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Formats a dialable address: `host:port`, or `[v6]:port` for an IPv6 host.
 */
export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

const PLAIN = /^([^:[\]\s/]+):(\d{1,5})$/;
const BRACKETED = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/;

/**
 * Parses `host:port` or `[v6]:port` (what {@link formatAddress} makes, and
 * what peers gossip). Returns undefined for anything else: addresses come
 * from the network, so a bad one is a runtime failure, not a bug.
 */
export function parseAddress(address: string): HostPort | undefined {
  if (typeof address !== 'string' || address.length > 300) return undefined;
  const m = PLAIN.exec(address) ?? BRACKETED.exec(address);
  if (!m) return undefined;
  const host = m[1]!;
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65_535)) return undefined;
  if (m[0].startsWith('[') && isIP(host) !== 6) return undefined;
  return { host, port };
}
