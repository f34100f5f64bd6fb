/**
 * A JetStream API error worth asking again: no answer in time, no stream leader or responders yet
 * (a cluster electing leaders, a node restarting), or a lost race to create something another
 * service created first.
 */
export function isTransientNatsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'TIMEOUT' || code === '503' || /timeout|no responders|leader|already in use/i.test(String(error));
}

/**
 * `call`, asked again after a transient NATS error (`isTransientNatsError`) up to `attempts`
 * times, waiting 250 ms × the attempt number between tries (about 10 s over 8 attempts); any
 * other error, or the last one, is thrown.
 */
export async function retryTransient<T>(call: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= attempts || !isTransientNatsError(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}
