// Formatting and the allocation/use bars (plain DOM widths; each bar is one labelled image for
// screen readers, with the numbers as text beside it).
import { h } from 'preact';
import htm from 'htm';

const html = htm.bind(h);

export function fmtMiB(m) {
  if (m == null) return '?';
  if (Math.abs(m) >= 1024 * 1024) return (m / 1024 / 1024).toFixed(1) + ' TiB';
  if (Math.abs(m) >= 1024) return (m / 1024).toFixed(m % 1024 === 0 && m < 10240 ? 0 : 1) + ' GiB';
  return Math.round(m) + ' MiB';
}
export function fmtPct(f) {
  if (f == null || Number.isNaN(f)) return '?';
  const p = f * 100;
  return (p > 0 && p < 1 ? p.toFixed(1) : Math.round(p)) + ' %';
}
export function fmtAge(s) {
  s = Math.max(0, Math.round(s || 0));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}
const pct = (v, t) => Math.max(0, Math.min(100, t > 0 ? (v / t) * 100 : 0)) + '%';

// Promised (allocated, light) and consumed (used, dark) against the total.
export function Bar({ label, total, alloc, used, fmt, big, text }) {
  const parts = [];
  if (alloc != null) parts.push('allocated ' + fmt(alloc));
  parts.push('used ' + (used == null ? 'unknown' : fmt(used)));
  const aria = label + ': ' + parts.join(', ') + ' of ' + fmt(total);
  return html`<div class=${'barwrap' + (big ? ' big' : '')}>
    <div class="bar" role="img" aria-label=${aria} title=${aria}>
      ${alloc != null && html`<div class="alloc" style=${{ width: pct(alloc, total) }}></div>`}
      ${used != null && html`<div class="used" style=${{ width: pct(used, total) }}></div>`}
    </div>${!big && html`<span class="bartext">${text || (alloc != null ? fmt(alloc) + ' / ' : '') + (used == null ? '?' : fmt(used))}</span>`}</div>`;
}

const PALETTE = 6;
// One card's slices side by side: each segment is what the slice was promised, the darker
// part inside it what it uses.
export function SliceBar({ g, what, wide }) {
  const mem = what === 'memory';
  const total = mem ? g.memory_mib : 100;
  const segs = g.holders.map((s, i) => {
    const size = mem ? (s.limit_mib || g.memory_mib) : (s.cores || 0);
    const use = mem ? s.used_mib : (s.util == null ? null : s.util * 100);
    return { s, i, size, use };
  });
  const desc = segs.map(x => x.s.name + ' ' + (mem ? fmtMiB(x.size) : (x.size ? x.size + ' %' : 'no limit')) +
    ' (uses ' + (x.use == null ? 'unknown' : mem ? fmtMiB(x.use) : Math.round(x.use) + ' %') + ')').join('; ');
  const aria = (mem ? 'Memory' : 'Compute') + ' of ' + g.node + ' GPU ' + g.index + ': ' +
    (segs.length ? desc : 'no slice') + '; card ' + (mem ? fmtMiB(total) : '100 %');
  const free = mem ? g.memory_mib - g.allocated_mib : 100 - g.allocated_cores;
  return html`<div class=${'barwrap' + (wide ? ' wide' : '')}><div class="bar slices" role="img" aria-label=${aria} title=${aria}>
    ${segs.map(x => html`<div class=${'seg c' + (x.i % PALETTE) + (x.size ? '' : ' nolimit')}
        style=${{ width: pct(x.size || (x.use || 0), total) }}>
      ${x.use != null && html`<div class="seguse" style=${{ width: pct(x.use, x.size || x.use || 1) }}></div>`}</div>`)}
    </div><span class="bartext">${mem ? fmtMiB(g.allocated_mib) + ' of ' + fmtMiB(total) : g.allocated_cores + ' %'}
      ${free > 0 ? html` · <span class="muted">${mem ? fmtMiB(free) : free + ' %'} free</span>` : ''}</span></div>`;
}

// One dimension of a quota: used against the ceiling, red at 90 % or more (the text says it
// too, so colour is never the only sign). `u` null: this dimension has no ceiling.
export function QuotaBar({ label, u, fmt }) {
  if (u == null) return html`<span class="muted">no limit</span>`;
  const share = fmtPct(u.fraction);
  const aria = label + ': ' + fmt(u.used) + ' of ' + fmt(u.limit) + ' used (' + share +
    (u.near ? ', near the limit' : '') + ')';
  return html`<div class="barwrap"><div class=${'bar quota' + (u.near ? ' near' : '')} role="img" aria-label=${aria} title=${aria}>
      <div class="fill" style=${{ width: pct(u.limit > 0 ? u.used : (u.used > 0 ? 1 : 0), u.limit > 0 ? u.limit : 1) }}></div></div>
    <span class="bartext">${fmt(u.used)} / ${fmt(u.limit)} <span class=${u.near ? 'bad' : 'muted'}>(${share})</span></span></div>`;
}
