import { InvalidArgument } from '@noisystudent/core';
import { ColorMode, ResizeMethod, type Preprocessing } from '@noisystudent/proto';

/**
 * Every model here trains and evaluates on pixels × 1/255 (0–255 pixels to 0–1): training
 * (`trainModel`), evaluation (`predictProbabilities`) and the artifact's recorded preprocessing
 * all read this one constant, so what a served model is fed cannot drift from what it learned on.
 */
export const PIXEL_SCALE = 1 / 255;

/** What an artifact needs to know of the images a model was trained on (a `LabeledImages` is one). */
export interface ImageDataDescription {
  height: number;
  width: number;
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
  /** One per class; index = class index = output unit. */
  classNames: readonly string[];
}

/**
 * The preprocessing a model trained on `data` needs at serving time: the data's size and color
 * mode, bilinear resizing of encoded images of other sizes (sharp, as the image-folder loader
 * does), and the training scale.
 */
export function trainingPreprocessing(data: ImageDataDescription): Preprocessing {
  if (data.channels !== 1 && data.channels !== 3) {
    throw new InvalidArgument('channels', `expected 1 (grayscale) or 3 (RGB), got ${data.channels}`);
  }
  return {
    inputHeight: data.height,
    inputWidth: data.width,
    inputChannels: data.channels,
    colorMode: data.channels === 1 ? ColorMode.GRAYSCALE : ColorMode.RGB,
    resizeMethod: ResizeMethod.BILINEAR,
    normalization: { $case: 'rescale', value: { scale: PIXEL_SCALE, offset: 0 } },
  };
}
