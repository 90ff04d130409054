// HAMi web UI: one page, hash routes (#/gpus?node=n1&type=H100) so every view and filter is a
// shareable link. Data from ./api/* (docs/webui.md), polled at the server's poll_ms.
import { h, render } from 'preact';
import { useState, useEffect } from 'preact/hooks';
import htm from 'htm';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { fmtMiB, fmtPct, fmtAge, Bar, SliceBar, QuotaBar } from './widgets.js';
import { Chart } from './chart.js';

const html = htm.bind(h);

// ---- routing: "#/view/arg?k=v" <-> {view, arg, params} ----
function parseHash() {
  const raw = location.hash.startsWith('#/') ? location.hash.slice(2) : '';
  const [path, qs] = raw.split('?');
  const [view, ...rest] = (path || '').split('/');
  return { view: view || 'overview', arg: decodeURIComponent(rest.join('/')),
           params: new URLSearchParams(qs || '') };
}
export function href(view, arg, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v != null) p.set(k, v);
  const qs = p.toString();
  return '#/' + view + (arg ? '/' + encodeURIComponent(arg) : '') + (qs ? '?' + qs : '');
}
const FILTERS = ['node', 'namespace', 'type', 'q', 'state', 'sort', 'page', 'range'];
function filtersOf(params) {
  const f = {};
  for (const k of FILTERS) if (params.get(k)) f[k] = params.get(k);
  return f;
}

// ---- data ----
async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    const e = new Error((body && body.error && body.error.message) || 'HTTP ' + r.status);
    e.status = r.status;
    throw e;
  }
  return body;
}
function usePoll(url, pollMs) {
  const [state, setState] = useState({ data: null, error: null, auth: false, url: null });
  useEffect(() => {
    let live = true, timer = null;
    const tick = async () => {
      try {
        const data = await getJSON(url);
        if (live) setState({ data, error: null, url });
      } catch (e) {
        if (live) setState(s => ({ data: s.url === url ? s.data : null, error: e.message, auth: e.status === 401, url }));
      }
      if (live) timer = setTimeout(tick, pollMs);
    };
    tick();
    return () => { live = false; clearTimeout(timer); };
  }, [url, pollMs]);
  return state.url === url ? state : { data: null, error: null };
}
function apiUrl(path, params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v != null) p.set(k, v);
  const qs = p.toString();
  return 'api/' + path + (qs ? '?' + qs : '');
}

// ---- shell ----
const VIEWS = [['overview', 'Overview'], ['nodes', 'Nodes'], ['gpus', 'GPUs'],
               ['workloads', 'Workloads'], ['quotas', 'Quotas']];

// Options with `selected` set on the current one (a `value` on the select is not reapplied by
// preact when the DOM already reads "" for a value no option had); a value from a shared URL
// that is no option (a type substring such as "H100") gets an option of its own.
function choices(list, cur, label = v => v) {
  const all = [...(list || [])];
  const extra = cur && !all.includes(cur);
  return [html`<option value="" selected=${!cur}>any</option>`,
          extra && html`<option value=${cur} selected>${label(cur)}</option>`,
          ...all.map(v => html`<option value=${v} selected=${cur === v}>${v}</option>`)];
}

function FilterBar({ meta, route }) {
  const f = filtersOf(route.params);
  const set = (k, v) => {
    const next = { ...f, [k]: v };
    delete next.page;  // a new filter starts at page 1
    location.hash = href(route.view, route.arg, next);
  };
  const [node, setNode] = useState(f.node || '');
  useEffect(() => setNode(f.node || ''), [f.node]);
  // Quotas belong to namespaces, users and groups: node and GPU type do not select them.
  const cards = route.view !== 'quotas';
  return html`<form class="filters" role="search" aria-label="Filters"
      onSubmit=${e => { e.preventDefault(); set('node', node.trim()); }}>
    ${cards && html`<label>Node <input name="node" value=${node} placeholder="any" size="14"
      onInput=${e => setNode(e.target.value)} onChange=${e => set('node', e.target.value.trim())} /></label>`}
    <label>Namespace <select name="namespace" onChange=${e => set('namespace', e.target.value)}>
      ${choices(meta.namespaces, f.namespace)}
    </select></label>
    ${cards && html`<label>GPU type <select name="type" onChange=${e => set('type', e.target.value)}>
      ${choices(meta.types, f.type, v => 'contains "' + v + '"')}
    </select></label>`}
    ${(f.node || f.namespace || f.type || f.q || f.state) && html`
      <a class="clear" href=${href(route.view, route.arg, {})}>Clear filters</a>`}
  </form>`;
}

