// Time-series charts of one card or workload (uPlot): memory used vs allocated (limit), compute
// used vs allocated, from ./api/history/... The numbers of the last point are shown as text too.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import { fmtMiB } from './widgets.js';

const html = htm.bind(h);

function lastOf(a) {
  for (let i = a.length - 1; i >= 0; i--) if (a[i] != null) return a[i];
  return null;
}

export function Chart({ title, h: hist, kind }) {
  const el = useRef(null);
  const plot = useRef(null);
  const mem = kind === 'memory';
  const used = mem ? hist.memory_used_mib : hist.util.map(v => (v == null ? null : v * 100));
  const limit = mem ? hist.memory_limit_mib : hist.cores_limit.map(v => (v == null ? null : v * 100));
  useEffect(() => {
    const width = Math.max(280, Math.min(560, el.current.clientWidth || 480));
    const data = [hist.t, used, limit];
    if (plot.current && plot.current.width === width) {
      plot.current.setData(data);
      return;
    }
    if (plot.current) plot.current.destroy();
    plot.current = new uPlot({
      width, height: 200,
      // Memory: up to the larger of what is used and what is allowed (a 2 GiB slice on an 80 GiB
      // card stays readable); compute: always 0..100 %.
      scales: { y: { range: (u, min, max) => [0, mem ? Math.max(1, (max || 0) * 1.15) : 100] } },
      axes: [{}, { values: (u, ticks) => ticks.map(v => (mem ? fmtMiB(v) : v + ' %')), size: 70 }],
      series: [{},
        { label: 'used', stroke: '#1f5fa8', fill: 'rgba(31,95,168,0.15)', width: 2, spanGaps: false },
        { label: mem ? 'limit (allocated)' : 'limit (allocated)', stroke: '#b3541e', dash: [6, 4], width: 2 }],
    }, data, el.current);
  }, [hist]);
  useEffect(() => () => plot.current && plot.current.destroy(), []);
  const u = lastOf(used), l = lastOf(limit);
  const summary = title + ' over the last ' + Math.round(hist.range_s / 60) + ' minutes, ' + hist.t.length +
    ' points: now ' + (mem ? fmtMiB(u) + ' used of ' + fmtMiB(l) + ' allowed'
                           : (u == null ? '?' : Math.round(u) + ' %') + ' used of ' + (l == null ? '?' : Math.round(l) + ' %') + ' allowed');
  return html`<figure class="chart"><figcaption>${title}</figcaption>
    <div ref=${el} role="img" aria-label=${summary}></div>
    <p class="muted small">${hist.t.length ? summary : 'No samples yet (one every ' + hist.step_s + ' s).'}</p></figure>`;
}
