import type { LedgerEntryRecord } from '@radfed/shared';
import type { LedgerEntryKind, LedgerPayloads } from '../ledger/kinds.js';

/** A W3C PROV-JSON document (https://www.w3.org/submissions/prov-json/). */
export interface ProvDocument {
  prefix: Record<string, string>;
  entity: Record<string, Record<string, unknown>>;
  activity: Record<string, Record<string, unknown>>;
  agent: Record<string, Record<string, unknown>>;
  used: Record<string, Record<string, unknown>>;
  wasGeneratedBy: Record<string, Record<string, unknown>>;
  wasAssociatedWith: Record<string, Record<string, unknown>>;
  wasAttributedTo: Record<string, Record<string, unknown>>;
  wasDerivedFrom: Record<string, Record<string, unknown>>;
  wasInformedBy: Record<string, Record<string, unknown>>;
}

/**
 * The federation's lineage as W3C PROV-JSON, built from its ledger entries alone: model versions,
 * site updates and dataset commitments are entities; rounds (and each site's local training in a
 * round) are activities; sites and the coordinator are agents. Every entity and activity carries the
 * ledger index that records it, so lineage tools can point back at the signed entry.
 *
 * This is a view for lineage tools, not a proof: `radfed audit verify` checks the ledger it is made of.
 */
