// Promise wrappers over the generated Teacher client and the health client, for tests and benchmarks.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  TeacherClient,
  type GetModelInfoResponse,
  type PredictRequest,
  type PredictResponse,
  type PredictStreamRequest,
  type PredictStreamResponse,
} from '@noisystudent/proto';
import { HealthClient, type HealthStatus } from '@noisystudent/runtime';

export interface TestTeacherClient {
  raw: TeacherClient;
  predict(request: Partial<PredictRequest>, deadlineMs?: number): Promise<PredictResponse>;
  /** Sends every request on one stream, half-closes, and collects every answer. */
  predictStream(requests: Array<Partial<PredictStreamRequest>>): Promise<PredictStreamResponse[]>;
  modelInfo(): Promise<GetModelInfoResponse>;
  health(service?: string): Promise<HealthStatus>;
  close(): void;
}

export function connectTeacher(port: number, options: Record<string, number> = {}): TestTeacherClient {
  const address = `127.0.0.1:${port}`;
  const raw = new TeacherClient(address, credentials.createInsecure(), options);
  const health = new HealthClient(address);
  const unary = <T>(call: (done: (error: ServiceError | null, response: T) => void) => void): Promise<T> =>
    new Promise((resolve, reject) => call((error, response) => (error === null ? resolve(response) : reject(error))));
  return {
    raw,
    predict: (request, deadlineMs = 30_000) =>
      unary<PredictResponse>((done) =>
        raw.predict({ images: [], topK: 0, ...request }, new Metadata(), { deadline: Date.now() + deadlineMs }, done),
      ),
    predictStream: (requests) =>
      new Promise((resolve, reject) => {
        const stream = raw.predictStream();
        const answers: PredictStreamResponse[] = [];
        stream.on('data', (answer: PredictStreamResponse) => answers.push(answer));
        stream.on('end', () => resolve(answers));
        stream.on('error', reject);
        for (const request of requests) stream.write({ id: '', image: undefined, topK: 0, ...request });
        stream.end();
      }),
    modelInfo: () => unary<GetModelInfoResponse>((done) => raw.getModelInfo({}, done)),
    health: (service = '') => health.check(service),
    close: () => {
      raw.close();
      health.close();
    },
  };
}
