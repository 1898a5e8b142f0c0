import { createHash } from 'node:crypto';

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);
const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** Lower-case hex SHA-256 of the bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Commitment to a dataset: the Merkle root, in hex, over the SHA-256 content hashes of its files,
 * sorted so that file names and walk order do not matter. It lets a site later prove which files it
 * trained on (by revealing hashes and a path) without disclosing anything now.
 *
 * Construction (RFC 6962 style, so a leaf can never pass for an inner node): leaf =
 * SHA-256(0x00 || content hash), node = SHA-256(0x01 || left || right); an odd node at the end of a
 * level moves up unchanged rather than being paired with itself. Identical files stay as separate
 * leaves. The empty dataset commits to SHA-256 of no bytes.
 *
 * @param contentHashes hex SHA-256 of each accepted file's bytes, in any order.
 * @throws RangeError when an entry is not 64 hex digits.
 */
export function datasetCommitment(contentHashes: readonly string[]): string {
  if (contentHashes.length === 0) return sha256Hex(new Uint8Array(0));
  for (const hash of contentHashes) {
    if (!SHA256_HEX.test(hash)) throw new RangeError(`not a hex SHA-256 digest: "${hash}"`);
  }
  let level = [...contentHashes]
    .map((hash) => hash.toLowerCase())
    .sort()
    .map((hash) => digest(LEAF_PREFIX, Buffer.from(hash, 'hex')));
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i];
      const right = level[i + 1];
      if (left === undefined) continue;
      next.push(right === undefined ? left : digest(NODE_PREFIX, left, right));
    }
    level = next;
  }
  return (level[0] ?? Buffer.alloc(0)).toString('hex');
}

function digest(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}
