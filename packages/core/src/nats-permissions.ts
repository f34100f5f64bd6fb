import { natsNames } from './names.js';

/**
 * The NATS users of a deployment: one per service, `producer` (an application publishing
 * unlabeled images to NATS directly) and `admin` (nsctl, operators).
 */
export const NATS_USERS = ['teacher', 'labeler', 'trainer', 'producer', 'admin'] as const;
export type NatsUser = (typeof NATS_USERS)[number];

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/**
 * What each service's NATS user may publish and subscribe to under `prefix`: its own subjects,
 * the JetStream API calls it makes on its own streams, and nothing else. Replies come to
 * `_INBOX.>`. Only the trainer may write the registry (the teacher pointer in the KV bucket, the
 * artifacts in the object store); the labeler alone writes unlabeled images and shards; the
 * teacher only reads. Deleting streams or messages is for `admin`.
 */
export function natsPermissions(prefix: string): Record<NatsUser, NatsPermissions> {
  const names = natsNames(prefix);
  const kvStream = `KV_${names.registryBucket}`;
  const objStream = `OBJ_${names.modelsBucket}`;
  /** Reading and consuming any stream: info, gets, consumers, acks and flow control. */
  const reader = [
    '$JS.API.INFO',
    '$JS.API.STREAM.INFO.*',
    '$JS.API.STREAM.NAMES',
    '$JS.API.STREAM.LIST',
    '$JS.API.STREAM.MSG.GET.*',
    '$JS.API.DIRECT.GET.>',
    '$JS.API.CONSUMER.>',
    '$JS.ACK.>',
    '$JS.FC.>',
    '_INBOX.>',
  ];
  /** Opening the registry creates its (empty) buckets when they are missing; creating holds no data. */
  const registryBuckets = [`$JS.API.STREAM.CREATE.${kvStream}`, `$JS.API.STREAM.CREATE.${objStream}`];
  const manage = (stream: string): string[] => [`$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.UPDATE.${stream}`];
  const subscribe = ['_INBOX.>'];
  return {
    teacher: { publish: [...reader, ...registryBuckets], subscribe },
    labeler: {
      publish: [
        ...reader,
        ...registryBuckets,
        ...manage(names.unlabeledStream),
        ...manage(names.shardsStream),
        names.unlabeledSubjects,
        names.shardsSubjects,
      ],
      subscribe,
    },
    trainer: {
      publish: [
        ...reader,
        ...registryBuckets,
        ...manage(names.shardsStream),
        // An artifact stored again replaces its chunks: the object store purges the old ones.
        `$JS.API.STREAM.PURGE.${objStream}`,
        `$KV.${names.registryBucket}.>`,
        `$O.${names.modelsBucket}.>`,
        `${prefix}.events.>`,
      ],
      subscribe,
    },
    // Unlabeled images only (answered by JetStream's PubAck on its inbox).
    producer: { publish: [names.unlabeledSubjects], subscribe },
    admin: { publish: ['>'], subscribe: ['>'] },
  };
}

/**
 * The `authorization` block of a nats-server configuration with one user per entry of
 * `passwords` and the permissions of `natsPermissions(prefix)`. The file holds the passwords:
 * keep it readable by the server only (mode 0600).
 */
export function natsAuthorizationConfig(prefix: string, passwords: Partial<Record<NatsUser, string>>): string {
  const permissions = natsPermissions(prefix);
  const list = (subjects: string[]): string => `[${subjects.map((subject) => JSON.stringify(subject)).join(', ')}]`;
  const users = Object.entries(passwords).map(([user, password]) => {
    const granted = permissions[user as NatsUser];
    return (
      `    { user: ${JSON.stringify(user)}, password: ${JSON.stringify(password)}, permissions: {\n` +
      `        publish: { allow: ${list(granted.publish)} },\n` +
      `        subscribe: { allow: ${list(granted.subscribe)} } } }`
    );
  });
  return `authorization {\n  users = [\n${users.join(',\n')}\n  ]\n}\n`;
}
