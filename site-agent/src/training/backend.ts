import * as tf from '@tensorflow/tfjs';
import { BackendCheckError } from './errors.js';

/** The tfjs backend in use. */
export interface SelectedBackend {
  /** tfjs backend name, e.g. `cpu`. */
  name: string;
}

/**
 * Selects the tfjs backend for training and proves it computes correctly with a known-answer
 * matrix product before any site data touches it.
 *
 * For now this is always the pure-JavaScript `cpu` backend. The faster ones (tfjs-node-gpu, tfjs-node,
 * WASM; DESIGN "Training") come in a later issue and will be tried here first, falling back in
 * that order. Also enables tfjs production mode, which skips per-op debug checks and tfjs's
 * "install tfjs-node" banner.
 *
 * @throws BackendCheckError when the backend cannot be initialised or gets the known answer wrong.
 */
export async function selectBackend(): Promise<SelectedBackend> {
  tf.enableProdMode();
  let ready: boolean;
  try {
    ready = await tf.setBackend('cpu');
    await tf.ready();
  } catch (thrown) {
    throw new BackendCheckError(
      `tfjs backend "cpu" could not be initialised: ${thrown instanceof Error ? thrown.message : String(thrown)}`,
      { cause: thrown },
    );
  }
  if (!ready) throw new BackendCheckError('tfjs backend "cpu" could not be initialised');
  const name = tf.getBackend();
  checkKnownAnswer(name);
  return { name };
}

/** [[1,2],[3,4]] x [[5,6],[7,8]] through ReLU and a bias: small integers, exact in float32. */
function checkKnownAnswer(backend: string): void {
  const expected = [20, 23, 44, 51];
  const actual = tf.tidy(() => {
    const product = tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2]), tf.tensor2d([5, 6, 7, 8], [2, 2]));
    return Array.from(tf.relu(product).add(tf.scalar(1)).dataSync());
  });
  if (actual.length !== expected.length || actual.some((value, index) => value !== expected[index])) {
    throw new BackendCheckError(
      `tfjs backend "${backend}" failed its self-test: expected [${expected.join(', ')}], got [${actual.join(', ')}]`,
    );
  }
}
