// Gathers a Report from a running stack: the trainer's rounds, the registry's promotions, the
// labeler's counts, pseudo-labeled samples from the shards, and the served teacher measured
// through Predict on labeled test images.
import { connectLabeler, connectTeacher, connectTrainer, type ConnectOptions, type Round } from '@noisystudent/client';
import { natsNames, shardSubject } from '@noisystudent/core';
import { Dtype, Shard, type EvaluationMetrics, type Image, type NoiseConfig } from '@noisystudent/proto';
import { openRegistry } from '@noisystudent/registry';

import { CliError } from '../cli-error.js';
import { roundsOldestFirst } from '../commands/rounds.js';
import { connectStackNats, target, type Addresses } from '../context.js';
import type { DatasetImage } from '../dataset-images.js';
import { encodeGrayscalePng } from './grayscale-png.js';
import type {
  Report,
  ReportLabeling,
  ReportRound,
  ReportSample,
  ReportServedModel,
  SplitAccuracy,
} from './report-data.js';

export interface GatherOptions {
  title: string;
  /** Labeled test images to measure the served teacher on (none: no served section). */
  testImages: DatasetImage[];
  /** Sample images per teacher version (from its last shard). */
  samplesPerVersion: number;
  settings: Record<string, string | number | boolean>;
  say?: (line: string) => void;
}

function splitAccuracy(evalMetrics?: EvaluationMetrics, testMetrics?: EvaluationMetrics): SplitAccuracy {
  return {
    eval: evalMetrics?.top1Accuracy ?? 0,
    test: testMetrics?.top1Accuracy ?? 0,
    testPerClass: testMetrics?.perClassAccuracy ?? [],
  };
}

function reportRound(round: Round): ReportRound {
  return {
    round: round.round,
    teacherVersion: round.teacherVersion,
    studentVersion: round.studentVersion,
    decision: round.decision === 'unspecified' ? 'failed' : round.decision,
    reason: round.reason,
    startedAt: round.startedAt?.toISOString() ?? '',
    finishedAt: round.finishedAt?.toISOString() ?? '',
    teacher: splitAccuracy(round.teacherEval, round.teacherTest),
    ...(round.studentEval === undefined ? {} : { student: splitAccuracy(round.studentEval, round.studentTest) }),
    baselines: {
      ...(round.supervisedTest === undefined ? {} : { supervised: round.supervisedTest.top1Accuracy }),
      ...(round.supervisedNoisedTest === undefined
        ? {}
        : { supervisedNoised: round.supervisedNoisedTest.top1Accuracy }),
    },
    shards: round.shards,
    pseudoLabeledExamples: round.pseudoLabeledExamples,
    labeledExamples: round.labeledExamples,
    examplesPerClass: round.examplesPerClass,
    steps: round.studentTraining?.steps ?? 0,
  };
}

/** The served teacher through PredictStream: accuracy, per class, and the confusion matrix. */
export async function measureServed(
  address: string | ConnectOptions,
  images: DatasetImage[],
  classes: number,
): Promise<ReportServedModel> {
  const teacher = connectTeacher(address);
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let version = '';
  let correct = 0;
  try {
    for await (const answer of teacher.predictMany(
      images.map((item, index) => ({ id: String(index), image: item.image })),
      { window: 128 },
    )) {
      if (answer.error !== undefined || answer.prediction === undefined) {
        throw new CliError(`the teacher refused test image ${answer.id}: ${answer.error?.message ?? 'no answer'}`);
      }
      version = answer.modelVersion;
      const truth = images[Number(answer.id)]?.label ?? 0;
      const predicted = answer.prediction.labelIndex;
      const row = confusion[truth];
      if (row !== undefined && predicted < classes) row[predicted] = (row[predicted] ?? 0) + 1;
      if (predicted === truth) correct++;
    }
  } finally {
    teacher.close();
  }
  const perClassAccuracy = confusion.map((row, i) => {
    const total = row.reduce((sum, n) => sum + n, 0);
    return total === 0 ? 0 : (row[i] ?? 0) / total;
  });
  return {
    version,
    images: images.length,
    accuracy: images.length === 0 ? 0 : correct / images.length,
    perClassAccuracy,
    confusion,
  };
}

