#!/usr/bin/env node
// `npm run experiment`: the offline experiment in one process, or, with --services, the same
// preset through the real services (nats-server, trainer, teacher, labeler).
const services = process.argv.slice(2).includes('--services');
await import(
  services ? '../services/trainer/dist/bench/services-experiment.js' : '../packages/ml/dist/experiment/cli.js'
);
