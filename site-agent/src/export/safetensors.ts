/**
 * A safetensors writer (https://github.com/huggingface/safetensors, format section): an 8-byte
 * little-endian header length, a JSON header (`dtype`, `shape`, `data_offsets` per tensor, and
 * string `__metadata__`), padded with spaces to 8 bytes, then the little-endian tensor bytes. No
 * maintained npm package writes it; the format is small enough to write here.
 */

/** One tensor to write: float32 values or int64 scalars (PyTorch's `num_batches_tracked`). */
export interface NamedTensor {
  name: string;
  dtype: 'F32' | 'I64';
  shape: number[];
  data: Float32Array | BigInt64Array;
}

/** The file's bytes; tensors are laid out sorted by name, as the reference writer does. */
export function encodeSafetensors(
  tensors: readonly NamedTensor[],
  metadata: Record<string, string> = {},
): Buffer {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = Object.keys(metadata).length > 0 ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const tensor of sorted) {
    const end = offset + tensor.data.byteLength;
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of sorted) {
    // Typed arrays are in the platform's byte order; every platform Node supports is little-endian.
    Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength).copy(out, at);
    at += tensor.data.byteLength;
  }
  return out;
}

/** Reads a safetensors file back (tests and the round trip check). */
export function decodeSafetensors(bytes: Buffer): {
  tensors: NamedTensor[];
  metadata: Record<string, string>;
} {
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, unknown>;
  const base = 8 + length;
  const tensors: NamedTensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = value as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = value as {
      dtype: 'F32' | 'I64';
      shape: number[];
      data_offsets: [number, number];
    };
    const slice = bytes.subarray(base + data_offsets[0], base + data_offsets[1]);
    const copy = new Uint8Array(slice).buffer;
    tensors.push({
      name,
      dtype,
      shape,
      data: dtype === 'F32' ? new Float32Array(copy) : new BigInt64Array(copy),
    });
  }
  return { tensors, metadata };
}
