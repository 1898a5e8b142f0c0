/**
 * A decoded image stack in source resolution: one slice for a 2D image, frames for multi-frame
 * DICOM, slices along the last spatial axis for NIfTI. Slices are produced on demand so a long
 * stack is never held as floats all at once.
 */
export interface Volume {
  /** Columns per slice. */
  width: number;
  /** Rows per slice. */
  height: number;
  /** Number of slices. */
  depth: number;
  /** Modality from the file's metadata (DICOM 0008,0060), when it has one. */
  modality?: string;
  /** Row-major grayscale intensities of one slice, `width * height` long, in the file's units. */
  slice(index: number): Float32Array;
}

/**
 * Resamples a row-major image to `dstWidth x dstHeight` by area averaging: each output pixel is the
 * mean of the source area it covers, with fractional weights at its edges. Downsampling this way
 * does not alias; upsampling degrades gracefully to nearest neighbour. Aspect ratio is not kept.
 */
export function resizeArea(
  src: Float32Array,
  srcWidth: number,
  srcHeight: number,
  dstWidth: number,
  dstHeight: number,
): Float32Array {
  const columns = areaWeights(srcWidth, dstWidth);
  const rows = areaWeights(srcHeight, dstHeight);
  // Separable: resample each source row horizontally, then combine rows vertically.
  const horizontal = new Float64Array(srcHeight * dstWidth);
  for (let y = 0; y < srcHeight; y++) {
    for (let x = 0; x < dstWidth; x++) {
      let sum = 0;
      for (const [sx, weight] of columns[x] ?? []) sum += (src[y * srcWidth + sx] ?? 0) * weight;
      horizontal[y * dstWidth + x] = sum;
    }
  }
  const dst = new Float32Array(dstWidth * dstHeight);
  for (let y = 0; y < dstHeight; y++) {
    for (let x = 0; x < dstWidth; x++) {
      let sum = 0;
      for (const [sy, weight] of rows[y] ?? []) sum += (horizontal[sy * dstWidth + x] ?? 0) * weight;
      dst[y * dstWidth + x] = sum;
    }
  }
  return dst;
}

/** For each output index, the source indices it covers and their weights (summing to 1). */
function areaWeights(srcLength: number, dstLength: number): [number, number][][] {
  const scale = srcLength / dstLength;
  const weights: [number, number][][] = [];
  for (let d = 0; d < dstLength; d++) {
    const start = d * scale;
    const end = start + scale;
    const taps: [number, number][] = [];
    for (let s = Math.floor(start); s < Math.min(Math.ceil(end), srcLength); s++) {
      const overlap = Math.min(end, s + 1) - Math.max(start, s);
      if (overlap > 0) taps.push([s, overlap / scale]);
    }
    weights.push(taps);
  }
  return weights;
}

/**
 * Replaces NaN and infinities (NIfTI masks often use NaN for "outside") with the slice's smallest
 * finite value, so they read as background instead of poisoning the mean. In place.
 */
export function replaceNonFinite(pixels: Float32Array): Float32Array {
  let min = Number.POSITIVE_INFINITY;
  let found = false;
  for (const value of pixels) {
    if (Number.isFinite(value)) {
      if (value < min) min = value;
    } else {
      found = true;
    }
  }
  if (!found) return pixels;
  const fill = Number.isFinite(min) ? min : 0;
  for (let i = 0; i < pixels.length; i++) {
    if (!Number.isFinite(pixels[i])) pixels[i] = fill;
  }
  return pixels;
}

/**
 * True when a slice has something to learn from: at least 1% of its pixels rise more than 5% of
 * its intensity range above its minimum. Blank slices, constant padding and a lone hot pixel fail.
 */
export function hasContent(pixels: Float32Array): boolean {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const value of pixels) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  const range = max - min;
  if (!(range > 0) || !Number.isFinite(range)) return false;
  const threshold = min + 0.05 * range;
  let above = 0;
  for (const value of pixels) if (value > threshold) above++;
  return above >= Math.max(1, 0.01 * pixels.length);
}

/**
 * Per-image intensity standardisation to zero mean and unit variance (population). It removes
 * scanner- and site-specific intensity scales, and makes DICOM rescale slope/intercept irrelevant.
 * The caller ensures the image is not constant ({@link hasContent}). In place.
 */
export function standardise(pixels: Float32Array): Float32Array {
  let sum = 0;
  for (const value of pixels) sum += value;
  const mean = sum / pixels.length;
  let squares = 0;
  for (const value of pixels) squares += (value - mean) ** 2;
  const std = Math.sqrt(squares / pixels.length);
  const scale = std > 0 ? 1 / std : 0;
  for (let i = 0; i < pixels.length; i++) pixels[i] = ((pixels[i] ?? 0) - mean) * scale;
  return pixels;
}

/** Slice indices ordered by distance from the stack's centre, the lower index first on ties. */
export function centreOutOrder(depth: number): number[] {
  const centre = (depth - 1) / 2;
  return Array.from({ length: depth }, (_, index) => index).sort(
    (a, b) => Math.abs(a - centre) - Math.abs(b - centre) || a - b,
  );
}
