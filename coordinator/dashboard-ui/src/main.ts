/**
 * The dashboard's pages: federations; one federation (summary, HE key custody, the current round
 * live, plots over rounds, the rounds timeline, the sites); and, over an audit export, the ledger
 * and each round's verification. Hash routes (#/f/ID, #/ledger, #/verify) keep it one static page.
 */
import { html, render } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { fmt, Plot, type Series } from './plot.js';
import './style.css';
import type { Audit, Detail, Entry, Federation, Info, Round } from './types.js';

/** GETs `path` as JSON; a failure becomes the server's sentence. */
async function get<T>(path: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' } });
  } catch {
    throw new Error('The dashboard server is not answering; is `radfed dashboard` still running?');
  }
  const body = await res.text();
  if (!res.ok) {
    let message = body.trim();
    try {
      message = (JSON.parse(body) as { error: string }).error;
    } catch {
      // plain-text refusal
    }
    throw new Error(message || `HTTP ${res.status}`);
  }
  return JSON.parse(body) as T;
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash || '#/');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function useLoad<T>(path: string, deps: unknown[] = []): { data?: T; error?: string; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    get<T>(path).then(
      (data) => live && setState({ data }),
      (err: Error) => live && setState({ error: err.message }),
    );
    return () => {
      live = false;
    };
  }, [path, n, ...deps]);
  return { ...state, reload: () => setN((x) => x + 1) };
}

const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : '–');
const secs = (s: number | null) => (s === null ? '–' : `${s.toFixed(1)} s`);

function Alert(props: { message: string }) {
  return html`<p class="alert" role="alert">${props.message}</p>`;
}

function Loading() {
  return html`<p aria-live="polite">Loading…</p>`;
}

function App() {
  const hash = useHash();
  const info = useLoad<Info>('/api/info');
  // On a route change (not the first load, where Tab should reach the skip link) focus the content.
  const firstRoute = useRef(true);
  useEffect(() => {
    if (firstRoute.current) firstRoute.current = false;
    else document.getElementById('main')?.focus();
  }, [hash]);
  const audit = info.data?.mode === 'audit';
  const fed = /^#\/f\/([^/]+)/.exec(hash);
  let page: unknown;
  if (info.error) page = html`<${Alert} message=${info.error} />`;
  else if (!info.data) page = html`<${Loading} />`;
  else if (fed) page = html`<${FederationPage} id=${decodeURIComponent(fed[1]!)} live=${!audit} />`;
  else if (hash.startsWith('#/ledger') && audit) page = html`<${LedgerPage} />`;
  else if (hash.startsWith('#/verify') && audit) page = html`<${VerifyPage} />`;
  else page = html`<${FederationsPage} />`;
  const link = (href: string, label: string) =>
    html`<a href=${href} aria-current=${hash === href || (href !== '#/' && hash.startsWith(href)) ? 'page' : undefined}>${label}</a>`;
  return html`<header>
      <h1>RadFed dashboard</h1>
      <p class="sub">${info.data?.title ?? ''}</p>
      <nav aria-label="Pages">
        ${link('#/', 'Federations')} ${audit ? link('#/ledger', 'Ledger') : ''}
        ${audit ? link('#/verify', 'Verification') : ''}
      </nav>
    </header>
    <main id="main" tabindex="-1">${page}</main>`;
}

