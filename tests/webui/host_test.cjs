// Browser test of the web UI served by `hami serve` on the fake GPU driver (docs/webui.md):
// headless Chromium (puppeteer-core) loads every view, compares the numbers on the page with
// the JSON API, watches a `hami run` slice appear and disappear, exercises filters, shareable
// URLs and keyboard navigation, runs axe-core, and saves a screenshot of each view.
// Env: HAMI_BIN, VGPU_PROBE, LIBVGPU, FAKEGPU_LIB_DIR, SHOT_DIR, CHROMIUM.
'use strict';
const { execSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const L = require('./lib.cjs');
const { check } = L;

const HAMI = process.env.HAMI_BIN;
const PROBE = process.env.VGPU_PROBE;
// Env also: COMPUTE_PROBE (tests/probe/compute_probe).
const SHOTS = process.env.SHOT_DIR || path.join(os.tmpdir(), 'webui-shots');
// The type as hami serve names it: the plain NVML name, as HAMi v2.8+ writes it.
const A100 = 'NVIDIA A100-SXM4-40GB';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'webui-host-'));

async function startServe(dir = work, extra = []) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'fakegpu.conf'),
    'uuid=GPU-5e1f0000-0000-4000-8000-000000000001 name=NVIDIA H100 80GB HBM3 mem=80g\n' +
    'uuid=GPU-5e1f0000-0000-4000-8000-000000000002 name=NVIDIA A100-SXM4-40GB mem=40g\n');
  const env = { FAKEGPU_STATE: path.join(dir, 'fakegpu.state'),
                HAMI_FAKEGPU_LIB_DIR: process.env.FAKEGPU_LIB_DIR };
  // The API on a Unix socket (hami run uses it) and, opted in, on loopback TCP with a token
  // (the browser's way in).
  L.start(HAMI, ['serve', '--state-dir', path.join(dir, 'state'), '--listen', path.join(dir, 'hami.sock'),
                 '--listen-tcp', '127.0.0.1:0', '--token-file', path.join(dir, 'api.token'),
                 '--port-file', path.join(dir, 'port'), '--fake', '--fake-config',
                 path.join(dir, 'fakegpu.conf'), '--libvgpu', process.env.LIBVGPU,
                 '--gpu-policy', 'binpack', '--reap-interval-ms', '100', ...extra],
          { env, log: path.join(dir, 'serve.log') });
  const port = await L.waitFor(() => {
    try { return fs.readFileSync(path.join(dir, 'port'), 'utf8').trim(); } catch { return ''; }
  }, 15000);
  if (!port) throw new Error('hami serve did not start: ' + fs.readFileSync(path.join(dir, 'serve.log'), 'utf8'));
  L.auth.token = fs.readFileSync(path.join(dir, 'api.token'), 'utf8').trim();
  L.auth.base = 'http://127.0.0.1:' + port;
  return { addr: '127.0.0.1:' + port, sock: 'unix:' + path.join(dir, 'hami.sock'), env, dir };
}

function run(srv, args, log) {
  return L.start(HAMI, ['run', '-q', ...args], { env: { ...srv.env, HAMI_ADDR: srv.sock },
                                               log: path.join(srv.dir, log) });
}

