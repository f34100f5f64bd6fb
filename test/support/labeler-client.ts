// Promise wrappers over the generated Labeler client, for tests and benchmarks.
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { LabelerClient, type GetStatsResponse, type IngestRequest, type IngestResponse } from '@noisystudent/proto';

export interface TestLabelerClient {
  /** Sends every request on one Ingest stream, half-closes, and collects every answer. */
  ingest(requests: IngestRequest[]): Promise<IngestResponse[]>;
  stats(): Promise<GetStatsResponse>;
  close(): void;
}

export function connectLabeler(port: number): TestLabelerClient {
  const raw = new LabelerClient(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    ingest: (requests) =>
      new Promise((resolve, reject) => {
        const stream = raw.ingest();
        const answers: IngestResponse[] = [];
        stream.on('data', (answer: IngestResponse) => answers.push(answer));
        stream.on('end', () => resolve(answers));
        stream.on('error', reject);
        // Respect the stream's flow control: wait for 'drain' when write() says to.
        void (async () => {
          for (const request of requests) {
            if (!stream.write(request)) await new Promise((drained) => stream.once('drain', drained));
          }
          stream.end();
        })();
      }),
    stats: () =>
      new Promise((resolve, reject) =>
        raw.getStats({}, (error: ServiceError | null, response: GetStatsResponse) =>
          error === null ? resolve(response) : reject(error),
        ),
      ),
    close: () => raw.close(),
  };
}
