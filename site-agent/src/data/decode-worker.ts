/**
 * The decoder thread: runs {@link decodeFile} on bytes sent by the {@link DecodeSandbox} and sends
 * back the images or the reason there are none. Codec failures of any kind become reasons.
 */
import { parentPort } from 'node:worker_threads';
import { DecodeError } from '../errors.js';
import { decodeFile } from './decode.js';
import type { DecodeRequest, DecodeResponse } from './decode-sandbox.js';
import { describeThrown } from './reasons.js';

const port = parentPort;
if (port === null) throw new Error('decode-worker must run in a worker thread');

port.on('message', (request: DecodeRequest) => {
  let response: DecodeResponse;
  try {
    const decoded = decodeFile(request.bytes, request.path, request.options);
    response = { id: request.id, decoded };
  } catch (thrown) {
    const reason =
      thrown instanceof DecodeError ? thrown.message : `decoder failed: ${describeThrown(thrown)}`;
    response = { id: request.id, reason };
  }
  const transfer =
    'decoded' in response ? response.decoded.images.map((image) => image.buffer as ArrayBuffer) : [];
  port.postMessage(response, transfer);
});
port.postMessage({ id: -1, reason: 'ready' } satisfies DecodeResponse);
