/**
 * Mid-round training state on disk, so an agent restarted in the middle of local training resumes
 * after the last finished epoch instead of starting the round over, and ends with the same weights
 * it would have had (the optimiser state is kept and every random draw derives from the seed and
 * epoch). One state at a time, tagged with the round it belongs to; a file from another round is
 * ignored. Written atomically, readable only by the agent's user (it holds model weights).
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../state/agent-state.js';
import type { TrainerCheckpoint } from './trainer.js';

interface Header {
  key: string;
  epoch: number;
  step: number;
  lengths: [number, number, number];
}

export class ResumeStore {
  constructor(private readonly dir: string) {}

  /** The state saved for `key` (e.g. round id and model version), if the last save was for it. */
  async load(key: string): Promise<TrainerCheckpoint | undefined> {
    let header: Header;
    let bytes: Buffer;
    try {
      header = JSON.parse(await readFile(join(this.dir, 'training.json'), 'utf8')) as Header;
      bytes = await readFile(join(this.dir, 'training.bin'));
    } catch {
      return undefined;
    }
    const [w, m, v] = header.lengths;
    if (header.key !== key || bytes.byteLength !== (w + m + v) * 4) return undefined;
    const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return {
      epoch: header.epoch,
      weights: all.slice(0, w),
      optimizer: { step: header.step, m: all.slice(w, w + m), v: all.slice(w + m) },
    };
  }

  async save(key: string, checkpoint: TrainerCheckpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const { weights, optimizer } = checkpoint;
    const all = new Float32Array(weights.length + optimizer.m.length + optimizer.v.length);
    all.set(weights, 0);
    all.set(optimizer.m, weights.length);
    all.set(optimizer.v, weights.length + optimizer.m.length);
    // Data first, header last: a header always describes a complete data file.
    await atomicWrite(join(this.dir, 'training.bin'), new Uint8Array(all.buffer), 0o600);
    const header: Header = {
      key,
      epoch: checkpoint.epoch,
      step: optimizer.step,
      lengths: [weights.length, optimizer.m.length, optimizer.v.length],
    };
    await atomicWrite(join(this.dir, 'training.json'), JSON.stringify(header), 0o600);
  }

  /** Forgets the saved state (the round's training finished). */
  async clear(): Promise<void> {
    await rm(join(this.dir, 'training.json'), { force: true });
    await rm(join(this.dir, 'training.bin'), { force: true });
  }
}
