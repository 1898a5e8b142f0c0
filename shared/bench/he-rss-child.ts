/**
 * One coordinator-side aggregation run for `pnpm bench:he`, in its own process so its peak RSS is
 * its own: fold `--sites` updates into a running sum the way the round engine does, then print the
 * peak RSS as JSON. Encrypted: each update is staged into blob files in 4 MiB appends (as
 * uploads arrive), hashed in chunks, folded with the running sum from blobs into a new sum blob
 * (`foldStream` into `putStream`) and moved into the round, as SiteService and the engine do.
 * Plaintext float32 (the baseline): whole files read, added and written back. Updates are read from
 * `update-<i>.bin` in `--dir`, reused round-robin with each site's seeds made distinct (RSS depends
 * on sizes only; the fold refuses a ciphertext already in the sum).
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CiphertextSum,
  FRAME_HEADER_BYTES,
  type HePreset,
  readFrameHeader,
  updateFrameBytes,
  updateLayout,
} from '../src/index.js';
import { BenchBlobs } from './bench-blobs.js';

const { values } = parseArgs({
  options: {
    preset: { type: 'string' },
    params: { type: 'string' },
    sites: { type: 'string' },
    dir: { type: 'string' },
  },
});
const dir = values.dir!;
const sites = Number(values.sites);
const parameterCount = Number(values.params);
const updates = readdirSync(dir).filter((f) => /^update-\d+\.bin$/.test(f));
const sumPath = join(dir, `sum-${process.pid}.bin`);
const started = performance.now();

if (values.preset === 'plaintext-f32') {
  for (let i = 0; i < sites; i++) {
    const update = new Float32Array(readFileSync(join(dir, updates[i % updates.length]!)).buffer.slice(0));
    if (existsSync(sumPath)) {
      const sum = new Float32Array(readFileSync(sumPath).buffer.slice(0));
      for (let j = 0; j < sum.length; j++) sum[j] = sum[j]! + update[j]!;
      writeFileSync(sumPath, new Uint8Array(sum.buffer));
    } else writeFileSync(sumPath, new Uint8Array(update.buffer));
  }
} else {
  const preset = JSON.parse(values.preset!) as HePreset;
  const sums = new CiphertextSum();
  const blobs = new BenchBlobs(join(dir, `blobs-${process.pid}`));
  const frame = updateFrameBytes(preset);
  const { seedAt } = updateLayout(preset);
  const chunk = new Uint8Array(64 * frame);
  const source = (key: string, bytes: number) => ({
    bytes,
    readAt: (offset: number, into: Uint8Array) => blobs.readInto(key, offset, into),
  });
  let sumKey: string | undefined;
  for (let i = 0; i < sites; i++) {
    // Staged as an upload arrives: appended chunk by chunk, this site's seeds made distinct.
    const path = join(dir, updates[i % updates.length]!);
    const bytes = statSync(path).size;
    const fd = openSync(path, 'r');
    let first: Uint8Array | undefined;
    for (let at = 0; at < bytes; at += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - at));
      readSync(fd, part, 0, part.length, at);
      if (seedAt >= 0)
        for (let f = FRAME_HEADER_BYTES + seedAt; f < part.length; f += frame) part[f] = i & 0xff;
      first ??= part.slice(0, FRAME_HEADER_BYTES);
      await blobs.append('staging/u', part);
    }
    closeSync(fd);
    const hash = createHash('sha256');
    for (let at = 0; at < bytes; at += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - at));
      await blobs.readInto('staging/u', at, part);
      hash.update(part);
    }
    hash.digest();
    const next = `rounds/r/sum-${i + 1}`;
    const sum = sumKey ? source(sumKey, (await blobs.size(sumKey))!) : undefined;
    await blobs.putStream(next, (write) =>
      sums.foldStream(
        preset,
        readFrameHeader(first!, 0).keyId,
        sum,
        source('staging/u', bytes),
        parameterCount,
        write,
      ),
    );
    await blobs.move('staging/u', `rounds/r/updates/${i}`);
    await blobs.delete(`rounds/r/updates/${i}`); // kept by the engine; dropped here to spare the disk
    if (sumKey) await blobs.delete(sumKey);
    sumKey = next;
  }
  await sums.close();
  rmSync(join(dir, `blobs-${process.pid}`), { recursive: true, force: true });
}
rmSync(sumPath, { force: true });
process.stdout.write(
  `${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, seconds: (performance.now() - started) / 1000 })}\n`,
);
