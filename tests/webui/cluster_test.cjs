// Browser test of the scheduler's web UI on a simulated cluster (tests/webui/cluster_sim.cc:
// the API-server double, the real extender placing pods, a fake node-monitor endpoint):
// every view loads without console errors, numbers match the API, pending pods show the
// engine's reason, namespace and type filters and paging work from the URL, axe-core passes,
// and each view is saved as a screenshot. Env: CLUSTER_SIM, SHOT_DIR, CHROMIUM.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const L = require('./lib.cjs');
const { check } = L;

const SHOTS = process.env.SHOT_DIR || path.join(os.tmpdir(), 'webui-shots');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'webui-cluster-'));

// The Quotas view against the ResourceQuotas of the simulated cluster (cluster_sim --quota 1):
// team-a holds 68 of its 72 GiB (highlighted), 130 of 200 % compute, 7 of 10 GPUs; team-b 7 of
// 20 GPUs; team-a's 8 GiB pod waits for the quota with the extender's reason.
async function quotaView(page, base) {
  const api = await L.getJSON(base + '/ui/api/quotas');
  await page.goto(base + '/ui/#/quotas', { waitUntil: 'networkidle0' });
  await page.waitForSelector('tr[data-quota]');
  const rows = await page.$$eval('tr[data-quota]', r => r.map(e => [e.dataset.quota, e.className]));
  check(JSON.stringify(rows) === JSON.stringify([['namespace/team-a', 'near'], ['namespace/team-b', '']]),
        'quotas: one row per namespace with a quota, team-a highlighted (over 90 %)', rows);
  const a = api.items[0];
  check(a.memory.used === 69632 && a.memory.limit === 73728 && a.cores.used === 130 && a.cores.limit === 200 &&
        a.gpus.used === 7 && a.gpus.limit === 10, 'quotas API: team-a\'s usage rebuilt from its placed pods', a);
  const cell = async (row, dim) => page.$eval(`tr[data-quota="${row}"] td[data-dim="${dim}"] .bartext`, e => e.textContent.trim());
  check(await cell('namespace/team-a', 'memory') === '68.0 GiB / 72.0 GiB (94 %)', 'team-a memory shows 68.0 GiB / 72.0 GiB (94 %)', await cell('namespace/team-a', 'memory'));
  check(await cell('namespace/team-a', 'cores') === '130 % / 200 % (65 %)', 'team-a compute shows 130 % / 200 %', await cell('namespace/team-a', 'cores'));
  check(await cell('namespace/team-a', 'gpus') === '7 / 10 (70 %)', 'team-a GPUs show 7 / 10', await cell('namespace/team-a', 'gpus'));
  check(await cell('namespace/team-b', 'gpus') === '7 / 20 (35 %)' &&
        (await page.$eval('tr[data-quota="namespace/team-b"] td[data-dim="memory"]', e => e.textContent.trim())) === 'no limit',
        'team-b: GPUs 7 / 20, memory without a limit says so');
  const label = await page.$eval('tr[data-quota="namespace/team-a"] td[data-dim="memory"] [role="img"]', e => e.getAttribute('aria-label'));
  check(label === 'Memory quota of team-a: 68.0 GiB of 72.0 GiB used (94 %, near the limit)', 'the bar\'s label says the numbers', label);
  const reasons = await L.texts(page, 'td.reason');
  check(reasons.length === 1 && reasons[0] === 'namespace team-a would exceed its gpumem quota: 68/72 GiB used, 8 GiB asked' &&
        api.waiting.items[0].reason === reasons[0], 'the pod held by the quota is listed with the named reason', reasons);
  await L.axeCheck(page, 'cluster quotas');
  await L.shot(page, SHOTS, 'cluster-quotas');
  await page.goto(base + '/ui/#/quotas?state=near', { waitUntil: 'networkidle0' });
  await page.waitForFunction(() => document.querySelectorAll('tr[data-quota]').length === 1, { timeout: 5000 });
  check(await page.$eval('.tabs a[aria-current="true"]', e => e.textContent).then(t => t.startsWith('Near limit')),
        'the "Near limit" tab from the URL shows only team-a');
  const bad = await fetch(base + '/ui/api/quotas?node=gpu-node-0001');
  const body = await bad.json();
  check(bad.status === 400 && body.error.message === 'parameter "node" does not apply to quotas', 'a node filter on quotas is a named 400', body);
}

