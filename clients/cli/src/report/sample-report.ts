import { FASHION_MNIST_CLASSES } from '@noisystudent/ml/data';

import { encodeGrayscalePng } from './grayscale-png.js';
import type { Report, ReportLabeling, ReportSample, SplitAccuracy } from './report-data.js';

// A realistic synthetic Report for tests and previews of the page: two rounds on Fashion-MNIST
// (round 1 promotes v2, round 2's student is rejected), the served v2's confusion matrix, the
// labeler's work for v1 and v2, and 20 samples whose images are real 28×28 PNGs. Deterministic.

/** Typical per-class test accuracy of a small CNN on Fashion-MNIST (Shirt is the hard class). */
const BASE_PER_CLASS = [0.85, 0.97, 0.81, 0.89, 0.82, 0.96, 0.66, 0.95, 0.97, 0.95];

/** Where each class's mistakes go: [predicted class, weight]. */
const CONFUSED_WITH: [number, number][][] = [
  [
    [6, 0.55],
    [3, 0.2],
    [2, 0.1],
    [8, 0.1],
    [4, 0.05],
  ],
  [
    [3, 0.6],
    [0, 0.2],
    [4, 0.2],
  ],
  [
    [4, 0.45],
    [6, 0.4],
    [0, 0.1],
    [8, 0.05],
  ],
  [
    [0, 0.3],
    [4, 0.3],
    [6, 0.25],
    [1, 0.15],
  ],
  [
    [2, 0.45],
    [6, 0.4],
    [3, 0.15],
  ],
  [
    [7, 0.6],
    [9, 0.35],
    [8, 0.05],
  ],
  [
    [0, 0.4],
    [2, 0.25],
    [4, 0.25],
    [3, 0.1],
  ],
  [
    [5, 0.5],
    [9, 0.5],
  ],
  [
    [0, 0.3],
    [2, 0.3],
    [5, 0.2],
    [6, 0.2],
  ],
  [
    [7, 0.6],
    [5, 0.4],
  ],
];

/** mulberry32: small, seedable, good enough for synthetic data. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = state;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

function round4(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function perClass(offset: number, random: () => number): number[] {
  return BASE_PER_CLASS.map((accuracy) => round4(Math.min(0.995, accuracy + offset + (random() - 0.5) * 0.02)));
}

function splitAccuracy(evalAccuracy: number, testPerClass: number[]): SplitAccuracy {
  const test = round4(testPerClass.reduce((sum, accuracy) => sum + accuracy, 0) / testPerClass.length);
  return { eval: evalAccuracy, test, testPerClass };
}

/** 1,000 test images per class, the diagonal from `accuracies`, the rest spread by CONFUSED_WITH. */
function confusionMatrix(accuracies: number[]): number[][] {
  const imagesPerClass = 1000;
  return accuracies.map((accuracy, trueClass) => {
    const row = new Array<number>(accuracies.length).fill(0);
    const correct = Math.round(accuracy * imagesPerClass);
    row[trueClass] = correct;
    let left = imagesPerClass - correct;
    const targets = CONFUSED_WITH[trueClass] ?? [];
    targets.forEach(([predicted, weight], index) => {
      const count =
        index === targets.length - 1 ? left : Math.min(left, Math.round((imagesPerClass - correct) * weight));
      row[predicted] = (row[predicted] ?? 0) + count;
      left -= count;
    });
    return row;
  });
}

type Rect = [x0: number, y0: number, x1: number, y1: number, intensity?: number];

/** Rough silhouettes of the ten classes, as filled rectangles on a 28×28 canvas. */
function silhouette(classIndex: number): Rect[] {
  switch (classIndex) {
    case 0:
      return [
        [8, 6, 20, 26],
        [3, 6, 25, 12],
        [12, 6, 16, 8, 0],
      ];
    case 1:
      return [
        [9, 3, 19, 7],
        [9, 7, 13, 27],
        [15, 7, 19, 27],
      ];
    case 2:
      return [
        [8, 5, 20, 25],
        [3, 6, 8, 24, 0.8],
        [20, 6, 25, 24, 0.8],
        [12, 5, 16, 7, 0.4],
      ];
    case 3:
      return Array.from({ length: 23 }, (_, row): Rect => {
        const halfWidth = 3 + Math.round((row * 7) / 22);
        return [14 - halfWidth, 3 + row, 14 + halfWidth, 4 + row];
      });
    case 4:
      return [
        [7, 3, 21, 27],
        [2, 4, 7, 25, 0.85],
        [21, 4, 26, 25, 0.85],
        [13, 5, 15, 27, 0.3],
      ];
    case 5:
      return [
        [2, 23, 26, 25],
        [4, 17, 24, 19, 0.8],
        [8, 13, 11, 23, 0.7],
        [17, 13, 20, 23, 0.7],
      ];
    case 6:
      return [
        [8, 4, 20, 26],
        [3, 5, 8, 23, 0.75],
        [20, 5, 25, 23, 0.75],
        [13, 4, 15, 26, 0.45],
        [11, 3, 17, 5, 0.95],
      ];
    case 7:
      return [
        [3, 18, 25, 23],
        [10, 13, 23, 18, 0.85],
        [3, 22, 25, 23, 1],
      ];
    case 8:
      return [
        [4, 10, 24, 25],
        [9, 4, 19, 6, 0.8],
        [9, 4, 11, 10, 0.8],
        [17, 4, 19, 10, 0.8],
      ];
    default:
      return [
        [12, 3, 21, 18],
        [4, 16, 23, 23],
        [4, 22, 23, 24, 0.6],
      ];
  }
}

