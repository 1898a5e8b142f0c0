/**
 * The process the round-engine contract's crash test kills. Over the database and blob directory
 * given as JSON in argv[2] it seals round 1 of federation `fed-crash` (two sites, plaintext), opens
 * round 2, writes `ready` to stdout and then waits, holding its database open, for SIGKILL. Nothing
 * relays its outbox, so every event it wrote is still unpublished when it dies.
 */
import { openDatabase, roundQueries } from '@radfed/coordinator/testing';
import { createCertificateAuthority } from '@radfed/shared';
import { buildEngine, enrolSite, plainUpdate, TestClock, tinySpec } from '../support/round-engine.js';

const { database, blobDir } = JSON.parse(process.argv[2]!) as {
  database: { dataDir?: string; databaseUrl?: string };
  blobDir: string;
};
const handle = await openDatabase(database);
const clock = new TestClock();
const { engine, feds } = buildEngine(handle, { blobDir, ca: await createCertificateAuthority({}), clock });
const fed = await feds.create({
  name: 'fed-crash',
  modelSpec: tinySpec(),
  hePreset: 'plaintext',
  minSites: 2,
  roundDeadlineSeconds: 60,
  maxSamplesPerSite: 1000,
});
const sites = [await enrolSite(feds, fed.id, 'a'), await enrolSite(feds, fed.id, 'b')];
const [r1] = await engine.schedule(fed.id, 2);
await engine.tick();
for (const [i, s] of sites.entries()) {
  await engine.submit({
    roundId: r1!.id,
    siteId: s.site.id,
    modelVersion: 0,
    update: plainUpdate(fed.parameterCount, i + 1, 10),
    digest: `d${i}`,
    sampleCount: 10,
    metrics: { loss: i + 1 },
  });
}
await engine.tick(); // round 2 opens on version 1
const states = (await roundQueries.listRounds(handle.db, fed.id)).map((r) => r.state);
if (states.join() !== 'sealed,open') throw new Error(`expected rounds sealed,open; got ${states.join()}`);
process.stdout.write('ready\n');
setInterval(() => {}, 60_000); // hold everything open until killed
