import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';

import { Conflict, eventsSubject, natsNames, NotFound } from '@noisystudent/core';
import { promotesStudent, type ExperimentConfig } from '@noisystudent/ml';
import {
  EvaluationMetrics,
  GetStatusResponse,
  RoundDecision,
  RoundRecord,
  TrainerEvent,
  TrainerPhase,
  TrainerService,
  TrainingConfig,
} from '@noisystudent/proto';
import { openRegistry, type Registry, type TeacherRecord } from '@noisystudent/registry';
import {
  connectNats,
  natsCredentials,
  ensureShardsStream,
  grpcSecurity,
  openAllowedRoots,
  refusalCounter,
  startGrpcServer,
  startMetricsServer,
  type Logger,
} from '@noisystudent/runtime';
import type { NatsConnection } from 'nats';

import {
  checkPaths,
  datasetSpec,
  experimentConfig,
  roundTrigger,
  TRAINER_ENV_PREFIX,
  type TrainerConfig,
} from './config.js';
import { writeFileDurably } from './durable-file.js';
import { MlHost, type Progress } from './ml-host.js';
import { TrainerMetrics } from './metrics.js';
import { roundDue, type RoundTrigger } from './round-trigger.js';
import { RoundStore, type RoundState, type TeacherEvaluation } from './round-store.js';
import { trainerHandlers } from './server.js';
import { ShardCollector } from './shard-collector.js';

export const TRAINER_SERVICE_NAME = 'noisystudent.v1.Trainer';
const PROMOTED_BY = 'trainer';
const POLL_MS = 500;