function samplePixels(classIndex: number, random: () => number): Uint8Array {
  const size = 28;
  const pixels = new Uint8Array(size * size);
  const brightness = 170 + random() * 70;
  for (const [x0, y0, x1, y1, intensity = 1] of silhouette(classIndex)) {
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        // Fabric texture: each pixel a little brighter or darker.
        pixels[y * size + x] = Math.round(Math.min(255, brightness * intensity * (0.8 + random() * 0.3)));
      }
    }
  }
  return pixels;
}

function samples(random: () => number): ReportSample[] {
  return FASHION_MNIST_CLASSES.flatMap((label, labelIndex) =>
    ['v1', 'v2'].map((teacherVersion) => ({
      teacherVersion,
      sourceId: `unlabeled/${String(Math.floor(random() * 60_000)).padStart(5, '0')}`,
      labelIndex,
      label,
      confidence: round4(0.72 + random() * 0.279),
      pngBase64: encodeGrayscalePng(28, 28, samplePixels(labelIndex, random)).toString('base64'),
    })),
  );
}

function labeling(teacherVersion: string, copiesPerClass: number[], belowThreshold: number): ReportLabeling {
  const labeled = 60_000;
  const rejected = 120;
  const cutByBalancing = 3_950;
  return {
    teacherVersion,
    labeled,
    inShards: labeled - belowThreshold - rejected - cutByBalancing,
    copies: copiesPerClass.reduce((sum, copies) => sum + copies, 0),
    cutByBalancing,
    belowThreshold,
    rejected,
    acceptanceRate: round4((labeled - belowThreshold - rejected) / labeled),
    meanConfidence: teacherVersion === 'v1' ? 0.8712 : 0.8874,
    copiesPerClass,
  };
}

export function sampleReport(): Report {
  const random = seededRandom(20_250_514);
  const teacherV1 = splitAccuracy(0.8795, perClass(-0.01, random));
  const studentV2 = splitAccuracy(0.8962, perClass(0.006, random));
  const studentV3 = splitAccuracy(0.8951, perClass(0.008, random));
  const confusion = confusionMatrix(studentV2.testPerClass);
  const diagonal = confusion.map((row, classIndex) => row[classIndex] ?? 0);
  const copiesV1 = [4_800, 4_800, 4_800, 4_800, 4_800, 4_800, 3_920, 4_800, 4_800, 4_800];
  const copiesV2 = [5_000, 5_000, 5_000, 5_000, 5_000, 5_000, 4_480, 5_000, 5_000, 5_000];
  // Round 2 collected its shards while v2 was still labeling: fewer examples than v2's final copies.
  const examplesRound2 = copiesV2.map((copies) => Math.round(copies * 0.92));
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  return {
    generatedAt: '2025-05-14T10:42:07.000Z',
    title: 'Noisy Student on Fashion-MNIST',
    classNames: [...FASHION_MNIST_CLASSES],
    teacherVersion: 'v2',
    settings: {
      preset: 'demo',
      labeledExamples: 6_000,
      unlabeledImages: 60_000,
      confidenceThreshold: 0.7,
      balance: true,
      studentNoise: 'RandAugment(n=2, m=9), dropout 0.5, stochastic depth 0.8',
      studentSteps: 3_000,
      baselines: true,
      seed: 42,
    },
    rounds: [
      {
        round: 1,
        teacherVersion: 'v1',
        studentVersion: 'v2',
        decision: 'promoted',
        reason: 'student eval accuracy 0.8962 beat teacher 0.8795 by 1.67 pt (needed 0.20 pt)',
        startedAt: '2025-05-14T08:05:12.000Z',
        finishedAt: '2025-05-14T08:47:40.000Z',
        teacher: teacherV1,
        student: studentV2,
        baselines: { supervised: 0.8768, supervisedNoised: 0.8814 },
        shards: 12,
        pseudoLabeledExamples: sum(copiesV1),
        labeledExamples: 6_000,
        examplesPerClass: copiesV1,
        steps: 3_000,
      },
      {
        round: 2,
        teacherVersion: 'v2',
        studentVersion: 'v3',
        decision: 'rejected',
        reason: 'student eval accuracy 0.8951 did not beat teacher 0.8962 (needed +0.20 pt)',
        startedAt: '2025-05-14T08:52:03.000Z',
        finishedAt: '2025-05-14T09:38:55.000Z',
        teacher: studentV2,
        student: studentV3,
        baselines: { supervised: 0.8771, supervisedNoised: 0.8809 },
        shards: 13,
        pseudoLabeledExamples: sum(examplesRound2),
        labeledExamples: 6_000,
        examplesPerClass: examplesRound2,
        steps: 3_000,
      },
    ],
    promotions: [
      {
        version: 'v1',
        parentVersion: '',
        promotedAt: '2025-05-14T07:58:30.000Z',
        promotedBy: 'nsctl bootstrap',
        reason: 'initial teacher, supervised on the labeled split',
        evalAccuracy: 0.8795,
      },
      {
        version: 'v2',
        parentVersion: 'v1',
        promotedAt: '2025-05-14T08:47:41.000Z',
        promotedBy: 'trainer',
        reason: 'round 1: student eval accuracy 0.8962 beat teacher 0.8795',
        evalAccuracy: 0.8962,
      },
    ],
    labeling: [labeling('v1', copiesV1, 10_480), labeling('v2', copiesV2, 8_760)],
    served: {
      version: 'v2',
      images: sum(confusion.map(sum)),
      accuracy: round4(sum(diagonal) / sum(confusion.map(sum))),
      perClassAccuracy: diagonal.map((correct, classIndex) => round4(correct / sum(confusion[classIndex] ?? [1]))),
      confusion,
    },
    samples: samples(random),
  };
}
