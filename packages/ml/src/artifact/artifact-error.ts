/**
 * Why an artifact was refused. A registry or teacher maps them to its own codes: a hash mismatch
 * means the blob changed in transit or storage; the others mean the blob was written wrong.
 */
export type ModelArtifactProblem =
  | 'sha256-mismatch'
  | 'undecodable'
  | 'missing-field'
  | 'invalid-metadata'
  | 'invalid-topology'
  | 'unloadable'
  | 'weight-layout'
  | 'unsupported-dtype'
  | 'non-finite-weight';

/** An artifact that cannot be encoded or loaded. The message starts with the field that is wrong. */
export class ModelArtifactError extends Error {
  override readonly name = 'ModelArtifactError';
  readonly problem: ModelArtifactProblem;
  /** The artifact field at fault, e.g. `weightSpecs[3] (block1_conv1/kernel)`. */
  readonly field: string;

  constructor(problem: ModelArtifactProblem, field: string, detail: string, options?: ErrorOptions) {
    super(`${field}: ${detail}`, options);
    this.problem = problem;
    this.field = field;
  }
}
