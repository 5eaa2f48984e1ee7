// The dashboard in a real browser (Debian's Chromium through
// playwright-core), against the real sessiond binary that
// tests/api/browser.rs starts. Every check prints "ok - …" on stdout; the
// first failure ends the run with exit code 1. Progress and screenshot
// paths go to stderr.
//
// Environment (set by browser.rs):
//   SESSIOND_URL         the server, e.g. http://127.0.0.1:41234
//   ADMIN_PASSWORD       the first administrator's one-time password
//   USER_NAME, USER_PASSWORD   an ordinary user
//   OTHER_USER           another user (same password) with a few sessions
//   XSS_USER, XSS_NAME, XSS_PASSWORD   a user whose username and name are markup
//   CROSS_ORIGIN         a page origin listed in SESSIOND_CORS_ORIGINS
//   UNLISTED_ORIGIN      a page origin that is not
//   SCREENSHOT_DIR       where screenshots go
//   CHROMIUM             the browser (default /usr/bin/chromium)

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { Authenticator } from './totp.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('SESSIOND_URL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const USER = env('USER_NAME');
const USER_PASSWORD = env('USER_PASSWORD');
const OTHER_USER = env('OTHER_USER');
const XSS_USER = env('XSS_USER');
const XSS_NAME = env('XSS_NAME');
const XSS_PASSWORD = env('XSS_PASSWORD');
const CROSS_ORIGIN = env('CROSS_ORIGIN');
const UNLISTED_ORIGIN = env('UNLISTED_ORIGIN');
const SCREENSHOT_DIR = env('SCREENSHOT_DIR');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
// Markup in a session's Host header: the admin detail panel shows it.
const XSS_HOST = '<img src=x onerror=alert(3)>';

const AGENTS = {
  firefoxWindows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/112.0',
  iphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 16_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.5 Mobile/15E148 Safari/604.1',
  android:
    'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/112.0.0.0 Mobile Safari/537.36',
  chromeMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
  chromeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/113.0.0.0 Safari/537.36',
};
// A device none of the users above has signed in from.
const CHROME_LINUX = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36';

const started = Date.now();
let checks = 0;
const log = (message) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);
function ok(condition, what, detail) {
  if (!condition) {
    throw new Error(`check failed: ${what}${detail === undefined ? '' : `\n  got: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`}`);
  }
  checks += 1;
  process.stdout.write(`ok - ${what}\n`);
}
function same(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  ok(a === e, what, `${a}\n  expected: ${e}`);
}

// ---------------------------------------------------------------- the API from Node

