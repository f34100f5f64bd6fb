import { InvalidArgument, type NatsNames, ResourceExhausted, Unavailable, unlabeledSubject } from '@noisystudent/core';
import { inputSize, writeModelInput, type ModelInputSpec } from '@noisystudent/ml';
import { Dtype, dtypeToJSON, UnlabeledImage, type Image, type IngestRequest } from '@noisystudent/proto';
import { ErrorCode, NatsError, type JetStreamClient, type PubAck } from 'nats';

/** Longest source id accepted (labeler.proto). */
const MAX_SOURCE_ID_CHARS = 200;

/**
 * Letters, digits and `-_.:/`: enough for paths and URNs, and safe as a NATS header value (the
 * JetStream message id) and in log lines — no spaces, no CR/LF.
 */
const SOURCE_ID_PATTERN = /^[A-Za-z0-9\-_.:/]+$/;

export interface UnlabeledStoreOptions {
  /** Subject token images ingested over gRPC are stored under: `<prefix>.unlabeled.<source>`. @default 'grpc' */
  source?: string;
}

/** What storing one image came to: its NS_UNLABELED sequence, and whether its source id was already stored. */
export interface StoredImage {
  sequence: number;
  /** True when JetStream dropped the image as a resend of an id in its duplicate window: nothing new was stored. */
  duplicate: boolean;
}

/**
 * Checks ingested images and stores them durably in NS_UNLABELED (docs/architecture.md §5): `store` resolves
 * only after JetStream's PubAck, so whatever the caller acknowledges is on disk.
 */
export class UnlabeledStore {
  private readonly source: string;
  /** Where full input checks write the model input they build; its contents are thrown away. */
  private scratch = new Float32Array(0);

  constructor(
    private readonly js: JetStreamClient,
    private readonly names: NatsNames,
    options: UnlabeledStoreOptions = {},
  ) {
    this.source = options.source ?? 'grpc';
  }

  /**
   * Validates `request` and stores it as an `UnlabeledImage` with message id = source id. With
   * `inputSpec` (the serving teacher's input) the image is checked as the teacher would read it:
   * undecodable bytes, wrong sizes or dtypes, non-finite values are refused now rather than at
   * labeling. Without one (no teacher yet) only the image's structure is checked.
   *
   * @throws InvalidArgument naming the field (`source_id`, `image…`)
   * @throws ResourceExhausted when the stored message would exceed the NATS server's max_payload
   * @throws Unavailable when NATS did not confirm storage (timeout, no stream, connection closed):
   *   the image may or may not be stored; resending it with the same source id is safe
   */
  async store(request: IngestRequest, inputSpec: ModelInputSpec | undefined): Promise<StoredImage> {
    validateSourceId(request.sourceId, 'source_id');
    if (inputSpec === undefined) checkImageStructure(request.image, 'image');
    else await writeModelInput(request.image, inputSpec, 'image', this.scratchFor(inputSpec), 0);
    const unlabeled: UnlabeledImage = { sourceId: request.sourceId, image: request.image, ingestedAt: new Date() };
    try {
      const ack = await publishUnlabeled(this.js, this.names, this.source, unlabeled);
      return { sequence: ack.seq, duplicate: ack.duplicate };
    } catch (error) {
      throw storageError(error, unlabeledSubject(this.names, this.source), this.names.unlabeledStream);
    }
  }

  private scratchFor(spec: ModelInputSpec): Float32Array {
    const size = inputSize(spec);
    if (this.scratch.length !== size) this.scratch = new Float32Array(size);
    return this.scratch;
  }
}

/**
 * Stores one unlabeled image the way every producer does; the gRPC Ingest path uses it too.
 *
 * The format, for producers that do not speak gRPC:
 * - subject `<prefix>.unlabeled.<source>` (default prefix `ns`; `<source>` one subject token
 *   naming the producer, e.g. `ns.unlabeled.camera-7`), captured by stream `<PREFIX>_UNLABELED`;
 * - payload: the `noisystudent.v1.UnlabeledImage` protobuf (labeler.proto): `source_id`, `image`
 *   (encoded PNG/JPEG or a uint8/float32 HWC tensor), `ingested_at`;
 * - header `Nats-Msg-Id: <source_id>`: JetStream drops a resend of the same id within the stream's
 *   10-minute duplicate window, so a producer retries a publish without a PubAck by resending;
 * - this helper also sets `Nats-Expected-Stream: <PREFIX>_UNLABELED`, so a subject captured by
 *   some other stream fails instead of storing the image where the labeler never looks;
 * - at most the server's max_payload (1 MiB by default) in all.
 *
 * `source` is sanitized into one token by `unlabeledSubject`.
 * Resolves with JetStream's PubAck (`duplicate` true for a resend); throws nats.js errors as they are.
 * @throws InvalidArgument when `image.sourceId` is not a valid source id
 */
