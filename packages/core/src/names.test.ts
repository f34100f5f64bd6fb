import { describe, expect, it } from 'vitest';

import { InvalidArgument } from './errors.js';
import {
  artifactName,
  checkVersion,
  eventsSubject,
  labelingConsumer,
  natsNames,
  shardSubject,
  unlabeledSubject,
  versionOfArtifactName,
} from './names.js';
import { isSha256Hex, sha256Hex } from './sha256.js';

describe('natsNames', () => {
  it('derives every stream, bucket and subject from the prefix', () => {
    expect(natsNames()).toEqual({
      prefix: 'ns',
      unlabeledStream: 'NS_UNLABELED',
      unlabeledSubjects: 'ns.unlabeled.>',
      shardsStream: 'NS_SHARDS',
      shardsSubjects: 'ns.shards.>',
      modelsBucket: 'ns_models',
      registryBucket: 'ns_registry',
      teacherKey: 'teacher',
    });
    const names = natsNames('my-lab');
    expect(names.shardsStream).toBe('MY_LAB_SHARDS');
    expect(shardSubject(names, 'v3')).toBe('my-lab.shards.v3');
    expect(eventsSubject(names, 'trainer')).toBe('my-lab.events.trainer');
  });

  it('refuses a prefix that cannot start a stream name, naming the field', () => {
    expect(() => natsNames('a.b')).toThrow(InvalidArgument);
    expect(() => natsNames('')).toThrow(`prefix: expected letters, digits, '-' or '_', got ""`);
  });

  it('makes any source id one subject token', () => {
    const names = natsNames();
    expect(unlabeledSubject(names, 'camera 7.jpg')).toBe('ns.unlabeled.camera_7_jpg');
    expect(unlabeledSubject(names, '*')).toBe('ns.unlabeled._');
    expect(unlabeledSubject(names, '')).toBe('ns.unlabeled._');
    expect(labelingConsumer('v1')).toBe('labeler_v1');
  });
});

describe('model versions', () => {
  it('accepts letters, digits, - and _ only', () => {
    expect(() => checkVersion('v3_b-2')).not.toThrow();
    expect(() => checkVersion('v3.1', 'toVersion')).toThrow(`toVersion: expected a model version`);
  });

  it('round-trips through artifact names', () => {
    expect(artifactName('v7')).toBe('model-v7');
    expect(versionOfArtifactName('model-v7')).toBe('v7');
    expect(versionOfArtifactName('model-v7.bak')).toBeUndefined();
    expect(versionOfArtifactName('other')).toBeUndefined();
  });
});

describe('sha256', () => {
  it('hashes to lower-case hex', () => {
    const digest = sha256Hex(new TextEncoder().encode('abc'));
    expect(digest).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(isSha256Hex(digest.toUpperCase())).toBe(true);
    expect(isSha256Hex(digest.slice(1))).toBe(false);
  });
});
