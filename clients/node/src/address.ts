import { lookup } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';

import { InputError } from './errors.js';

/** What grpc-js connects to for an address. */
export interface ChannelTarget {
  /** A grpc-js target: `host:port`, `ipv4:a:p,b:p`, `ipv6:[a]:p,[b]:p`, `dns:///name:port`, `unix:…`. */
  target: string;
  /** More than one endpoint (a list, or a resolver that may return several): spread calls round-robin. */
  roundRobin: boolean;
}

/** Resolves a host name to its addresses (`dns.lookup` with `all`); tests pass a fake. */
export type HostLookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export const systemLookup: HostLookup = (hostname) => lookup(hostname, { all: true });

/** Target schemes grpc-js resolves itself; anything else is `host:port`. */
const SCHEMES = /^(dns|ipv4|ipv6|unix|unix-abstract):/;

/**
 * The grpc-js target for `address`:
 * - `'host:port'` (or `'[v6]:port'`): as it is, one endpoint;
 * - `'dns:///name:port'`: as it is, round-robin over every address the name resolves to (replicas
 *   behind one name); `ipv4:`/`ipv6:`/`unix:` targets pass through too;
 * - a list, as an array or comma-separated (`'h1:p1,h2:p2'`): one `ipv4:` (or `ipv6:`) target of
 *   every endpoint, round-robin. Host names in it are resolved here with `lookup`; IPv4 is used
 *   when every host has an IPv4 address, else IPv6 when every host has one of those.
 *
 * @throws InputError (field `address`) for a malformed address
 * @throws Error from `lookup` when a name in a list does not resolve
 */
export async function channelTarget(
  address: string | readonly string[],
  hostLookup: HostLookup = systemLookup,
): Promise<ChannelTarget> {
  const list = addressList(address);
  const [only] = list;
  if (list.length === 1 && only !== undefined) {
    if (SCHEMES.test(only)) return { target: only, roundRobin: /^dns:/.test(only) || only.includes(',') };
    parseHostPort(only, 'address');
    return { target: only, roundRobin: false };
  }
  const endpoints = list.map((entry, index) => ({ ...parseHostPort(entry, `address[${index}]`), entry }));
  const resolved = await Promise.all(
    endpoints.map(async ({ host, port, entry }) => ({
      entry,
      port,
      addresses: isIPv4(host) || isIPv6(host) ? [host] : (await hostLookup(host)).map((found) => found.address),
    })),
  );
  for (const family of ['ipv4', 'ipv6'] as const) {
    const inFamily = family === 'ipv4' ? isIPv4 : isIPv6;
    if (!resolved.every(({ addresses }) => addresses.some(inFamily))) continue;
    const hostPorts = resolved.flatMap(({ addresses, port }) =>
      addresses.filter(inFamily).map((ip) => (family === 'ipv4' ? `${ip}:${port}` : `[${ip}]:${port}`)),
    );
    return { target: `${family}:${[...new Set(hostPorts)].join(',')}`, roundRobin: true };
  }
  const v4Only = resolved.find(({ addresses }) => !addresses.some(isIPv6));
  const v6Only = resolved.find(({ addresses }) => !addresses.some(isIPv4));
  throw new InputError(
    'address',
    `expected endpoints of one IP family (grpc-js balances over IPv4 or IPv6 lists, not both), got ` +
      `${v4Only?.entry ?? '?'} with IPv4 only and ${v6Only?.entry ?? '?'} with IPv6 only`,
  );
}

/** `address` as a list of entries: an array, or a comma-separated string without a scheme. */
export function addressList(address: string | readonly string[]): string[] {
  const entries = typeof address === 'string' && !SCHEMES.test(address) ? address.split(',') : [address].flat();
  const list = entries.map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (list.length === 0) {
    throw new InputError(
      'address',
      `expected host:port, a list of them, or dns:///name:port, got ${JSON.stringify(address)}`,
    );
  }
  return list;
}

/**
 * Checks `address` without resolving anything: every entry is `host:port` (or `[v6]:port`), or
 * the one entry is a target with a scheme grpc-js knows. Returns its entries.
 * @throws InputError naming `address` or `address[i]`
 */
export function checkAddress(address: string | readonly string[]): string[] {
  const list = addressList(address);
  list.forEach((entry, index) => {
    if (list.length === 1 && SCHEMES.test(entry)) return;
    parseHostPort(entry, list.length === 1 ? 'address' : `address[${index}]`);
  });
  return list;
}

/** `host:port` or `[v6]:port`, with a port from 1 to 65535. */
export function parseHostPort(entry: string, field: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([^:[\]]+)):(\d{1,5})$/.exec(entry);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (host === undefined || !(port >= 1 && port <= 65535)) {
    throw new InputError(
      field,
      `expected host:port (e.g. 127.0.0.1:50051, [::1]:50051, teacher:50051) or dns:///name:port, got ${JSON.stringify(entry)}`,
    );
  }
  return { host, port };
}
