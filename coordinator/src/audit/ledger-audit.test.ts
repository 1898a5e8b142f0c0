import {
  builtinModelSpec,
  canonicalJson,
  GENESIS_DIGEST,
  generateSigningKeyPair,
  type LedgerEntryRecord,
  ledgerEntryDigest,
  merkleRoot,
  sha256Hex,
  sharedParameterCount,
  signLedgerDigest,
  signReceipt,
  signUpdate,
} from '@radfed/shared';
import { describe, expect, it } from 'vitest';
import { hePresetHash } from '../ledger/he-preset.js';
import type { LedgerEntryKind, LedgerPayloads } from '../ledger/kinds.js';
import { EntrySequence } from './entry-sequence.js';
import { LedgerAudit } from './ledger-audit.js';
import { provDocument } from './prov.js';

const coordinator = generateSigningKeyPair();
const sites = { a: generateSigningKeyPair(), b: generateSigningKeyPair(), c: generateSigningKeyPair() };
type SiteName = keyof typeof sites;

/** Builds a signed chain the way the coordinator's Ledger does, without a database. */
class Chain {
  readonly entries: LedgerEntryRecord[] = [];

  add<K extends LedgerEntryKind>(
    kind: K,
    payload: LedgerPayloads[K] | ((slot: { index: number; at: string }) => LedgerPayloads[K]),
  ): this {
    const index = this.entries.length;
    const at = new Date(Date.UTC(2026, 0, 1, 0, 0, index)).toISOString();
    const facts = typeof payload === 'function' ? payload({ index, at }) : payload;
    const unsigned = {
      federationId: 'fd_1',
      index,
      kind,
      payload: canonicalJson(facts),
      previousDigest: this.entries.at(-1)?.digest ?? GENESIS_DIGEST,
      createdAt: at,
    };
    const digest = ledgerEntryDigest(unsigned);
    this.entries.push({
      ...unsigned,
      digest,
      signature: signLedgerDigest(coordinator.privateKeyPem, digest),
    });
    return this;
  }

  created(minSites = 2): this {
    const spec = {
      name: 'f',
      modelSpec: builtinModelSpec(),
      hePreset: 'plaintext',
      minSites,
      roundDeadlineSeconds: 60,
      maxSamplesPerSite: 100,
    };
    return this.add('federation.created', {
      federationId: 'fd_1',
      name: 'f',
      spec,
      specHash: sha256Hex(canonicalJson(spec)),
      hePreset: 'plaintext',
      hePresetHash: hePresetHash('plaintext'),
      parameterCount: sharedParameterCount(builtinModelSpec()),
      updateEncoding: 'plain-f64-weighted',
      coordinatorSigningKey: coordinator.publicKeyRaw.toString('base64'),
      caCertificateFingerprint: 'ee'.repeat(32),
    });
  }

  enrol(site: SiteName): this {
    return this.add('site.enrolled', {
      siteId: site,
      siteName: site,
      certificateFingerprint: 'ff'.repeat(32),
      signingPublicKey: sites[site].publicKeyRaw.toString('base64'),
      keyWrapPublicKey: Buffer.alloc(32).toString('base64'),
      agentVersion: 'test',
    });
  }

  open(round: number, invited: SiteName[], modelVersion = round - 1): this {
    return this.add('round.opened', {
      roundId: `r${round}`,
      number: round,
      modelVersion,
      invitedSiteIds: invited,
      deadlineAt: '2026-01-02T00:00:00.000Z',
    });
  }

  accept(round: number, site: SiteName, samples = 10, signer: SiteName = site): this {
    const facts = {
      roundId: `r${round}`,
      modelVersion: round - 1,
      updateDigest: digestOf(round, site),
      datasetCommitment: '00'.repeat(32),
      metrics: { loss: 1 },
      sampleCount: samples,
    };
    return this.add('update.accepted', ({ index, at }) => ({
      ...facts,
      roundNumber: round,
      siteId: site,
      updateBytes: 8,
      encoding: 'plain-f64-weighted',
      siteSignature: signUpdate(sites[signer].privateKeyPem, facts).toString('base64'),
      receiptSignature: signReceipt(coordinator.privateKeyPem, {
        federationId: 'fd_1',
        roundId: `r${round}`,
        siteId: site,
        updateDigest: facts.updateDigest,
        ledgerIndex: index,
        acceptedAt: at,
      }).toString('base64'),
    }));
  }

  seal(round: number, included: SiteName[], totalSamples = 10 * included.length): this {
    return this.add('round.sealed', {
      roundId: `r${round}`,
      number: round,
      modelVersion: round - 1,
      resultModelVersion: round,
      includedSiteIds: [...included].sort(),
      updatesMerkleRoot: merkleRoot(
        [...included].sort().map((s) => Buffer.from(digestOf(round, s), 'hex')),
      ).toString('hex'),
      aggregateDigest: 'aa'.repeat(32),
      totalSamples,
    });
  }

