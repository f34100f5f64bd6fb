import { Shard } from '@noisystudent/proto';
import type { JetStreamManager } from 'nats';

/** Every shard on `subject` in `stream`, read back by sequence (direct gets, nats-server 2.9): for checks and benchmarks. */
export async function readShards(jsm: JetStreamManager, stream: string, subject: string): Promise<Shard[]> {
  const info = await jsm.streams.info(stream);
  const shards: Shard[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const message = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (message !== undefined && message.subject === subject) shards.push(Shard.decode(message.data));
  }
  return shards;
}

/** Every source id of the shards, by outcome, and the copies per class. */
export function shardOutcomes(shards: Shard[]) {
  const examples = shards.flatMap((shard) => shard.examples);
  const inShards = examples.map((example) => example.sourceId);
  const belowThreshold = shards.flatMap((shard) => shard.belowThresholdIds);
  const cutByBalancing = shards.flatMap((shard) => shard.cutByBalancingIds);
  const rejected = shards.flatMap((shard) => shard.rejected);
  return {
    inShards,
    copies: examples.reduce((sum, example) => sum + example.copyCount, 0),
    belowThreshold,
    cutByBalancing,
    rejected,
    /** Every source id with an outcome, as often as it has one. */
    everyId: [...inShards, ...belowThreshold, ...cutByBalancing, ...rejected.map((entry) => entry.sourceId)],
  };
}
