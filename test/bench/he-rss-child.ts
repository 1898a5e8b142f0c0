/**
 * One coordinator-side aggregation run for `pnpm bench:he`, in its own process so its peak RSS is
 * its own: fold `--sites` updates into a running sum the way the round engine does (read the running
 * sum from disk, fold one update in, write the new sum back), then print the peak RSS as JSON.
 * Updates are read from `update-<i>.bin` in `--dir`, reused round-robin with each site's seeds made
 * distinct (RSS depends on sizes only; the fold refuses a ciphertext already in the sum).
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CiphertextSum,
  FRAME_HEADER_BYTES,
  type HePreset,
  updateFrameBytes,
  updateLayout,
} from '@radfed/shared';

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
  for (let i = 0; i < sites; i++) {
    const update = readFileSync(join(dir, updates[i % updates.length]!));
    const { seedAt } = updateLayout(preset);
    const frame = updateFrameBytes(preset);
    if (seedAt >= 0)
      for (let at = FRAME_HEADER_BYTES + seedAt; at < update.length; at += frame) update[at] = i & 0xff;
    const sum = existsSync(sumPath) ? readFileSync(sumPath) : undefined;
    writeFileSync(sumPath, await sums.fold(preset, sum, update, parameterCount));
  }
  await sums.close();
}
rmSync(sumPath, { force: true });
process.stdout.write(
  `${JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024, seconds: (performance.now() - started) / 1000 })}\n`,
);
