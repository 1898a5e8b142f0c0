/**
 * The TensorFlow wheels `radfed-agent backend install native` accepts, by file name and sha256.
 * A wheel is used only when its bytes hash to the value pinned here (or to the `--sha256` an
 * operator passes after verifying the wheel by other means, e.g. for a build not listed here).
 */

/** TensorFlow release whose C library the native backend is built on. */
export const TENSORFLOW_VERSION = '2.21.0';
/** The tfjs-node release whose binding is compiled against it (same as the agent's tfjs). */
export const TFJS_NODE_VERSION = '4.22.0';

export interface PinnedWheel {
  /** PyPI project: `tensorflow-cpu`, or `tensorflow` (the CUDA build) for `--gpu`. */
  project: 'tensorflow-cpu' | 'tensorflow';
  /** Wheel file name as pip saves it. */
  file: string;
  sha256: string;
}

/**
 * Verified here on 2026-12-01 against the configured PyPI index. Only wheels someone has hashed
 * are listed: the CUDA `tensorflow` wheel could not be fetched or tested on this machine, so `--gpu`
 * needs `--sha256` until its hash is added.
 */
export const PINNED_WHEELS: readonly PinnedWheel[] = [
  {
    project: 'tensorflow-cpu',
    file: 'tensorflow_cpu-2.21.0-cp311-cp311-manylinux_2_27_x86_64.whl',
    sha256: '2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c',
  },
];