function App() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  const meta = usePoll('api/meta', 15000);
  const m = meta.data;
  // The view asks for its data at once, beside meta (one round trip less before the first
  // numbers); until meta answers it polls every 2 s.
  const poll = (m && m.poll_ms) || 2000;
  const f = filtersOf(route.params);
  const keep = { node: f.node, namespace: f.namespace, type: f.type };
  const View = { overview: Overview, nodes: Nodes, gpus: Gpus, workloads: Workloads,
                 quotas: Quotas, gpu: GpuDetail, workload: WorkloadDetail }[route.view] || NotFound;
  const active = route.view === 'gpu' ? 'gpus' : route.view === 'workload' ? 'workloads' : route.view;
  useEffect(() => {
    const name = VIEWS.find(v => v[0] === active);
    document.title = (route.arg ? route.arg + ' · ' : '') + (name ? name[1] : 'HAMi') + ' · HAMi GPUs';
  }, [route.view, route.arg]);
  return html`
    <a class="skip" href="#" onClick=${e => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
    <header>
      <div class="brand"><span class="logo" aria-hidden="true">▦</span> HAMi GPUs
        ${m && html`<span class="mode">${m.mode === 'host' ? 'single host' : 'cluster'} · ${m.source}</span>`}</div>
      <nav aria-label="Views"><ul>
        ${VIEWS.map(([v, label]) => html`<li><a href=${href(v, '', keep)}
          aria-current=${active === v ? 'page' : undefined}>${label}</a></li>`)}
      </ul></nav>
    </header>
    ${m && m.fake && html`<p class="banner" role="note">FAKE GPU: simulated devices, not real hardware</p>`}
    ${m && html`<${FilterBar} meta=${m} route=${route} />`}
    <main id="main" tabindex="-1">
      ${meta.auth ? html`<${TokenForm} />` : meta.error && html`<p class="error" role="alert">Cannot reach the server: ${meta.error}</p>`}
      ${!meta.auth && html`<${View} route=${route} f=${f} poll=${poll} meta=${m || {}} />`}
    </main>`;
}

// The daemon wants its API token (hami serve over TCP): kept as a same-site cookie that only
// this origin's GET requests carry (docs/webui.md).
function TokenForm() {
  const [t, setT] = useState('');
  return html`<h1>API token needed</h1>
    <p>This server answers only requests that carry its API token (root can read it from the
    daemon's token file).</p>
    <form onSubmit=${e => { e.preventDefault();
        document.cookie = 'hami_token=' + encodeURIComponent(t.trim()) + '; path=/; SameSite=Strict';
        location.reload(); }}>
      <label>Token <input type="password" name="token" autocomplete="off" value=${t} onInput=${e => setT(e.target.value)} /></label>
      <button type="submit">Use token</button></form>`;
}

function NotFound() { return html`<h1>Not found</h1><p><a href="#/">Back to the overview</a></p>`; }

function Loading({ state }) {
  if (state.error) return html`<p class="error" role="alert">${state.error}</p>`;
  return html`<p class="loading" aria-live="polite">Loading…</p>`;
}

function Stat({ k, label, value, sub }) {
  return html`<div class="stat"><div class="stat-label">${label}</div>
    <div class="stat-value" data-k=${k}>${value}</div>${sub && html`<div class="stat-sub">${sub}</div>`}</div>`;
}

