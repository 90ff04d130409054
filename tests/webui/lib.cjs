// Helpers of the browser tests (tests/webui/*.cjs): processes, HTTP, the browser, checks.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const failures = [];
function check(cond, what, detail) {
  if (cond) {
    console.log('ok   ' + what);
  } else {
    console.log('FAIL ' + what + (detail !== undefined ? ': ' + JSON.stringify(detail) : ''));
    failures.push(what);
  }
  return cond;
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function waitFor(pred, timeoutMs, stepMs = 50) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) return v;
    await sleep(stepMs);
  }
}

const children = [];
function start(cmd, args, opts = {}) {
  const log = opts.log ? fs.openSync(opts.log, 'a') : 'ignore';
  const p = spawn(cmd, args, { env: { ...process.env, ...(opts.env || {}) },
                                stdio: ['ignore', log, log], detached: false });
  p.exited = new Promise(res => p.on('exit', (code, sig) => res(code === null ? 128 : code)));
  children.push(p);
  return p;
}
function stopAll() {
  for (const p of children) if (p.exitCode === null) p.kill('SIGKILL');
}
process.on('exit', stopAll);

// The API token of `hami serve --listen-tcp` (docs/single-host.md), sent by getJSON as a
// bearer token and given to every page as the hami_token cookie.
const auth = { token: '', base: '' };
async function getJSON(url) {
  const r = await fetch(url, auth.token ? { headers: { Authorization: 'Bearer ' + auth.token } } : {});
  return r.json();
}

async function launch() {
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  return puppeteer.launch({
    executablePath: exe,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
           '--disable-extensions', '--font-render-hinting=none'],
  });
}

// A page that records console errors, uncaught exceptions and failed requests.
async function newPage(browser, withToken = true) {
  const page = await browser.newPage();
  if (auth.token && withToken) {
    await page.setCookie({ name: 'hami_token', value: auth.token, url: auth.base, sameSite: 'Strict' });
  }
  await page.setViewport({ width: 1280, height: 860 });
  await page.setBypassCSP(true);  // axe-core is injected as an inline script
  page.problems = [];
  page.on('console', m => { if (m.type() === 'error') page.problems.push('console: ' + m.text()); });
  page.on('pageerror', e => page.problems.push('pageerror: ' + e.message));
  page.on('requestfailed', r => page.problems.push('requestfailed: ' + r.url()));
  page.on('response', r => { if (r.status() >= 400) page.problems.push('HTTP ' + r.status() + ' ' + r.url()); });
  return page;
}

const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
// WCAG 2.x A and AA rules (labels, names, contrast, landmarks, ARIA use).
async function axeCheck(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ content: AXE });
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } });
    return r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').slice(0, 160)) }));
  });
  check(res.length === 0, 'axe-core (WCAG 2 A/AA) finds no violation on ' + what, res);
}

async function shot(page, dir, name) {
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name + '.png'), fullPage: true });
}

// The text of every element matching `sel`, as numbers where they parse.
async function texts(page, sel) {
  return page.$$eval(sel, els => els.map(e => e.textContent.trim()));
}

function fmtMiB(m) {  // same as the page's widgets.js
  if (m == null) return '?';
  if (Math.abs(m) >= 1024 * 1024) return (m / 1024 / 1024).toFixed(1) + ' TiB';
  if (Math.abs(m) >= 1024) return (m / 1024).toFixed(m % 1024 === 0 && m < 10240 ? 0 : 1) + ' GiB';
  return Math.round(m) + ' MiB';
}

module.exports = { auth, check, failures, sleep, waitFor, start, stopAll, getJSON, launch, newPage,
                   axeCheck, shot, texts, fmtMiB };
