// Passkeys in a real browser: Chromium's own WebAuthn implementation with its
// virtual authenticator (CTAP2, resident keys, user verification) against the
// built tuaton binary. Nothing here is Tuaton code except the calls it makes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { base, launch, pageWithAuthenticator } from './browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Runs in the page: the same calls a web page or app makes.
async function enrolRegisterAndLogIn(person) {
  const { b64, post } = window.t;
  const out = await window.t.enrolAndRegister(person);

  // Username-less: no citizen id, the authenticator finds the credential.
  const login = await post('/api/v1/login/start', {});
  out.mediation = login.body.mediation;
  const req = login.body.public_key;
  req.challenge = b64(req.challenge);
  req.allowCredentials = (req.allowCredentials || []).map((c) => ({ ...c, id: b64(c.id) }));
  const assertion = await navigator.credentials.get({ publicKey: req });
  const done = await post('/api/v1/login/finish', { ceremony_id: login.body.ceremony_id, credential: assertion.toJSON() });
  out.loginStatus = done.status;
  out.loginAal = done.body.aal;
  out.amr = done.body.amr;
  const csrf = done.body.csrf_token;

  const me = await fetch('/api/v1/me');
  out.meStatus = me.status;
  out.passkeys = (await me.json()).passkeys.length;
  out.logoutWithoutCsrf = (await post('/api/v1/logout', undefined)).status;
  out.logout = (await post('/api/v1/logout', undefined, csrf)).status;
  out.meAfterLogout = (await fetch('/api/v1/me')).status;
  return out;
}

test('a citizen enrols, registers a discoverable passkey and logs in without a username', async () => {
  const { context, page, cdp, authenticatorId } = await pageWithAuthenticator(browser);
  const result = await page.evaluate(enrolRegisterAndLogIn, {
    citizen_id: '1999000000025', thai_given_name: 'สมหญิง', thai_family_name: 'รักไทย',
    birth_date: '1985-07-15', laser_code: 'ME1-0234567-01',
  });
  assert.equal(result.enrolStatus, 201);
  assert.equal(result.residentKeyRequested, 'preferred');
  assert.equal(result.registerStatus, 201);
  assert.equal(result.registeredAal, '2.2');
  assert.equal(result.mediation, 'conditional');
  assert.equal(result.loginStatus, 200);
  assert.equal(result.loginAal, '2.2');
  assert.ok(result.amr.includes('user') && result.amr.includes('mfa'), JSON.stringify(result.amr));
  assert.equal(result.meStatus, 200);
  assert.equal(result.passkeys, 1);
  assert.equal(result.logoutWithoutCsrf, 403);
  assert.equal(result.logout, 204);
  assert.equal(result.meAfterLogout, 401);
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.equal(credentials[0].isResidentCredential, true);
  assert.ok(credentials[0].signCount >= 1, 'the authenticator signed');
  await context.close();
});

test('a page on another origin cannot use the passkey', async () => {
  const { context, page } = await pageWithAuthenticator(browser);
  // 127.0.0.1 is not Tuaton's origin (localhost): the browser refuses the relying party id.
  const other = base.replace('localhost', '127.0.0.1');
  await page.goto(`${other}/healthz`);
  const error = await page.evaluate(async () => {
    try {
      await navigator.credentials.get({ publicKey: { challenge: new Uint8Array(32), rpId: 'localhost', userVerification: 'required' } });
      return 'no error';
    } catch (e) { return e.name; }
  });
  assert.equal(error, 'SecurityError');
  await context.close();
});

test('a development server publishes an id-token key from its first start', async () => {
  const r = await fetch(`${base}/.well-known/jwks.json`);
  assert.equal(r.status, 200);
  const { keys } = await r.json();
  assert.ok(keys.length >= 1, JSON.stringify(keys));
  const k = keys[0];
  assert.equal(k.kty, 'EC');
  assert.equal(k.crv, 'P-256');
  assert.equal(k.alg, 'ES256');
  assert.equal(k.use, 'sig');
  assert.ok(k.kid);
  assert.equal(k.d, undefined, 'no private part');
});

// Runs in the page: a signed-in person signs a file. The page hashes it
// (the file itself never leaves the browser), the person confirms with the
// passkey, and the page receives the CAdES signature.
async function signAFile(person) {
  const { b64, post } = window.t;
  const out = {};
  await window.t.enrolAndRegister(person);
  const login = await post('/api/v1/login/start', {});
  const req = login.body.public_key;
  req.challenge = b64(req.challenge);
  req.allowCredentials = (req.allowCredentials || []).map((c) => ({ ...c, id: b64(c.id) }));
  const assertion = await navigator.credentials.get({ publicKey: req });
  const done = await post('/api/v1/login/finish', { ceremony_id: login.body.ceremony_id, credential: assertion.toJSON() });
  const csrf = done.body.csrf_token;

  const text = 'สัญญาเช่า — a lease, signed in a browser';
  const bytes = new TextEncoder().encode(text);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
  const asked = await post('/api/v1/signatures', { documents: [{ name: 'lease.txt', size: bytes.length, sha256 }] }, csrf);
  out.startStatus = asked.status;
  const pk = asked.body.public_key;
  pk.challenge = b64(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: b64(c.id) }));
  const confirmation = await navigator.credentials.get({ publicKey: pk });
  const signed = await post(`/api/v1/signatures/${asked.body.request_id}/finish`, { credential: confirmation.toJSON() }, csrf);
  out.finishStatus = signed.status;
  out.text = text;
  out.signature = signed.body.signatures?.[0]?.signature;
  // The same confirmation once more signs nothing.
  out.replayStatus = (await post(`/api/v1/signatures/${asked.body.request_id}/finish`, { credential: confirmation.toJSON() }, csrf)).status;
  return out;
}

test('a signed-in citizen signs a file with a passkey confirmation, and openssl verifies the signature', async () => {
  const { context, page } = await pageWithAuthenticator(browser);
  const result = await page.evaluate(signAFile, {
    citizen_id: '1999000000041', thai_given_name: 'มาลี', thai_family_name: 'วงศ์ทอง',
    birth_date: '1990-01-31', laser_code: 'JC3-1111111-23',
  });
  assert.equal(result.startStatus, 200);
  assert.equal(result.finishStatus, 200);
  assert.equal(result.replayStatus, 404);
  const dir = mkdtempSync(join(tmpdir(), 'tuaton-sign-'));
  writeFileSync(join(dir, 'lease.txt'), result.text);
  writeFileSync(join(dir, 'lease.txt.p7s'), Buffer.from(result.signature, 'base64'));
  const root = Buffer.from(await (await fetch(`${base}/pki/root.crt`)).arrayBuffer());
  writeFileSync(join(dir, 'root.der'), root);
  execFileSync('openssl', ['x509', '-inform', 'DER', '-in', 'root.der', '-out', 'root.pem'], { cwd: dir });
  execFileSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'lease.txt.p7s',
    '-content', 'lease.txt', '-CAfile', 'root.pem', '-out', '/dev/null'], { cwd: dir, stdio: 'pipe' });
  // A changed file does not verify.
  writeFileSync(join(dir, 'lease.txt'), result.text + '.');
  assert.throws(() => execFileSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'lease.txt.p7s',
    '-content', 'lease.txt', '-CAfile', 'root.pem', '-out', '/dev/null'], { cwd: dir, stdio: 'pipe' }));
  await context.close();
});
