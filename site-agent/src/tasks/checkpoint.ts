/**
 * Per-round checkpoints: the weights a site trained, kept before upload so a crash between
 * training and upload re-sends the same update instead of retraining (and the coordinator counts
 * it once), and the site's local (non-shared) tensors carry over to the next round.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite } from '../state/agent-state.js';

export interface Checkpoint {
  roundId: string;
  modelVersion: number;
  weights: Float32Array;
  sampleCount: number;
  metrics: Record<string, number>;
  /** The dataset the weights were trained on (hex commitment); absent in checkpoints of older agents. */
  datasetCommitment?: string;
  uploaded: boolean;
}

export class CheckpointStore {
  constructor(private readonly dir: string) {}

  async save(cp: Checkpoint): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await atomicWrite(
      join(this.dir, 'latest.bin'),
      new Uint8Array(cp.weights.buffer, cp.weights.byteOffset, cp.weights.byteLength),
      0o600,
    );
    const { weights: _w, ...meta } = cp;
    await atomicWrite(join(this.dir, 'latest.json'), JSON.stringify(meta), 0o600);
  }

  async latest(): Promise<Checkpoint | undefined> {
    const meta = join(this.dir, 'latest.json');
    if (!existsSync(meta)) return undefined;
    const info = JSON.parse(await readFile(meta, 'utf8')) as Omit<Checkpoint, 'weights'>;
    const bytes = await readFile(join(this.dir, 'latest.bin'));
    return {
      ...info,
      weights: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)),
    };
  }
}
