/**
 * Random views of grayscale radiology images for the self-supervised objectives, in plain
 * JavaScript: the same seed gives the same bytes on every machine and backend, and the views of an
 * image do not depend on which worker draws them.
 */
import type { AugmentationSpec } from '@radfed/shared';
import { uniformGenerator } from './random.js';

/** A seeded source of uniform and standard-normal draws. */
export class Rng {
  private readonly next: () => number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.next = uniformGenerator(seed);
  }

  /** Uniform on [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== undefined) {
      const value = this.spare;
      this.spare = undefined;
      return value;
    }
    const u = Math.max(this.next(), Number.MIN_VALUE);
    const angle = 2 * Math.PI * this.next();
    const radius = Math.sqrt(-2 * Math.log(u));
    this.spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }
}

/**
 * One random view of a square `size x size` image (row-major), written into `out`: crop-resize,
 * optional left-right flip, contrast/brightness/gamma jitter, Gaussian blur, Gaussian noise (see
 * {@link AugmentationSpec} for the ranges). The image is expected standardised (mean 0, std 1).
 */
export function augmentView(
  image: Float32Array,
  size: number,
  spec: AugmentationSpec,
  rng: Rng,
  out: Float32Array,
): Float32Array {
  cropResize(image, size, spec.cropScaleMin, rng, out);
  if (spec.flipHorizontal && rng.uniform() < 0.5) flipHorizontal(out, size);
  if (spec.intensity > 0) jitterIntensity(out, spec.intensity, rng);
  if (spec.blurProbability > 0 && rng.uniform() < spec.blurProbability) {
    gaussianBlur(out, size, rng.uniform(0.1, 1.5));
  }
  if (spec.noiseStd > 0) {
    for (let i = 0; i < out.length; i++) out[i] = (out[i] ?? 0) + spec.noiseStd * rng.normal();
  }
  return out;
}

/** Random area fraction in [minScale, 1] and aspect in [3/4, 4/3]; bilinear resize to `size`. */
function cropResize(image: Float32Array, size: number, minScale: number, rng: Rng, out: Float32Array): void {
  const area = rng.uniform(minScale, 1) * size * size;
  const aspect = Math.exp(rng.uniform(Math.log(3 / 4), Math.log(4 / 3)));
  const width = Math.min(size, Math.sqrt(area * aspect));
  const height = Math.min(size, Math.sqrt(area / aspect));
  const x0 = rng.uniform(0, size - width);
  const y0 = rng.uniform(0, size - height);
  const sx = width / size;
  const sy = height / size;
  for (let y = 0; y < size; y++) {
    // Sample at output pixel centres, clamped so that edge taps stay inside the image.
    const fy = Math.min(size - 1, Math.max(0, y0 + (y + 0.5) * sy - 0.5));
    const y1 = Math.floor(fy);
    const y2 = Math.min(size - 1, y1 + 1);
    const wy = fy - y1;
    for (let x = 0; x < size; x++) {
      const fx = Math.min(size - 1, Math.max(0, x0 + (x + 0.5) * sx - 0.5));
      const x1 = Math.floor(fx);
      const x2 = Math.min(size - 1, x1 + 1);
      const wx = fx - x1;
      const top = (image[y1 * size + x1] ?? 0) * (1 - wx) + (image[y1 * size + x2] ?? 0) * wx;
      const bottom = (image[y2 * size + x1] ?? 0) * (1 - wx) + (image[y2 * size + x2] ?? 0) * wx;
      out[y * size + x] = top * (1 - wy) + bottom * wy;
    }
  }
}

function flipHorizontal(pixels: Float32Array, size: number): void {
  for (let y = 0; y < size; y++) pixels.subarray(y * size, (y + 1) * size).reverse();
}

/**
 * Contrast and brightness in standardised units, and a gamma curve applied on the image's own
 * [min, max] range (gamma is only defined for non-negative intensities).
 */
function jitterIntensity(pixels: Float32Array, strength: number, rng: Rng): void {
  const contrast = 1 + rng.uniform(-strength, strength);
  const brightness = rng.uniform(-strength, strength);
  const gamma = Math.exp(rng.uniform(-strength, strength));
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of pixels) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  const range = max - min;
  for (let i = 0; i < pixels.length; i++) {
    let value = pixels[i] ?? 0;
    if (range > 0) value = min + range * ((value - min) / range) ** gamma;
    pixels[i] = value * contrast + brightness;
  }
}

/** Separable Gaussian blur with edge clamping, in place. */
export function gaussianBlur(pixels: Float32Array, size: number, sigma: number): void {
  const radius = Math.max(1, Math.ceil(3 * sigma));
  const taps = new Float32Array(2 * radius + 1);
  let total = 0;
  for (let k = -radius; k <= radius; k++) {
    const weight = Math.exp(-(k * k) / (2 * sigma * sigma));
    taps[k + radius] = weight;
    total += weight;
  }
  for (let k = 0; k < taps.length; k++) taps[k] = (taps[k] ?? 0) / total;
  const scratch = new Float32Array(pixels.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const xx = Math.min(size - 1, Math.max(0, x + k));
        sum += (taps[k + radius] ?? 0) * (pixels[y * size + xx] ?? 0);
      }
      scratch[y * size + x] = sum;
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      for (let k = -radius; k <= radius; k++) {
        const yy = Math.min(size - 1, Math.max(0, y + k));
        sum += (taps[k + radius] ?? 0) * (scratch[yy * size + x] ?? 0);
      }
      pixels[y * size + x] = sum;
    }
  }
}

/**
 * A random patch mask for masked-image modelling: 1 where the `patch x patch` square is hidden,
 * exactly `round(ratio * patches)` patches, written into `out` (`size * size`, row-major).
 */
export function patchMask(
  size: number,
  patch: number,
  ratio: number,
  rng: Rng,
  out: Float32Array,
): Float32Array {
  const perSide = Math.floor(size / patch);
  const patches = perSide * perSide;
  const hidden = Math.min(patches, Math.max(1, Math.round(ratio * patches)));
  const order = Array.from({ length: patches }, (_, index) => index);
  for (let i = patches - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [order[i], order[j]] = [order[j] ?? j, order[i] ?? i];
  }
  out.fill(0);
  for (const index of order.slice(0, hidden)) {
    const py = Math.floor(index / perSide) * patch;
    const px = (index % perSide) * patch;
    for (let y = py; y < py + patch; y++) out.fill(1, y * size + px, y * size + px + patch);
  }
  return out;
}
