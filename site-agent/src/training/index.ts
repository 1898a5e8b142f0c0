export type { SelectedBackend } from './backend.js';
export { selectBackend } from './backend.js';
export { BackendCheckError, TrainingInputError } from './errors.js';
export { flattenWeights, initialWeights, unflattenWeights } from './model.js';
export { DENOISING_NOISE_STD, TfjsTrainer } from './tfjs-trainer.js';
export type { Trainer, TrainInput, TrainOutput, TrainProgress } from './trainer.js';