function Overview({ f, poll }) {
  const st = usePoll(apiUrl('overview', f), poll);
  const d = st.data;
  if (!d) return html`<h1>Overview</h1><${Loading} state=${st} />`;
  const keep = { node: f.node, namespace: f.namespace, type: f.type };
  const mem = d.memory, cpu = d.compute;
  return html`<h1>Overview</h1>
    <section class="stats" aria-label="Cards">
      <${Stat} k="cards-total" label="GPUs" value=${d.cards.total} sub=${d.cards.nodes + ' node' + (d.cards.nodes === 1 ? '' : 's')} />
      <${Stat} k="cards-allocated" label="Allocated" value=${d.cards.allocated} sub="cards with a slice" />
      <${Stat} k="cards-used" label="In use" value=${d.cards.used} sub="cards with memory or compute in use" />
      <${Stat} k="cards-idle" label="Idle" value=${html`<a href=${href('gpus', '', { ...keep, state: 'idle' })}>${d.cards.idle}</a>`} sub="healthy, no slice" />
      <${Stat} k="cards-unhealthy" label="Unhealthy" value=${d.cards.unhealthy} />
      <${Stat} k="workloads-total" label="Workloads" value=${html`<a href=${href('workloads', '', keep)}>${d.workloads.total}</a>`}
        sub=${html`<a href=${href('workloads', '', { ...keep, state: 'throttled' })}>${d.workloads.throttled} at compute limit</a>`} />
      <${Stat} k="pending-total" label="Pending" value=${d.pending.total} sub="waiting for a GPU" />
      ${d.quotas && d.quotas.total > 0 && html`<${Stat} k="quotas-total" label="Quotas"
        value=${html`<a href=${href('quotas', '', { namespace: f.namespace })}>${d.quotas.total}</a>`}
        sub=${html`<a href=${href('quotas', '', { namespace: f.namespace, state: 'near' })}>${d.quotas.near} near limit</a>${d.quotas.waiting ? ', ' + d.quotas.waiting + ' waiting' : ''}`} />`}
    </section>
    <section class="totals" aria-label="Memory and compute">
      <div><h2>Memory</h2>
        <${Bar} label="Memory" total=${mem.total_mib} alloc=${mem.allocated_mib} used=${mem.used_mib} fmt=${fmtMiB} big=${true} />
        <p class="legend"><span class="sw alloc"></span>allocated <b data-k="mem-allocated">${fmtMiB(mem.allocated_mib)}</b>
          <span class="sw used"></span>used <b data-k="mem-used">${mem.used_mib == null ? 'unknown' : fmtMiB(mem.used_mib)}</b>
          of <b data-k="mem-total">${fmtMiB(mem.total_mib)}</b></p></div>
      <div><h2>Compute</h2>
        <${Bar} label="Compute" total=${cpu.total} alloc=${cpu.allocated} used=${cpu.used} fmt=${v => fmtPct(v / Math.max(cpu.total, 1))} big=${true} />
        <p class="legend"><span class="sw alloc"></span>allocated <b data-k="cpu-allocated">${fmtPct(cpu.allocated / Math.max(cpu.total, 1))}</b>
          <span class="sw used"></span>used <b data-k="cpu-used">${fmtPct(cpu.used / Math.max(cpu.total, 1))}</b>
          of ${d.cards.total} card${d.cards.total === 1 ? '' : 's'}</p></div>
    </section>
    <section aria-labelledby="pending-h"><h2 id="pending-h">Pending GPU requests</h2>
      ${d.pending.total === 0 ? html`<p class="muted">Nothing is waiting for a GPU.</p>` : html`
      <${PendingTable} items=${d.pending.items} />
      ${d.pending.total > d.pending.items.length && html`<p class="muted">${d.pending.total - d.pending.items.length} more not shown.</p>`}`}
    </section>
    <section aria-labelledby="idle-h"><h2 id="idle-h">Idle cards</h2>
      ${d.idle_cards.total === 0 ? html`<p class="muted">Every healthy card holds a slice.</p>` : html`
      <ul class="chips">${d.idle_cards.items.map(g => html`<li><a href=${href('gpu', g.uuid)}>${g.node} #${g.index} · ${g.type} · ${fmtMiB(g.memory_mib)}</a></li>`)}
        ${d.idle_cards.total > d.idle_cards.items.length && html`<li><a href=${href('gpus', '', { ...keep, state: 'idle' })}>all ${d.idle_cards.total} idle cards</a></li>`}</ul>`}
    </section>`;
}