async function overviewMatchesApi(page, base) {
  await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('[data-k="cards-total"]');
  const api = await L.getJSON(base + '/ui/api/overview');
  const val = async k => page.$eval(`[data-k="${k}"]`, e => e.textContent.trim());
  check(await val('cards-total') === String(api.cards.total), 'overview: GPU count matches the API', [await val('cards-total'), api.cards.total]);
  check(await val('cards-allocated') === String(api.cards.allocated), 'overview: allocated cards match the API');
  check(await val('cards-idle') === String(api.cards.idle), 'overview: idle cards match the API');
  check(await val('pending-total') === String(api.pending.total), 'overview: pending count matches the API');
  check(await val('workloads-total') === String(api.workloads.total), 'overview: workload count matches the API');
  check(await val('mem-total') === L.fmtMiB(api.memory.total_mib), 'overview: total memory matches the API');
  check(await val('mem-allocated') === L.fmtMiB(api.memory.allocated_mib), 'overview: allocated memory matches the API',
        [await val('mem-allocated'), api.memory.allocated_mib]);
  const reasons = await L.texts(page, 'td.reason');
  check(reasons.length === api.pending.items.length && reasons[0] === api.pending.items[0].reason,
        'overview: pending requests show the engine\'s reason', reasons);
  check(/insufficient GPU memory|fit/.test(reasons[0] || ''), 'the reason names why (memory)', reasons[0]);
  await L.axeCheck(page, 'overview');
  await L.shot(page, SHOTS, 'host-overview');
}

async function sliceAppearsAndGoes(page, base, srv) {
  await page.goto(base + '/ui/#/workloads', { waitUntil: 'networkidle0' });
  await page.waitForSelector('tr[data-workload]');
  const before = (await page.$$('tr[data-workload]')).length;
  const t0 = Date.now();
  const job = run(srv, ['--gpumem', '1g', '--gpucores', '20', '--', PROBE, 'hold', '256', '3'], 'short.log');
  await page.waitForFunction(n => document.querySelectorAll('tr[data-workload]').length > n,
                             { timeout: 10000 }, before).catch(async e => {
    console.log(JSON.stringify(await L.getJSON(base + '/v1/queue')));
    console.log(fs.readFileSync(path.join(work, 'short.log'), 'utf8'));
    throw e;
  });
  const appear = Date.now() - t0;
  check(appear <= 2000, 'a slice made by `hami run` appears on the page within 2 s (' + appear + ' ms)');
  await job.exited;
  const t1 = Date.now();
  await page.waitForFunction(n => document.querySelectorAll('tr[data-workload]').length === n,
                             { timeout: 10000 }, before);
  const gone = Date.now() - t1;
  check(gone <= 2000, 'and disappears within 2 s after the job ends (' + gone + ' ms)');
}

async function filtersAndUrls(browser, page, base) {
  await page.goto(base + '/ui/#/gpus', { waitUntil: 'networkidle0' });
  await page.waitForSelector('tr[data-gpu]');
  await page.select('select[name="type"]', A100);
  await page.waitForFunction(() => location.hash.includes('type=NVIDIA+A100') || location.hash.includes('type=NVIDIA%20A100'), { timeout: 5000 });
  await page.waitForFunction(() => document.querySelectorAll('tr[data-gpu]').length === 1, { timeout: 5000 });
  const api = await L.getJSON(base + '/ui/api/gpus?type=' + encodeURIComponent(A100));
  const uuids = await page.$$eval('tr[data-gpu]', r => r.map(e => e.dataset.gpu));
  check(uuids.length === api.total && uuids[0] === api.items[0].uuid, 'GPU type filter: rows match the API', uuids);
  const link = page.url();
  check(link.includes('#/gpus?type=NVIDIA') && link.includes('A100'), 'the filter is in the URL', link);
  const p2 = await L.newPage(browser);
  await p2.goto(link, { waitUntil: 'networkidle0' });
  await p2.waitForSelector('tr[data-gpu]');
  check(await p2.$eval('select[name="type"]', s => s.value) === A100 &&
        (await p2.$$('tr[data-gpu]')).length === 1, 'a shared link opens the same filtered view');
  await p2.goto(base + '/ui/#/workloads?node=no-such-node', { waitUntil: 'networkidle0' });
  await p2.waitForSelector('[data-k="total"]');
  check(await p2.$eval('[data-k="total"]', e => e.textContent) === '0', 'node filter from the URL: no rows for an unknown node');
  await p2.goto(base + '/ui/#/gpus?state=idle', { waitUntil: 'networkidle0' });
  const idleApi = await L.getJSON(base + '/ui/api/gpus?state=idle');
  await p2.waitForSelector('[data-k="total"]');
  check(await p2.$eval('[data-k="total"]', e => e.textContent) === String(idleApi.total), 'state tab from the URL matches the API');
  check(p2.problems.length === 0, 'no console errors on filtered views', p2.problems);
  await p2.close();
}

