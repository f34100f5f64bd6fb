import { ChannelCredentials } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';

import { InputError } from './errors.js';
import { callMetadata, channelOptionsFor, connectionSettings, deadlineAt } from './options.js';

const ROUND_ROBIN = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

describe('connectionSettings', () => {
  it('takes an address alone, applying the defaults', () => {
    const settings = connectionSettings('10.0.0.1:50051', '127.0.0.1:50051');
    expect(settings.address).toBe('10.0.0.1:50051');
    expect(settings.deadlineMs).toBe(30_000);
    expect(settings.streamDeadlineMs).toBe(Infinity);
    expect(settings.retry).toMatchObject({ attempts: 5, initialBackoffMs: 100, maxBackoffMs: 5_000 });
    expect(settings.credentials._isSecure()).toBe(false);
    expect(connectionSettings(undefined, '127.0.0.1:50052').displayAddress).toBe('127.0.0.1:50052');
    expect(connectionSettings(['a:1', 'b:2'], 'x:1').displayAddress).toBe('a:1,b:2');
  });

  it('maps options to channel options: reconnect backoff from retry, round_robin for several endpoints, the caller last', () => {
    const settings = connectionSettings(
      {
        address: ['10.0.0.1:1', '10.0.0.2:1'],
        retry: { initialBackoffMs: 50, maxBackoffMs: 800 },
        channelOptions: { 'grpc.max_reconnect_backoff_ms': 2_000, 'grpc.keepalive_time_ms': 10_000 },
      },
      'x:1',
    );
    expect(channelOptionsFor(settings, true)).toEqual({
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 2_000,
      'grpc.service_config': ROUND_ROBIN,
      'grpc.keepalive_time_ms': 10_000,
    });
    expect(channelOptionsFor(connectionSettings({ address: 'a:1', retry: false }, 'x:1'), false)).toEqual({});
  });

  it('makes TLS credentials, with the server name override as channel options', () => {
    const settings = connectionSettings(
      { address: 'teacher:443', tls: { serverNameOverride: 'teacher.example' }, retry: false },
      'x:1',
    );
    expect(settings.credentials).toBeInstanceOf(ChannelCredentials);
    expect(settings.credentials._isSecure()).toBe(true);
    expect(channelOptionsFor(settings, false)).toEqual({
      'grpc.ssl_target_name_override': 'teacher.example',
      'grpc.default_authority': 'teacher.example',
    });
    expect(() => connectionSettings({ tls: { privateKey: Buffer.from('key') } }, 'x:1')).toThrow(
      /^tls\.certChain: expected privateKey and certChain together/,
    );
  });

  it('refuses bad options, naming them', () => {
    expect(() => connectionSettings({ deadlineMs: 0 }, 'x:1')).toThrow(
      new InputError('deadlineMs', 'expected a number of ms > 0 (or Infinity), got 0'),
    );
    expect(() => connectionSettings({ retry: { attempts: 1.5 } }, 'x:1')).toThrow(/^retry\.attempts:/);
    expect(() => connectionSettings({ address: 'teacher' }, 'x:1')).toThrow(/^address: expected host:port/);
  });
});

describe('callMetadata', () => {
  it("adds the call's metadata to the connection's, the call's winning", () => {
    const metadata = callMetadata(
      { authorization: 'Bearer a', 'x-team': 'vision' },
      { authorization: 'Bearer b', 'trace-bin': Buffer.from([1, 2]) },
    );
    expect(metadata.getMap()).toEqual({
      authorization: 'Bearer b',
      'x-team': 'vision',
      'trace-bin': Buffer.from([1, 2]),
    });
    expect(() => callMetadata({ 'trace-bin': 'text' }, undefined)).toThrow(/^metadata\.trace-bin: expected a Buffer/);
  });
});

describe('deadlineAt', () => {
  it('is now + ms, or Infinity for none', () => {
    expect(deadlineAt(500, 1_000)).toBe(1_500);
    expect(deadlineAt(Infinity, 1_000)).toBe(Infinity);
  });
});
