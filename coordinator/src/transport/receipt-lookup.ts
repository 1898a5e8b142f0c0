/**
 * GetReceipt: re-issues a site's receipt from the ledger. A coordinator that dies after committing
 * an accepted update but before answering the upload leaves the site without its receipt; the
 * ledger entry holds everything the receipt says (index, time, the coordinator's signature), so the
 * site can ask again later, even after the round has sealed.
 *
 * Security: a site reads only its own receipts; the caller's certificate picks the site and the
 * federation, the request only names the round.
 */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import type * as pb from '@radfed/proto';
import type { Logger } from '@radfed/shared';
import { InvalidRequestError, ReceiptNotFoundError } from '../errors.js';
import type { UpdateAcceptedPayload } from '../ledger/kinds.js';
import type { Db } from '../store/client.js';
import * as ledgerQ from '../store/queries/ledger.js';
import type { Authenticator, Caller } from './auth.js';
import { receiptToProto } from './convert.js';
import { unary } from './handlers.js';

export function getReceiptHandler(d: { db: Db; auth: Authenticator; log: Logger }) {
  return unary(
    d.log,
    'GetReceipt',
    async (
      call: ServerUnaryCall<pb.GetReceiptRequest, pb.GetReceiptResponse>,
    ): Promise<pb.GetReceiptResponse> => {
      const { site } = (await d.auth.require(call, ['site'])) as Extract<Caller, { role: 'site' }>;
      const roundId = call.request.roundId;
      if (!roundId) throw new InvalidRequestError('GetReceipt needs the round id of the update.');
      const row = await ledgerQ.findUpdateAccepted(d.db, site.federationId, roundId, site.id);
      if (!row) throw new ReceiptNotFoundError(roundId);
      const payload = JSON.parse(row.payload) as UpdateAcceptedPayload;
      return {
        receipt: receiptToProto(
          {
            roundId,
            siteId: site.id,
            updateDigest: Buffer.from(payload.updateDigest, 'hex'),
            duplicate: true,
          },
          { ledgerIndex: row.index, acceptedAt: row.createdAt, signature: payload.receiptSignature },
          row.createdAt,
        ),
      };
    },
  );
}
