// Promise wrappers over the generated Trainer client, for tests and benchmarks
// (@noisystudent/trainer/testing).
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { TrainerClient, type GetStatusResponse, type RoundRecord } from '@noisystudent/proto';

export interface TestTrainerClient {
  status(): Promise<GetStatusResponse>;
  /** Every kept round, oldest first. */
  rounds(): Promise<RoundRecord[]>;
  close(): void;
}

export function connectTrainer(address: string): TestTrainerClient {
  const client = new TrainerClient(address, credentials.createInsecure());
  const unary = <T>(call: (done: (error: ServiceError | null, response: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => call((error, response) => (error === null ? resolve(response) : reject(error))));
  return {
    status: () => unary<GetStatusResponse>((done) => client.getStatus({}, done)),
    rounds: async () =>
      (await unary<{ rounds: RoundRecord[] }>((done) => client.listRounds({ limit: 0 }, done))).rounds.reverse(),
    close: () => client.close(),
  };
}
