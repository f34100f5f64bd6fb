// The image's HEALTHCHECK: asks the gRPC health service (grpc.health.v1, overall status '') of the
// service in this container on loopback and exits 0 only when it answers SERVING. No network
// beyond 127.0.0.1 and nothing outside node_modules.
//   node deploy/docker/healthcheck.mjs [port]
// Without a port it asks the service whose NS_<SERVICE>_HEALTH_PORT (its plaintext health-only
// port, set when the gRPC port serves TLS) or NS_<SERVICE>_PORT is set, else each default gRPC
// port (teacher 50051, labeler 50052, trainer 50053): one image runs any of the three.
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

const TIMEOUT_MS = 3_000;
const DEFAULT_PORTS = { TEACHER: 50051, LABELER: 50052, TRAINER: 50053 };

function candidatePorts() {
  if (process.argv[2] !== undefined) return [Number(process.argv[2])];
  const configured = Object.keys(DEFAULT_PORTS)
    .map((service) => process.env[`NS_${service}_HEALTH_PORT`] || process.env[`NS_${service}_PORT`])
    .filter((port) => port !== undefined && port !== '');
  return configured.length > 0 ? configured.map(Number) : Object.values(DEFAULT_PORTS);
}

const definition = protoLoader.loadSync(protoPath, { keepCase: true, enums: String });
const { Health } = grpc.loadPackageDefinition(definition).grpc.health.v1;

function check(port) {
  return new Promise((resolve) => {
    const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    client.check({ service: '' }, { deadline: Date.now() + TIMEOUT_MS }, (error, response) => {
      client.close();
      resolve(error === null ? response.status : `${error.code} ${error.details}`);
    });
  });
}

const answers = [];
for (const port of candidatePorts()) {
  const status = await check(port);
  if (status === 'SERVING') process.exit(0);
  answers.push(`${port}: ${status}`);
}
process.stderr.write(`not serving (${answers.join('; ')})\n`);
process.exit(1);