/** One HTTP request from Node, with any Host and User-Agent. */
function request(method, pathname, { body, headers = {} } = {}) {
  const url = new URL(pathname, BASE);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        headers: {
          Accept: 'application/json',
          ...(payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode, headers: res.headers, body: json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const auth = (session) => ({ 'X-User-Id': session.userId, 'X-Auth-Token': session.authToken });

async function apiLogin(user, password, { agent = AGENTS.chromeWindows, host } = {}) {
  const headers = { 'User-Agent': agent };
  if (host) headers.Host = host;
  const res = await request('POST', '/api/v1/login', { body: { user, password }, headers });
  if (res.status !== 200) throw new Error(`login as ${user}: ${res.status} ${res.text}`);
  const session = { userId: res.body.data.userId, authToken: res.body.data.authToken };
  const list = await request('GET', '/api/v1/sessions/list?count=100', { headers: auth(session) });
  session.sessionId = list.body.sessions.find((s) => s.current).sessionId;
  return session;
}

const meStatus = async (session) => (await request('GET', '/api/v1/me', { headers: auth(session) })).status;

async function listAll(session, query) {
  const params = new URLSearchParams(query);
  const res = await request('GET', `/api/v1/sessions/list.all?${params}`, { headers: auth(session) });
  if (res.status !== 200 && res.status !== 400) throw new Error(`list.all: ${res.status} ${res.text}`);
  return res;
}

// ---------------------------------------------------------------- the browser

const problems = [];
const dialogs = [];

async function openPage(context, name, width = 1280) {
  const page = await context.newPage();
  await page.setViewportSize({ width, height: 900 });
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy|CSP violation/i.test(text)) problems.push(`${name}: console: ${text}`);
  });
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('dialog', async (dialog) => {
    dialogs.push(`${name}: ${dialog.type()} ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  return page;
}

async function screenshot(page, name) {
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  process.stderr.write(`screenshot: ${file}\n`);
  return file;
}

async function noHorizontalScroll(page, what) {
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  ok(widths[0] <= widths[1], `${what}: nothing wider than the ${widths[1]} px window`, widths);
}

/** The texts of one column of the visible data table. */
async function column(scope, label) {
  return scope.locator(`table.data tbody td[data-label="${label}"]`).allTextContents();
}

async function sessionIdsOnPage(page) {
  return page.locator('table.data tbody button[data-session-id]').evaluateAll((buttons) => buttons.map((b) => b.dataset.sessionId));
}

async function pagerSummary(page) {
  return (await page.locator('.pager-summary').first().textContent()).trim();
}

/** Waits until the list's last request is answered and drawn. */
async function settled(page) {
  await page.locator('.results[aria-busy="false"]').first().waitFor();
  await page.waitForFunction(() => !document.querySelector('.results[aria-busy="true"]'));
}

async function signIn(page, username, password) {
  await page.goto(`${BASE}/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function confirmIn(page, buttonName) {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByRole('button', { name: buttonName }).click();
  await dialog.waitFor({ state: 'detached' });
}

async function enrollThroughPage(page) {
  await page.getByRole('button', { name: 'Set up two-factor authentication' }).click();
  const qr = page.getByRole('img', { name: 'QR code of the two-factor secret' });
  await qr.waitFor();
  const qrState = await qr.evaluate((img) => ({ src: img.getAttribute('src').slice(0, 22), width: img.naturalWidth }));
  ok(qrState.src === 'data:image/png;base64,' && qrState.width > 0, 'the QR code is shown as an image from its data URL', qrState);
  const secret = (await page.locator('code[data-secret]').textContent()).trim();
  ok(/^[A-Z2-7]{16,}=*$/.test(secret), 'the secret is shown in base32', secret);
  const authenticator = new Authenticator(secret);
  await page.getByLabel('Code from the app').fill(await authenticator.next());
  await page.getByRole('button', { name: 'Turn on' }).click();
  const codeList = page.getByRole('list', { name: 'Backup codes' });
  await codeList.waitFor();
  const codes = await codeList.locator('li').allTextContents();
  ok(codes.length === 10 && codes.every((c) => /^[a-z0-9]{5}-[a-z0-9]{5}$/.test(c.trim())), 'ten backup codes are shown once', codes);
  await page.getByRole('button', { name: 'I have saved the codes' }).click();
  await page.locator('.badge.on').waitFor();
  return { authenticator, backupCodes: codes.map((c) => c.trim()) };
}

async function main() {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });

  // ------------------------------------------------ sessions made through the API
  log('opening sessions through the API');
  const health = await request('GET', '/healthz');
  ok(health.status === 200, 'the server answers');
  const alice = {
    firefox: await apiLogin(USER, USER_PASSWORD, { agent: AGENTS.firefoxWindows }),
    iphone: await apiLogin(USER, USER_PASSWORD, { agent: AGENTS.iphone }),
    android: await apiLogin(USER, USER_PASSWORD, { agent: AGENTS.android }),
  };
  const agents = Object.values(AGENTS);
  const mallory = [];
  for (let i = 0; i < 28; i += 4) {
    mallory.push(...(await Promise.all([0, 1, 2, 3].map((j) => apiLogin(XSS_USER, XSS_PASSWORD, { agent: agents[(i + j) % agents.length] })))));
  }
  const marked = await apiLogin(XSS_USER, XSS_PASSWORD, { agent: AGENTS.chromeMac, host: XSS_HOST });
  // A few at a time: each attempt is charged as a failure until its password
  // checks out, and the server refuses a sixth for the same user meanwhile.
  const bob = [];
  for (const agent of agents) bob.push(await apiLogin(OTHER_USER, USER_PASSWORD, { agent }));
  log(`opened ${3 + mallory.length + 1 + bob.length} sessions`);

  const userDataDir = mkdtempSync(path.join(tmpdir(), 'sessiond-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    timezoneId: 'Europe/Berlin',
  });
  // Report CSP violations from inside each page too, not only Chromium's own console lines.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
    });
  });
  try {
    await run(context, { alice, mallory, marked });
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

async function run(context, { alice, mallory, marked }) {
  // ------------------------------------------------ the user: sign in, devices
  log('user: signing in');
  const userPage = await openPage(context, 'user');
  const first = await userPage.goto(`${BASE}/`);
  ok(userPage.url() === `${BASE}/dashboard/#/login`, '/ redirects to /dashboard/ and on to the sign-in page', userPage.url());
  const headers = first.headers();
  ok(headers['content-security-policy']?.includes("script-src 'self'"), 'the page is served with its CSP', headers['content-security-policy']);
  ok(headers['x-content-type-options'] === 'nosniff' && headers['referrer-policy'] === 'no-referrer', 'nosniff and no-referrer are set');
  await userPage.getByRole('heading', { name: 'Sign in' }).waitFor();
  await screenshot(userPage, 'login-1280');

  await userPage.getByLabel('Username').fill(USER);
  await userPage.getByLabel('Password').fill('not the password');
  await userPage.getByRole('button', { name: 'Sign in' }).click();
  await userPage.getByText('Wrong username or password.').waitFor();
  ok(true, 'a wrong password is refused with a message');

  await userPage.getByLabel('Password').fill(USER_PASSWORD);
  await userPage.getByRole('button', { name: 'Sign in' }).click();
  await userPage.getByRole('heading', { name: 'My devices' }).waitFor();
  await settled(userPage);
  const storage = await userPage.evaluate(() => ({
    session: JSON.parse(sessionStorage.getItem('sessiond.credentials') ?? 'null'),
    local: localStorage.length,
    cookie: document.cookie,
  }));
  ok(storage.session?.authToken && storage.local === 0 && storage.cookie === '', 'the token is kept in sessionStorage only', storage);
  const userSession = storage.session;
  ok(!(await userPage.getByRole('link', { name: 'All sessions' }).count()), 'a user sees no administration pages');

  same((await column(userPage, 'Device')).length, 4, 'my devices lists the three API sessions and this one');
  same(await userPage.locator('.badge', { hasText: 'This device' }).count(), 1, 'exactly one row is marked "This device"');
  const ownList = await request('GET', '/api/v1/sessions/list?count=100', { headers: auth(userSession) });
  const newOnes = ownList.body.sessions.filter((s) => s.newDevice).length;
  ok(newOnes > 0 && (await userPage.locator('table.data .badge.new-device').count()) === newOnes, 'the new-device badge marks the sessions the API marks on My devices', newOnes);
  await userPage.locator('.live[data-state="live"]').waitFor();
  ok(true, 'My devices shows that it is live');
  const devices = await column(userPage, 'Device');
  ok(devices.some((d) => d.startsWith('Safari')) && devices.some((d) => d.startsWith('Firefox')), 'devices show their browser names', devices);
  const when = await userPage.locator('table.data tbody time').first().evaluate((t) => ({ title: t.title, text: t.textContent }));
  ok(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(when.title) && !when.text.includes('T'), 'times are local, with the UTC ISO value in the title', when);
  ok((await pagerSummary(userPage)).startsWith('Rows 1–4 of 4'), 'the total is shown', await pagerSummary(userPage));

  // Sort by OS, both ways, and compare with the server's own order.
  await userPage.locator('th button.sort[data-sort-key="device.os.name"]').click();
  await settled(userPage);
  same(await userPage.locator('th[aria-sort="ascending"]').textContent(), 'OS▲', 'sorting by OS marks the column ascending');
  const osAsc = await column(userPage, 'OS');
  const apiOs = await request('GET', `/api/v1/sessions/list?sort=${encodeURIComponent('{"device.os.name":1}')}`, { headers: auth(userSession) });
  same(osAsc, apiOs.body.sessions.map((s) => s.device.os.name || '—'), 'the OS column is in the server\'s ascending order');

  // Filter, and a filter the server refuses.
  await userPage.getByLabel('Filter (regular expression)').fill('iphone|ios');
  await userPage.getByRole('button', { name: 'Apply filter' }).click();
  await settled(userPage);
  same(await column(userPage, 'OS'), ['iPhone'], 'a regex filter narrows the list');
  await userPage.getByLabel('Filter (regular expression)').fill('(');
  await userPage.getByRole('button', { name: 'Apply filter' }).click();
  const filterError = userPage.locator('.field-error');
  await filterError.filter({ hasText: /./ }).waitFor();
  const refused = await request('GET', '/api/v1/sessions/list?filter=(', { headers: auth(userSession) });
  same(await filterError.textContent(), refused.body.error, 'a bad regex shows the server\'s 400 message beside the filter');
  ok((await userPage.getByLabel('Filter (regular expression)').getAttribute('aria-invalid')) === 'true', 'the filter box is marked invalid');
  await userPage.getByRole('button', { name: 'Clear' }).click();
  await settled(userPage);
  same((await column(userPage, 'Device')).length, 4, 'clearing the filter shows every device again');
  await screenshot(userPage, 'devices-1280');

  // End one session (the iPhone).
  log('user: ending one session, then the others');
  await userPage.getByRole('button', { name: `End the session on Safari (${alice.iphone.sessionId})`, exact: true }).click();
  await confirmIn(userPage, 'End session');
  await userPage.getByText(`Ended the session ${alice.iphone.sessionId}.`).waitFor();
  await settled(userPage);
  same((await column(userPage, 'Device')).length, 3, 'the ended session leaves the list');
  same(await meStatus(alice.iphone), 401, 'the ended session\'s token is refused by the API');
  same(await meStatus(alice.firefox), 200, 'the other sessions still work');

  // Sign out all other devices.
  await userPage.getByRole('button', { name: 'Sign out all other devices' }).click();
  await confirmIn(userPage, 'Sign out other devices');
  await userPage.getByText('Signed out 2 other sessions.').waitFor();
  await settled(userPage);
  same((await column(userPage, 'Device')).length, 1, 'only this device is left');
  same([await meStatus(alice.firefox), await meStatus(alice.android), await meStatus(userSession)], [401, 401, 200], 'the other tokens are refused, this one works');

  // Narrow screen.
  await userPage.setViewportSize({ width: 375, height: 800 });
  await noHorizontalScroll(userPage, 'my devices at 375 px');
  await screenshot(userPage, 'devices-375');
  await userPage.setViewportSize({ width: 1280, height: 900 });

  // Two-factor authentication: enroll, sign out, sign in with a code, turn it off with a backup code.
  log('user: two-factor set-up');
  const userTotp = await enrollThroughPage(userPage);
  ok(true, 'the user enrolls TOTP with a computed code');
  await userPage.getByRole('button', { name: 'Sign out', exact: true }).click();
  await userPage.getByRole('heading', { name: 'Sign in' }).waitFor();
  await userPage.getByText('You have signed out.').waitFor();
  same(await meStatus(userSession), 401, 'signing out ends the session on the server');
  same(await userPage.evaluate(() => sessionStorage.length), 0, 'signing out forgets the token');

  // Keyboard only: type, Tab, Enter.
  await userPage.keyboard.type(USER);
  await userPage.keyboard.press('Tab');
  await userPage.keyboard.type(USER_PASSWORD);
  await userPage.keyboard.press('Enter');
  const codeBox = userPage.getByLabel('Two-factor code');
  await codeBox.waitFor();
  ok(await codeBox.evaluate((input) => input === document.activeElement), 'a TOTP account is asked for a code, with the focus on it');
  await userPage.keyboard.type(await userTotp.authenticator.next());
  await userPage.keyboard.press('Enter');
  await userPage.getByRole('heading', { name: 'My devices' }).waitFor();
  ok(true, 'signing in with a computed TOTP code works, by keyboard alone');
  await userPage.keyboard.press('Tab');
  const focused = await userPage.evaluate(() => {
    const active = document.activeElement;
    const style = getComputedStyle(active);
    return { tag: active.tagName, outline: style.outlineStyle, width: style.outlineWidth };
  });
  ok(focused.outline !== 'none' && focused.width !== '0px', 'keyboard focus is visible', focused);

  await userPage.getByLabel('Code (from the app, or a backup code)').fill(userTotp.backupCodes[0]);
  await userPage.getByRole('button', { name: 'Turn off' }).click();
  await userPage.getByText('Two-factor authentication is now off.').waitFor();
  ok(true, 'a backup code turns two-factor authentication off');
  const userSession2 = await userPage.evaluate(() => JSON.parse(sessionStorage.getItem('sessiond.credentials')));

  // ------------------------------------------------ the administrator
  log('admin: signing in');
  const adminPage = await openPage(context, 'admin');
  await signIn(adminPage, 'admin', ADMIN_PASSWORD);
  await adminPage.getByRole('heading', { name: 'My devices' }).waitFor();
  await adminPage.getByRole('link', { name: 'All sessions' }).click();
  await adminPage.getByText(/not set up for your account yet/).waitFor();
  ok(true, 'without TOTP the admin pages say to set it up first');

  await adminPage.getByRole('link', { name: 'My devices' }).click();
  await adminPage.getByRole('heading', { name: 'My devices' }).waitFor();
  const adminTotp = await enrollThroughPage(adminPage);
  ok(true, 'the admin enrolls TOTP through the page');
  const admin = await adminPage.evaluate(() => JSON.parse(sessionStorage.getItem('sessiond.credentials')));

  log('admin: the two-factor prompt');
  await adminPage.getByRole('link', { name: 'All sessions' }).click();
  let prompt = adminPage.getByRole('dialog', { name: 'Two-factor code' });
  await prompt.waitFor();
  ok(true, 'the admin list asks for a two-factor code');
  await prompt.getByLabel(/Code from your authenticator app/).fill(adminTotp.authenticator.wrongCode());
  await prompt.getByRole('button', { name: 'Continue' }).click();
  prompt = adminPage.getByRole('dialog', { name: 'Two-factor code' });
  await prompt.getByText(/wrong or was already used/).waitFor();
  ok(true, 'a wrong code is refused and asked again');
  await prompt.getByLabel(/Code from your authenticator app/).fill(await adminTotp.authenticator.next());
  await prompt.getByRole('button', { name: 'Continue' }).click();
  await prompt.waitFor({ state: 'detached' });
  await settled(adminPage);
  ok(true, 'a good code passes the prompt');

  // Live updates: sessions another client starts appear while the admin
  // watches, with nothing clicked.
  log('admin: live updates');
  await adminPage.locator('.live[data-state="live"]').waitFor();
  ok(true, 'All sessions shows that it is live');
  const rowOf = (sessionId) =>
    adminPage.locator('table.data tbody tr').filter({ has: adminPage.locator(`button[data-session-id="${sessionId}"]`) });
  const newcomer = await apiLogin(OTHER_USER, USER_PASSWORD, { agent: CHROME_LINUX });
  await rowOf(newcomer.sessionId).waitFor();
  ok(true, 'a session started by another client appears without a reload');
  same(await rowOf(newcomer.sessionId).locator('.badge.new-device').allTextContents(), ['New device'], 'the new-device badge shows on All sessions');
  const returning = await apiLogin(OTHER_USER, USER_PASSWORD, { agent: AGENTS.firefoxLinux });
  await rowOf(returning.sessionId).waitFor();
  same(await rowOf(returning.sessionId).locator('.badge.new-device').count(), 0, 'a device the user has used before has no badge');
  for (const session of [newcomer, returning]) {
    const out = await request('POST', '/api/v1/logout', { headers: auth(session), body: {} });
    ok(out.status === 200, 'a session logs out through the API', out.text);
  }
  await rowOf(newcomer.sessionId).waitFor({ state: 'detached' });
  await rowOf(returning.sessionId).waitFor({ state: 'detached' });
  ok(true, 'sessions ended elsewhere leave the page without a reload');
  await settled(adminPage);

  // Page size 10 and the totals.
  await adminPage.getByLabel('Rows per page').selectOption('10');
  await settled(adminPage);
  const everyone = (await listAll(admin, { count: 1 })).body.total;
  ok(everyone >= 25, 'there are enough sessions for several pages', everyone);
  const pages = Math.ceil(everyone / 10);
  ok((await pagerSummary(adminPage)).startsWith(`Rows 1–10 of ${everyone} · page 1 of ${pages}`), 'the total and the page count are shown', await pagerSummary(adminPage));

  // Markup in usernames and names shows as text.
  const xssCells = await adminPage.locator('table.data tbody td[data-label="User"]', { hasText: XSS_USER }).count();
  ok(xssCells > 0, 'a username that is markup is shown literally');
  ok((await adminPage.locator('table.data tbody td[data-label="Name"]', { hasText: XSS_NAME }).count()) > 0, 'a name that is markup is shown literally');
  same(await adminPage.locator('img:not(.qr)').count(), 0, 'no element was made from the markup');

  // Every page forwards, then back.
  log('admin: paging to the end and back');
  const firstPage = await sessionIdsOnPage(adminPage);
  const seen = [...firstPage];
  for (let page = 2; page <= pages; page += 1) {
    await adminPage.getByRole('button', { name: 'Next →' }).click();
    await settled(adminPage);
    ok((await pagerSummary(adminPage)).includes(`page ${page} of ${pages}`), `page ${page} of ${pages}`, await pagerSummary(adminPage));
    seen.push(...(await sessionIdsOnPage(adminPage)));
  }
  ok(await adminPage.getByRole('button', { name: 'Next →' }).isDisabled(), 'Next is disabled on the last page');
  same(new Set(seen).size, everyone, 'the pages together hold every session once');
  const newestFirst = (await listAll(admin, { count: 100, sort: '{"loginAt":-1}' })).body.sessions.map((s) => s.sessionId);
  same(seen, newestFirst, 'the pages follow the server\'s order');
  await screenshot(adminPage, 'sessions-last-page-1280');
  for (let page = pages - 1; page >= 1; page -= 1) {
    await adminPage.getByRole('button', { name: '← Previous' }).click();
    await settled(adminPage);
  }
  same(await sessionIdsOnPage(adminPage), firstPage, 'Previous leads back to the first page');
  ok(await adminPage.getByRole('button', { name: '← Previous' }).isDisabled(), 'Previous is disabled on the first page');

  // Every sort key, ascending and descending, against the server's order.
  log('admin: sorting');
  const sortColumns = [
    ['User', '_user.username'],
    ['Name', '_user.name'],
    ['Device', 'device.name'],
    ['OS', 'device.os.name'],
    ['OS version', 'device.os.version'],
    ['Signed in', 'loginAt'],
  ];
  for (const [label, key] of sortColumns) {
    const header = adminPage.locator(`th button.sort[data-sort-key="${key}"]`);
    await header.click();
    await settled(adminPage);
    let direction = await adminPage.locator(`th:has(button[data-sort-key="${key}"])`).getAttribute('aria-sort');
    let dir = direction === 'ascending' ? 1 : -1;
    same(await sessionIdsOnPage(adminPage), (await listAll(admin, { count: 10, sort: JSON.stringify({ [key]: dir }) })).body.sessions.map((s) => s.sessionId), `sorted by ${label} (${direction})`);
    await header.click();
    await settled(adminPage);
    direction = await adminPage.locator(`th:has(button[data-sort-key="${key}"])`).getAttribute('aria-sort');
    dir = direction === 'ascending' ? 1 : -1;
    same(await sessionIdsOnPage(adminPage), (await listAll(admin, { count: 10, sort: JSON.stringify({ [key]: dir }) })).body.sessions.map((s) => s.sessionId), `sorted by ${label} (${direction})`);
  }

  // Filters: one that matches, one the server refuses.
  log('admin: filtering');
  const filterBox = adminPage.getByLabel('Filter (regular expression)');
  await filterBox.fill('iphone|android');
  await adminPage.getByRole('button', { name: 'Apply filter' }).click();
  await settled(adminPage);
  const filtered = (await listAll(admin, { count: 1, filter: 'iphone|android' })).body.total;
  ok(filtered > 0 && (await pagerSummary(adminPage)).includes(`of ${filtered} ·`), 'a regex filter shows the server\'s matching total', await pagerSummary(adminPage));
  const filteredOs = await column(adminPage, 'OS');
  ok(filteredOs.every((os) => /iphone|android/i.test(os)), 'only matching sessions are listed', filteredOs);
  await filterBox.fill('(');
  await adminPage.getByRole('button', { name: 'Apply filter' }).click();
  const adminFilterError = adminPage.locator('.field-error').filter({ hasText: /./ });
  await adminFilterError.waitFor();
  same(await adminFilterError.textContent(), (await listAll(admin, { filter: '(' })).body.error, 'a bad regex shows the server\'s message on All sessions');
  await filterBox.fill('[0-9]{2}\\d');
  await adminPage.getByRole('button', { name: 'Apply filter' }).click();
  await adminFilterError.filter({ hasText: '\\d' }).waitFor();
  ok(true, 'a construct the server refuses is named in its message');

  // The picture in the README: a filter over user names and one session's details.
  await filterBox.fill(`${OTHER_USER}|${USER}|admin`);
  await adminPage.getByRole('button', { name: 'Apply filter' }).click();
  await settled(adminPage);
  const shown = await sessionIdsOnPage(adminPage);
  const named = (await listAll(admin, { count: 10, filter: `${OTHER_USER}|${USER}|admin`, sort: JSON.stringify({ loginAt: 1 }) })).body;
  same(shown, named.sessions.map((s) => s.sessionId), 'a filter over user names lists their sessions');
  const owners = new Set(await column(adminPage, 'User'));
  ok([...owners].every((u) => [OTHER_USER, USER, 'admin'].includes(u)) && owners.size === 3, 'only those users\' sessions are listed', [...owners]);
  await adminPage.getByRole('button', { name: `Details of session ${shown[0]}`, exact: true }).click();
  await adminPage.getByRole('complementary', { name: `Session ${shown[0]}` }).locator('dl').waitFor();
  await screenshot(adminPage, 'dashboard-1280');

  // The session with markup in its Host: detail panel, then end it.
  log('admin: details and ending a session');
  await filterBox.fill(marked.sessionId);
  await adminPage.getByRole('button', { name: 'Apply filter' }).click();
  await settled(adminPage);
  same(await sessionIdsOnPage(adminPage), [marked.sessionId], 'filtering by a session id finds that session');
  await adminPage.getByRole('button', { name: `Details of session ${marked.sessionId}`, exact: true }).click();
  const detail = adminPage.getByRole('complementary', { name: `Session ${marked.sessionId}` });
  await detail.locator('dl').waitFor();
  const hostValue = await detail.locator('dt:text-is("Host") + dd').textContent();
  same(hostValue, XSS_HOST, 'the detail panel shows a Host header that is markup as text');
  same(await detail.locator('dt:text-is("Ended") + dd').textContent(), 'Active', 'the session is active');
  same(await detail.locator('dt:text-is("User") + dd').textContent(), `${XSS_USER} (${XSS_NAME})`, 'the detail panel names the owner, markup as text');
  await screenshot(adminPage, 'sessions-detail-1280');
  await detail.getByRole('button', { name: 'End this session' }).click();
  await confirmIn(adminPage, 'End session');
  await adminPage.getByText(`Ended the session ${marked.sessionId}.`).waitFor();
  const endedAt = await detail.locator('dt:text-is("Ended") + dd time').getAttribute('datetime');
  ok(Math.abs(Date.parse(endedAt) - Date.now()) < 60_000, 'the detail panel shows when the session ended', endedAt);
  same(await detail.getByRole('button', { name: 'End this session' }).count(), 0, 'an ended session offers no end button');
  same(await meStatus(marked), 401, 'the token of the session the admin ended is refused');
  await settled(adminPage);
  await adminPage.locator('.results .empty').waitFor();
  same(await column(adminPage, 'Device'), [], 'the ended session leaves the list');
  await adminPage.getByRole('button', { name: 'Clear' }).click();
  await settled(adminPage);
  const firstId = (await sessionIdsOnPage(adminPage))[0];
  await adminPage.getByRole('button', { name: `Details of session ${firstId}`, exact: true }).click();
  await adminPage.getByRole('complementary', { name: `Session ${firstId}` }).locator('dl').waitFor();
  await screenshot(adminPage, 'sessions-1280');

  await adminPage.setViewportSize({ width: 375, height: 800 });
  await noHorizontalScroll(adminPage, 'all sessions at 375 px');
  await screenshot(adminPage, 'sessions-375');
  await adminPage.setViewportSize({ width: 1280, height: 900 });

  // Answers the page must explain: 429 and 503 (served by the test in place of the API).
  const listAllUrl = (url) => url.pathname === '/api/v1/sessions/list.all';
  log('admin: 429 and 503');
  await adminPage.route(listAllUrl, (route) =>
    route.fulfill({ status: 429, headers: { 'Retry-After': '7', 'Content-Type': 'application/json' }, body: '{"success":false,"error":"busy [error-too-many-requests]","errorType":"error-too-many-requests"}' }),
  );
  await adminPage.getByRole('button', { name: 'Next →' }).click();
  await adminPage.getByText(/Too many requests\. Retry in 7 seconds \(at /).waitFor();
  ok(true, '429 says when to retry, from Retry-After');
  await adminPage.unroute(listAllUrl);
  await adminPage.route(listAllUrl, (route) =>
    route.fulfill({ status: 503, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' }, body: '{"success":false,"error":"The session store is temporarily unavailable; retry shortly [error-unavailable]","errorType":"error-unavailable"}' }),
  );
  await adminPage.getByRole('button', { name: 'Retry' }).click();
  await adminPage.getByText(/The session store is unavailable right now\. Retry shortly/).waitFor();
  ok(true, '503 says the store is unavailable');
  await adminPage.unroute(listAllUrl);
  await adminPage.getByRole('button', { name: 'Retry' }).click();
  await settled(adminPage);
  ok((await sessionIdsOnPage(adminPage)).length > 0, 'Retry loads the list once the server answers again');

  // Users: the admin API.
  log('admin: users');
  await adminPage.getByRole('link', { name: 'Users' }).click();
  await adminPage.getByRole('heading', { name: 'Users', exact: true }).waitFor();
  await settled(adminPage);
  const usersRes = await request('GET', '/api/admin/v1/authenticated-sessions/list?page=1&pageSize=20', { headers: auth(admin) });
  const userNames = await column(adminPage, 'User name');
  same(userNames, usersRes.body.map((u) => u.UserName), 'the users list matches the admin API');
  ok(userNames.includes(XSS_USER), 'a username that is markup is shown literally on Users');
  ok((await pagerSummary(adminPage)).includes(`of ${usersRes.headers['x-total-count']} ·`), 'the total comes from X-Total-Count', await pagerSummary(adminPage));
  const malloryRow = usersRes.body.find((u) => u.UserName === XSS_USER);
  const operatorCells = await column(adminPage, 'Operator');
  same(operatorCells[userNames.indexOf('admin')], 'Operator', 'the admin is marked as an operator');

  await adminPage.getByRole('button', { name: `Sessions of ${XSS_USER}`, exact: true }).click();
  const panel = adminPage.locator('section.user-sessions');
  await panel.locator('table.data').waitFor();
  const userSessionsRes = await request('GET', `/api/admin/v1/authenticated-sessions/user-sessions/${malloryRow.UserGuid}?page=1&pageSize=10`, { headers: auth(admin) });
  same(await column(panel, 'ID'), userSessionsRes.body.map((s) => String(s.ID)), 'a user\'s sessions come from the admin API');
  ok((await panel.locator('.pager-summary').textContent()).includes(`of ${malloryRow.SessionCount} ·`), 'the user\'s session total is shown');
  await screenshot(adminPage, 'users-1280');
  const revokeId = userSessionsRes.body[0].ID;
  await panel.getByRole('button', { name: `Revoke session ${revokeId}`, exact: true }).click();
  await confirmIn(adminPage, 'Revoke session');
  await adminPage.getByText(`Revoked session ${revokeId}.`).waitFor();
  await settled(adminPage);
  const after = await request('GET', `/api/admin/v1/authenticated-sessions/user-sessions/${malloryRow.UserGuid}?page=1&pageSize=100`, { headers: auth(admin) });
  ok(Array.isArray(after.body), 'the admin API answers', after.text);
  ok(!after.body.some((s) => s.ID === revokeId) && after.body.length === malloryRow.SessionCount - 1, 'revoking one session ends it', after.body.length);

  await adminPage.setViewportSize({ width: 375, height: 800 });
  await noHorizontalScroll(adminPage, 'users at 375 px');
  await screenshot(adminPage, 'users-375');
  await adminPage.setViewportSize({ width: 1280, height: 900 });

  await adminPage.getByRole('button', { name: `Revoke all sessions of ${USER}`, exact: true }).click();
  await confirmIn(adminPage, 'Revoke all');
  await adminPage.getByText(`Revoked 1 session of ${USER}.`).waitFor();
  await settled(adminPage);
  ok(!(await column(adminPage, 'User name')).includes(USER), 'a user with no session left leaves the list');
  same(await meStatus(userSession2), 401, 'revoking all of a user\'s sessions ends them');

  // The user's page, its session revoked, goes back to sign-in by itself:
  // its live feed hears the session end, and the next request gets 401.
  await userPage.getByRole('heading', { name: 'Sign in' }).waitFor();
  await userPage.getByText('Your session has ended. Sign in again.').waitFor();
  ok(true, 'a 401 sends the page back to sign-in');
  same(await userPage.evaluate(() => sessionStorage.length), 0, 'and forgets the token');

  await userPage.setViewportSize({ width: 375, height: 800 });
  await noHorizontalScroll(userPage, 'sign-in at 375 px');
  await screenshot(userPage, 'login-375');

  // ------------------------------------------------ other origins
  log('cross-origin pages');
  const crossPage = await context.newPage();
  await crossPage.goto(`${CROSS_ORIGIN}/`);
  const listed = await crossPage.evaluate((args) => window.crossOriginCheck(args), { api: BASE, user: XSS_USER, password: XSS_PASSWORD });
  ok(listed.ok && listed.loginStatus === 200 && listed.listStatus === 200 && listed.current === 1 && listed.total > 0, `a page on ${CROSS_ORIGIN} (listed in SESSIOND_CORS_ORIGINS) logs in and lists sessions`, listed);
  ok(typeof listed.requestId === 'string' && listed.requestId.length > 0, 'exposed headers are readable cross-origin', listed);
  const unlistedPage = await context.newPage();
  await unlistedPage.goto(`${UNLISTED_ORIGIN}/`);
  const before = (await listAll(admin, { count: 1 })).body.total;
  const blocked = await unlistedPage.evaluate((args) => window.crossOriginCheck(args), { api: BASE, user: XSS_USER, password: XSS_PASSWORD });
  ok(!blocked.ok && /TypeError/.test(blocked.error) && blocked.loginStatus === undefined, `the browser blocks a page on ${UNLISTED_ORIGIN} (not listed)`, blocked);
  same((await listAll(admin, { count: 1 })).body.total, before, 'the blocked login opened no session (its preflight was refused)');
  await crossPage.close();
  await unlistedPage.close();

  // ------------------------------------------------ nothing went wrong on the way
  same(dialogs, [], 'no dialog (alert, confirm, prompt) ever fired');
  same(problems, [], 'no CSP violation and no script error in any page');
}

const deadline = setTimeout(() => {
  process.stderr.write('the browser test took longer than 150 s\n');
  process.exit(1);
}, 150_000);

try {
  await main();
  clearTimeout(deadline);
  process.stdout.write(`all ${checks} browser checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
} catch (error) {
  clearTimeout(deadline);
  process.stderr.write(`${error.stack ?? error}\n`);
  if (problems.length) process.stderr.write(`page problems:\n  ${problems.join('\n  ')}\n`);
  process.stdout.write(`FAILED after ${checks} checks: ${error.message}\n`);
  process.exit(1);
}
