// npm run bench:cluster -- --json: the cluster drill (test/cluster/drill.ts) once, at a size of
// your choosing: a 3-node JetStream cluster at R3, 2 teachers, 2 labelers and a trainer as their
// built mains, one NATS node, one teacher, one labeler and the trainer SIGKILLed and restarted
// under load. Progress goes to stderr; the last line on stdout is the result as JSON.
import { cpus, loadavg } from 'node:os';

import { Command, InvalidArgumentError } from 'commander';

import { runClusterDrill } from '../test/cluster/drill.js';

const program = new Command()
  .name('bench:cluster')
  .description(
    'Faults on a local 3-node JetStream cluster with replicated services: what was lost, duplicated or failed, and how fast each part recovered.',
  )
  .option('--json', 'print only the final JSON line on stdout', false)
  .option('--images <n>', 'unlabeled Fashion-MNIST images streamed through Ingest', imageCount, 1_200)
  .option('--service-logs', "the services' own logs on stderr", false);

async function main(): Promise<void> {
  const options = program.parse().opts<{ json: boolean; images: number; serviceLogs: boolean }>();
  const say = (line: string): void => void process.stderr.write(`bench:cluster: ${line}\n`);
  const loadBefore = loadavg()[0] ?? 0;
  const result = await runClusterDrill({
    images: options.images,
    build: 'dist',
    log: say,
    serviceOutput: options.serviceLogs ? 'stderr' : 'ignore',
  });
  const line = {
    ingested: result.ingested,
    shards: result.shards,
    promotions: result.promotions,
    lost: result.lost,
    duplicated: result.duplicated,
    failed_requests: result.failedRequests,
    faults: result.faults.map((fault) => fault.at),
    recovery_s: Object.fromEntries(result.faults.map((fault) => [fault.what, round(fault.recoverySeconds)])),
    outcomes: result.outcomes,
    rounds: result.rounds,
    predict_calls: result.predictCalls,
    failures: result.failures,
    seconds: round(result.seconds),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    load_before: round(loadBefore),
  };
  if (!options.json) {
    say(`lost ${line.lost}, duplicated ${line.duplicated}, failed requests ${line.failed_requests}`);
    for (const fault of result.faults) say(`${fault.at}: recovered in ${fault.recoverySeconds.toFixed(1)} s`);
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function imageCount(value: string): number {
  const count = Number(value);
  if (!Number.isInteger(count) || count < 100)
    throw new InvalidArgumentError(`expected an integer ≥ 100, got ${value}`);
  return count;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:cluster failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 1;
});
