/**
 * Local evaluation by k-nearest neighbours on frozen encoder features (the standard probe for
 * self-supervised encoders, e.g. InstDisc, DINO): cosine similarity, the k most similar labelled
 * training images vote with weight exp(similarity / 0.07).
 */
import { deriveSeed } from './random.js';

/** Neighbours that vote. */
export const KNN_K = 20;
const KNN_TEMPERATURE = 0.07;
/** One image in this many labelled ones is held out for evaluation (by a hash of its index). */
export const HOLDOUT_EVERY = 5;
const HOLDOUT_STREAM = 0x401d;

/**
 * Which labelled images are held out for evaluation: a fixed fifth, chosen by a hash of the image's
 * position and the federation seed, so the split is the same every round. Empty when there are
 * fewer than two distinct labels or too few images to hold any out.
 */
export function heldOutIndices(labels: readonly (string | undefined)[], seed: number): number[] {
  const labelled = labels.flatMap((label, index) => (label === undefined ? [] : [index]));
  if (new Set(labelled.map((index) => labels[index])).size < 2) return [];
  const held = labelled.filter((index) => deriveSeed(seed, HOLDOUT_STREAM, index) % HOLDOUT_EVERY === 0);
  return held.length > 0 && held.length < labelled.length ? held : [];
}

/**
 * Accuracy of a weighted k-NN vote (cosine similarity) of each query against the reference set.
 * Ties go to the label that sorts first, so the result is deterministic.
 */
export function knnAccuracy(
  reference: readonly Float32Array[],
  referenceLabels: readonly string[],
  queries: readonly Float32Array[],
  queryLabels: readonly string[],
  k = KNN_K,
): number {
  if (queries.length === 0 || reference.length === 0) return Number.NaN;
  const unit = (v: Float32Array) => {
    let norm = 0;
    for (const x of v) norm += x * x;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    return v.map((x) => x * scale);
  };
  const refs = reference.map(unit);
  let correct = 0;
  for (const [q, query] of queries.map(unit).entries()) {
    const similarities = refs.map((ref, index) => {
      let dot = 0;
      for (let i = 0; i < ref.length; i++) dot += (ref[i] as number) * (query[i] as number);
      return { index, dot };
    });
    similarities.sort((a, b) => b.dot - a.dot || a.index - b.index);
    const votes = new Map<string, number>();
    for (const { index, dot } of similarities.slice(0, k)) {
      const label = referenceLabels[index] as string;
      votes.set(label, (votes.get(label) ?? 0) + Math.exp(dot / KNN_TEMPERATURE));
    }
    const [winner] = [...votes.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (winner?.[0] === queryLabels[q]) correct++;
  }
  return correct / queries.length;
}
