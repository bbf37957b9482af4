// End-to-end check of the clinic web app in a real headless Chromium (Debian's, driven
// by playwright-core), against a running node: `node e2e/run.mjs <base-url>`.
//
// The node must serve the demo clinic, enrolled with a hub that the caller can stop and
// start: when this script prints `HUB_DOWN` it waits for a line on stdin once the hub is
// gone, and likewise for `HUB_UP`. Screenshots go to $HEALSYNC_SHOTS (default
// ../../target/web-screenshots). Every request must stay on loopback; the run fails
// otherwise. Exit status 0 only when every step passed.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

const base = process.argv[2];
const password = process.env.HEALSYNC_E2E_PASSWORD;
if (!base || !password) {
  console.error('usage: HEALSYNC_E2E_PASSWORD=... node e2e/run.mjs http://127.0.0.1:PORT');
  process.exit(2);
}
const shots = process.env.HEALSYNC_SHOTS ?? new URL('../../../target/web-screenshots', import.meta.url).pathname;
mkdirSync(shots, { recursive: true });
const WAIT = 20_000;
const SYNC_WAIT = 120_000;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(what);
  const { value, done } = await lines.next();
  if (done || value.trim() !== 'ok') throw new Error(`the harness did not confirm ${what}: ${value}`);
}

function step(name) {
  console.log(`step: ${name}`);
}

