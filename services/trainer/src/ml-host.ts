import type { Worker } from 'node:worker_threads';

import { Unavailable } from '@noisystudent/core';
import { startModuleWorker } from '@noisystudent/runtime';

import type { DataFacts, MlReply, MlRequest, MlWorkerInit, StudentRequest } from './ml-protocol.js';

type Reply<T extends MlReply['type']> = Extract<MlReply, { type: T }>;
export type Progress = Reply<'progress'>;
/** A training request's outcome: its result, or where `stop()` left it (a checkpoint is saved). */
export type Trained<T> = { kind: 'done'; result: T } | { kind: 'stopped'; step: number };

interface Pending {
  resolve(reply: MlReply): void;
  reject(error: Error): void;
  onProgress?: (progress: Progress) => void;
}

/**
 * The main thread's handle on the ML worker (ml-worker.ts): data loaded once, then bootstrap,
 * evaluate, import and train-student requests, one at a time, each a promise; training progress
 * arrives through a callback. A worker that dies fails what is pending with UNAVAILABLE.
 */
export class MlHost {
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly facts: DataFacts,
  ) {
    worker.on('message', (reply: MlReply) => {
      if (reply.type === 'ready' || reply.type === 'init-failed') return;
      const pending = this.pending.get(reply.requestId);
      if (pending === undefined) return;
      if (reply.type === 'progress') {
        pending.onProgress?.(reply);
        return;
      }
      this.pending.delete(reply.requestId);
      if (reply.type === 'failed')
        pending.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
      else pending.resolve(reply);
    });
    const die = (error: Error): void => {
      this.failure ??= new Unavailable(`ML worker: stopped (${error.message})`);
      for (const pending of this.pending.values()) pending.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`exit code ${code}`)));
  }

  /** Starts the worker, which loads the data set and splits it; rejects with the reason if it cannot. */
  static async start(init: MlWorkerInit): Promise<MlHost> {
    const worker = startModuleWorker(import.meta.url, 'ml-worker', init);
    const facts = await new Promise<DataFacts>((resolve, reject) => {
      worker.on('message', (reply: MlReply) => {
        if (reply.type === 'ready') {
          const { dataset, classNames, inputShape, labeled, eval: evalCount, test, backend } = reply;
          resolve({ dataset, classNames, inputShape, labeled, eval: evalCount, test, backend });
        } else if (reply.type === 'init-failed') {
          reject(new Error(reply.error.message));
        }
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`ML worker exited with code ${code} before it was ready`)));
    });
    return new MlHost(worker, facts);
  }

  bootstrap(
    version: string,
    checkpointDir: string,
    everySteps: number,
    onProgress: (progress: Progress) => void,
  ): Promise<Trained<Reply<'bootstrapped'>>> {
    return this.training(
      { type: 'bootstrap', requestId: 0, version, checkpointDir, everySteps },
      onProgress,
      'bootstrapped',
    );
  }

  trainStudent(request: StudentRequest, onProgress: (progress: Progress) => void): Promise<Trained<Reply<'student'>>> {
    return this.training({ type: 'train-student', requestId: 0, ...request }, onProgress, 'student');
  }

  /** Evaluates an artifact on the eval and test splits, through its own preprocessing. */
  async evaluate(bytes: Uint8Array): Promise<Reply<'evaluated'>> {
    return this.expect(await this.request({ type: 'evaluate', requestId: 0, bytes: bytes.slice() }), 'evaluated');
  }

  async importLayers(
    folder: string,
    version: string,
    classNames: string[],
    scale: number,
    offset: number,
  ): Promise<Uint8Array> {
    const reply = await this.request({
      type: 'import-layers',
      requestId: 0,
      folder,
      version,
      classNames,
      scale,
      offset,
    });
    return this.expect(reply, 'imported').bytes;
  }

  /** Weights of a student of `width` (to compare with a teacher's). */
  async paramCount(width: number): Promise<number> {
    return this.expect(await this.request({ type: 'param-count', requestId: 0, width }), 'param-count').params;
  }

  /** Asks the training in progress, and any requested after it, to stop after a step (it checkpoints): for shutdown. */
  stop(): void {
    this.worker.postMessage({ type: 'stop' } satisfies MlRequest);
  }

  async close(): Promise<void> {
    this.failure ??= new Unavailable('ML worker: closed');
    await this.worker.terminate();
  }

  private async training<T extends 'bootstrapped' | 'student'>(
    message: MlRequest,
    onProgress: (progress: Progress) => void,
    type: T,
  ): Promise<Trained<Reply<T>>> {
    const reply = await this.request(message, onProgress);
    if (reply.type === 'stopped') return { kind: 'stopped', step: reply.step };
    return { kind: 'done', result: this.expect(reply, type) };
  }

  private expect<T extends MlReply['type']>(reply: MlReply, type: T): Reply<T> {
    if (reply.type !== type) throw new Error(`ML worker: expected a ${type} reply, got ${reply.type}`);
    return reply as Reply<T>;
  }

  private request(message: MlRequest, onProgress?: (progress: Progress) => void): Promise<MlReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (message.type === 'stop') throw new Error('stop is not a request');
    const requestId = this.nextRequestId++;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject, ...(onProgress === undefined ? {} : { onProgress }) });
      this.worker.postMessage({ ...message, requestId });
    });
  }
}