async function views(page, base) {
  for (const [name, hash, sel] of [['nodes', '#/nodes', 'tr[data-node]'], ['gpus', '#/gpus', 'tr[data-gpu]'],
                                   ['workloads', '#/workloads', 'tr[data-workload]']]) {
    await page.goto(base + '/ui/' + hash, { waitUntil: 'networkidle0' });
    await page.waitForSelector(sel);
    await L.axeCheck(page, name);
    await L.shot(page, SHOTS, 'host-' + name);
  }
  // GPU rows: the slices drawn per card equal the API's holders.
  const api = await L.getJSON(base + '/ui/api/gpus');
  await page.goto(base + '/ui/#/gpus', { waitUntil: 'networkidle0' });
  await page.waitForSelector('tr[data-gpu]');
  const drawn = await page.$$eval('tr[data-gpu]', rows => rows.map(r => [r.dataset.gpu, r.querySelectorAll('td:nth-child(4) .seg').length]));
  const want = api.items.map(g => [g.uuid, g.holders.length]);
  check(JSON.stringify(drawn) === JSON.stringify(want), 'GPUs view: one memory segment per slice, as the API says', { drawn, want });
  // Details with charts.
  const wl = (await L.getJSON(base + '/ui/api/workloads?sort=memory')).items[0];
  await page.goto(base + '/ui/#/workload/' + wl.id, { waitUntil: 'networkidle0' });
  await page.waitForSelector('.chart canvas', { timeout: 15000 });
  check((await page.$$('.chart canvas')).length === 2, 'workload detail: memory and compute charts');
  const title = await page.$eval('h1', e => e.textContent);
  check(title.includes(wl.name), 'workload detail names the workload', title);
  await L.axeCheck(page, 'workload detail');
  await L.shot(page, SHOTS, 'host-workload');
  await page.goto(base + '/ui/#/gpu/' + wl.slices[0].uuid + '?range=1h', { waitUntil: 'networkidle0' });
  await page.waitForSelector('.chart canvas', { timeout: 15000 });
  check(await page.$eval('.tabs a[aria-current="true"]', e => e.textContent) === '1 hour', 'range from the URL selects 1 hour');
  await L.axeCheck(page, 'GPU detail');
  await L.shot(page, SHOTS, 'host-gpu');
}

// Without the token the page loads (no data in it) but asks for the token; entering it works.
async function tokenFlow(browser, base) {
  const ctx = await browser.createBrowserContext();  // its own cookie jar: no token yet
  const page = await ctx.newPage();
  const refused = await fetch(base + '/ui/api/overview');
  check(refused.status === 401, 'the JSON API refuses a request without the token (401)', refused.status);
  await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('input[name="token"]', { timeout: 5000 });
  check(true, 'without the token the page asks for it');
  await L.shot(page, SHOTS, 'host-token');
  await page.type('input[name="token"]', L.auth.token);
  await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form button[type="submit"]')]);
  await page.waitForSelector('[data-k="cards-total"]', { timeout: 5000 });
  check(true, 'with the token entered the overview loads');
  await ctx.close();
}

async function keyboard(browser, base) {
  const page = await L.newPage(browser);
  await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('[data-k="cards-total"]');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.textContent) === 'Skip to content', 'Tab first reaches "Skip to content"');
  await page.keyboard.press('Enter');
  check(await page.evaluate(() => document.activeElement.id) === 'main', 'Enter on it moves focus to the main content');
  await page.keyboard.down('Shift'); await page.keyboard.press('Tab'); await page.keyboard.up('Shift');
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement.textContent === 'GPUs');
  }
  check(reached, 'the GPUs view link is reachable with Tab');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash.startsWith('#/gpus'), { timeout: 3000 }).catch(() => {});
  check(page.url().includes('#/gpus'), 'Enter on the link opens the GPUs view', page.url());
  check(page.problems.length === 0, 'no console errors while navigating by keyboard', page.problems);
  await page.close();
}

