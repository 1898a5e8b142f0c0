import type { TrainOutput } from './trainer.js';

/**
 * The metrics a site reports with its update (snake_case, as the coordinator shows them): the
 * objective before and after, wall time, throughput and, where the site has labels, the k-NN
 * accuracy before and after on its held-out images. Nothing here identifies an image.
 */
export function reportedMetrics(metrics: TrainOutput['metrics']): Record<string, number> {
  const optional: [string, number | undefined][] = [
    ['images_per_second', metrics.imagesPerSecond],
    ['knn_accuracy', metrics.knnAccuracy],
    ['initial_knn_accuracy', metrics.initialKnnAccuracy],
    ['held_out', metrics.heldOut],
  ];
  return {
    loss: metrics.loss,
    initial_loss: metrics.initialLoss,
    train_seconds: metrics.trainSeconds,
    ...Object.fromEntries(optional.filter(([, value]) => value !== undefined && Number.isFinite(value))),
  };
}
