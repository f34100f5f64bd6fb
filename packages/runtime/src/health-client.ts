import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

interface HealthStub extends Client {
  check(
    request: { service: string },
    options: { deadline: number },
    callback: (error: ServiceError | null, response: { status: HealthStatus }) => void,
  ): void;
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

  close(): void {
    this.stub.close();
  }
}
