// A verifier worker thread (see update-decoder.ts): turns an exported update's base64 into its bytes
// and their SHA-256, or hashes bytes, off the thread that reads the export. Plain JavaScript, so it
// needs no TypeScript loader.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const view = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort.on('message', ({ id, base64, into, bytes }) => {
  if (bytes) {
    parentPort.postMessage({ id, sha256: createHash('sha256').update(view(bytes)).digest('hex') });
    return;
  }
  // Decoded into the buffer the caller lent (reused from update to update), and moved back.
  const text = typeof base64 === 'string' ? base64 : view(base64).toString('latin1');
  const out = Buffer.from(into);
  const length = out.write(text, 0, out.length, 'base64');
  const sha256 = createHash('sha256').update(out.subarray(0, length)).digest('hex');
  parentPort.postMessage({ id, bytes: new Uint8Array(into, 0, length), sha256 }, [into]);
});