function PendingTable({ items, caption = 'Requests waiting for a GPU and why' }) {
  return html`<table><caption class="sr">${caption}</caption><thead><tr>
    <th scope="col">Request</th><th scope="col">Namespace / user</th><th scope="col">Asks for</th>
    <th scope="col">Waiting</th><th scope="col">Why it waits</th></tr></thead><tbody>
    ${items.map(p => html`<tr data-pending=${p.id}><td>${p.position ? '#' + p.position + ' ' : ''}${p.name}</td>
      <td>${p.namespace}${p.user && ' / ' + p.user}</td>
      <td>${p.gpus} GPU${p.gpus === 1 ? '' : 's'}, ${p.memory_percent ? p.memory_percent + ' %' : p.memory_mib ? fmtMiB(p.memory_mib) : 'whole card'}${p.cores ? ', ' + p.cores + ' % compute' : ''}</td>
      <td>${fmtAge(Date.now() / 1000 - p.since_unix)}</td><td class="reason">${p.reason}</td></tr>`)}
    </tbody></table>`;
}

function Pager({ d, route, f }) {
  const pages = Math.max(1, Math.ceil(d.total / d.page_size));
  const go = p => href(route.view, route.arg, { ...f, page: p > 1 ? p : '' });
  return html`<nav class="pager" aria-label="Pages">
    <span data-k="total">${d.total}</span> rows · page ${d.page} of ${pages}
    ${d.page > 1 ? html`<a href=${go(d.page - 1)} rel="prev">Previous</a>` : ''}
    ${d.page < pages ? html`<a href=${go(d.page + 1)} rel="next">Next</a>` : ''}
  </nav>`;
}

function Search({ route, f, label }) {
  const [q, setQ] = useState(f.q || '');
  useEffect(() => setQ(f.q || ''), [f.q]);
  return html`<form class="search" role="search" onSubmit=${e => {
      e.preventDefault(); const n = { ...f, q: q.trim() }; delete n.page;
      location.hash = href(route.view, route.arg, n); }}>
    <label>${label} <input type="search" name="q" value=${q} onInput=${e => setQ(e.target.value)} /></label>
    <button type="submit">Search</button></form>`;
}

function StateTabs({ route, f, states }) {
  return html`<ul class="tabs" aria-label="Show">${states.map(([s, label]) => html`<li>
    <a href=${href(route.view, '', { ...f, state: s, page: '' })} aria-current=${(f.state || '') === s ? 'true' : undefined}>${label}</a></li>`)}</ul>`;
}

function Nodes({ route, f, poll }) {
  const st = usePoll(apiUrl('nodes', f), poll);
  const d = st.data;
  return html`<h1>Nodes</h1><${Search} route=${route} f=${f} label="Node name contains" />
    ${!d ? html`<${Loading} state=${st} />` : html`
    <table class="list"><caption class="sr">Nodes with GPUs</caption><thead><tr>
      <th scope="col">Node</th><th scope="col">GPUs</th><th scope="col">Idle</th>
      <th scope="col">Memory (allocated / used)</th><th scope="col">Compute (allocated / used)</th>
      <th scope="col">Workloads</th><th scope="col">Types</th></tr></thead><tbody>
      ${d.items.map(n => html`<tr data-node=${n.name}>
        <td><a href=${href('gpus', '', { node: n.name })}>${n.name}</a></td>
        <td>${n.gpus}${n.healthy_gpus < n.gpus ? html` <span class="bad">(${n.gpus - n.healthy_gpus} unhealthy)</span>` : ''}</td>
        <td>${n.idle_gpus}</td>
        <td><${Bar} label=${'Memory of ' + n.name} total=${n.memory_mib} alloc=${n.allocated_mib} used=${n.used_mib} fmt=${fmtMiB} /></td>
        <td><${Bar} label=${'Compute of ' + n.name} total=${n.cores} alloc=${n.allocated_cores} used=${n.util == null ? null : n.util * n.cores} fmt=${v => fmtPct(v / n.cores)} /></td>
        <td>${n.workloads}</td><td>${n.types.join(', ')}</td></tr>`)}
    </tbody></table><${Pager} d=${d} route=${route} f=${f} />`}`;
}

