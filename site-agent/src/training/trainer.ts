import type { ModelSpec } from '@radfed/shared';

/**
 * The one boundary between the agent and whatever trains the model (DESIGN "Training"): global
 * weights and round config in; local weights, sample count and metrics out. The built-in
 * implementation is {@link TfjsTrainer}; an external trainer process (PyTorch, MONAI) can sit behind
 * the same interface while RadFed keeps enrolment, transport, HE and provenance.
 */
export interface Trainer {
  /** Trains one round locally. Rejects with `TrainingInputError` for a request it cannot honour. */
  train(input: TrainInput, onProgress?: (progress: TrainProgress) => void): Promise<TrainOutput>;
}

export interface TrainInput {
  spec: ModelSpec;
  /**
   * Starting weights, flat, in the tensor order of `spec.tensors` (local tensors included).
   * `undefined` starts from `initialWeights(spec)`, the seeded initialisation.
   */
  globalWeights?: Float32Array;
  /** Training images, each `spec.inputSize ** 2` values, row-major, already standardised. */
  images: Float32Array[];
  /** Seed for shuffling and noise; default `spec.seed`. */
  seed?: number;
}

/** Reported after every optimiser step. `epoch` and `batch` count from 1. */
export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** The objective minimised on this batch (MSE, plus the FedProx term when mu > 0). */
  loss: number;
  /** Training throughput so far, in images per second. */
  imagesPerSecond: number;
}

export interface TrainOutput {
  /** Weights after training, flat, same layout as {@link TrainInput.globalWeights}. */
  weights: Float32Array;
  /** Images trained on; the weight of this site's update in FedAvg. */
  sampleCount: number;
  metrics: {
    /** Denoising MSE over all local images after training (same fixed noise as `initialLoss`). */
    loss: number;
    /** Denoising MSE over all local images with the starting weights. */
    initialLoss: number;
    /** Wall-clock seconds of the whole `train` call. */
    trainSeconds: number;
  };
}
