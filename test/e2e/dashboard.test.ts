/**
 * `radfed dashboard` and `radfed audit dashboard` in a real browser: Debian's Chromium driven by
 * playwright-core, against real `radfed` processes and a real coordinator (in-process, PGlite, gRPC
 * over mutual TLS) running a small plaintext federation whose two sites upload signed updates.
 * Screenshots of each page go to .radfed/dashboard-screenshots/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Coordinator,
  type CoordinatorConfig,
  type OperatorClient,
  startCoordinator,
  tlsFromPkiDir,
} from '@radfed/coordinator';
import { AuditClient, freePort, runToEnd, waitFor, writeAuditExport } from '@radfed/coordinator/testing';
import type { Round } from '@radfed/proto';
import { silentLogger } from '@radfed/shared';
import { type AgentIdentity, type SiteClient, updateSigner } from '@radfed/site-agent';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolSite } from '../support/agents.js';
import { RADFED_BIN } from '../support/cli.js';
import { type InProcessCoordinator, startInProcessCoordinator } from '../support/coordinator.js';

const repo = join(import.meta.dirname, '../..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = join(repo, '.radfed/dashboard-screenshots');
const OPEN = 2;

/** A running `radfed ... dashboard` process and the URL it printed. */
interface Dashboard {
  child: ChildProcess;
  url: string;
  origin: string;
}

function startDashboard(args: string[]): Promise<Dashboard> {
  const child = spawn(process.execPath, [RADFED_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)\/\?token=[A-Za-z0-9_-]+/.exec(out);
      if (m) resolve({ child, url: m[0], origin: m[1]! });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`radfed ${args.join(' ')} exited ${code}: ${out}`)));
  });
}

