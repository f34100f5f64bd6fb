// The trainer's ML thread: data, tfjs and every model live here, so training never blocks the
// gRPC and NATS event loop (docs/architecture.md §5, Trainer). One request runs at a time; a
// training request reports progress until it ends, or until `stop` (it then checkpoints).
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

import { AllowedRoots } from '@noisystudent/core';
import { ModelArtifact, type EvaluationMetrics, type TrainingConfig } from '@noisystudent/proto';
import {
  decodeModelArtifact,
  describeBackend,
  encodeModelArtifact,
  initBackend,
  loadCifar10,
  loadFashionMnist,
  loadImageFolder,
  loadLayersModelFolder,
  modelInputSpec,
  SelfTraining,
  toEvaluationMetrics,
  type HeldOutEvaluation,
  type LabeledImages,
  type ModelRole,
  type TrainProgress,
} from '@noisystudent/ml';

import type { DatasetSpec, HeldOutMetrics, MlReply, MlRequest, MlWorkerInit, StudentRequest } from './ml-protocol.js';
import { readRoundExamples } from './pseudo-labeled-set.js';

const port = parentPort;
if (port === null) throw new Error('ml-worker.ts runs as a worker thread');
const init = workerData as MlWorkerInit;
const roots = new AllowedRoots(init.allowedRoots.roots, init.allowedRoots.setting);