export async function gatherReport(addresses: Addresses, options: GatherOptions): Promise<Report> {
  const say = options.say ?? (() => {});
  const trainer = connectTrainer(target(addresses, 'trainer'));
  const labeler = connectLabeler(target(addresses, 'labeler'));
  const teacher = connectTeacher(target(addresses, 'teacher'));
  const nats = await connectStackNats(addresses, 'nsctl-report');
  try {
    say('report: rounds, promotions, labeling');
    const [rounds, stats, model] = await Promise.all([
      roundsOldestFirst(trainer),
      labeler.stats(),
      teacher.modelInfo(),
    ]);
    const registry = await openRegistry(nats, { prefix: addresses.prefix });
    const history = await registry.history();
    const classNames = model.classNames;

    const labeling: ReportLabeling[] = stats.versions.map((v) => ({
      teacherVersion: v.teacherVersion,
      labeled: v.labeled,
      inShards: v.inShards,
      copies: v.copies,
      cutByBalancing: v.cutByBalancing,
      belowThreshold: v.belowThreshold,
      rejected: v.rejected,
      acceptanceRate: v.acceptanceRate,
      meanConfidence: v.meanConfidence,
      copiesPerClass: v.copiesPerClass,
    }));

    say('report: pseudo-labeled samples from the shards');
    const names = natsNames(addresses.prefix);
    const jsm = await nats.jetstreamManager();
    const samples: ReportSample[] = [];
    const settings = { ...options.settings };
    for (const { teacherVersion } of labeling) {
      let shard: Shard;
      try {
        const message = await jsm.streams.getMessage(names.shardsStream, {
          last_by_subj: shardSubject(names, teacherVersion),
        });
        shard = Shard.decode(message.data);
      } catch {
        continue; // no shard kept for this version (retention, or none written)
      }
      if (shard.policy !== undefined) {
        settings['confidence threshold'] = shard.policy.confidenceThreshold;
        settings['pseudo-labels'] = shard.policy.labelMode === 2 ? 'hard' : 'soft';
      }
      samples.push(...shardSamples(shard, classNames, options.samplesPerVersion));
    }

    let served: ReportServedModel | undefined;
    if (options.testImages.length > 0) {
      say(`report: ${options.testImages.length} test images through Predict`);
      served = await measureServed(target(addresses, 'teacher'), options.testImages, classNames.length);
    }
    const last = rounds[rounds.length - 1]?.studentTraining;
    if (last?.noise !== undefined) {
      settings['student steps'] = last.steps;
      settings['student noise'] = describeNoise(last.noise);
      settings['batch (labeled + pseudo-labeled)'] = `${last.labeledBatchSize} + ${last.unlabeledBatchSize}`;
    }
    return {
      generatedAt: new Date().toISOString(),
      title: options.title,
      classNames,
      teacherVersion: model.version,
      settings,
      rounds: rounds.map(reportRound),
      promotions: history.map(({ pointer }) => ({
        version: pointer.version,
        parentVersion: pointer.parentVersion,
        promotedAt: pointer.promotedAt?.toISOString() ?? '',
        promotedBy: pointer.promotedBy,
        reason: pointer.reason,
        ...(pointer.metrics === undefined ? {} : { evalAccuracy: pointer.metrics.top1Accuracy }),
      })),
      labeling,
      ...(served === undefined ? {} : { served }),
      samples,
    };
  } finally {
    trainer.close();
    labeler.close();
    teacher.close();
    await nats.close();
  }
}

/** "RandAugment 1/5, dropout off, stochastic depth off" (0 means off in a TrainingConfig). */
function describeNoise(noise: NoiseConfig): string {
  const { randaugmentNumOps: ops, randaugmentMagnitude: magnitude, dropoutRate, stochasticDepthFinalSurvival } = noise;
  return [
    `RandAugment ${ops > 0 ? `${ops}/${magnitude}` : 'off'}`,
    `dropout ${dropoutRate > 0 ? dropoutRate : 'off'}`,
    `stochastic depth ${stochasticDepthFinalSurvival > 0 ? `final survival ${stochasticDepthFinalSurvival}` : 'off'}`,
  ].join(', ');
}

/** Up to `perVersion` examples of a shard, spread over the classes, as PNGs. */
function shardSamples(shard: Shard, classNames: string[], perVersion: number): ReportSample[] {
  const byClass = new Map<number, ReportSample[]>();
  for (const example of shard.examples) {
    const png = examplePng(example.image);
    if (png === undefined) continue;
    const list = byClass.get(example.hardLabel) ?? [];
    if (list.length >= Math.ceil(perVersion / Math.max(1, classNames.length))) continue;
    list.push({
      teacherVersion: shard.teacherVersion,
      sourceId: example.sourceId,
      labelIndex: example.hardLabel,
      label: classNames[example.hardLabel] ?? String(example.hardLabel),
      confidence: example.confidence,
      pngBase64: png.toString('base64'),
    });
    byClass.set(example.hardLabel, list);
  }
  return [...byClass.entries()]
    .sort(([a], [b]) => a - b)
    .flatMap(([, list]) => list)
    .slice(0, perVersion);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

/** A grayscale uint8 tensor as a PNG, a PNG as itself; anything else (JPEG, RGB) is not shown. */
function examplePng(image: Image | undefined): Buffer | undefined {
  const content = image?.content;
  if (content?.$case === 'encoded') {
    const bytes = Buffer.from(content.value);
    return bytes.subarray(0, 4).equals(PNG_SIGNATURE) ? bytes : undefined;
  }
  if (content?.$case !== 'tensor') return undefined;
  const { shape, dtype, data } = content.value;
  if (dtype !== Dtype.UINT8 || shape.length !== 3 || shape[2] !== 1) return undefined;
  return encodeGrayscalePng(shape[1] ?? 0, shape[0] ?? 0, data);
}