function Gpus({ route, f, poll }) {
  const st = usePoll(apiUrl('gpus', f), poll);
  const d = st.data;
  return html`<h1>GPUs</h1>
    <${StateTabs} route=${route} f=${f} states=${[['', 'All'], ['allocated', 'Allocated'], ['idle', 'Idle'], ['unhealthy', 'Unhealthy']]} />
    ${!d ? html`<${Loading} state=${st} />` : html`
    <table class="list gputable"><caption class="sr">GPUs with their slices</caption><thead><tr>
      <th scope="col">Card</th><th scope="col">Type</th><th scope="col">Health</th>
      <th scope="col">Memory by slice</th><th scope="col">Compute by slice</th><th scope="col">Slices</th></tr></thead><tbody>
      ${d.items.map(g => html`<tr data-gpu=${g.uuid}>
        <td><a href=${href('gpu', g.uuid)}>${g.node} #${g.index}</a><div class="uuid">${g.uuid}</div></td>
        <td>${g.type}</td>
        <td><span class=${'pill ' + g.state}>${g.healthy ? g.state : 'unhealthy'}</span></td>
        <td><${SliceBar} g=${g} what="memory" /></td>
        <td><${SliceBar} g=${g} what="compute" /></td>
        <td>${g.slices}${g.exclusive ? ' (exclusive)' : ''}</td></tr>`)}
    </tbody></table><${Pager} d=${d} route=${route} f=${f} />`}`;
}

function WorkloadRows({ items }) {
  return html`<table class="list"><caption class="sr">Workloads holding GPU slices</caption><thead><tr>
    <th scope="col">Workload</th><th scope="col">Namespace / user</th><th scope="col">Node</th>
    <th scope="col">GPUs</th><th scope="col">Memory used / limit</th><th scope="col">Compute used / limit</th>
    <th scope="col">Age</th></tr></thead><tbody>
    ${items.map(w => html`<tr data-workload=${w.id}>
      <td><a href=${href('workload', w.id)}>${w.name}</a> <span class="kind">${w.kind}</span>
        ${w.throttled ? html` <span class="pill throttled" title="compute at its limit">throttled</span>` : ''}
        ${w.command && html`<div class="cmd">${w.command}</div>`}</td>
      <td>${w.namespace}${w.user && ' / ' + w.user}</td><td>${w.node}</td>
      <td>${w.gpus}</td>
      <td><${Bar} label=${'Memory of ' + w.name} total=${w.memory_limit_mib || 1} alloc=${null} used=${w.memory_used_mib} fmt=${fmtMiB}
            text=${(w.memory_used_mib == null ? '?' : fmtMiB(w.memory_used_mib)) + ' / ' + fmtMiB(w.memory_limit_mib)} /></td>
      <td>${w.util == null ? '?' : fmtPct(w.util)} / ${w.slices.map(s => s.cores ? s.cores + ' %' : 'no limit').join(', ')}</td>
      <td>${fmtAge(w.age_s)}</td></tr>`)}
  </tbody></table>`;
}

function Workloads({ route, f, poll }) {
  const st = usePoll(apiUrl('workloads', f), poll);
  const pend = usePoll(apiUrl('pending', { namespace: f.namespace }), poll);
  const d = st.data;
  return html`<h1>Workloads</h1>
    <${StateTabs} route=${route} f=${f} states=${[['', 'All'], ['running', 'Running'], ['allocated', 'Not started'], ['throttled', 'Throttled']]} />
    <${Search} route=${route} f=${f} label="Name, command or user contains" />
    ${!d ? html`<${Loading} state=${st} />` : html`<${WorkloadRows} items=${d.items} /><${Pager} d=${d} route=${route} f=${f} />`}
    ${pend.data && pend.data.total > 0 && html`<h2>Pending</h2><${PendingTable} items=${pend.data.items} />`}`;
}

const OWNER = { namespace: 'namespace', user: 'user', group: 'group' };
const fmtCores = v => v + ' %';
const fmtCount = v => String(v);

