import { builtinModelSpec } from '@radfed/shared';
import * as tf from '@tensorflow/tfjs';
import { encoderLayersModel } from './src/export/tfjs-model.js';
import { ConvComputer } from './src/training/conv-model.js';
import { selectBackend } from './src/training/index.js';
import { initialWeights } from './src/training/model.js';

await selectBackend();
for (const arch of ['conv4', 'resnet18']) {
  const size = 32;
  const spec = builtinModelSpec(arch, { inputSize: size });
  const w = initialWeights(spec);
  for (let i = 0; i < w.length; i++) if (i % 7 === 0) w[i] = (w[i] as number) + 0.01 * Math.sin(i);
  const data = new Float32Array(2 * size * size).map((_, i) => Math.sin(i * 0.01));
  const c = new ConvComputer(spec, { data, count: 2, size }, 1);
  const a = c.embed(w, [0, 1]);
  const m = encoderLayersModel(spec, w);
  const b = (m.predict(tf.tensor4d(data, [2, size, size, 1])) as tf.Tensor).dataSync();
  let err = 0,
    sc = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    sc = Math.max(sc, Math.abs(a[i]!));
  }
  console.log(arch, a.length, b.length, err, sc);
}