export function provDocument(
  federation: { id: string; name: string },
  entries: LedgerEntryRecord[],
): ProvDocument {
  const doc: ProvDocument = {
    prefix: {
      radfed: 'https://radfed.dev/ns/provenance#',
      fed: `urn:radfed:federation:${federation.id}:`,
      dataset: 'urn:radfed:dataset:sha256:',
    },
    entity: {},
    activity: {},
    agent: {},
    used: {},
    wasGeneratedBy: {},
    wasAssociatedWith: {},
    wasAttributedTo: {},
    wasDerivedFrom: {},
    wasInformedBy: {},
  };
  let n = 0;
  const relation = (
    kind: Exclude<keyof ProvDocument, 'prefix' | 'entity' | 'activity' | 'agent'>,
    body: object,
  ) => {
    n++;
    doc[kind][`_:${kind}${n}`] = body as Record<string, unknown>;
  };
  const coordinator = 'fed:coordinator';
  const model = (v: number) => `fed:model/v${v}`;
  const round = (number: number) => `fed:round/${number}`;
  const site = (id: string) => `fed:site/${id}`;

  for (const entry of entries) {
    const kind = entry.kind as LedgerEntryKind;
    const at = entry.createdAt;
    const p = parsed(entry.payload);
    // A lineage view, not a proof: an entry it cannot read is left out (verify names it).
    if (!p) continue;
    switch (kind) {
      case 'federation.created': {
        const c = p as LedgerPayloads['federation.created'];
        doc.agent[coordinator] = {
          'prov:type': 'prov:SoftwareAgent',
          'prov:label': 'RadFed coordinator',
          'radfed:signingKey': c.coordinatorSigningKey,
        };
        doc.entity['fed:spec'] = {
          'prov:type': 'radfed:FederationSpec',
          'prov:label': `federation ${c.name}`,
          'radfed:specHash': c.specHash,
          'radfed:hePreset': c.hePreset,
          'radfed:hePresetHash': c.hePresetHash,
          'radfed:parameterCount': c.parameterCount,
          'radfed:ledgerIndex': entry.index,
        };
        doc.entity[model(0)] = {
          'prov:type': 'radfed:ModelVersion',
          'prov:label': 'model version 0 (built from the spec seed)',
          'radfed:version': 0,
          'prov:generatedAtTime': at,
        };
        relation('wasDerivedFrom', { 'prov:generatedEntity': model(0), 'prov:usedEntity': 'fed:spec' });
        relation('wasAttributedTo', { 'prov:entity': 'fed:spec', 'prov:agent': coordinator });
        break;
      }
      case 'site.enrolled': {
        const s = p as LedgerPayloads['site.enrolled'];
        doc.agent[site(s.siteId)] = {
          'prov:type': 'prov:Organization',
          'prov:label': s.siteName,
          'radfed:signingKey': s.signingPublicKey,
          'radfed:certificateFingerprint': s.certificateFingerprint,
          'radfed:enrolledAt': at,
        };
        break;
      }
      case 'site.revoked': {
        const s = p as LedgerPayloads['site.revoked'];
        const agent = doc.agent[site(s.siteId)];
        if (agent) Object.assign(agent, { 'radfed:revokedAt': at, 'radfed:revokedReason': s.reason });
        break;
      }
      case 'round.opened': {
        const r = p as LedgerPayloads['round.opened'];
        doc.activity[round(r.number)] = {
          'prov:type': 'radfed:Round',
          'prov:label': `round ${r.number}`,
          'prov:startTime': at,
          'radfed:roundId': r.roundId,
          'radfed:invitedSites': r.invitedSiteIds.length,
          'radfed:ledgerIndex': entry.index,
        };
        relation('wasAssociatedWith', { 'prov:activity': round(r.number), 'prov:agent': coordinator });
        relation('used', {
          'prov:activity': round(r.number),
          'prov:entity': model(r.modelVersion),
          'prov:time': at,
        });
        break;
      }
      case 'update.accepted': {
        const u = p as LedgerPayloads['update.accepted'];
        const training = `fed:training/${u.roundNumber}/${u.siteId}`;
        const update = `fed:update/${u.roundNumber}/${u.siteId}`;
        const dataset = `dataset:${u.datasetCommitment}`;
        doc.entity[dataset] ??= {
          'prov:type': 'radfed:DatasetCommitment',
          'radfed:merkleRoot': u.datasetCommitment,
        };
        doc.activity[training] = { 'prov:type': 'radfed:LocalTraining', 'prov:endTime': at };
        doc.entity[update] = {
          'prov:type': 'radfed:Update',
          'radfed:digest': u.updateDigest,
          'radfed:encoding': u.encoding,
          'radfed:sampleCount': u.sampleCount,
          'radfed:metrics': JSON.stringify(u.metrics),
          'radfed:siteSignature': u.siteSignature,
          'radfed:ledgerIndex': entry.index,
          'prov:generatedAtTime': at,
        };
        relation('wasAssociatedWith', { 'prov:activity': training, 'prov:agent': site(u.siteId) });
        relation('used', { 'prov:activity': training, 'prov:entity': model(u.modelVersion) });
        relation('used', { 'prov:activity': training, 'prov:entity': dataset });
        relation('wasGeneratedBy', { 'prov:entity': update, 'prov:activity': training, 'prov:time': at });
        relation('wasAttributedTo', { 'prov:entity': update, 'prov:agent': site(u.siteId) });
        relation('wasDerivedFrom', { 'prov:generatedEntity': update, 'prov:usedEntity': dataset });
        relation('wasInformedBy', { 'prov:informed': round(u.roundNumber), 'prov:informant': training });
        relation('used', { 'prov:activity': round(u.roundNumber), 'prov:entity': update, 'prov:time': at });
        break;
      }
      case 'round.sealed': {
        const s = p as LedgerPayloads['round.sealed'];
        const next = model(s.resultModelVersion);
        Object.assign(doc.activity[round(s.number)] ?? {}, { 'prov:endTime': at, 'radfed:state': 'sealed' });
        doc.entity[next] = {
          'prov:type': 'radfed:ModelVersion',
          'prov:label': `model version ${s.resultModelVersion}`,
          'radfed:version': s.resultModelVersion,
          'radfed:aggregateDigest': s.aggregateDigest,
          'radfed:updatesMerkleRoot': s.updatesMerkleRoot,
          'radfed:totalSamples': s.totalSamples,
          'radfed:ledgerIndex': entry.index,
          'prov:generatedAtTime': at,
        };
        relation('wasGeneratedBy', {
          'prov:entity': next,
          'prov:activity': round(s.number),
          'prov:time': at,
        });
        relation('wasDerivedFrom', {
          'prov:generatedEntity': next,
          'prov:usedEntity': model(s.modelVersion),
        });
        for (const siteId of s.includedSiteIds) {
          relation('wasDerivedFrom', {
            'prov:generatedEntity': next,
            'prov:usedEntity': `fed:update/${s.number}/${siteId}`,
          });
        }
        relation('wasAttributedTo', { 'prov:entity': next, 'prov:agent': coordinator });
        break;
      }
      case 'round.failed':
      case 'round.cancelled': {
        const c = p as LedgerPayloads['round.failed'];
        const state = kind === 'round.failed' ? 'failed' : 'cancelled';
        doc.activity[round(c.number)] ??= { 'prov:type': 'radfed:Round', 'prov:label': `round ${c.number}` };
        Object.assign(doc.activity[round(c.number)]!, {
          'prov:endTime': at,
          'radfed:state': state,
          'radfed:reason': c.reason,
        });
        break;
      }
      case 'key_bundle.published': {
        const k = p as LedgerPayloads['key_bundle.published'];
        doc.entity['fed:he-public-parameters'] = {
          'prov:type': 'radfed:HePublicParameters',
          'radfed:digest': k.publicParametersDigest,
          'radfed:presetHash': k.presetHash,
          'radfed:ledgerIndex': entry.index,
        };
        relation('wasAttributedTo', {
          'prov:entity': 'fed:he-public-parameters',
          'prov:agent': site(k.custodianSiteId),
        });
        break;
      }
      case 'round.updates_pruned': {
        const r = p as LedgerPayloads['round.updates_pruned'];
        for (const siteId of r.siteIds) {
          const update = doc.entity[`fed:update/${r.number}/${siteId}`];
          if (update) Object.assign(update, { 'radfed:storedBytesDeletedAt': at });
        }
        break;
      }
    }
  }
  return doc;
}

function parsed(payload: string): LedgerPayloads[LedgerEntryKind] | undefined {
  try {
    return JSON.parse(payload) as LedgerPayloads[LedgerEntryKind];
  } catch {
    return undefined;
  }
}