function FederationsPage() {
  const { data, error } = useLoad<Federation[]>('/api/federations');
  if (error) return html`<${Alert} message=${error} />`;
  if (!data) return html`<${Loading} />`;
  return html`<h2>Federations</h2>
    ${
      data.length === 0
        ? html`<p>No federations yet; create one with <code>radfed federations create NAME</code>.</p>`
        : html`<table>
            <caption class="sr">Federations</caption>
            <thead>
              <tr>
                <th scope="col">Name</th><th scope="col">Id</th><th scope="col">HE preset</th>
                <th scope="col">Quorum</th><th scope="col">Model version</th><th scope="col">HE keys</th>
              </tr>
            </thead>
            <tbody>
              ${data.map(
                (f) => html`<tr>
                  <th scope="row"><a href=${`#/f/${encodeURIComponent(f.id)}`}>${f.name}</a></th>
                  <td><code>${f.id}</code></td><td>${f.hePreset}</td><td>${f.quorum}</td>
                  <td>v${f.modelVersion}</td><td>${f.custody.summary}</td>
                </tr>`,
              )}
            </tbody>
          </table>`
    }`;
}

const TERMINAL = new Set(['sealed', 'failed', 'cancelled']);

function FederationPage(props: { id: string; live: boolean }) {
  const { id, live } = props;
  const [detail, setDetail] = useState<Detail | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [link, setLink] = useState<{ up: boolean; message: string }>({ up: true, message: '' });
  const [lastEvent, setLastEvent] = useState('');

  useEffect(() => {
    let on = true;
    setDetail(undefined);
    setError(undefined);
    const load = () =>
      get<Detail>(`/api/federations/${encodeURIComponent(id)}`).then(
        (d) => {
          if (!on) return;
          setDetail(d);
          setError(undefined);
        },
        (err: Error) => on && setError(err.message),
      );
    void load();
    if (!live)
      return () => {
        on = false;
      };
    // The server relays the coordinator's WatchRounds stream; EventSource reconnects by itself.
    const es = new EventSource(`/api/federations/${encodeURIComponent(id)}/events`);
    es.addEventListener('snapshot', (e) => {
      setDetail(JSON.parse((e as MessageEvent).data) as Detail);
      setError(undefined);
    });
    es.addEventListener('coordinator', (e) => {
      const s = JSON.parse((e as MessageEvent).data) as { up: boolean; message: string };
      setLink(s);
    });
    es.addEventListener('round', (e) => {
      const { event, round } = JSON.parse((e as MessageEvent).data) as { event: string; round: Round };
      setLastEvent(`round ${round.number}: ${event}`);
      setDetail((d) => {
        if (!d) return d;
        const rounds = d.rounds.some((r) => r.id === round.id)
          ? d.rounds.map((r) => (r.id === round.id ? round : r))
          : [...d.rounds, round].sort((a, b) => a.number - b.number);
        return { ...d, rounds };
      });
      // Sites' counts and the model version change when a round closes: one fetch, not a poll.
      if (TERMINAL.has(round.state)) void load();
    });
    es.onerror = () =>
      setLink({ up: false, message: 'Lost the connection to the dashboard server; reconnecting…' });
    es.onopen = () =>
      setLink((s) => (s.message.startsWith('Lost the connection') ? { up: true, message: '' } : s));
    return () => {
      on = false;
      es.close();
    };
  }, [id, live]);

  const banner = live && !link.up ? html`<p class="alert" role="status">${link.message}</p>` : '';
  if (error && !detail)
    return html`${banner}<${Alert} message=${error} /><p><a href="#/">All federations</a></p>`;
  if (!detail) return html`${banner}<${Loading} />`;
  const { federation: f, sites, rounds } = detail;
  const current = [...rounds].reverse().find((r) => r.state === 'open' || r.state === 'sealing');
  return html`${banner}
    <h2>Federation ${f.name}</h2>
    <dl class="facts">
      <dt>Id</dt><dd><code>${f.id}</code></dd>
      <dt>HE preset</dt><dd>${f.hePreset}</dd>
      <dt>Quorum</dt><dd>${f.quorum} sites</dd>
      <dt>Round deadline</dt><dd>${f.deadlineSeconds} s</dd>
      <dt>Model version</dt><dd data-testid="model-version">v${f.modelVersion}</dd>
      <dt>Shared parameters</dt><dd>${f.parameterCount}</dd>
    </dl>
    <section aria-labelledby="custody"><h3 id="custody">HE key custody</h3>
      <p data-testid="custody">${f.custody.summary}</p>
    </section>
    ${live ? html`<${CurrentRound} round=${current} last=${lastEvent} />` : ''}
    <${Plots} rounds=${rounds} />
    <${Timeline} rounds=${rounds} />
    <${Sites} sites=${sites} live=${live} />`;
}

function CurrentRound(props: { round: Round | undefined; last: string }) {
  const r = props.round;
  return html`<section aria-labelledby="current" aria-live="polite"><h3 id="current">Current round</h3>
    ${
      r
        ? html`<p data-testid="current-round">Round ${r.number} is ${r.state}: ${r.participants.filter((p) => p.state !== 'invited').length} of ${r.participants.length} sites answered; deadline ${when(r.deadline)}.</p>
            <ul>${r.participants.map((p) => html`<li>${p.siteName}: ${p.state}${p.reason ? ` (${p.reason})` : ''}</li>`)}</ul>`
        : html`<p data-testid="current-round">No round is open.</p>`
    }
    ${props.last ? html`<p class="sub">Last event: ${props.last}</p>` : ''}
  </section>`;
}

function Plots(props: { rounds: Round[] }) {
  const closed = props.rounds.filter((r) => r.state === 'sealed');
  const { xs, loss, perMetric } = useMemo(() => {
    const xs = closed.map((r) => r.number);
    const loss: Series[] = [{ label: 'mean loss', values: closed.map((r) => r.meanLoss) }];
    const metrics = new Set<string>();
    const sites = new Map<string, string>();
    for (const r of closed)
      for (const p of r.participants) {
        for (const m of Object.keys(p.metrics)) metrics.add(m);
        sites.set(p.siteId, p.siteName);
      }
    const perMetric = [...metrics].sort().map((m) => ({
      metric: m,
      series: [...sites].map(([siteId, name]) => ({
        label: name,
        values: closed.map((r) => r.participants.find((p) => p.siteId === siteId)?.metrics[m] ?? null),
      })),
    }));
    return { xs, loss, perMetric };
  }, [closed.map((r) => r.id).join()]);
  return html`<section aria-labelledby="plots"><h3 id="plots">Over sealed rounds</h3>
    <${Plot} id="plot-loss" title="Mean loss (sample-weighted)" xLabel="round" xs=${xs} series=${loss} />
    ${perMetric.map(
      (m) =>
        html`<${Plot} id=${`plot-${m.metric}`} title=${`Per-site ${m.metric}`} xLabel="round" xs=${xs} series=${m.series} />`,
    )}
  </section>`;
}

function Timeline(props: { rounds: Round[] }) {
  const shown = props.rounds.filter((r) => r.state !== 'scheduled').reverse();
  const scheduled = props.rounds.length - shown.length;
  return html`<section aria-labelledby="timeline"><h3 id="timeline">Rounds</h3>
    ${scheduled ? html`<p>${scheduled} more scheduled.</p>` : ''}
    ${
      shown.length === 0
        ? html`<p>No round has opened yet.</p>`
        : html`<table data-testid="rounds">
            <thead><tr>
              <th scope="col">Round</th><th scope="col">State</th><th scope="col">Opened</th>
              <th scope="col">Duration</th><th scope="col">Submitted</th><th scope="col">Samples</th>
              <th scope="col">Mean loss</th><th scope="col">Missed or declined</th><th scope="col">Note</th>
            </tr></thead>
            <tbody>
              ${shown.map((r) => {
                const out = r.participants.filter((p) => p.state === 'missed' || p.state === 'declined');
                return html`<tr class=${`state-${r.state}`} data-round=${r.number}>
                  <th scope="row">${r.number}</th>
                  <td><span class="badge">${r.state}</span>${r.resultModelVersion !== null ? ` → v${r.resultModelVersion}` : ''}</td>
                  <td>${when(r.openedAt)}</td><td>${secs(r.durationSeconds)}</td>
                  <td>${r.participants.filter((p) => p.state === 'submitted').length}/${r.participants.length}</td>
                  <td>${r.totalSamples}</td><td>${fmt(r.meanLoss)}</td>
                  <td>${out.length === 0 ? '–' : out.map((p) => html`<div>${p.siteName}: ${p.state}${p.reason ? ` (${p.reason})` : ''}</div>`)}</td>
                  <td>${r.failureReason}</td>
                </tr>`;
              })}
            </tbody>
          </table>`
    }
  </section>`;
}

function Sites(props: { sites: Detail['sites']; live: boolean }) {
  return html`<section aria-labelledby="sites"><h3 id="sites">Sites</h3>
    ${
      props.sites.length === 0
        ? html`<p>No site has enrolled; invite one with <code>radfed sites invite</code>.</p>`
        : html`<table data-testid="sites">
            <thead><tr>
              <th scope="col">Site</th><th scope="col">State</th><th scope="col">Connected</th>
              <th scope="col">${props.live ? 'Last contact' : 'Last ledger entry'}</th><th scope="col">Rounds contributed</th>
            </tr></thead>
            <tbody>${props.sites.map(
              (s) => html`<tr>
                <th scope="row">${s.name}</th><td>${s.state}</td>
                <td>${s.connected === null ? 'unknown offline' : s.connected ? 'yes' : 'no'}</td>
                <td>${when(s.lastContact)}</td><td>${s.roundsContributed}</td>
              </tr>`,
            )}</tbody>
          </table>`
    }
  </section>`;
}

function LedgerPage() {
  const { data, error } = useLoad<Audit>('/api/audit');
  const [kind, setKind] = useState('');
  const [round, setRound] = useState('');
  const [site, setSite] = useState('');
  const [failing, setFailing] = useState(false);
  if (error) return html`<${Alert} message=${error} />`;
  if (!data) return html`<${Loading} />`;
  const sites = [
    ...new Map(data.entries.filter((e) => e.siteId).map((e) => [e.siteId!, e.siteName ?? e.siteId!])),
  ].sort((a, b) => a[1].localeCompare(b[1]));
  const shown = data.entries.filter(
    (e) =>
      (!kind || e.kind === kind) &&
      (!round || String(e.roundNumber) === round.trim()) &&
      (!site || e.siteId === site) &&
      (!failing || e.findings.length > 0),
  );
  const bad = data.entries.filter((e) => e.findings.length > 0);
  return html`<h2>Ledger of ${data.federationName}</h2>
    <p>${data.entries.length} entries exported ${when(data.exportedAt)} from <code>${data.file}</code>.</p>
    ${
      bad.length
        ? html`<p class="alert" role="alert">Verification fails at ${bad.length} ${bad.length === 1 ? 'entry' : 'entries'}, first #${bad[0]!.index} (${bad[0]!.kind}): ${bad[0]!.findings[0]}</p>`
        : ''
    }
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()} aria-label="Filter entries">
      <label>Kind <select value=${kind} onChange=${(e: Event) => setKind((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${data.kinds.map((k) => html`<option value=${k}>${k}</option>`)}
      </select></label>
      <label>Round <input inputmode="numeric" size="5" value=${round} onInput=${(e: Event) => setRound((e.target as HTMLInputElement).value)} /></label>
      <label>Site <select value=${site} onChange=${(e: Event) => setSite((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${sites.map(([id, name]) => html`<option value=${id}>${name}</option>`)}
      </select></label>
      <label class="check"><input type="checkbox" checked=${failing} onChange=${(e: Event) => setFailing((e.target as HTMLInputElement).checked)} /> only failing</label>
    </form>
    <p aria-live="polite">${shown.length} shown.</p>
    <table data-testid="ledger">
      <thead><tr><th scope="col">#</th><th scope="col">Kind</th><th scope="col">Time</th><th scope="col">Round</th><th scope="col">Site</th><th scope="col">Payload</th></tr></thead>
      <tbody>${shown.map((e) => html`<${EntryRow} e=${e} />`)}</tbody>
    </table>`;
}

function EntryRow(props: { e: Entry }) {
  const { e } = props;
  const bad = e.findings.length > 0;
  return html`<tr class=${bad ? 'failing' : ''} data-index=${e.index} aria-invalid=${bad ? 'true' : undefined}>
    <th scope="row">${e.index}</th><td>${e.kind}</td><td>${when(e.createdAt)}</td>
    <td>${e.roundNumber ?? ''}</td><td title=${e.siteId ?? undefined}>${e.siteName ?? ''}</td>
    <td>
      ${bad ? html`<strong>Fails verification:</strong><ul>${e.findings.map((f) => html`<li>${f}</li>`)}</ul>` : ''}
      <details><summary>payload</summary><pre>${e.payload ? JSON.stringify(e.payload, null, 2) : '(not JSON)'}</pre></details>
    </td>
  </tr>`;
}

const AGGREGATE: Record<string, string> = {
  yes: 'recomputed, matches',
  pruned: 'not recomputable: updates pruned by retention',
  missing: 'MISSING updates',
  mismatch: 'MISMATCH',
  'n/a': '–',
};

function VerifyPage() {
  const { data, error } = useLoad<Audit>('/api/audit');
  if (error) return html`<${Alert} message=${error} />`;
  if (!data) return html`<${Loading} />`;
  const r = data.report;
  return html`<h2>Verification of ${data.federationName}</h2>
    <p class=${r.ok ? 'ok' : 'alert'} role="status" data-testid="verdict">
      ${r.ok ? `OK: the chain of ${r.entries} entries holds and every signature verifies.` : `FAILED: ${r.findings.length} finding(s); the first at ${r.findings[0]?.index !== undefined ? `entry #${r.findings[0]?.index}` : 'the export file'}: ${r.findings[0]?.message}`}
    </p>
    <p>Coordinator ledger key: sha256 <code>${r.coordinatorKeyFingerprint}</code>
      ${r.keyPinned ? ' (pinned with --coordinator-key)' : ' (taken from the export; compare it, or pin it with --coordinator-key)'}.
      Head <code>${r.headDigest.slice(0, 16)}…</code></p>
    ${data.fileFindings.length ? html`<ul>${data.fileFindings.map((f) => html`<li class="alert">${f.message}</li>`)}</ul>` : ''}
    <table data-testid="verification">
      <thead><tr>
        <th scope="col">Round</th><th scope="col">State</th><th scope="col">Sites</th>
        <th scope="col">Chain and signatures</th><th scope="col">Aggregate</th><th scope="col">Merkle root</th>
        <th scope="col">Verdict</th>
      </tr></thead>
      <tbody>${data.rounds.map(
        (x) => html`<tr class=${x.ok ? '' : 'failing'}>
          <th scope="row">${x.number}</th><td>${x.state}</td><td>${x.accepted}/${x.invited}</td>
          <td>${x.findings.length === 0 ? 'hold' : html`<ul>${x.findings.map((f) => html`<li>#${f.index}: ${f.message}</li>`)}</ul>`}</td>
          <td>${AGGREGATE[x.recomputed]}</td>
          <td>${x.merkleRoot ? html`<code title=${x.merkleRoot}>${x.merkleRoot.slice(0, 16)}…</code>` : '–'}</td>
          <td>${x.ok ? 'ok' : 'FAILS'}${x.note ? ` – ${x.note}` : ''}</td>
        </tr>`,
      )}</tbody>
    </table>`;
}

render(html`<${App} />`, document.getElementById('app')!);
