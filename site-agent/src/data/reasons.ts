/** A readable one-line description of anything thrown, including non-Error throws from codecs. */
export function describeThrown(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message || thrown.name;
  if (thrown === undefined || thrown === null) return 'no message';
  return String(thrown);
}

/** A byte count in bytes, KiB or MiB (one decimal at most), for reasons a person reads. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const [value, unit] = bytes < 2 ** 20 ? [bytes / 1024, 'KiB'] : [bytes / 2 ** 20, 'MiB'];
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
}