// Where quotas come from, for the empty state: the words of the configuration itself.
function NoQuotas({ d }) {
  const r = d.resources;
  return html`<div class="empty" role="status" data-k="quota-empty"><p><b>No GPU quotas are configured.</b></p>
    ${d.mode === 'host'
      // One line: htm drops whitespace that holds a line break, and the words would run together.
      ? html`<p>Give <code>hami serve</code> per-user or per-group limits with <code>--user-quota</code>, <code>--group-quota</code> or <code>--quota-file</code> (<code>${r.memory}</code>, <code>${r.cores}</code>, <code>${r.gpus}</code>).</p>`
      : html`<p>Add <code>${r.memory}</code>, <code>${r.cores}</code> or <code>${r.gpus}</code> to a namespace's ResourceQuota.</p>`}</div>`;
}

function Quotas({ route, f, poll }) {
  const st = usePoll(apiUrl('quotas', { namespace: f.namespace, q: f.q, state: f.state, sort: f.sort, page: f.page }), poll);
  const d = st.data;
  if (!d) return html`<h1>Quotas</h1><${Loading} state=${st} />`;
  if (!d.enforced) {
    return html`<h1>Quotas</h1><p class="empty" role="status" data-k="quota-empty">This scheduler does not enforce GPU quotas (turned off in its configuration).</p>`;
  }
  const r = d.resources;
  return html`<h1>Quotas</h1>
    ${d.configured === 0 ? html`<${NoQuotas} d=${d} />` : html`
    <${StateTabs} route=${route} f=${f} states=${[['', 'All'], ['near', 'Near limit (90 % or more)']]} />
    <${Search} route=${route} f=${f} label=${d.mode === 'host' ? 'User or group contains' : 'Namespace contains'} />
    <table class="list quotatable"><caption class="sr">GPU quotas: used and limit of each</caption><thead><tr>
      <th scope="col">${d.mode === 'host' ? 'User / group' : 'Namespace'}</th>
      <th scope="col">Memory (${r.memory})</th><th scope="col">Compute (${r.cores})</th>
      <th scope="col">GPUs (${r.gpus})</th><th scope="col">Status</th></tr></thead><tbody>
      ${d.items.map(q => html`<tr data-quota=${q.kind + '/' + q.owner} class=${q.near ? 'near' : ''}>
        <td><span class="kind">${OWNER[q.kind] || q.kind}</span> ${q.kind === 'namespace'
          ? html`<a href=${href('workloads', '', { namespace: q.owner })}>${q.owner}</a>` : q.owner}</td>
        <td data-dim="memory"><${QuotaBar} label=${'Memory quota of ' + q.owner} u=${q.memory} fmt=${fmtMiB} /></td>
        <td data-dim="cores"><${QuotaBar} label=${'Compute quota of ' + q.owner} u=${q.cores} fmt=${fmtCores} /></td>
        <td data-dim="gpus"><${QuotaBar} label=${'GPU quota of ' + q.owner} u=${q.gpus} fmt=${fmtCount} /></td>
        <td>${q.near ? html`<span class="pill near">near limit</span>` : html`<span class="pill ok">${fmtPct(q.fraction)} used</span>`}</td></tr>`)}
    </tbody></table><${Pager} d=${d} route=${route} f=${f} />`}
    <section aria-labelledby="waiting-h"><h2 id="waiting-h">Waiting for a quota</h2>
      ${d.waiting.total === 0 ? html`<p class="muted">No request is waiting for a quota.</p>` : html`
      <${PendingTable} items=${d.waiting.items} caption="Requests waiting for a quota and the quota they wait for" />
      ${d.waiting.total > d.waiting.items.length && html`<p class="muted">${d.waiting.total - d.waiting.items.length} more not shown.</p>`}`}
    </section>`;
}

function RangePicker({ route, f }) {
  const cur = f.range || '15m';
  return html`<ul class="tabs" aria-label="Time range">${['15m', '1h', '6h'].map(r => html`<li>
    <a href=${href(route.view, route.arg, { ...f, range: r === '15m' ? '' : r })} aria-current=${cur === r ? 'true' : undefined}>${r === '15m' ? '15 min' : r === '1h' ? '1 hour' : '6 hours'}</a></li>`)}</ul>`;
}