export async function publishUnlabeled(
  js: JetStreamClient,
  names: NatsNames,
  source: string,
  image: UnlabeledImage,
): Promise<PubAck> {
  validateSourceId(image.sourceId, 'source_id');
  return js.publish(unlabeledSubject(names, source), UnlabeledImage.encode(image).finish(), {
    msgID: image.sourceId,
    expect: { streamName: names.unlabeledStream },
  });
}

/** Checks a producer's source id (labeler.proto): non-empty, letters, digits and `-_.:/` only, at most 200 characters. */
export function validateSourceId(id: string, field: string): void {
  if (id.length === 0) throw new InvalidArgument(field, 'expected a non-empty source id, got ""');
  if (id.length > MAX_SOURCE_ID_CHARS) {
    throw new InvalidArgument(field, `expected at most ${MAX_SOURCE_ID_CHARS} characters, got ${id.length}`);
  }
  if (!SOURCE_ID_PATTERN.test(id)) {
    const position = [...id].findIndex((character) => !SOURCE_ID_PATTERN.test(character));
    throw new InvalidArgument(
      field,
      `expected letters, digits and -_.:/ only, got ${JSON.stringify([...id][position] ?? '')} at position ` +
        `${position} of ${JSON.stringify(id)}`,
    );
  }
}

/** Bytes per element of the dtypes an image tensor may have (tensor.proto). */
const IMAGE_DTYPE_BYTES = new Map<Dtype, number>([
  [Dtype.UINT8, 1],
  [Dtype.FLOAT32, 4],
]);

/**
 * What can be checked of an image without knowing the model that will read it: encoded bytes are
 * present, a tensor is [height, width, 1 or 3] of uint8 or float32 with data to match and finite values.
 */
function checkImageStructure(image: Image | undefined, field: string): void {
  const content = image?.content;
  if (content === undefined) {
    throw new InvalidArgument(field, 'expected an image: encoded PNG/JPEG bytes or a tensor, got neither');
  }
  if (content.$case === 'encoded') {
    if (content.value.byteLength === 0)
      throw new InvalidArgument(`${field}.encoded`, 'expected PNG or JPEG bytes, got 0 bytes');
    return;
  }
  const tensor = content.value;
  const [height = 0, width = 0, channels = 0] = tensor.shape;
  if (tensor.shape.length !== 3 || height === 0 || width === 0 || (channels !== 1 && channels !== 3)) {
    throw new InvalidArgument(
      `${field}.tensor.shape`,
      `expected [height, width, 1 or 3] (HWC, no batch dimension), got [${tensor.shape.join(', ')}]`,
    );
  }
  const bytesPerElement = IMAGE_DTYPE_BYTES.get(tensor.dtype);
  if (bytesPerElement === undefined) {
    throw new InvalidArgument(`${field}.tensor.dtype`, `expected UINT8 or FLOAT32, got ${dtypeToJSON(tensor.dtype)}`);
  }
  const elements = height * width * channels;
  const data = tensor.data;
  if (data.byteLength !== elements * bytesPerElement) {
    throw new InvalidArgument(
      `${field}.tensor.data`,
      `expected ${elements * bytesPerElement} bytes (${tensor.shape.join('×')} ${dtypeToJSON(tensor.dtype)}), ` +
        `got ${data.byteLength}`,
    );
  }
  if (tensor.dtype === Dtype.FLOAT32) {
    // Little-endian on the wire (tensor.proto), whatever the host's order.
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let index = 0; index < elements; index++) {
      const value = view.getFloat32(index * 4, true);
      if (!Number.isFinite(value)) {
        throw new InvalidArgument(
          `${field}.tensor.data`,
          `expected finite pixel values, got ${value} at element ${index}`,
        );
      }
    }
  }
}

/** A failed publish as one of our errors: too large → ResourceExhausted, any other NATS failure → Unavailable. */
function storageError(error: unknown, subject: string, stream: string): unknown {
  if (!(error instanceof NatsError)) return error;
  const notStored = 'the image is not acknowledged as stored; resend it with the same source_id';
  switch (error.code) {
    case ErrorCode.MaxPayloadExceeded:
      return new ResourceExhausted(
        "image: expected a message within the NATS server's max_payload, got a larger one; send the image smaller " +
          '(encoded PNG/JPEG, or fewer pixels)',
        { cause: error },
      );
    case ErrorCode.Timeout:
      return new Unavailable(`nats: no PubAck from stream ${stream} for ${subject} in time (TIMEOUT); ${notStored}`, {
        cause: error,
      });
    case ErrorCode.NoResponders:
      return new Unavailable(
        `nats: no stream answered on ${subject} (no responders): is stream ${stream} created and JetStream up? ${notStored}`,
        { cause: error },
      );
    case ErrorCode.ConnectionClosed:
    case ErrorCode.ConnectionDraining:
      return new Unavailable(
        `nats: the connection is ${error.code === ErrorCode.ConnectionClosed ? 'closed' : 'draining'}; ${notStored}`,
        {
          cause: error,
        },
      );
    default:
      return new Unavailable(
        `nats: storing in stream ${stream} failed (${error.code}: ${error.message}); ${notStored}`,
        {
          cause: error,
        },
      );
  }
}