async function stopDashboard(d: Dashboard | undefined): Promise<void> {
  if (!d || d.child.exitCode !== null) return;
  const exited = new Promise((r) => d.child.once('exit', r));
  d.child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!existsSync(CHROMIUM))('the dashboard in Chromium', () => {
  let dir: string;
  let coordinator: InProcessCoordinator;
  let config: CoordinatorConfig;
  let coord: Coordinator | undefined;
  let address: string;
  let op: OperatorClient;
  let browser: Browser;
  let fedId: string;
  let parameterCount: number;
  const sites: { id: AgentIdentity; client: SiteClient }[] = [];
  const dashboards: Dashboard[] = [];

  const openRound = (number: number) =>
    waitFor(`round ${number} to open`, async () => {
      const r = (await op.listRounds(fedId)).find((x) => x.number === number);
      return r?.state === OPEN ? r : undefined;
    });
  const upload = (i: number, round: Round, loss: number, samples: number) =>
    sites[i]!.client.upload({
      roundId: round.id,
      modelVersion: Number(round.modelVersion),
      data: new Uint8Array(new Float64Array(parameterCount).fill(loss * samples).buffer),
      sampleCount: samples,
      metrics: { loss, accuracy: 1 - loss / 2 },
      encoding: 'plain-f64-weighted',
      datasetCommitment: createHash('sha256').update(`site-${i}`).digest('hex'),
      sign: updateSigner(sites[i]!.id.signingKeyPem),
    });
  const runRound = async (number: number, losses: [number, number]) => {
    const round = await openRound(number);
    await upload(0, round, losses[0], 10);
    await upload(1, round, losses[1], 30);
  };
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  /** `radfed dashboard` against the suite's coordinator, on `port` (default: a free one). */
  const dashboardArgs = (port = '0') => [
    'dashboard',
    '--port',
    port,
    '--coordinator',
    address,
    '--pki-dir',
    config.pkiDir,
  ];
  const dashboard = async (args: string[]) => {
    const d = await startDashboard(args);
    dashboards.push(d);
    return d;
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    // A fixed port, so the coordinator can come back where the dashboard looks for it.
    coordinator = await startInProcessCoordinator('dashboard', { port: await freePort() });
    ({ dir, config, coord, address, op } = coordinator);
    const fed = await op.createFederation({
      name: 'dash',
      hePreset: 'plaintext',
      minSites: 2,
      roundDeadlineSeconds: 600,
    });
    fedId = fed.id;
    parameterCount = fed.parameterCount;
    for (const name of ['alpha', 'beta']) {
      sites.push(await enrolSite(coordinator, fedId, name, join(dir, 'agents', name)));
    }
    await op.scheduleRounds(fedId, 3);
    await runRound(1, [0.9, 0.7]);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    for (const d of dashboards) await stopDashboard(d);
    for (const s of sites) s.client.close();
    await coord?.stop(); // the coordinator the test restarted, if it did
    await coordinator?.stop();
  });

  it('refuses requests without the session token, and admits the printed URL', async () => {
    const d = await dashboard(dashboardArgs());
    for (const path of ['/', '/api/federations', `/api/federations/${fedId}/events`, '/?token=wrong']) {
      const res = await fetch(`${d.origin}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(403);
      expect(await res.text()).toMatch(/needs its session token/);
    }
    const ok = await fetch(d.url, { redirect: 'manual' });
    expect(ok.status).toBe(303);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0]!;
    const api = await fetch(`${d.origin}/api/federations`, { headers: { cookie } });
    expect(api.status).toBe(200);
    expect(((await api.json()) as { name: string }[]).map((f) => f.name)).toEqual(['dash']);
  });

  it('renders the pages, shows a round that seals while open without a reload, and rides out a coordinator restart', async () => {
    const d = dashboards[0]!;
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(d.url);
    expect(page.url()).not.toContain('token=');
    await page.getByRole('link', { name: 'dash' }).waitFor();
    await shot(page, 'federations');

    // Keyboard only: the skip link first, then the page's links in order; Enter follows one.
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('dash');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Federation dash' }).waitFor();
    await page.locator('tr[data-round="1"].state-sealed').waitFor();
    await expect(page.getByTestId('custody').textContent()).resolves.toMatch(/Plaintext federation/);
    await page.locator('[data-testid="current-round"]', { hasText: 'Round 2 is open' }).waitFor();
    expect(await page.locator('[data-testid="sites"] tbody tr').count()).toBe(2);
    expect(await page.locator('figure.plot canvas').count()).toBeGreaterThanOrEqual(3);

    // Round 2 seals while the page is open: it appears through the live stream, with no reload.
    let reloads = 0;
    page.on('framenavigated', () => reloads++);
    await runRound(2, [0.5, 0.4]);
    await page.locator('tr[data-round="2"].state-sealed').waitFor();
    await page.locator('[data-testid="model-version"]', { hasText: 'v2' }).waitFor();
    expect(reloads).toBe(0);
    const row = await page.locator('tr[data-round="2"]').textContent();
    expect(row).toContain('2/2');
    expect(row).toContain(((0.5 * 10 + 0.4 * 30) / 40).toFixed(4));
    await shot(page, 'federation');

    // The coordinator goes away: the page says so, and recovers when it returns.
    await coord!.stop();
    coord = undefined;
    await page
      .getByText(/is not answering|ended the live stream/)
      .first()
      .waitFor();
    await shot(page, 'coordinator-down');
    // A dashboard started while the coordinator is away answers with a sentence, then recovers.
    const late = await dashboard(dashboardArgs());
    const cookie = (await fetch(late.url, { redirect: 'manual' })).headers.get('set-cookie')!.split(';')[0]!;
    const away = await fetch(`${late.origin}/api/federations`, { headers: { cookie } });
    expect(away.status).toBe(503);
    expect(((await away.json()) as { error: string }).error).toMatch(
      new RegExp(`The coordinator at ${address} is not answering`),
    );
    coord = await startCoordinator(config, silentLogger);
    await page
      .getByText(/is not answering|ended the live stream/)
      .first()
      .waitFor({ state: 'detached' });
    const back = await waitFor('the late dashboard to reach the coordinator', async () => {
      const res = await fetch(`${late.origin}/api/federations`, { headers: { cookie } });
      return res.status === 200 ? res : undefined;
    });
    expect(((await back.json()) as { name: string }[]).map((f) => f.name)).toEqual(['dash']);
    await runRound(3, [0.3, 0.2]);
    await page.locator('tr[data-round="3"].state-sealed').waitFor();
    expect(reloads).toBe(0);

    // A federation that does not exist gets a sentence, not a blank page.
    await page.goto(`${d.origin}/#/f/no-such-federation`);
    await page
      .getByRole('alert')
      .filter({ hasText: /no-such-federation/ })
      .waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says so when the port is in use', async () => {
    const port = new URL(dashboards[0]!.origin).port;
    const res = await runToEnd(RADFED_BIN, dashboardArgs(port));
    expect(res.code).toBe(2);
    expect(res.out).toMatch(new RegExp(`Port ${port} on 127.0.0.1 is in use; choose another with --port`));
  });

  it('shows an audit export offline, its ledger and each round verified; a changed byte is highlighted', async () => {
    const auditor = new AuditClient(address, tlsFromPkiDir(config.pkiDir, 'auditor'));
    const file = join(dir, 'dash.ndjson');
    await writeAuditExport(auditor, fedId, file);
    auditor.close();

    const d = await dashboard(['audit', 'dashboard', file, '--port', '0']);
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(d.url);
    await page.getByRole('link', { name: 'dash' }).click();
    await page.locator('tr[data-round="2"].state-sealed').waitFor();
    await page.getByRole('link', { name: 'Ledger' }).click();
    await page.getByTestId('ledger').waitFor();
    expect(await page.locator('[data-testid="ledger"] tr.failing').count()).toBe(0);
    await page.getByLabel('Kind').selectOption('update.accepted');
    expect(await page.locator('[data-testid="ledger"] tbody tr').count()).toBe(6);
    await shot(page, 'ledger');
    await page.getByRole('link', { name: 'Verification' }).click();
    await page
      .getByTestId('verdict')
      .filter({ hasText: /^\s*OK/ })
      .waitFor();
    expect(await page.locator('[data-testid="verification"] tbody tr').count()).toBe(3);
    expect(await page.locator('[data-testid="verification"]').textContent()).toContain('recomputed, matches');
    await shot(page, 'verification');
    await page.close();
    await stopDashboard(d);

    // One byte changed inside round 2's first accepted update: that entry fails and is highlighted.
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex(
      (l) => l.includes('"kind":"update.accepted"') && l.includes('\\"roundNumber\\":2'),
    );
    const index = (JSON.parse(lines[at]!) as { index: number }).index;
    lines[at] = lines[at]!.replace('\\"sampleCount\\":10', '\\"sampleCount\\":19');
    const tampered = join(dir, 'tampered.ndjson');
    writeFileSync(tampered, lines.join('\n'));
    const t = await dashboard(['audit', 'dashboard', tampered, '--port', '0']);
    const bad = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await bad.goto(`${t.url}`);
    await bad.getByRole('link', { name: 'Ledger' }).click();
    await bad.locator(`[data-testid="ledger"] tr.failing[data-index="${index}"]`).waitFor();
    await expect(bad.getByRole('alert').first().textContent()).resolves.toContain(`#${index}`);
    await shot(bad, 'ledger-tampered');
    await bad.getByRole('link', { name: 'Verification' }).click();
    await bad
      .getByTestId('verdict')
      .filter({ hasText: /FAILED/ })
      .waitFor();
    await bad.close();

    // A file that is not an export: a sentence and exit 2, before any server starts.
    const notExport = join(dir, 'notes.txt');
    writeFileSync(notExport, 'hello\n');
    const res = await runToEnd(RADFED_BIN, ['audit', 'dashboard', notExport, '--port', '0']);
    expect(res.code).toBe(2);
    expect(res.out).toMatch(/is not a readable audit export/);
    expect(res.out).not.toMatch(/\n\s+at /);
  });
});