  audit(): LedgerAudit {
    const audit = new LedgerAudit('fd_1', coordinator.publicKeyRaw);
    for (const e of this.entries) audit.apply(e);
    return audit;
  }
}

function digestOf(round: number, site: string): string {
  return sha256Hex(`${round}/${site}`);
}

const messages = (a: LedgerAudit) => a.findings.map((f) => `#${f.index} ${f.message}`);

describe('ledger audit: the story the entries tell must hold', () => {
  const good = () =>
    new Chain()
      .created()
      .enrol('a')
      .enrol('b')
      .open(1, ['a', 'b'])
      .accept(1, 'a')
      .accept(1, 'b')
      .seal(1, ['a', 'b']);

  it('accepts a well-formed federation history', () => {
    const audit = good()
      .open(2, ['a', 'b'])
      .accept(2, 'a')
      .add('round.failed', {
        roundId: 'r2',
        number: 2,
        reason: 'only 1 of 2',
      })
      .audit();
    expect(messages(audit)).toEqual([]);
    expect(audit.roundList.map((r) => [r.number, r.state, r.accepted.length])).toEqual([
      [1, 'sealed', 2],
      [2, 'failed', 1],
    ]);
  });

  it('fails an update signed by a revoked site, or by another site', () => {
    const revoked = new Chain().created().enrol('a').enrol('b').open(1, ['a', 'b']);
    revoked.add('site.revoked', { siteId: 'b', reason: 'left' }).accept(1, 'a').accept(1, 'b');
    expect(messages(revoked.audit())).toEqual([
      expect.stringMatching(/^#6 accepts an update from site b, which was revoked at entry #4/),
    ]);
    const forged = new Chain().created().enrol('a').enrol('b').open(1, ['a', 'b']).accept(1, 'a', 10, 'b');
    expect(messages(forged.audit())).toEqual([
      expect.stringMatching(/^#4 records facts that site a did not sign/),
    ]);
  });

  it('fails an update from a site the round did not invite, and a second one from the same site', () => {
    const chain = new Chain().created().enrol('a').enrol('b').enrol('c').open(1, ['a', 'b']).accept(1, 'c');
    expect(messages(chain.audit())).toContainEqual(
      expect.stringMatching(/^#5 .*which round 1 did not invite/),
    );
    const twice = good().open(2, ['a', 'b']).accept(2, 'a').accept(2, 'a');
    expect(messages(twice.audit())).toContainEqual(
      expect.stringMatching(/^#9 accepts a second update from site a/),
    );
  });

  it('fails a seal that leaves out an update, misstates samples, skips a version, or lacks quorum', () => {
    const left = new Chain()
      .created()
      .enrol('a')
      .enrol('b')
      .open(1, ['a', 'b'])
      .accept(1, 'a')
      .accept(1, 'b');
    expect(messages(left.seal(1, ['a'], 10).audit())).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^#6 includes sites \[a\], but the ledger accepted updates from \[a, b\]/),
      ]),
    );
    const samples = new Chain()
      .created()
      .enrol('a')
      .enrol('b')
      .open(1, ['a', 'b'])
      .accept(1, 'a')
      .accept(1, 'b');
    expect(messages(samples.seal(1, ['a', 'b'], 99).audit())).toEqual([
      expect.stringMatching(/^#6 records 99 samples, but its accepted updates hold 20/),
    ]);
    const version = good().open(2, ['a', 'b'], 0);
    expect(messages(version.audit())).toEqual([
      expect.stringMatching(/^#7 trains model version 0, but the current version is 1/),
    ]);
    const quorum = new Chain()
      .created(2)
      .enrol('a')
      .enrol('b')
      .open(1, ['a', 'b'])
      .accept(1, 'a')
      .seal(1, ['a']);
    expect(messages(quorum.audit())).toEqual([
      expect.stringMatching(/^#5 seals with 1 updates, below the quorum of 2/),
    ]);
  });

  it('fails a chain that does not start with the federation, or names another coordinator key', () => {
    const headless = new Chain().enrol('a');
    expect(messages(headless.audit())).toEqual([
      expect.stringMatching(/^#0 starts the chain, but a chain must start/),
    ]);
    const audit = new LedgerAudit('fd_1', generateSigningKeyPair().publicKeyRaw);
    audit.apply(new Chain().created().entries[0]!);
    expect(messages(audit)).toEqual([expect.stringMatching(/names a coordinator key other than/)]);
  });

  it('turns the history into W3C PROV-JSON lineage', () => {
    const doc = provDocument({ id: 'fd_1', name: 'f' }, good().entries);
    expect(doc.entity['fed:model/v1']).toMatchObject({
      'prov:type': 'radfed:ModelVersion',
      'radfed:version': 1,
    });
    expect(doc.activity['fed:round/1']).toMatchObject({
      'prov:type': 'radfed:Round',
      'radfed:state': 'sealed',
    });
    expect(doc.agent['fed:site/a']).toMatchObject({ 'prov:type': 'prov:Organization' });
    const derived = Object.values(doc.wasDerivedFrom);
    expect(derived).toContainEqual({
      'prov:generatedEntity': 'fed:model/v1',
      'prov:usedEntity': 'fed:model/v0',
    });
    expect(derived).toContainEqual({
      'prov:generatedEntity': 'fed:model/v1',
      'prov:usedEntity': 'fed:update/1/a',
    });
  });
});

/** Feeds `order` (indices into the chain, in file order) to a sequence; returns the findings. */
function sequenced(chain: Chain, order: number[], head = chain.entries.length - 1): string[] {
  const audit = new LedgerAudit('fd_1', coordinator.publicKeyRaw);
  const sequence = new EntrySequence(audit, 'fd_1', coordinator.publicKeyRaw);
  for (const i of order) sequence.take(chain.entries[i]!);
  sequence.finish(head);
  return messages(audit);
}

describe('entry sequence: what an export file does to the chain is named for what it is', () => {
  const chain = () =>
    new Chain()
      .created()
      .enrol('a')
      .enrol('b')
      .open(1, ['a', 'b'])
      .accept(1, 'a')
      .accept(1, 'b')
      .seal(1, ['a', 'b'])
      .open(2, ['a', 'b'])
      .accept(2, 'a')
      .accept(2, 'b');
  const all = Array.from({ length: 10 }, (_, i) => i);
  const without = (...gone: number[]) => all.filter((i) => !gone.includes(i));

  it('passes the chain in order', () => {
    expect(sequenced(chain(), all)).toEqual([]);
  });

  it('names two swapped entries as a reordering of exactly those two, and replays them in index order', () => {
    expect(sequenced(chain(), [0, 1, 2, 5, 4, 3, 6, 7, 8, 9])).toEqual([
      '#3 is out of place: entries #3 and #5 are swapped in the export (each stands where the other belongs)',
    ]);
    expect(sequenced(chain(), [0, 1, 2, 3, 5, 4, 6, 7, 8, 9])).toEqual([
      '#4 is out of place: entries #4 and #5 are swapped in the export (each stands where the other belongs)',
    ]);
  });

  it('names an entry moved further as a reordering of the entries it passed', () => {
    expect(sequenced(chain(), [0, 1, 2, 4, 5, 6, 3, 7, 8, 9])).toEqual([
      '#3 is out of place: the export reorders entries #3, #4, #5, #6, which must stand in index order',
    ]);
  });

  it('names a deleted entry as missing, not as a reordering of those after it', () => {
    const findings = sequenced(chain(), without(4));
    expect(findings[0]).toBe('#4 is missing: the chain jumps from #3 to #5, so entries were deleted');
    expect(findings.join('\n')).not.toMatch(/out of place|link/);
    expect(sequenced(chain(), without(9))).toEqual([
      '#9 is missing: the export ends at #8, but the coordinator reported its head at #9',
    ]);
    expect(sequenced(chain(), without(8, 9))).toEqual([
      '#8 is missing, as is the entry after it: the export ends at #7, but the coordinator reported its head at #9',
    ]);
  });

  it('tells a deletion and a swap apart in one file', () => {
    const findings = sequenced(chain(), [0, 1, 2, 3, 5, 4, 6, 7, 9]);
    expect(findings).toContain(
      '#4 is out of place: entries #4 and #5 are swapped in the export (each stands where the other belongs)',
    );
    expect(findings).toContain('#8 is missing: the chain jumps from #7 to #9, so entries were deleted');
  });

  it('copes with a forged index far past the head', () => {
    const c = chain();
    c.entries[9] = { ...c.entries[9]!, index: 1e9 };
    const findings = sequenced(c, all, 9);
    expect(findings).toContain(
      '#9 is missing: the chain jumps from #8 to #1000000000, so entries were deleted',
    );
    expect(findings.some((f) => f.startsWith('#1000000000 does not match its digest'))).toBe(true);
    expect(findings).toContain(
      '#undefined the export holds entries up to #1000000000, past the head (#9) the coordinator reported when it began',
    );
  });

  it('names an entry that appears twice', () => {
    expect(sequenced(chain(), [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9])).toEqual([
      '#3 appears more than once in the export',
    ]);
  });

  it('names an entry whose stored payload is not JSON, signed or not, and goes on', () => {
    const broken = new Chain().created().enrol('a');
    broken.add('site.enrolled', {} as never);
    const e = broken.entries[2]!;
    // A coordinator that stored bytes that are not JSON, digested and signed as stored.
    const unsigned = { ...e, payload: '{"siteId" "b"}' };
    const digest = ledgerEntryDigest(unsigned);
    broken.entries[2] = {
      ...unsigned,
      digest,
      signature: signLedgerDigest(coordinator.privateKeyPem, digest),
    };
    broken.enrol('b');
    const findings = sequenced(broken, [0, 1, 2, 3]);
    expect(findings[0]).toBe('#2 has a payload that is not JSON');
    expect(findings.filter((f) => !f.startsWith('#2 '))).toEqual([]);
  });
});