function reply(message: MlReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

async function loadData(spec: DatasetSpec): Promise<{ name: string; train: LabeledImages; test: LabeledImages }> {
  switch (spec.kind) {
    case 'fashion-mnist': {
      const [train, test] = await Promise.all([
        loadFashionMnist('train', spec.dir, roots),
        loadFashionMnist('test', spec.dir, roots),
      ]);
      return { name: 'fashion-mnist', train, test };
    }
    case 'cifar10': {
      const [train, test] = await Promise.all([
        loadCifar10('train', spec.dir, roots),
        loadCifar10('test', spec.dir, roots),
      ]);
      return { name: 'cifar10', train, test };
    }
    case 'folder': {
      const size = { height: spec.height, width: spec.width, channels: spec.channels, roots };
      const [train, test] = await Promise.all([loadImageFolder(spec.dir, size), loadImageFolder(spec.testDir, size)]);
      if (train.classNames.join('\n') !== test.classNames.join('\n')) {
        throw new Error(
          `${spec.testDir}: expected the classes of ${spec.dir} (${train.classNames.join(', ')}), got ${test.classNames.join(', ')}`,
        );
      }
      return { name: 'folder', train, test };
    }
  }
}

let loop: SelfTraining;
try {
  const choice = await initBackend({
    ...(init.backend === undefined ? {} : { request: init.backend }),
    log: () => undefined,
  });
  const data = await loadData(init.dataset).catch((error: unknown) => {
    // The loaders name the file; the person starting the trainer needs the setting that chose it.
    const settings = init.dataset.kind === 'folder' ? '--dataset-dir, --test-dir' : '--dataset-dir';
    throw new Error(`data set ${init.dataset.kind} (${settings}): ${toWorkerError(error).message}`, { cause: error });
  });
  loop = new SelfTraining(init.config, data);
  const { train } = loop.data;
  reply({
    type: 'ready',
    dataset: loop.data.name,
    classNames: [...train.classNames],
    inputShape: [train.height, train.width, train.channels],
    labeled: loop.split.labeled.length,
    eval: loop.split.eval.length,
    test: loop.testIndices.length,
    backend: describeBackend(choice),
  });
} catch (error) {
  reply({ type: 'init-failed', error: toWorkerError(error) });
  process.exit(1);
}

/** How often a training run reports (GetStatus's step, loss, images/s and ETA). */
const PROGRESS_EVERY_SECONDS = 2;

/** The training run in progress, which `stop` aborts. */
let running: AbortController | undefined;
/** Set by `stop` (the trainer is shutting down): a run that starts after it, or was queued, stops too. */
let stopRequested = false;

/** A training run's signal, aborted already when a stop came before the run began. */
function startRun(): AbortSignal {
  running = new AbortController();
  if (stopRequested) running.abort();
  return running.signal;
}
/** Supervised test accuracy by recipe and step budget (the baselines of each round). */
const baselineCache = new Map<string, EvaluationMetrics>();

const metricsOf = (evaluation: HeldOutEvaluation): HeldOutMetrics => ({
  eval: toEvaluationMetrics(evaluation.eval, `${loop.data.name}/eval`),
  test: toEvaluationMetrics(evaluation.test, `${loop.data.name}/test`),
});

function progressReporter(requestId: number, label: string): (progress: TrainProgress) => void {
  return (progress) =>
    reply({
      type: 'progress',
      requestId,
      label,
      step: progress.step,
      steps: progress.steps,
      loss: progress.loss,
      imagesPerSecond: progress.imagesPerSecond,
    });
}

function trainingConfig(role: ModelRole, steps: number, pseudoBatchSize: number): TrainingConfig {
  const { config } = loop;
  const noise = loop.noiseOf(role, steps);
  return {
    steps,
    labeledBatchSize: config.labeledBatchSize,
    unlabeledBatchSize: pseudoBatchSize,
    learningRate: config.learningRate,
    labelSmoothing: config.labelSmoothing,
    noise: {
      randaugmentNumOps: noise.numOps,
      randaugmentMagnitude: noise.magnitude,
      dropoutRate: noise.dropout,
      // model.proto: 0 means stochastic depth off.
      stochasticDepthFinalSurvival: noise.finalSurvivalProbability < 1 ? noise.finalSurvivalProbability : 0,
    },
    seed: config.seed,
  };
}

async function handle(request: Exclude<MlRequest, { type: 'stop' }>): Promise<void> {
  const { requestId } = request;
  switch (request.type) {
    case 'bootstrap': {
      const steps = loop.config.teacherSteps;
      const signal = startRun();
      const chosen = await loop.trainTeacher(
        () => undefined,
        (recipe) => ({
          progressEverySeconds: PROGRESS_EVERY_SECONDS,
          onProgress: progressReporter(requestId, `teacher ${recipe}`),
          // A checkpoint from other settings (the steps changed across a restart) is started over, not an error.
          checkpoint: {
            path: join(request.checkpointDir, `${recipe}.ckpt`),
            everySteps: request.everySteps,
            onOtherRun: 'start-over',
          },
          signal,
        }),
      );
      if (signal.aborted) {
        chosen.model.dispose();
        reply({ type: 'stopped', requestId, step: 0 });
        return;
      }
      const { evaluations } = chosen;
      const evaluation = evaluations?.[chosen.recipe] ?? (await loop.evaluate(chosen.model));
      // Both recipes at the teacher's budget are the supervised baselines of a student trained for as many steps.
      for (const recipe of ['supervised', 'supervised_noised'] as const) {
        const known = evaluations?.[recipe];
        if (known !== undefined) baselineCache.set(baselineKey(recipe, steps), metricsOf(known).test);
      }
      const bytes = await loop.artifact(chosen.model, 1, evaluation, {
        version: request.version,
        trainingConfig: trainingConfig(chosen.recipe, steps, 0),
      });
      chosen.model.dispose();
      reply(
        {
          type: 'bootstrapped',
          requestId,
          bytes,
          recipe: chosen.recipe,
          candidates: chosen.candidates,
          steps,
          ...metricsOf(evaluation),
        },
        [bytes.buffer as ArrayBuffer],
      );
      return;
    }
    case 'evaluate': {
      const { model, metadata } = await decodeModelArtifact(request.bytes);
      try {
        const classCount = (model.outputs[0]?.shape[1] as number | undefined) ?? 0;
        if (classCount !== loop.classes) {
          throw new Error(`the model has ${classCount} outputs; the data set has ${loop.classes} classes`);
        }
        const evaluation = await loop.evaluate(model, modelInputSpec(metadata));
        reply({
          type: 'evaluated',
          requestId,
          params: model.countParams(),
          inputShape: [...metadata.inputShape],
          classCount,
          ...metricsOf(evaluation),
        });
      } finally {
        model.dispose();
      }
      return;
    }
    case 'import-layers': {
      const model = await loadLayersModelFolder(request.folder, roots);
      try {
        const { bytes } = await encodeModelArtifact(
          model,
          { version: request.version, architecture: 'imported-layers-model' },
          { ...loop.data.train, classNames: request.classNames },
        );
        // The normalization given on the command line replaces the one of our training data.
        const artifact = ModelArtifact.decode(bytes);
        const metadata = artifact.metadata;
        if (metadata?.preprocessing === undefined) throw new Error('imported artifact: no preprocessing');
        metadata.preprocessing.normalization = {
          $case: 'rescale',
          value: { scale: request.scale, offset: request.offset },
        };
        const imported = ModelArtifact.encode(artifact).finish();
        reply({ type: 'imported', requestId, bytes: imported }, [imported.buffer as ArrayBuffer]);
      } finally {
        model.dispose();
      }
      return;
    }
    case 'param-count': {
      const model = loop.buildModel('student', request.width, 0, loop.config.studentSteps);
      const params = model.countParams();
      model.dispose();
      reply({ type: 'param-count', requestId, params });
      return;
    }
    case 'train-student':
      await trainStudent(requestId, request);
      return;
  }
}

async function trainStudent(requestId: number, request: StudentRequest): Promise<void> {
  // Before anything is awaited: a stop that arrives while the shards are read must reach this run.
  const signal = startRun();
  const { config } = loop;
  const { train } = loop.data;
  const round = await readRoundExamples(request.shardFiles, {
    height: train.height,
    width: train.width,
    channels: train.channels as 1 | 3,
    classes: loop.classes,
    ...(request.rebalance ? { rebalance: { seed: config.seed + request.round } } : {}),
  });
  const steps = config.studentSteps;
  const student = loop.buildModel('student', request.width, config.seed + request.round, steps);
  try {
    const result = await loop.train(student, 'student', steps, round.set, {
      progressEverySeconds: PROGRESS_EVERY_SECONDS,
      onProgress: progressReporter(requestId, `round ${request.round} student`),
      checkpoint: { ...request.checkpoint, onOtherRun: 'start-over' },
      signal,
    });
    if (result.stopped) {
      reply({ type: 'stopped', requestId, step: result.steps });
      return;
    }
    const evaluation = await loop.evaluate(student);
    const training = trainingConfig('student', steps, config.pseudoBatchSize);
    const bytes = await loop.artifact(student, request.width, evaluation, {
      version: request.version,
      parentVersion: request.parentVersion,
      trainingConfig: training,
    });
    const baselines = request.baselines
      ? {
          supervisedTest: await baseline('supervised', steps, requestId),
          supervisedNoisedTest: await baseline('supervised_noised', steps, requestId),
        }
      : {};
    reply(
      {
        type: 'student',
        requestId,
        bytes,
        steps: result.steps,
        training,
        resumedFrom: result.resumedFrom,
        shards: round.shards,
        examples: round.examples,
        perClass: round.perClass,
        skipped: round.skipped,
        ...baselines,
        ...metricsOf(evaluation),
      },
      [bytes.buffer as ArrayBuffer],
    );
  } finally {
    student.dispose();
  }
}

function baselineKey(recipe: 'supervised' | 'supervised_noised', steps: number): string {
  return `${recipe}:${steps}`;
}

/** A supervised recipe trained at `steps` on the labeled split, on test (cached per budget). */
async function baseline(
  recipe: 'supervised' | 'supervised_noised',
  steps: number,
  requestId: number,
): Promise<EvaluationMetrics> {
  const key = baselineKey(recipe, steps);
  const known = baselineCache.get(key);
  if (known !== undefined) return known;
  const model = loop.buildModel(recipe, 1, loop.config.seed, steps);
  try {
    await loop.train(model, recipe, steps, undefined, {
      progressEverySeconds: PROGRESS_EVERY_SECONDS,
      onProgress: progressReporter(requestId, `baseline ${recipe}`),
    });
    const metrics = metricsOf(await loop.evaluate(model)).test;
    baselineCache.set(key, metrics);
    return metrics;
  } finally {
    model.dispose();
  }
}

function toWorkerError(error: unknown): { name: string; message: string } {
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

let queue = Promise.resolve();
port.on('message', (request: MlRequest) => {
  if (request.type === 'stop') {
    stopRequested = true;
    running?.abort();
    return;
  }
  queue = queue.then(() =>
    handle(request).catch((error: unknown) =>
      reply({ type: 'failed', requestId: request.requestId, error: toWorkerError(error) }),
    ),
  );
});
