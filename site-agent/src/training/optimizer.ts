/**
 * Adam in plain JavaScript over the flat weight vector, with the FedProx proximal term. Running the
 * update here rather than on the tfjs backend makes it identical for any number of training
 * workers, and its state is a few arrays that a checkpoint can hold.
 */

/** Adam's moment estimates and step count: everything needed to resume an optimiser exactly. */
export interface AdamState {
  step: number;
  /** First moments, one per gradient entry. */
  m: Float32Array;
  /** Second moments, one per gradient entry. */
  v: Float32Array;
}

const BETA1 = 0.9;
const BETA2 = 0.999;
const EPSILON = 1e-7;

/** A zeroed optimiser state for `size` gradient entries. */
export function adamState(size: number): AdamState {
  return { step: 0, m: new Float32Array(size), v: new Float32Array(size) };
}

/**
 * A span of the flat weight vector the optimiser updates, with where its gradient sits and, under
 * FedProx, the global weights it is pulled towards (shared tensors only).
 */
export interface TrainableSpan {
  weightOffset: number;
  gradOffset: number;
  size: number;
  anchor?: Float32Array;
}

/**
 * One Adam step (Kingma & Ba, bias-corrected; tfjs's default epsilon) in place. The FedProx term
 * mu/2 * ||w - w_global||^2 adds mu * (w - w_global) to the gradient of anchored spans.
 */
export function adamStep(
  weights: Float32Array,
  gradients: Float32Array,
  spans: readonly TrainableSpan[],
  state: AdamState,
  learningRate: number,
  mu: number,
): void {
  state.step++;
  const correction1 = 1 - BETA1 ** state.step;
  const correction2 = 1 - BETA2 ** state.step;
  const { m, v } = state;
  for (const span of spans) {
    for (let k = 0; k < span.size; k++) {
      const w = weights[span.weightOffset + k] as number;
      let g = gradients[span.gradOffset + k] as number;
      if (span.anchor !== undefined && mu > 0) g += mu * (w - (span.anchor[k] as number));
      const at = span.gradOffset + k;
      const mk = BETA1 * (m[at] as number) + (1 - BETA1) * g;
      const vk = BETA2 * (v[at] as number) + (1 - BETA2) * g * g;
      m[at] = mk;
      v[at] = vk;
      weights[span.weightOffset + k] =
        w - (learningRate * (mk / correction1)) / (Math.sqrt(vk / correction2) + EPSILON);
    }
  }
}