// No quota configured: the Quotas view says so and how to configure one.
async function quotaEmpty(page, base) {
  await page.goto(base + '/ui/#/quotas', { waitUntil: 'networkidle0' });
  await page.waitForSelector('[data-k="quota-empty"]');
  const text = await page.$eval('[data-k="quota-empty"]', e => e.textContent.replace(/\s+/g, ' ').trim());
  check(text.startsWith('No GPU quotas are configured.') && text.includes('--user-quota'),
        'quotas: without a quota the view says none is configured and how to add one', text);
  check((await L.getJSON(base + '/ui/api/quotas')).configured === 0, 'quotas API: none configured');
  check((await page.$$('input[name="node"], select[name="type"]')).length === 0,
        'the quota view offers no node or GPU type filter (they do not select quotas)');
  await L.axeCheck(page, 'quotas (none configured)');
  await L.shot(page, SHOTS, 'host-quotas-empty');
}

// A second daemon with a quota for this user (12 GiB, 100 % compute, 3 cards) and one for its
// group (8 cards): two jobs hold 11 GiB and 90 % (both at or over 90 %: highlighted) and a third
// of 2 GiB waits for the user's memory quota with the daemon's reason.
async function quotaView(browser) {
  // By name where the passwd and group databases have one (as an administrator writes them).
  const name = cmd => { try { return execSync(cmd, { encoding: 'utf8' }).trim(); } catch { return ''; } };
  const uid = name('id -un') || String(process.getuid()), gid = name('id -gn') || String(process.getgid());
  const srv = await startServe(path.join(work, 'quota'),
    ['--user-quota', uid + ':gpumem=12g,gpucores=100,gpus=3', '--group-quota', gid + ':gpus=8']);
  const base = 'http://' + srv.addr;
  run(srv, ['--gpu-type', 'H100', '--gpumem', '4g', '--gpucores', '30', '--', PROBE, 'hold', '256', '600'], 'q1.log');
  run(srv, ['--gpu-type', 'H100', '--gpumem', '7g', '--gpucores', '60', '--', PROBE, 'hold', '256', '600'], 'q2.log');
  await L.waitFor(async () => (await L.getJSON(base + '/v1/slices')).slices.length === 2, 15000);
  run(srv, ['--gpumem', '2g', '--', PROBE, 'hold', '256', '600'], 'q3.log');
  const api = await L.waitFor(async () => {
    const q = await L.getJSON(base + '/ui/api/quotas');
    return q.waiting.total === 1 ? q : null;
  }, 15000, 100);
  check(!!api, 'setup: 2 jobs hold part of the quota, a third waits for it', api);
  if (!api) return;
  const page = await L.newPage(browser);
  await page.goto(base + '/ui/#/quotas', { waitUntil: 'networkidle0' });
  await page.waitForSelector('tr[data-quota]');
  const rows = await page.$$eval('tr[data-quota]', r => r.map(e => [e.dataset.quota, e.className]));
  check(JSON.stringify(rows) === JSON.stringify([['user/' + uid, 'near'], ['group/' + gid, '']]),
        'quotas: the user row (highlighted) and the group row', rows);
  const cell = async dim => page.$eval(`tr[data-quota="user/${uid}"] td[data-dim="${dim}"] .bartext`, e => e.textContent.trim());
  check(await cell('memory') === '11.0 GiB / 12.0 GiB (92 %)', 'user memory: 11.0 GiB / 12.0 GiB (92 %)', await cell('memory'));
  check(await cell('cores') === '90 % / 100 % (90 %)', 'user compute: 90 % / 100 % (90 %)', await cell('cores'));
  check(await cell('gpus') === '2 / 3 (67 %)', 'user GPUs: 2 / 3', await cell('gpus'));
  const u = api.items[0];
  check(u.memory.used === 11264 && u.memory.limit === 12288 && u.memory.near && u.cores.near && !u.gpus.near,
        'quotas API: used / limit per dimension, memory and compute near', u);
  check(await page.$eval(`tr[data-quota="user/${uid}"] .pill`, e => e.textContent) === 'near limit', 'the user row says "near limit"');
  const reasons = await L.texts(page, 'td.reason');
  const want = 'user ' + uid + ' would exceed its gpumem quota: 11/12 GiB used, 2 GiB asked';
  check(reasons.length === 1 && reasons[0] === want && api.waiting.items[0].reason === want,
        'the queued request shows the quota it waits for', reasons);
  await L.axeCheck(page, 'quotas');
  await L.shot(page, SHOTS, 'host-quotas');
  await page.goto(base + '/ui/', { waitUntil: 'networkidle0' });
  await page.waitForSelector('[data-k="quotas-total"]');
  check(await page.$eval('[data-k="quotas-total"]', e => e.textContent.trim()) === '2', 'overview: 2 quotas, linked to the view');
  check(page.problems.length === 0, 'no console errors on the quota views', page.problems);
  await page.close();
}

