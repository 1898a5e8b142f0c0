// A verifier worker thread (see update-decoder.ts): turns an exported update's base64 into its bytes
// and their SHA-256, or hashes bytes, off the thread that reads the export. Plain JavaScript, so it
// needs no TypeScript loader.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const view = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

parentPort.on('message', ({ id, base64, bytes }) => {
  if (bytes) {
    parentPort.postMessage({ id, sha256: createHash('sha256').update(view(bytes)).digest('hex') });
    return;
  }
  const data = Buffer.from(typeof base64 === 'string' ? base64 : view(base64).toString('latin1'), 'base64');
  const sha256 = createHash('sha256').update(data).digest('hex');
  // The decoded bytes move back rather than being copied when they own their ArrayBuffer (large
  // Buffers do); a pooled small one is copied.
  const owned = data.byteOffset === 0 && data.buffer.byteLength === data.byteLength;
  parentPort.postMessage(
    { id, bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), sha256 },
    owned ? [data.buffer] : [],
  );
});