/** GraphQL over HTTP as `username`, for setting up and checking what the screens show. */
async function api(token, query, variables = {}) {
  const resp = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await resp.json();
  if (body.errors) throw new Error(`${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}
const loginApi = async (u) =>
  (await api(null, 'mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }', { u, p: password })).login.token;

const loopback = (url) => {
  const u = new URL(url);
  return ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || u.protocol === 'data:' || u.protocol === 'blob:';
};
const outside = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-default-apps',
    '--disable-features=Translate,OptimizationHints,MediaRouter',
  ],
});

async function desk(viewport = { width: 1366, height: 768 }) {
  const context = await browser.newContext({ viewport, timezoneId: 'UTC', locale: 'en-GB' });
  context.setDefaultTimeout(WAIT);
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (loopback(url)) return route.continue();
    outside.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('websocket', (ws) => loopback(ws.url()) || outside.push(ws.url()));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  return page;
}

async function signIn(page, username) {
  await page.goto(base + '/');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

const expectVisible = (locator) => locator.first().waitFor({ state: 'visible' });
const literally = (text) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
const badge = (scope, text) => scope.locator('.badge', { hasText: new RegExp(`^${text}$`) });

let failed = false;
try {
  const admin = await loginApi('admin');
  const doctors = (await api(admin, '{ doctors { id name availableSlots(limit: 60) { start } } }')).doctors;
  const kamau = doctors.find((d) => d.name.includes('Wanjiru Kamau'));
  // The run books, contests and completes visits on one day: it needs a day with several
  // free slots left (late in the afternoon, today may have only one).
  const perDay = new Map();
  for (const s of kamau?.availableSlots ?? []) perDay.set(s.start.slice(0, 10), (perDay.get(s.start.slice(0, 10)) ?? 0) + 1);
  const day = [...perDay].find(([, n]) => n >= 4)?.[0];
  if (!kamau || !day) throw new Error(`no day with free slots for the demo doctor: ${JSON.stringify(doctors)}`);

  step('log in, and the session survives a reload');
  const front = await desk();
  await front.goto(base + '/');
  await front.screenshot({ path: join(shots, 'login.png') });
  await signIn(front, 'reception');
  await front.reload();
  await front.getByRole('button', { name: 'Sign out' }).waitFor();

  step('register a patient, and a second registration warns of the duplicate');
  const name = `Amani Otieno ${Date.now() % 100000}`;
  await front.goto(base + '/#/patients');
  const register = async () => {
    await front.getByRole('button', { name: 'Register a patient' }).click();
    const form = front.getByRole('form', { name: 'Register a patient' });
    await form.getByLabel('Full name').fill(name);
    await form.getByLabel('E-mail').fill('amani@example.org');
    await form.getByLabel('Phone').fill('+254700555123');
    await form.getByLabel('Date of birth').fill('1990-04-12');
    await form.getByRole('button', { name: 'Register' }).click();
  };
  await register();
  await expectVisible(front.getByRole('heading', { name }));
  const patientUrl = front.url();
  const patientId = decodeURIComponent(patientUrl.split('#/patients/')[1]);
  await front.goto(base + '/#/patients');
  await register();
  await expectVisible(front.getByText('This may be a patient already registered'));
  await front.screenshot({ path: join(shots, 'patients-duplicate-warning.png') });
  await front.getByRole('button', { name: 'Cancel' }).click();
  await front.getByPlaceholder('Name, MRN, phone or e-mail').fill(name.split(' ')[0]);
  await expectVisible(front.getByRole('link', { name }));
  await front.screenshot({ path: join(shots, 'patients.png') });

  step('a second desk follows the schedule live');
  const second = await desk();
  await signIn(second, 'admin');
  for (const page of [front, second]) {
    await page.goto(base + '/#/schedule');
    await page.getByLabel('Doctor', { exact: true }).selectOption(kamau.id);
    await page.getByLabel('Day', { exact: true }).fill(day);
    await page.waitForURL(new RegExp(`day=${day}`));
    await expectVisible(page.locator('tr.free'));
  }

  step('book a slot');
  const slotRow = front.locator('tr.free').first();
  await slotRow.getByRole('button', { name: /^Book / }).click();
  const bookForm = front.getByRole('form', { name: 'Book this slot' });
  await bookForm.getByLabel('Patient').fill(name);
  await bookForm.getByRole('button', { name: literally(name) }).click();
  await bookForm.getByLabel('Reason').fill('Fever for three days');
  await bookForm.getByRole('button', { name: 'Confirm booking' }).click();
  const booked = (page) => page.locator('tr.appt', { hasText: name });
  await expectVisible(booked(front));
  step('the second desk sees it without a reload');
  await expectVisible(booked(second));
  await front.screenshot({ path: join(shots, 'schedule.png') });

  step('a slot taken at another desk while this one books it says so clearly');
  // The second desk's live feed is cut (its WebSocket refused), so it still offers a
  // slot that the front desk then takes: the node refuses the booking with CONFLICT.
  await second.routeWebSocket(/\/graphql$/, (ws) => ws.close({ code: 1011, reason: 'cut by the test' }));
  await second.reload();
  await expectVisible(second.locator('tr.free'));
  const contested = await second.locator('tr.free').first().locator('td.time').innerText();
  await second.locator('tr.free').first().getByRole('button', { name: /^Book / }).click();
  const secondForm = second.getByRole('form', { name: 'Book this slot' });
  await secondForm.getByLabel('Patient').fill(name);
  await secondForm.getByRole('button', { name: literally(name) }).click();
  // The front desk books that same slot for another patient first.
  const other = (await api(admin, '{ patients(limit: 5) { id name } }')).patients.find((p) => p.name !== name);
  const frontRow = front.locator('tr.free', { hasText: contested }).first();
  await frontRow.getByRole('button', { name: /^Book / }).click();
  await bookForm.getByLabel('Patient').fill(other.name);
  await bookForm.getByRole('button', { name: literally(other.name) }).first().click();
  await bookForm.getByRole('button', { name: 'Confirm booking' }).click();
  await expectVisible(front.locator('tr.appt', { hasText: other.name }));
  await secondForm.getByRole('button', { name: 'Confirm booking' }).click();
  await expectVisible(second.getByRole('alert').filter({ hasText: 'Not booked' }));
  await second.screenshot({ path: join(shots, 'double-booking.png') });
  await second.unrouteAll({ behavior: 'ignoreErrors' });

  step('check in');
  await booked(front).getByRole('button', { name: 'Check in' }).click();
  await expectVisible(badge(booked(front), 'Checked in'));

  step('the doctor adds a note and a prescription, and completes the visit');
  const doctor = await desk({ width: 1024, height: 768 });
  await signIn(doctor, 'doctor');
  await doctor.goto(base + '/#/schedule');
  await doctor.getByLabel('Day', { exact: true }).fill(day);
  await booked(doctor).getByRole('link', { name }).click();
  const entry = doctor.getByRole('form', { name: 'New chart entry' });
  await entry.getByLabel('Note', { exact: true }).fill('Fever 38.4 °C for three days, no cough. Likely viral.');
  await entry.getByRole('button', { name: 'Add to chart' }).click();
  await expectVisible(doctor.getByRole('list', { name: 'Medical history' }).getByText('Likely viral'));
  await entry.getByLabel('Prescription', { exact: true }).check();
  await entry.getByLabel('Drug').fill('Paracetamol');
  await entry.getByLabel('Dose').fill('500 mg');
  await entry.getByLabel('Route').fill('oral');
  await entry.getByLabel('Frequency').fill('three times a day');
  await entry.getByLabel('Days').fill('3');
  await entry.getByRole('button', { name: 'Add to chart' }).click();
  await expectVisible(doctor.getByRole('list', { name: 'Current medications' }).getByText('Paracetamol'));
  await doctor.screenshot({ path: join(shots, 'chart.png') });
  await doctor.goto(base + '/#/schedule');
  await doctor.getByLabel('Day', { exact: true }).fill(day);
  await booked(doctor).getByRole('button', { name: 'Complete' }).click();
  await expectVisible(badge(booked(front), 'Completed'));

  step('an invoice is issued and paid, and the balance follows');
  await front.goto(patientUrl);
  await front.getByRole('form', { name: 'Issue an invoice' }).getByRole('button', { name: 'Issue invoice' }).click();
  const invoices = front.getByRole('table', { name: 'Invoices' });
  await expectVisible(badge(invoices, 'Issued'));
  const owed = await front.getByTestId('balance').innerText();
  if (!/KES [1-9]/.test(owed)) throw new Error(`the balance after the invoice is ${owed}`);
  await invoices.getByRole('button', { name: 'Take payment' }).click();
  await invoices.getByRole('button', { name: 'Record payment' }).click();
  await expectVisible(badge(invoices, 'Paid'));
  await front.getByTestId('balance').filter({ hasNotText: owed }).waitFor();
  await front.screenshot({ path: join(shots, 'billing.png') });

  step('a patient sees their own record, and another patient\'s address shows nothing');
  const patient = await desk({ width: 820, height: 1180 });
  await signIn(patient, 'patient');
  await expectVisible(patient.getByRole('heading', { level: 1 }));
  await patient.screenshot({ path: join(shots, 'patient-own-record.png') });
  await patient.goto(`${base}/#/patients/${encodeURIComponent(patientId)}`);
  await expectVisible(patient.getByText('No such patient.'));
  if ((await patient.content()).includes(name)) throw new Error("the patient's browser shows another patient's name");

  step('the sync banner follows the hub going away and coming back');
  const banner = front.locator('.banner');
  await front.goto(base + '/#/patients');
  await banner.and(front.locator('[data-state="hub-reachable"]')).waitFor({ timeout: SYNC_WAIT });
  await ask('HUB_DOWN');
  await banner.and(front.locator('[data-state="hub-unreachable"]')).waitFor({ timeout: SYNC_WAIT });
  await front.screenshot({ path: join(shots, 'offline-banner.png') });
  await ask('HUB_UP');
  await banner.and(front.locator('[data-state="hub-reachable"]')).waitFor({ timeout: SYNC_WAIT });

  step('nothing left loopback');
  if (outside.length > 0) throw new Error(`requests left loopback: ${outside.join(', ')}`);
  console.log('E2E PASSED');
} catch (e) {
  failed = true;
  console.error(`E2E FAILED: ${e.stack ?? e}`);
  for (const [i, context] of browser.contexts().entries()) {
    for (const [j, page] of context.pages().entries()) {
      await page.screenshot({ path: join(shots, `failure-${i}-${j}.png`) }).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
