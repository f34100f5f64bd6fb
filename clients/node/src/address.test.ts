import { describe, expect, it } from 'vitest';

import { channelTarget, checkAddress, type HostLookup } from './address.js';
import { InputError } from './errors.js';

/** A resolver that knows a few names, and records what it was asked. */
function fakeLookup(table: Record<string, string[]>): HostLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = (hostname: string): Promise<Array<{ address: string; family: number }>> => {
    asked.push(hostname);
    const addresses = table[hostname];
    if (addresses === undefined) return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${hostname}`));
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return Object.assign(lookup, { asked });
}

describe('channelTarget', () => {
  it('passes one host:port and scheme targets through; dns: and IP lists balance round-robin', async () => {
    const lookup = fakeLookup({});
    expect(await channelTarget('127.0.0.1:50051', lookup)).toEqual({ target: '127.0.0.1:50051', roundRobin: false });
    expect(await channelTarget('teacher.local:50051', lookup)).toEqual({
      target: 'teacher.local:50051',
      roundRobin: false,
    });
    expect(await channelTarget('[::1]:50051', lookup)).toEqual({ target: '[::1]:50051', roundRobin: false });
    expect(await channelTarget(['127.0.0.1:50051'], lookup)).toEqual({ target: '127.0.0.1:50051', roundRobin: false });
    expect(await channelTarget('dns:///teacher.ns.svc:50051', lookup)).toEqual({
      target: 'dns:///teacher.ns.svc:50051',
      roundRobin: true,
    });
    expect(await channelTarget('ipv4:10.0.0.1:1,10.0.0.2:1', lookup)).toEqual({
      target: 'ipv4:10.0.0.1:1,10.0.0.2:1',
      roundRobin: true,
    });
    expect(await channelTarget('unix:/run/teacher.sock', lookup)).toEqual({
      target: 'unix:/run/teacher.sock',
      roundRobin: false,
    });
    // Single addresses are left to grpc-js's own resolver.
    expect(lookup.asked).toEqual([]);
  });

  it('makes a list one ipv4: or ipv6: target, resolving host names first', async () => {
    const lookup = fakeLookup({
      'a.local': ['10.0.0.1', 'fd00::1'],
      'b.local': ['10.0.0.2', '10.0.0.3'],
      'c.local': ['fd00::3'],
    });
    expect(await channelTarget(['10.0.0.9:50051', 'a.local:50051', 'b.local:50052'], lookup)).toEqual({
      target: 'ipv4:10.0.0.9:50051,10.0.0.1:50051,10.0.0.2:50052,10.0.0.3:50052',
      roundRobin: true,
    });
    expect(await channelTarget('a.local:1, c.local:2', lookup)).toEqual({
      target: 'ipv6:[fd00::1]:1,[fd00::3]:2',
      roundRobin: true,
    });
    expect(await channelTarget(['10.0.0.1:1', '10.0.0.1:1', '10.0.0.2:1'], lookup)).toEqual({
      target: 'ipv4:10.0.0.1:1,10.0.0.2:1',
      roundRobin: true,
    });
    await expect(channelTarget(['b.local:1', 'c.local:2'], lookup)).rejects.toThrow(
      /^address: expected endpoints of one IP family .* got b\.local:1 with IPv4 only and c\.local:2 with IPv6 only$/,
    );
    await expect(channelTarget(['b.local:1', 'nowhere:2'], lookup)).rejects.toThrow('getaddrinfo ENOTFOUND nowhere');
  });
});

describe('checkAddress', () => {
  it.each([
    ['localhost', 'address', /^address: expected host:port \(e\.g\. 127\.0\.0\.1:50051/],
    ['127.0.0.1:0', 'address', /got "127\.0\.0\.1:0"$/],
    [['127.0.0.1:1', 'teacher'], 'address[1]', /^address\[1\]: expected host:port/],
    ['', 'address', /^address: expected host:port, a list of them, or dns:\/\/\/name:port, got ""$/],
    [[], 'address', /got \[\]$/],
  ])('refuses %j, naming %s', (address, field, message) => {
    let thrown: unknown;
    try {
      checkAddress(address);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InputError);
    expect((thrown as InputError).field).toBe(field);
    expect((thrown as InputError).message).toMatch(message);
  });

  it('returns the entries of a list', () => {
    expect(checkAddress('a:1,b:2')).toEqual(['a:1', 'b:2']);
    expect(checkAddress(['[::1]:1'])).toEqual(['[::1]:1']);
  });
});
