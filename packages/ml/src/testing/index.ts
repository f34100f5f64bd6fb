// Helpers for tests that compare backends; exported as @noisystudent/ml/testing.
export { lossAndWeightGradients, outputsOverTolerance, runOn, scaledMaxError } from './compare-backends.js';
export { seededValues } from '../random.js';
export { makeTestArtifact, type TestArtifactOptions } from './test-artifact.js';
export { trainedFashionArtifact, type TrainedArtifactOptions } from './trained-artifact.js';
export { randomizeBatchNorms } from './batch-norms.js';
