import { describe, expect, it } from 'vitest';
import { z } from 'zod';

import { ConfigError, configOptions, envName, flagName, parseConfig } from './config.js';

const PREFIX = 'NS_TEST_';

/** A service's settings as the services write them: coerced from strings, with defaults and descriptions. */
const schema = z.object({
  port: z.coerce.number().int().min(0).max(65_535).default(50051).describe('gRPC port (0: any free port)'),
  maxBatchSize: z.coerce.number().int().positive().default(32).describe('images per batch'),
  labelMode: z.enum(['soft', 'hard']).default('soft').describe('soft or hard labels'),
  threshold: z.coerce.number().min(0).max(1).default(0.3),
  natsUrl: z.string().min(1).describe('NATS server'),
});

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message.startsWith('invalid configuration:\n  ')).toBe(true);
    return message.split('\n  ').slice(1);
  }
  throw new Error('expected a ConfigError');
}

describe('flagName and envName', () => {
  it('spell a key as its flag and its variable', () => {
    expect(flagName('maxBatchSize')).toBe('--max-batch-size');
    expect(flagName('port')).toBe('--port');
    expect(envName('maxBatchSize', 'NS_TEACHER_')).toBe('NS_TEACHER_MAX_BATCH_SIZE');
    expect(envName('natsUrl', 'NS_LABELER_')).toBe('NS_LABELER_NATS_URL');
  });
});

describe('parseConfig', () => {
  it('takes a flag over its variable over the default, coercing strings', () => {
    const config = parseConfig(
      schema,
      { port: '6000', natsUrl: 'nats://flag:4222' },
      { NS_TEST_PORT: '7000', NS_TEST_MAX_BATCH_SIZE: '64', NS_TEST_NATS_URL: 'nats://env:4222', NS_PORT: '1' },
      PREFIX,
    );
    expect(config).toEqual({
      port: 6000,
      maxBatchSize: 64,
      labelMode: 'soft',
      threshold: 0.3,
      natsUrl: 'nats://flag:4222',
    });
  });

  it('reports every bad setting at once, each with its flag, its variable, what is allowed and what was given', () => {
    const problems = problemsOf(() =>
      parseConfig(
        schema,
        { port: '70000', labelMode: 'fuzzy' },
        { NS_TEST_MAX_BATCH_SIZE: 'lots', NS_TEST_THRESHOLD: '1.5' },
        PREFIX,
      ),
    );
    expect(problems).toEqual([
      'setting port (--port or NS_TEST_PORT): Too big: expected number to be <=65535, got "70000"',
      'setting maxBatchSize (--max-batch-size or NS_TEST_MAX_BATCH_SIZE): Invalid input: expected number, received NaN, got "lots"',
      'setting labelMode (--label-mode or NS_TEST_LABEL_MODE): Invalid option: expected one of "soft"|"hard", got "fuzzy"',
      'setting threshold (--threshold or NS_TEST_THRESHOLD): Too big: expected number to be <=1, got "1.5"',
      // A required setting nobody gave: no "got".
      'setting natsUrl (--nats-url or NS_TEST_NATS_URL): Invalid input: expected string, received undefined',
    ]);
  });

  it('treats an empty variable as unset, not as the number 0', () => {
    // `NS_TEST_THRESHOLD=` (a blank line in an env file) must not silently accept every image.
    const config = parseConfig(
      schema,
      { natsUrl: 'nats://127.0.0.1:4222' },
      { NS_TEST_PORT: '', NS_TEST_THRESHOLD: '' },
      PREFIX,
    );
    expect(config.port).toBe(50051);
    expect(config.threshold).toBe(0.3);
  });

  it('reports an object-level rule under the setting it names', () => {
    const ruled = schema.refine((config) => config.maxBatchSize <= 1024, {
      path: ['maxBatchSize'],
      message: 'expected at most 1024',
    });
    expect(problemsOf(() => parseConfig(ruled, { natsUrl: 'x', maxBatchSize: '4096' }, {}, PREFIX))).toEqual([
      'setting maxBatchSize (--max-batch-size or NS_TEST_MAX_BATCH_SIZE): expected at most 1024, got "4096"',
    ]);
  });
});

describe('configOptions', () => {
  it('gives each setting a flag and a description naming its variable and default', () => {
    expect(configOptions(schema, PREFIX)).toEqual([
      {
        key: 'port',
        flags: '--port <value>',
        description: 'gRPC port (0: any free port) (NS_TEST_PORT; default 50051)',
      },
      {
        key: 'maxBatchSize',
        flags: '--max-batch-size <value>',
        description: 'images per batch (NS_TEST_MAX_BATCH_SIZE; default 32)',
      },
      {
        key: 'labelMode',
        flags: '--label-mode <value>',
        description: 'soft or hard labels (NS_TEST_LABEL_MODE; default "soft")',
      },
      { key: 'threshold', flags: '--threshold <value>', description: '(NS_TEST_THRESHOLD; default 0.3)' },
      { key: 'natsUrl', flags: '--nats-url <value>', description: 'NATS server (NS_TEST_NATS_URL)' },
    ]);
  });
});
