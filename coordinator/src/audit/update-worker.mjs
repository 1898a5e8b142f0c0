// A verifier worker thread (see update-decoder.ts): turns an exported update's base64 into its bytes
// and their SHA-256, or hashes bytes, off the thread that reads the export. Plain JavaScript, so it
// needs no TypeScript loader.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const view = (u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** The shared base64 buffers the verifier lent, by id: each is sent once (again when it grows). */
const lent = new Map();

parentPort.on('message', ({ id, bytes, buffers, text, out, textStart, textBytes, base64 }) => {
  if (bytes) {
    parentPort.postMessage({ id, sha256: createHash('sha256').update(view(bytes)).digest('hex') });
    return;
  }
  if (text) lent.set(buffers, Buffer.from(text));
  // Base64 in a string when the reader gave one, else in the shared text buffer; decoded into the
  // buffer lent (`out`, reused from update to update), which is moved back.
  const source = base64 ?? lent.get(buffers).toString('latin1', textStart, textStart + textBytes);
  const into = Buffer.from(out);
  const length = into.write(source, 0, into.length, 'base64');
  const sha256 = createHash('sha256').update(into.subarray(0, length)).digest('hex');
  parentPort.postMessage({ id, out, length, sha256 }, [out]);
});