function Charts({ kind, id, f, route, poll }) {
  const hist = usePoll(apiUrl('history/' + kind + '/' + encodeURIComponent(id), { range: f.range }), Math.max(poll, 5000));
  return html`<section aria-labelledby="hist-h"><h2 id="hist-h">History</h2><${RangePicker} route=${route} f=${f} />
    ${!hist.data ? html`<${Loading} state=${hist} />` : html`<div class="charts">
      <${Chart} title="Memory" h=${hist.data} kind="memory" />
      <${Chart} title="Compute" h=${hist.data} kind="compute" /></div>`}</section>`;
}

function GpuDetail({ route, f, poll }) {
  const st = usePoll(apiUrl('gpus/' + encodeURIComponent(route.arg)), poll);
  const g = st.data;
  if (!g) return html`<h1>GPU ${route.arg}</h1><${Loading} state=${st} />`;
  return html`<h1>${g.node} · GPU ${g.index}</h1>
    <dl class="facts"><dt>UUID</dt><dd>${g.uuid}</dd><dt>Type</dt><dd>${g.type}</dd>
      <dt>Health</dt><dd><span class=${'pill ' + g.state}>${g.healthy ? 'healthy' : 'unhealthy'}</span></dd>
      <dt>Memory</dt><dd data-k="gpu-alloc">${fmtMiB(g.allocated_mib)} allocated, ${g.used_mib == null ? 'use unknown' : fmtMiB(g.used_mib) + ' used'} of ${fmtMiB(g.memory_mib)}</dd>
      <dt>Compute</dt><dd>${g.allocated_cores} % allocated, ${g.util == null ? 'use unknown' : fmtPct(g.util) + ' used'}</dd>
      <dt>Slices</dt><dd>${g.slices} of ${g.split_count}${g.exclusive ? ' (held exclusively)' : ''}</dd></dl>
    <h2>Slices</h2><p><${SliceBar} g=${g} what="memory" wide=${true} /></p><p><${SliceBar} g=${g} what="compute" wide=${true} /></p>
    ${g.workloads.length ? html`<${WorkloadRows} items=${g.workloads} />` : html`<p class="muted">No slice on this card.</p>`}
    <${Charts} kind="gpu" id=${g.uuid} f=${f} route=${route} poll=${poll} />`;
}

function WorkloadDetail({ route, f, poll }) {
  const st = usePoll(apiUrl('workloads/' + encodeURIComponent(route.arg)), poll);
  const w = st.data;
  if (!w) {
    return html`<h1>Workload ${route.arg}</h1>${st.error && /no workload/.test(st.error)
      ? html`<p role="status">This workload has ended (or never existed). <a href=${href('workloads', '', {})}>All workloads</a></p>`
      : html`<${Loading} state=${st} />`}`;
  }
  return html`<h1>${w.namespace}/${w.name} ${w.throttled ? html`<span class="pill throttled">throttled</span>` : ''}</h1>
    <dl class="facts"><dt>Kind</dt><dd>${w.kind === 'job' ? 'hami run job' : 'pod'}</dd>
      ${w.user && html`<dt>User</dt><dd>${w.user}</dd>`}<dt>Node</dt><dd>${w.node}</dd><dt>State</dt><dd>${w.state}</dd>
      <dt>Age</dt><dd>${fmtAge(w.age_s)}</dd>${w.command && html`<dt>Command</dt><dd class="cmd">${w.command}</dd>`}</dl>
    <h2>Slices</h2>
    <table><caption class="sr">The workload's slices</caption><thead><tr><th scope="col">Card</th><th scope="col">Memory used / limit</th>
      <th scope="col">Compute used / limit</th><th scope="col">Processes</th></tr></thead><tbody>
      ${w.slices.map(s => html`<tr><td><a href=${href('gpu', s.uuid)}>${s.node} #${s.index}</a> ${s.type}</td>
        <td>${s.used_mib == null ? '?' : fmtMiB(s.used_mib)} / ${s.limit_mib ? fmtMiB(s.limit_mib) : 'whole card'}</td>
        <td>${s.util == null ? '?' : fmtPct(s.util)} / ${s.cores ? s.cores + ' %' : 'no limit'}</td><td>${s.processes}</td></tr>`)}
    </tbody></table>
    <${Charts} kind="workload" id=${w.id} f=${f} route=${route} poll=${poll} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