/** A running trainer; `stop()` checkpoints any training and shuts it down. */
export interface Trainer {
  port: number;
  metricsPort: number;
  status(): GetStatusResponse;
  rounds(): RoundRecord[];
  /** Resolves when the work loop has ended (after `stop()`, `maxRounds`, or a fatal error, which it rejects with). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds and starts the trainer (main.ts and the tests call this): NATS and the registry, the ML
 * worker with the data set, gRPC (Trainer, health, reflection) and /metrics, then the work loop —
 * bootstrap teacher v1 when the registry has none, collect the current teacher's shards, train a
 * noised student when a round is due, evaluate, promote by compare-and-set, record, repeat.
 */
export async function startTrainer(config: TrainerConfig, log: Logger): Promise<Trainer> {
  // TLS files, tokens and the loopback rule first: a bad setting stops the start before it opens anything.
  const security = await grpcSecurity(config);
  const natsLogin = await natsCredentials(config);
  const roots = await openAllowedRoots(config.allowedRoots, TRAINER_ENV_PREFIX);
  await checkPaths(config, roots);
  const names = natsNames(config.prefix);
  const trigger = roundTrigger(config);
  const experiment = experimentConfig(config);
  const nats: NatsConnection = await connectNats({ servers: config.natsUrl, name: 'trainer', log, ...natsLogin });
  let ml: MlHost | undefined;
  try {
    const jsm = await nats.jetstreamManager();
    const js = nats.jetstream();
    await ensureShardsStream(jsm, names, config.natsReplicas);
    const registry = await openRegistry(nats, { prefix: config.prefix, replicas: config.natsReplicas });
    ml = await MlHost.start({
      ...(config.backend === undefined ? {} : { backend: config.backend }),
      dataset: datasetSpec(config),
      config: experiment,
      allowedRoots: { roots: [...roots.roots], setting: roots.setting },
    });
    const facts = ml.facts;
    log.info(
      {
        dataset: facts.dataset,
        labeled: facts.labeled,
        eval: facts.eval,
        test: facts.test,
        inputShape: facts.inputShape,
        backend: facts.backend,
      },
      'data set loaded and split',
    );
    const store = await RoundStore.open(config.stateDir);
    const metrics = new TrainerMetrics();
    const status = GetStatusResponse.create({ phase: TrainerPhase.COLLECTING });
    const grpc = await startGrpcServer(
      {
        host: config.host,
        port: config.port,
        maxReceiveMessageBytes: config.maxMessageBytes,
        security,
        onRefused: refusalCounter(metrics.registry, 'trainer'),
        ...(config.healthPort === undefined ? {} : { healthPort: config.healthPort }),
      },
      [
        {
          name: TRAINER_SERVICE_NAME,
          definition: TrainerService,
          roles: { GetStatus: ['read'], ListRounds: ['read'] },
          implementation: trainerHandlers({ status: () => ({ ...status }), rounds: () => store.finished }),
        },
      ],
    );
    const metricsServer = await startMetricsServer(metrics.registry, config.host, config.metricsPort);
    grpc.setServing('SERVING');
    log.info(
      {
        port: grpc.port,
        metricsPort: metricsServer.port,
        stateDir: config.stateDir,
        security: security.summary,
        healthPort: grpc.healthPort,
      },
      'trainer listening',
    );

    const work = new WorkLoop(config, experiment, trigger, {
      ml,
      registry,
      store,
      metrics,
      status,
      log,
      collector: (version) =>
        new ShardCollector(
          js,
          jsm,
          names,
          {
            directory: join(config.stateDir, 'shards', version),
            teacherVersion: version,
            onSkipped: (reason) => metrics.shardsSkipped.inc({ reason }),
          },
          log,
        ),
      publish: (event) => {
        try {
          nats.publish(eventsSubject(names, 'trainer'), TrainerEvent.encode(event).finish());
        } catch (error) {
          log.warn({ err: error }, 'could not publish a trainer event');
        }
      },
    });
    const hostedMl = ml;
    const done = work.run();
    done.catch((error: unknown) => log.fatal({ err: error }, 'the trainer stopped working'));

    let stopped: Promise<void> | undefined;
    return {
      port: grpc.port,
      metricsPort: metricsServer.port,
      status: () => ({ ...status }),
      rounds: () => store.finished,
      done,
      stop: () => {
        stopped ??= (async () => {
          status.phase = TrainerPhase.STOPPING;
          await work.stop();
          // The ML worker checkpoints the training it was asked to stop: close it only once the loop has ended.
          if (!(await settledWithin(done, config.shutdownTimeoutMs))) {
            log.warn({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'the work in progress did not stop in time');
          }
          grpc.setServing('NOT_SERVING');
          const shutdown = await grpc.shutdown(config.shutdownTimeoutMs);
          await hostedMl.close();
          await metricsServer.close();
          await nats.drain();
          log.info({ shutdown }, 'trainer stopped');
        })();
        return stopped;
      },
    };
  } catch (error) {
    await ml?.close();
    await nats.close();
    throw error;
  }
}

interface WorkParts {
  ml: MlHost;
  registry: Registry;
  store: RoundStore;
  metrics: TrainerMetrics;
  status: GetStatusResponse;
  log: Logger;
  collector(version: string): ShardCollector;
  publish(event: TrainerEvent): void;
}

/** The trainer's one loop of work, with the state a restart resumes from on disk. */
class WorkLoop {
  private stopping = false;
  private wake: (() => void) | undefined;
  private collector: ShardCollector | undefined;
  private latest: TeacherRecord | undefined;
  private stopWatch: (() => void) | undefined;
  /** The last step reported by each training run (label), for the steps counter. */
  private readonly stepsReported = new Map<string, number>();

  constructor(
    private readonly config: TrainerConfig,
    private readonly experiment: ExperimentConfig,
    private readonly trigger: RoundTrigger,
    private readonly parts: WorkParts,
  ) {}

  async run(): Promise<void> {
    const { registry, store, log } = this.parts;
    try {
      this.latest = (await registry.readTeacher()) ?? (await this.bootstrap());
      if (this.latest === undefined) return;
      this.watchPointer();
      const unfinished = store.unfinished;
      if (unfinished !== undefined) {
        log.info(
          { round: unfinished.round, teacherVersion: unfinished.teacherVersion },
          'resuming the round in progress',
        );
        if ((await this.finishRound(unfinished)) === 'stopped') return;
      }
      while (!this.stopping) {
        if (this.config.maxRounds > 0 && store.lastRound >= this.config.maxRounds) {
          log.info({ rounds: store.lastRound }, 'maxRounds reached; the trainer stays up and trains no more');
          this.phase(TrainerPhase.COLLECTING);
          await this.sleepUntilStopped();
          return;
        }
        const teacher = this.latest;
        if (teacher === undefined) return;
        await this.follow(teacher);
        const state = await this.waitForRound(teacher);
        if (state === undefined) continue;
        if ((await this.finishRound(state)) === 'stopped') return;
      }
    } finally {
      this.stopWatch?.();
      await this.collector?.stop();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.parts.ml.stop();
    this.wake?.();
  }

  // Bootstrap: teacher v1 trained the experiment's way (or imported), stored, pointer set by CAS.
  private async bootstrap(): Promise<TeacherRecord | undefined> {
    const { ml, registry, log } = this.parts;
    this.phase(TrainerPhase.BOOTSTRAPPING);
    const version = 'v1';
    let bytes: Uint8Array;
    let reason: string;
    let evaluation: TeacherEvaluation;
    if (this.config.importTeacher !== undefined) {
      bytes = await this.importTeacher(version);
      reason = `bootstrap: imported from ${this.config.importTeacher}`;
      evaluation = await this.evaluateArtifact(version, bytes);
    } else {
      log.info(
        { labeled: ml.facts.labeled, steps: this.experiment.teacherSteps },
        'no teacher in the registry: training teacher v1 on the labeled split',
      );
      const trained = await ml.bootstrap(
        version,
        join(this.config.stateDir, 'bootstrap'),
        this.config.checkpointEverySteps,
        (progress) => this.progress(progress),
      );
      if (trained.kind === 'stopped') return undefined;
      const { recipe, candidates } = trained.result;
      bytes = trained.result.bytes;
      reason =
        `bootstrap: ${recipe} recipe, better on eval (supervised ${percent(candidates.supervised.eval)}%, ` +
        `supervised+noise ${percent(candidates.supervised_noised.eval)}%)`;
      // Evaluated in the worker as it was chosen: the same splits, nothing to measure again.
      evaluation = { eval: trained.result.eval, test: trained.result.test, params: await ml.paramCount(1) };
      await this.parts.store.saveTeacherEvaluation(version, evaluation);
    }
    await registry.putArtifact(bytes, version);
    try {
      const record = await registry.promote({ version, metrics: evaluation.eval, promotedBy: PROMOTED_BY, reason }, 0);
      log.info(
        { version, eval: percent(evaluation.eval.top1Accuracy), test: percent(evaluation.test.top1Accuracy) },
        'teacher v1 is the teacher',
      );
      return record;
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      // Someone else set a first teacher meanwhile: follow theirs.
      log.warn('another promoter set the first teacher meanwhile; following it');
      return registry.readTeacher();
    }
  }

  private async importTeacher(version: string): Promise<Uint8Array> {
    const { ml } = this.parts;
    const path = this.config.importTeacher ?? '';
    const info = await stat(path).catch(() => undefined);
    if (info === undefined) throw new NotFound(`importTeacher: ${path} does not exist`);
    if (info.isDirectory()) {
      const classNames = this.config.importClassNames?.split(',').map((name) => name.trim()) ?? ml.facts.classNames;
      return ml.importLayers(path, version, classNames, this.config.importScale, this.config.importOffset);
    }
    return new Uint8Array(await readFile(path));
  }

  // The current teacher: evaluated once per version, its shards collected.
  private async follow(teacher: TeacherRecord): Promise<void> {
    const version = teacher.pointer.version;
    const evaluation = await this.teacherEvaluation(version);
    const studentParams = await this.studentParams();
    if (evaluation.params > studentParams) {
      throw new Error(
        `studentWidth: the student (${this.experiment.studentWidth}× reference, ${studentParams} weights) is smaller than teacher ${version} ` +
          `(${evaluation.params} weights); raise --student-width`,
      );
    }
    this.parts.status.teacherVersion = version;
    if (this.collector?.teacherVersion === version) return;
    await this.collector?.stop();
    this.collector = this.parts.collector(version);
    await this.collector.start();
    this.parts.log.info(
      { version, eval: percent(evaluation.eval.top1Accuracy), test: percent(evaluation.test.top1Accuracy) },
      'collecting the shards of the teacher',
    );
  }

  private studentParamCount: number | undefined;
  private async studentParams(): Promise<number> {
    this.studentParamCount ??= await this.parts.ml.paramCount(this.experiment.studentWidth);
    return this.studentParamCount;
  }

  /** Waits until a round of `teacher` is due (returns its started state), or the pointer moves or the trainer stops. */
  private async waitForRound(teacher: TeacherRecord): Promise<RoundState | undefined> {
    const { store, status, metrics } = this.parts;
    const version = teacher.pointer.version;
    this.phase(TrainerPhase.COLLECTING);
    status.round = store.lastRound + 1;
    for (;;) {
      if (this.stopping || this.latest?.revision !== teacher.revision) return undefined;
      const collector = this.collector;
      if (collector === undefined) return undefined;
      const shards = collector.shards;
      const retry = this.config.retryRejected && store.lastRecordOf(version)?.decision === RoundDecision.REJECTED;
      const used = retry ? new Set<string>() : store.usedShards(version);
      const fresh = shards.filter((shard) => !used.has(shard.shardId));
      const holding = {
        examples: fresh.reduce((total, shard) => total + shard.examples, 0),
        images: fresh.reduce((total, shard) => total + shard.images, 0),
        firstShardAt:
          fresh.length === 0 ? undefined : fresh.reduce((first, shard) => Math.min(first, shard.keptAt), Infinity),
      };
      status.examplesWaiting = holding.examples;
      status.examplesNeeded = this.trigger.minPseudoLabeled ?? 0;
      status.imagesWaiting = holding.images;
      status.imagesNeeded = this.trigger.minImages ?? 0;
      metrics.examplesWaiting.set(holding.examples);
      metrics.shardsKept.set(shards.length);
      const due = roundDue(holding, this.trigger, Date.now());
      if (due.due) {
        // A round trains on every shard of the teacher held now, the new ones and those of earlier rounds.
        const state: RoundState = {
          round: store.lastRound + 1,
          teacherVersion: version,
          teacherRevision: teacher.revision,
          shardIds: shards.map((shard) => shard.shardId),
          shardFiles: shards.map((shard) => relative(this.config.stateDir, shard.file)),
          studentVersion: await this.nextVersion(),
          width: this.experiment.studentWidth,
          startedAt: new Date().toISOString(),
        };
        await store.save(state);
        this.parts.log.info(
          { round: state.round, teacherVersion: version, shards: shards.length, reason: due.reason },
          'round started',
        );
        this.parts.publish({
          event: {
            $case: 'roundStarted',
            value: {
              round: state.round,
              teacherVersion: version,
              shards: shards.length,
              pseudoLabeledExamples: shards.reduce((total, shard) => total + shard.examples, 0),
              startedAt: new Date(state.startedAt),
            },
          },
        });
        return state;
      }
      await this.sleep(POLL_MS);
    }
  }

  /** Trains (or resumes) the round's student, decides, promotes at most once, records. */
  private async finishRound(state: RoundState): Promise<'done' | 'stopped'> {
    const { ml, store, status, log } = this.parts;
    const directory = store.roundDirectory(state.round);
    const artifactPath = join(directory, 'student.nsmodel');
    status.round = state.round;
    if (state.trained === undefined) {
      this.phase(TrainerPhase.TRAINING);
      let trained;
      try {
        trained = await ml.trainStudent(
          {
            round: state.round,
            shardFiles: state.shardFiles.map((file) => join(this.config.stateDir, file)),
            version: state.studentVersion,
            parentVersion: state.teacherVersion,
            width: state.width,
            checkpoint: { path: join(directory, 'student.ckpt'), everySteps: this.config.checkpointEverySteps },
            rebalance: this.config.rebalance,
            baselines: this.config.baselines,
          },
          (progress) => this.progress(progress),
        );
      } catch (error) {
        if (this.stopping) return 'stopped';
        await this.record(state, undefined, {
          decision: RoundDecision.FAILED,
          reason: `training failed: ${error instanceof Error ? error.message : String(error)}`,
        });
        return 'done';
      }
      if (trained.kind === 'stopped') {
        log.info({ round: state.round, step: trained.step }, 'training stopped at a checkpoint; a restart resumes it');
        return 'stopped';
      }
      const result = trained.result;
      log.info(
        {
          round: state.round,
          resumedFrom: result.resumedFrom,
          eval: percent(result.eval.top1Accuracy),
          test: percent(result.test.top1Accuracy),
        },
        result.resumedFrom > 0 ? 'student trained, resumed from its checkpoint' : 'student trained',
      );
      await writeFileDurably(artifactPath, result.bytes);
      state.trained = {
        steps: result.steps,
        training: TrainingConfig.toJSON(result.training),
        shards: result.shards,
        examples: result.examples,
        perClass: result.perClass,
        eval: EvaluationMetrics.toJSON(result.eval),
        test: EvaluationMetrics.toJSON(result.test),
        ...(result.supervisedTest === undefined
          ? {}
          : { supervisedTest: EvaluationMetrics.toJSON(result.supervisedTest) }),
        ...(result.supervisedNoisedTest === undefined
          ? {}
          : { supervisedNoisedTest: EvaluationMetrics.toJSON(result.supervisedNoisedTest) }),
      };
      await store.save(state);
    }
    this.phase(TrainerPhase.EVALUATING);
    const trained = state.trained;
    const student = { eval: EvaluationMetrics.fromJSON(trained.eval), test: EvaluationMetrics.fromJSON(trained.test) };
    // The teacher the student is decided against: the round's, until another promoter moves the pointer.
    let teacher = { version: state.teacherVersion, revision: state.teacherRevision };
    for (;;) {
      const teacherEvaluation = await this.teacherEvaluation(teacher.version);
      const margin = this.config.minImprovement;
      const promote = promotesStudent(
        { eval: student.eval.top1Accuracy, test: student.test.top1Accuracy },
        { eval: teacherEvaluation.eval.top1Accuracy, test: teacherEvaluation.test.top1Accuracy },
        margin,
      );
      const comparison =
        `student ${percent(student.eval.top1Accuracy)}% vs teacher ${teacher.version} ` +
        `${percent(teacherEvaluation.eval.top1Accuracy)}% on eval (margin ${margin})`;
      if (!promote) {
        await this.record(state, teacherEvaluation, {
          decision: RoundDecision.REJECTED,
          reason: comparison,
          teacherVersion: teacher.version,
        });
        return 'done';
      }
      this.phase(TrainerPhase.PROMOTING);
      const bytes = new Uint8Array(await readFile(artifactPath));
      try {
        await this.parts.registry.putArtifact(bytes, state.studentVersion);
        await this.parts.registry.promote(
          {
            version: state.studentVersion,
            metrics: student.eval,
            promotedBy: PROMOTED_BY,
            reason: `round ${state.round}: ${comparison}`,
          },
          teacher.revision,
        );
      } catch (error) {
        if (!(error instanceof Conflict)) throw error;
        const current = await this.parts.registry.readTeacher();
        if (current === undefined) throw error;
        // Our promotion made before a restart may since have been replaced by another promoter's:
        // look for it in the history, not only in the pointer, or the student is promoted twice.
        const promotedBefore = (await this.parts.registry.history()).some(
          (record) => record.pointer.version === state.studentVersion,
        );
        if (!promotedBefore) {
          // Another promoter moved the pointer: decide again against the teacher now, never over it.
          this.parts.metrics.promotionConflicts.inc();
          log.warn(
            { round: state.round, expected: teacher.version, now: current.pointer.version },
            'the teacher pointer moved during the round; evaluating the student against the new teacher',
          );
          teacher = { version: current.pointer.version, revision: current.revision };
          continue;
        }
        // Our own promotion, made before a restart: it stands (a round promotes at most once).
      }
      await this.parts.store.saveTeacherEvaluation(state.studentVersion, {
        ...student,
        params: await this.studentParams(),
      });
      // Follow the new pointer now rather than when the watch delivers it: the next round must not
      // start on the replaced teacher's shards.
      const current = await this.parts.registry.readTeacher();
      if (current !== undefined && (this.latest === undefined || current.revision > this.latest.revision)) {
        this.latest = current;
      }
      await this.record(state, teacherEvaluation, {
        decision: RoundDecision.PROMOTED,
        reason: comparison,
        teacherVersion: teacher.version,
        studentVersion: state.studentVersion,
      });
      return 'done';
    }
  }

  private async record(
    state: RoundState,
    teacher: TeacherEvaluation | undefined,
    outcome: { decision: RoundDecision; reason: string; teacherVersion?: string; studentVersion?: string },
  ): Promise<void> {
    const { store, metrics, log } = this.parts;
    const trained = state.trained;
    const finishedAt = new Date();
    const record = RoundRecord.fromPartial({
      round: state.round,
      teacherVersion: outcome.teacherVersion ?? state.teacherVersion,
      ...(teacher === undefined ? {} : { teacherEval: teacher.eval, teacherTest: teacher.test }),
      shards: trained?.shards ?? state.shardIds.length,
      pseudoLabeledExamples: trained?.examples ?? 0,
      examplesPerClass: trained?.perClass ?? [],
      labeledExamples: this.parts.ml.facts.labeled,
      studentVersion: outcome.studentVersion ?? '',
      ...(trained === undefined
        ? {}
        : {
            studentTraining: { ...TrainingConfig.fromJSON(trained.training ?? {}), steps: trained.steps },
            studentEval: EvaluationMetrics.fromJSON(trained.eval),
            studentTest: EvaluationMetrics.fromJSON(trained.test),
            ...(trained.supervisedTest === undefined
              ? {}
              : { supervisedTest: EvaluationMetrics.fromJSON(trained.supervisedTest) }),
            ...(trained.supervisedNoisedTest === undefined
              ? {}
              : { supervisedNoisedTest: EvaluationMetrics.fromJSON(trained.supervisedNoisedTest) }),
          }),
      decision: outcome.decision,
      reason: outcome.reason,
      startedAt: new Date(state.startedAt),
      finishedAt,
    });
    await store.finish(record);
    const decision =
      outcome.decision === RoundDecision.PROMOTED
        ? 'promoted'
        : outcome.decision === RoundDecision.REJECTED
          ? 'rejected'
          : 'failed';
    metrics.rounds.inc({ decision });
    metrics.roundSeconds.observe((finishedAt.getTime() - new Date(state.startedAt).getTime()) / 1000);
    if (record.studentEval !== undefined) metrics.accuracy.set({ model: 'student' }, record.studentEval.top1Accuracy);
    if (record.teacherEval !== undefined) metrics.accuracy.set({ model: 'teacher' }, record.teacherEval.top1Accuracy);
    log.info(
      { round: state.round, decision, reason: outcome.reason, studentVersion: record.studentVersion },
      'round finished',
    );
    this.parts.publish({ event: { $case: 'roundFinished', value: record } });
    this.parts.status.step = 0;
    this.parts.status.steps = 0;
    this.parts.status.etaSeconds = 0;
  }

  private async teacherEvaluation(version: string): Promise<TeacherEvaluation> {
    const known = await this.parts.store.teacherEvaluation(version);
    if (known !== undefined) return known;
    const { bytes } = await this.parts.registry.getArtifact(version);
    return this.evaluateArtifact(version, bytes);
  }

  private async evaluateArtifact(version: string, bytes: Uint8Array): Promise<TeacherEvaluation> {
    this.parts.log.info({ version }, 'evaluating the teacher on the eval and test splits');
    const evaluated = await this.parts.ml.evaluate(bytes);
    const evaluation = { eval: evaluated.eval, test: evaluated.test, params: evaluated.params };
    await this.parts.store.saveTeacherEvaluation(version, evaluation);
    return evaluation;
  }

  /** The next free `v<n>` in the registry. */
  private async nextVersion(): Promise<string> {
    const numbers = (await this.parts.registry.listVersions())
      .map((info) => /^v(\d+)$/.exec(info.version)?.[1])
      .filter((digits): digits is string => digits !== undefined)
      .map(Number);
    return `v${Math.max(0, ...numbers) + 1}`;
  }

  private watchPointer(): void {
    const watch = this.parts.registry.watchTeacher();
    this.stopWatch = () => watch.stop();
    void (async () => {
      try {
        for await (const record of watch.updates) {
          if (this.latest === undefined || record.revision > this.latest.revision) {
            this.latest = record;
            this.wake?.();
          }
        }
      } catch (error) {
        if (!this.stopping) this.parts.log.error({ err: error }, 'watching the teacher pointer failed');
      }
    })();
  }

  private progress(progress: Progress): void {
    const { status, metrics } = this.parts;
    const previous = this.stepsReported.get(progress.label) ?? 0;
    metrics.steps.inc(Math.max(0, progress.step - previous));
    this.stepsReported.set(progress.label, progress.step);
    status.step = progress.step;
    status.steps = progress.steps;
    status.loss = progress.loss;
    status.imagesPerSecond = progress.imagesPerSecond;
    status.etaSeconds =
      progress.imagesPerSecond > 0
        ? ((progress.steps - progress.step) * this.imagesPerStep(progress)) / progress.imagesPerSecond
        : 0;
    metrics.imagesPerSecond.set(progress.imagesPerSecond);
    metrics.loss.set(progress.loss);
  }

  /** Images per step of the run reporting: labeled only, or labeled + pseudo-labeled for a student. */
  private imagesPerStep(progress: Progress): number {
    const { labeledBatchSize, pseudoBatchSize } = this.experiment;
    return progress.label.includes('student') ? labeledBatchSize + pseudoBatchSize : labeledBatchSize;
  }

  private phase(phase: TrainerPhase): void {
    if (this.parts.status.phase !== TrainerPhase.STOPPING) this.parts.status.phase = phase;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Idle until stopped, still reporting the registry's teacher (the watch wakes this on each promotion). */
  private async sleepUntilStopped(): Promise<void> {
    while (!this.stopping) {
      this.parts.status.teacherVersion = this.latest?.pointer.version ?? '';
      await this.sleep(60_000);
    }
  }
}

const percent = (fraction: number): number => Math.round(fraction * 10_000) / 100;

/** Whether `work` settled (either way: its error is reported where it is awaited) within `ms`. */
async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = await Promise.race([
    work.then(
      () => true,
      () => true,
    ),
    timeout,
  ]);
  clearTimeout(timer);
  return settled;
}
