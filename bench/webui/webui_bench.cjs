// Web UI benchmark (docs/webui.md, docs/BENCHMARKS.md): for a simulated cluster of each size,
// time to first meaningful paint of the overview in headless Chromium (the GPU count drawn),
// JSON payload sizes, and API latency under 20 concurrent viewers. Prints a Markdown table.
// Usage: NODE_PATH=<build>/src/webui/npm/node_modules node bench/webui/webui_bench.cjs \
//          --sim <build>/bin/webui_cluster_sim [--nodes 10,5000] [--viewers 20] [--seconds 10]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const zlib = require('zlib');
const { spawn } = require('child_process');
const puppeteer = require('puppeteer-core');

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 ? a : [...a, [v.replace(/^--/, ''), all[i + 1]]]), []));
const SIM = args.sim;
const SIZES = (args.nodes || '10,5000').split(',').map(Number);
const VIEWERS = Number(args.viewers || 20);
const SECONDS = Number(args.seconds || 10);
const PAINT_RUNS = Number(args.runs || 7);
const agent = new http.Agent({ keepAlive: true, maxSockets: VIEWERS * 2 });

function get(url, gzip) {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    http.get(url, { agent, headers: gzip ? { 'Accept-Encoding': 'gzip' } : {} }, r => {
      const chunks = [];
      r.on('data', c => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode, bytes: Buffer.concat(chunks).length,
                              ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    }).on('error', rej);
  });
}
const median = a => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
const kb = b => (b / 1024).toFixed(1) + ' KiB';

async function startSim(nodes) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webui-bench-'));
  const t0 = Date.now();
  const p = spawn(SIM, ['--nodes', String(nodes), '--pods', String(nodes * 2), '--pending', '30',
                        '--port-file', path.join(dir, 'port')], { stdio: 'ignore' });
  for (;;) {
    try { const port = fs.readFileSync(path.join(dir, 'port'), 'utf8').trim(); if (port) return { p, base: 'http://127.0.0.1:' + port, setup_s: (Date.now() - t0) / 1000 }; } catch {}
    if (p.exitCode !== null) throw new Error('sim exited');
    await new Promise(r => setTimeout(r, 200));
  }
}

async function paint(browser, base) {
  const times = [], fcps = [];
  for (let i = 0; i < PAINT_RUNS; i++) {
    const ctx = await browser.createBrowserContext();  // cold cache every run
    const page = await ctx.newPage();
    await page.goto(base + '/ui/');
    await page.waitForSelector('[data-k="cards-total"]', { timeout: 60000 });
    const t = await page.evaluate(() => performance.now());
    const fcp = await page.evaluate(() => (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0);
    times.push(t); fcps.push(fcp);
    await ctx.close();
  }
  return { fmp: median(times), fcp: median(fcps) };
}

async function load(base) {
  const urls = ['/ui/api/overview', '/ui/api/gpus?page=1', '/ui/api/workloads?page=1'];
  const lat = Object.fromEntries(urls.map(u => [u, []]));
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: VIEWERS }, async () => {
    while (Date.now() < end) {
      for (const u of urls) { const r = await get(base + u, true); lat[u].push(r.ms); n++; }
    }
  }));
  return { lat, rps: n / SECONDS };
}

(async () => {
  const rows = [];
  const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
                                           args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  for (const nodes of SIZES) {
    const sim = await startSim(nodes);
    await new Promise(r => setTimeout(r, 2500));  // first monitor scrape
    const ov = await get(sim.base + '/ui/api/overview'), ovz = await get(sim.base + '/ui/api/overview', true);
    const gp = await get(sim.base + '/ui/api/gpus?page=1'), gpz = await get(sim.base + '/ui/api/gpus?page=1', true);
    const js = await get(sim.base + '/ui/app.js', true);
    const prom = await get(sim.base + '/scheduler-metrics', true);
    const { fmp, fcp } = await paint(browser, sim.base);
    const { lat, rps } = await load(sim.base);
    rows.push({ nodes, gpus: nodes * 8, setup: sim.setup_s, fcp, fmp, ov: ov.bytes, ovz: ovz.bytes, gp: gp.bytes, gpz: gpz.bytes,
                js: js.bytes, prom: prom.bytes, lat, rps });
    sim.p.kill('SIGTERM');
    await new Promise(r => sim.p.on('exit', r));
  }
  await browser.close();
  console.log(`\n${os.cpus().length} CPUs (${os.cpus()[0].model}), load average ${os.loadavg().map(x => x.toFixed(1)).join(' ')}; ${PAINT_RUNS} cold loads each (median); ${VIEWERS} viewers x ${SECONDS} s\n`);
  console.log('| nodes x GPUs | first contentful paint | first meaningful paint (GPU count drawn) | overview JSON (gzip) | GPUs page 1 JSON (gzip) | app.js (gzip) | baseline: scheduler /metrics (gzip) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.nodes} x 8 | ${r.fcp.toFixed(0)} ms | ${r.fmp.toFixed(0)} ms | ${kb(r.ov)} (${kb(r.ovz)}) | ${kb(r.gp)} (${kb(r.gpz)}) | ${kb(r.js)} | ${kb(r.prom)} |`);
  }
  console.log('\n| nodes x GPUs | endpoint | requests/s (all three) | p50 | p99 |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    for (const [u, a] of Object.entries(r.lat)) {
      console.log(`| ${r.nodes} x 8 | \`${u}\` | ${r.rps.toFixed(0)} | ${median(a).toFixed(1)} ms | ${pct(a, 0.99).toFixed(1)} ms |`);
    }
  }
  process.exit(0);
})().catch(e => { console.error(e); process.exit(1); });