(async () => {
  const srv = await startServe();
  const base = 'http://' + srv.addr;
  // Two long jobs holding memory, one that fills the A100 and one queued behind it.
  // A runs kernels (compute_probe) against its 30 % limit, so it shows as throttled.
  run(srv, ['--gpu-type', 'H100', '--gpumem', '4g', '--gpucores', '30', '--', process.env.COMPUTE_PROBE, 'loop', '--seconds', '600'], 'a.log');
  run(srv, ['--gpu-type', 'H100', '--gpumem', '8g', '--gpucores', '50', '--', PROBE, 'hold', '3072', '600'], 'b.log');
  run(srv, ['--gpu-type', 'A100', '--gpumem', '30g', '--', PROBE, 'hold', '512', '600'], 'c.log');
  await L.waitFor(async () => (await L.getJSON(base + '/v1/slices')).slices.length === 3, 15000);
  const browser = await L.launch();
  try {
    const page = await L.newPage(browser);
    // Before anything queues (the queue is strict FIFO: a new job would wait behind it).
    await sliceAppearsAndGoes(page, base, srv);
    run(srv, ['--gpu-type', 'A100', '--gpumem', '30g', '--', PROBE, 'hold', '512', '600'], 'd.log');
    const ready = await L.waitFor(async () => {
      const o = await L.getJSON(base + '/ui/api/overview');
      return o.pending.total === 1 && o.memory.used_mib >= 3072 && o.workloads.throttled === 1 ? o : null;
    }, 20000, 200);
    check(!!ready, 'setup: 3 slices holding memory, one at its compute limit, and 1 queued request', ready);
    await overviewMatchesApi(page, base);
    await views(page, base);
    await filtersAndUrls(browser, page, base);
    await quotaEmpty(page, base);
    check(page.problems.length === 0, 'no console errors, page errors or failed requests on any view', page.problems);
    await keyboard(browser, base);
    await tokenFlow(browser, base);
    await quotaView(browser);  // last: it points L.auth at a second daemon
  } finally {
    await browser.close();
  }
  console.log(L.failures.length ? `\n${L.failures.length} check(s) failed` : '\nall checks passed');
  console.log('screenshots in ' + SHOTS);
  L.stopAll();
  fs.rmSync(work, { recursive: true, force: true });
  process.exit(L.failures.length ? 1 : 0);
})().catch(e => { console.error(e); L.stopAll(); process.exit(1); });
