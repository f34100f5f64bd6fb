import type { ServiceConnection } from './connection.js';
import { HEALTH_CHECK, type HealthStatus } from './health.js';
import type { CallOptions } from './options.js';

export interface HealthOptions extends CallOptions {
  /** The service to ask about; '' for the whole server. @default the client's own service, e.g. 'noisystudent.v1.Teacher' */
  service?: string;
}

/**
 * grpc.health.v1 Check on `connection`: SERVING once the service can answer (the teacher: once a
 * model is loaded). Retried on UNAVAILABLE like any idempotent call.
 * @throws ClientError (NOT_FOUND when the server does not know `service`)
 */
export function checkHealth(
  connection: ServiceConnection,
  serviceName: string,
  options: HealthOptions = {},
): Promise<HealthStatus> {
  const { service = serviceName, ...callOptions } = options;
  return connection.unary(HEALTH_CHECK, service, callOptions);
}
