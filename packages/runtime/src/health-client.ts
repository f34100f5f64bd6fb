import {
  credentials,
  loadPackageDefinition,
  type Client,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthStub extends Client {
  check(
    request: { service: string },
    options: { deadline: number },
    callback: (error: ServiceError | null, response: { status: HealthStatus }) => void,
  ): void;
  watch(request: { service: string }): ClientReadableStream<{ status: HealthStatus }>;
}

/** A grpc.health.v1 client: what load balancers, nsctl and the services ask of each other. */
export class HealthClient {
  private readonly stub: HealthStub;

  constructor(address: string) {
    const definition = loadPackageDefinition(loadSync(protoPath, { enums: String })) as unknown as {
      grpc: {
        health: {
          v1: { Health: new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => HealthStub };
        };
      };
    };
    this.stub = new definition.grpc.health.v1.Health(address, credentials.createInsecure());
  }

  /** The status of `service` ('' for the whole server). */
  check(service = '', timeoutMs = 5_000): Promise<HealthStatus> {
    return new Promise((resolve, reject) =>
      this.stub.check({ service }, { deadline: Date.now() + timeoutMs }, (error, response) =>
        error === null ? resolve(response.status) : reject(error),
      ),
    );
  }

  /**
   * Resolves once `service` reports `wanted` (Health.Watch: each change is pushed, nothing is
   * polled); rejects after `timeoutMs` with the last status seen, or when the server goes away.
   */
  waitFor(wanted: HealthStatus = 'SERVING', service = '', timeoutMs = 60_000): Promise<void> {
    const stream = this.stub.watch({ service });
    let last: HealthStatus | 'none' = 'none';
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`health of "${service}": not ${wanted} after ${timeoutMs} ms (last ${last})`));
      }, timeoutMs);
      stream.on('data', (response: { status: HealthStatus }) => {
        last = response.status;
        if (response.status !== wanted) return;
        clearTimeout(timer);
        resolve();
      });
      stream.on('error', (error: ServiceError) => {
        clearTimeout(timer);
        reject(error);
      });
    }).finally(() => stream.cancel());
  }

  close(): void {
    this.stub.close();
  }
}
