import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs-core';

import { initBackend } from '../backend/select-backend.js';
import { integerOption, positiveNumberOption, runMain } from '../cli/options.js';
import { loadFashionMnist, type LabeledImages } from '../data/fashion-mnist.js';
import { buildReferenceResNet } from '../models/reference-resnet.js';
import { createRandom, shuffledIndices } from '../random.js';

interface DemoOptions {
  json: boolean;
  backend: string;
  trainImages?: number;
  testImages: number;
  epochs?: number;
  batch: number;
  learningRate: number;
  seed: number;
  data?: string;
}

const program = new Command()
  .name('demo')
  .description(
    'Trains the reference ResNet on a seeded sample of Fashion-MNIST (Debian dataset-fashion-mnist) on the best available ' +
      'TensorFlow.js backend and reports its test accuracy. The end-to-end job that exists until the self-training loop lands.',
  )
  .option('--json', 'print only the final JSON line on stdout (progress still goes to stderr)', false)
  .option(
    '--backend <name>',
    'auto | tensorflow | wasm | cpu (default: NS_BACKEND or auto)',
    process.env['NS_BACKEND'] ?? 'auto',
  )
  .option(
    '--train-images <n>',
    'training images sampled from the 60,000 (default: 20,000 with native kernels, else 6,000)',
    integerOption('--train-images', 1, 60_000),
  )
  .option('--test-images <n>', 'test images sampled from the 10,000', integerOption('--test-images', 1, 10_000), 2_000)
  .option(
    '--epochs <n>',
    'passes over the training sample (default: 3 with native kernels, else 2)',
    integerOption('--epochs', 1, 1_000),
  )
  .option('--batch <n>', 'training batch size', integerOption('--batch', 1, 4_096), 32)
  .option('--learning-rate <x>', 'Adam learning rate', positiveNumberOption('--learning-rate'), 2e-3)
  .option('--seed <n>', 'seed for sampling, order and initial weights', integerOption('--seed', 0, 2 ** 31 - 1), 1)
  .option('--data <dir>', 'folder with the Fashion-MNIST idx files (default: NS_FASHION_MNIST_DIR or Debian path)');

async function main(): Promise<void> {
  const options = program.parse().opts<DemoOptions>();
  const say = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const started = performance.now();
  const choice = await initBackend({ request: options.backend, log: say });
  const [train, test] = await Promise.all([
    loadFashionMnist('train', options.data),
    loadFashionMnist('test', options.data),
  ]);
  // Sized so the demo takes a minute or two on either path (native kernels train ~15× faster).
  const trainImages = options.trainImages ?? (choice.native ? 20_000 : 6_000);
  const epochs = options.epochs ?? (choice.native ? 3 : 2);
  const random = createRandom(options.seed);
  const trainOrder = shuffledIndices(train.count, random).subarray(0, trainImages);
  const testOrder = shuffledIndices(test.count, random).subarray(0, options.testImages);
  say(`data: ${trainOrder.length} training and ${testOrder.length} test images of Fashion-MNIST`);

  const model = buildReferenceResNet({ seed: options.seed });
  model.compile({ optimizer: tf.train.adam(options.learningRate), loss: 'categoricalCrossentropy' });
  const stepsPerEpoch = Math.ceil(trainOrder.length / options.batch);
  const totalSteps = stepsPerEpoch * epochs;
  let step = 0;
  let trainSeconds = 0;
  let lastReport = performance.now();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const order = shuffledIndices(trainOrder.length, random).map((position) => trainOrder[position] ?? 0);
    let lossSum = 0;
    for (let start = 0; start < order.length; start += options.batch) {
      const indices = order.subarray(start, start + options.batch);
      const [images, labels] = batchOf(train, indices);
      const stepStart = performance.now();
      const loss = await model.trainOnBatch(images, labels);
      trainSeconds += (performance.now() - stepStart) / 1000;
      tf.dispose([images, labels]);
      lossSum += Number(loss);
      step++;
      // A progress line every 5 seconds, and one at the end.
      if (performance.now() - lastReport > 5_000 || step === totalSteps) {
        lastReport = performance.now();
        const rate = (step * options.batch) / trainSeconds;
        const eta = ((totalSteps - step) * options.batch) / rate;
        say(
          `epoch ${epoch}/${epochs} step ${step}/${totalSteps} loss ${(lossSum / (start / options.batch + 1)).toFixed(3)} ` +
            `${rate.toFixed(1)} img/s, eta ${eta.toFixed(0)}s`,
        );
      }
    }
  }

  const evaluation = await evaluate(model, test, testOrder);
  say(`test accuracy ${evaluation.accuracy.toFixed(2)}% on ${testOrder.length} images`);
  for (const [classIndex, accuracy] of evaluation.perClass.entries()) {
    say(`  ${(test.classNames[classIndex] ?? String(classIndex)).padEnd(12)} ${accuracy.toFixed(1)}%`);
  }
  model.dispose();
  const result = {
    job: 'supervised-reference-resnet',
    dataset: 'fashion-mnist',
    backend: choice.backend,
    native: choice.native,
    train_images: trainOrder.length,
    test_images: testOrder.length,
    epochs,
    steps: totalSteps,
    test_accuracy: Math.round(evaluation.accuracy * 100) / 100,
    train_img_s: Math.round(((totalSteps * options.batch) / trainSeconds) * 10) / 10,
    wall_s: Math.round((performance.now() - started) / 100) / 10,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Images scaled to [0, 1] as [n, 28, 28, 1] and one-hot labels. */
function batchOf(data: LabeledImages, indices: ArrayLike<number>): [tf.Tensor4D, tf.Tensor2D] {
  const pixels = data.height * data.width;
  const images = new Float32Array(indices.length * pixels);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i] ?? 0;
    const source = data.images.subarray(index * pixels, (index + 1) * pixels);
    for (let p = 0; p < pixels; p++) images[i * pixels + p] = (source[p] ?? 0) / 255;
    labels[i] = data.labels[index] ?? 0;
  }
  const labelTensor = tf.tensor1d(labels, 'int32');
  const oneHot = tf.oneHot(labelTensor, data.classNames.length) as tf.Tensor2D;
  labelTensor.dispose();
  return [tf.tensor4d(images, [indices.length, data.height, data.width, 1]), oneHot];
}

async function evaluate(model: ReturnType<typeof buildReferenceResNet>, data: LabeledImages, order: Int32Array) {
  const correct = new Array<number>(data.classNames.length).fill(0);
  const seen = new Array<number>(data.classNames.length).fill(0);
  for (let start = 0; start < order.length; start += 256) {
    const indices = order.subarray(start, start + 256);
    const [images, labels] = batchOf(data, indices);
    const predicted = tf.tidy(() => tf.argMax(model.predict(images) as tf.Tensor, -1));
    const predictedLabels = await predicted.data();
    tf.dispose([images, labels, predicted]);
    indices.forEach((index, i) => {
      const label = data.labels[index] ?? 0;
      seen[label] = (seen[label] ?? 0) + 1;
      if (predictedLabels[i] === label) correct[label] = (correct[label] ?? 0) + 1;
    });
  }
  const total = correct.reduce((sum, value) => sum + value, 0);
  return {
    accuracy: (100 * total) / order.length,
    perClass: correct.map((value, label) => (100 * value) / Math.max(seen[label] ?? 0, 1)),
  };
}

runMain('demo', main);