(async () => {
  L.start(process.env.CLUSTER_SIM, ['--nodes', '10', '--pods', '24', '--pending', '3', '--quota', '1',
                                    '--port-file', path.join(work, 'port')],
          { log: path.join(work, 'sim.log') });
  const port = await L.waitFor(() => {
    try { return fs.readFileSync(path.join(work, 'port'), 'utf8').trim(); } catch { return ''; }
  }, 60000, 100);
  if (!port) throw new Error('cluster sim did not start: ' + fs.readFileSync(path.join(work, 'sim.log'), 'utf8'));
  const base = 'http://127.0.0.1:' + port;
  // Wait for the first scrape of the monitors (use known), so numbers are stable.
  await L.waitFor(async () => (await L.getJSON(base + '/ui/api/overview')).memory.used_mib > 0, 10000, 200);
  const browser = await L.launch();
  try {
    const page = await L.newPage(browser);
    await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
    await page.waitForSelector('[data-k="cards-total"]');
    const o = await L.getJSON(base + '/ui/api/overview');
    const val = async k => page.$eval(`[data-k="${k}"]`, e => e.textContent.trim());
    check(await val('cards-total') === '80', 'cluster overview: 80 GPUs on 10 nodes');
    check(await val('cards-allocated') === String(o.cards.allocated), 'cluster overview: allocated cards match the API');
    check(await val('cards-idle') === String(o.cards.idle), 'cluster overview: idle cards match the API');
    check(await val('workloads-total') === String(o.workloads.total) && o.workloads.total === 24,
          'cluster overview: the 24 pods the extender placed', [await val('workloads-total'), o.workloads.total]);
    check(await val('mem-allocated') === L.fmtMiB(o.memory.allocated_mib), 'cluster overview: allocated memory matches the API');
    const reasons = await L.texts(page, 'td.reason');
    check(reasons.length === 4 && reasons.some(r => /0\/10 nodes fit: 10 insufficient GPU memory/.test(r)) &&
          reasons.some(r => /V100/.test(r)) && reasons.some(r => /namespace team-a would exceed its gpumem quota/.test(r)),
          'pending pods show the engine\'s named reasons (one held by its namespace\'s quota)', reasons);
    check(await val('quotas-total') === '2', 'cluster overview: 2 namespaces with a GPU quota', await val('quotas-total').catch(() => null));
    await L.axeCheck(page, 'cluster overview');
    await L.shot(page, SHOTS, 'cluster-overview');

    // Paging: 80 cards at 50 a page.
    await page.goto(base + '/ui/#/gpus', { waitUntil: 'networkidle0' });
    await page.waitForSelector('tr[data-gpu]');
    check((await page.$$('tr[data-gpu]')).length === 50, 'GPUs view: first page has 50 cards');
    await L.shot(page, SHOTS, 'cluster-gpus');
    await page.click('a[rel="next"]');
    await page.waitForFunction(() => location.hash.includes('page=2') && document.querySelectorAll('tr[data-gpu]').length === 30, { timeout: 5000 });
    const p2 = await L.getJSON(base + '/ui/api/gpus?page=2');
    const uuids = await page.$$eval('tr[data-gpu]', r => r.map(e => e.dataset.gpu));
    check(JSON.stringify(uuids) === JSON.stringify(p2.items.map(g => g.uuid)), 'page 2 (from a Next link, in the URL) matches the API');

    // Namespace filter, from the select, kept in the URL.
    await page.goto(base + '/ui/#/workloads', { waitUntil: 'networkidle0' });
    await page.waitForSelector('tr[data-workload]');
    await page.select('select[name="namespace"]', 'team-b');
    await page.waitForFunction(() => location.hash.includes('namespace=team-b'), { timeout: 5000 });
    const tb = await L.getJSON(base + '/ui/api/workloads?namespace=team-b');
    await page.waitForFunction(n => document.querySelectorAll('tr[data-workload]').length === n, { timeout: 5000 }, tb.total);
    const ids = await page.$$eval('tr[data-workload]', r => r.map(e => e.dataset.workload));
    check(ids.length === tb.total && ids.every(i => tb.items.some(w => w.id === i)), 'namespace filter: the rows are team-b\'s pods', ids);
    await L.axeCheck(page, 'cluster workloads');
    await L.shot(page, SHOTS, 'cluster-workloads');
    await page.goto(base + '/ui/#/nodes?type=H100', { waitUntil: 'networkidle0' });
    await page.waitForSelector('tr[data-node]');
    const h100 = await L.getJSON(base + '/ui/api/nodes?type=H100');
    check((await page.$$('tr[data-node]')).length === h100.total && h100.total === 2, 'type filter on nodes: the 2 H100 nodes');
    check(await page.$eval('select[name="type"]', e => e.value + '|' + e.selectedOptions[0].textContent) === 'H100|contains "H100"',
          'a type substring from the URL shows as the selected choice');
    await page.goto(base + '/ui/#/nodes', { waitUntil: 'networkidle0' });
    await page.waitForSelector('tr[data-node]');
    check(await page.$eval('select[name="type"]', e => e.selectedIndex === 0 && e.value === ''), 'clearing the URL filter resets the select to "any"');
    await L.axeCheck(page, 'cluster nodes');
    await L.shot(page, SHOTS, 'cluster-nodes');

    const w = (await L.getJSON(base + '/ui/api/workloads?state=throttled')).items[0];
    await page.goto(base + '/ui/#/workload/' + w.id, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.chart canvas', { timeout: 15000 });
    check((await page.$$('.pill.throttled')).length === 1, 'a pod at its compute limit is marked throttled');
    await L.shot(page, SHOTS, 'cluster-workload');
    await page.goto(base + '/ui/#/gpu/' + w.slices[0].uuid, { waitUntil: 'networkidle0' });
    await page.waitForSelector('.chart canvas', { timeout: 15000 });
    await L.axeCheck(page, 'cluster GPU detail');
    await L.shot(page, SHOTS, 'cluster-gpu');
    await quotaView(page, base);
    check(page.problems.length === 0, 'no console errors, page errors or failed requests (cluster)', page.problems);
  } finally {
    await browser.close();
  }
  console.log(L.failures.length ? `\n${L.failures.length} check(s) failed` : '\nall checks passed');
  L.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(L.failures.length ? 1 : 0);
})().catch(e => { console.error(e); L.stopAll(); process.exit(1); });
