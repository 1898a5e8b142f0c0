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
  /**
   * Class labels aligned with `images` (`undefined` for unlabelled ones). When at least two labels
   * occur, a fixed fifth of the labelled images is held out of training and a k-NN probe on the
   * encoder's features reports accuracy on it (`knnAccuracy`). Ignored by `dense-ae-32`.
   */
  labels?: (string | undefined)[];
  /** A state saved by `onCheckpoint` in an earlier, interrupted run of the same round: resume it. */
  resume?: TrainerCheckpoint;
  /** Called after every epoch with the state to persist; training waits for it. */
  onCheckpoint?: (checkpoint: TrainerCheckpoint) => Promise<void>;
}

/**
 * Enough to resume a round after the epoch it records and end with the same weights as a run
 * that was never interrupted: the weights and the optimiser's state (`conv4` only).
 */
export interface TrainerCheckpoint {
  /** Epochs completed. */
  epoch: number;
  weights: Float32Array;
  optimizer: { step: number; m: Float32Array; v: Float32Array };
}

/** Reported after every optimiser step. `epoch` and `batch` count from 1. */
export interface TrainProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  /** The objective on this batch (for dense-ae-32 plus the FedProx term when mu > 0). */
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
    /** Training throughput over the round, in images per second (`conv4`). */
    imagesPerSecond?: number;
    /** k-NN accuracy on the held-out labelled images after training (see `TrainInput.labels`). */
    knnAccuracy?: number;
    /** The same with the starting weights. */
    initialKnnAccuracy?: number;
    /** Held-out labelled images the accuracies are measured on. */
    heldOut?: number;
  };
}
