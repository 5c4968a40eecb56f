// A recovery asked for with a photocopy of the ID card, cancelled by the
// owner in one click from the notice: the link is read from the message the
// server wrote to its development outbox, opened in Chromium, and the
// owner's passkey (Chromium's virtual authenticator) confirms the cancel on
// the page Tuaton serves, under its strict CSP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { base, launch, pageWithAuthenticator } from './browser.mjs';

const outbox = process.env.TUATON_OUTBOX;
if (!outbox) throw new Error('TUATON_OUTBOX is not set; run tests/run-e2e');

const somchai = {
  citizen_id: '1-9990-00000-01-7', thai_given_name: 'สมชาย', thai_family_name: 'ใจดี',
  english_given_name: 'Somchai', english_family_name: 'Jaidee', birth_date: '1964-02-22',
  laser_code: 'JT0-1234567-89',
};

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const post = async (path, body) => {
  const r = await fetch(`${base}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
};

// The text of the outbox message with this Message-ID prefix, once upkeep
// (every 30 seconds) has handed it over; its body is base64 (Thai text).
async function waitForMessage(kind, deadlineMs = 45_000) {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const names = await readdir(outbox).catch(() => []);
    for (const name of names.filter((n) => n.endsWith('.eml'))) {
      const raw = await readFile(join(outbox, name), 'utf8');
      if (raw.includes(`Message-ID: <${kind}.`)) {
        const [, body] = raw.split('\r\n\r\n');
        return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no ${kind} message in ${outbox}`);
}

test('the owner cancels a recovery from the notice with a passkey, in one click', async () => {
  const { context, page } = await pageWithAuthenticator(browser);
  const enrolled = await page.evaluate((p) => window.t.enrolAndRegister(p), { ...somchai, contact_email: 'somchai@example.test' });
  assert.equal(enrolled.enrolStatus, 201);
  assert.equal(enrolled.registerStatus, 201);

  // Someone holding a photocopy of the card asks to recover the account.
  const taken = await post('/api/v1/recovery', somchai);
  assert.equal(taken.status, 202, JSON.stringify(taken.body));
  assert.equal(taken.body.enrolment_token, undefined, 'no grant before the cooling-off period');
  const early = await post(`/api/v1/recovery/${taken.body.recovery_id}/grant`, { recovery_token: taken.body.recovery_token });
  assert.equal(early.status, 409);
  assert.equal(early.body.code, 'recovery_cooling_off');

  // The notice reaches the owner with the link.
  const mail = await waitForMessage('recovery_requested');
  const link = mail.match(/https?:\/\/\S+\/recovery\/cancel\?r=[0-9a-f]{32}/)?.[0];
  assert.ok(link, mail);
  assert.ok(link.endsWith(taken.body.recovery_id), 'the link names this recovery');

  // One click on the page the link opens (the CSP forbids inline script, so
  // the page works only if its script is served as a file).
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(link);
  assert.match(await page.title(), /Cancel account recovery/);
  const shots = process.env.TUATON_SCREENSHOTS;
  if (shots) {
    await mkdir(shots, { recursive: true });
    await page.screenshot({ path: join(shots, 'recovery-cancel.png'), fullPage: true });
  }
  await page.click('#cancel');
  await page.waitForSelector('#status.done, #status.failed');
  const status = await page.textContent('#status');
  assert.match(status, /cancelled/, status);
  if (shots) await page.screenshot({ path: join(shots, 'recovery-cancelled.png'), fullPage: true });
  assert.deepEqual(problems, []);

  // Cancelled for good: the link and the token give nothing more.
  const again = await post(`/api/v1/recovery/${taken.body.recovery_id}/cancel/start`);
  assert.equal(again.status, 404);
  const late = await post(`/api/v1/recovery/${taken.body.recovery_id}/grant`, { recovery_token: taken.body.recovery_token });
  assert.equal(late.status, 404);
  assert.equal(late.body.code, 'unknown_recovery');
  await context.close();
});
