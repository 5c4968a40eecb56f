// Passkeys in a real browser: Chromium's own WebAuthn implementation with its
// virtual authenticator (CTAP2, resident keys, user verification) against the
// built tuaton binary. Nothing here is Tuaton code except the calls it makes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as jose from 'jose';
import { base, launch, pageWithAuthenticator } from './browser.mjs';

// The Python test peers' interpreter (scripts/install-test-deps).
const python = process.env.TUATON_TEST_PYTHON
  ?? new URL('../../target/test-venv/bin/python', import.meta.url).pathname;

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

// Runs in the page: a signed-in person signs a file and a PDF with one
// confirmation. The page hashes the file (it never leaves the browser) and
// sends the PDF, which is signed in the file; the person confirms with the
// passkey, sends the PDF again, and receives the CAdES signature and the
// signed PDF.
async function signAFile({ person, pdfBase64, invoice, etaxBase64 }) {
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
  const pdf = Uint8Array.from(atob(pdfBase64), (c) => c.charCodeAt(0));
  const pdfDigest = new Uint8Array(await crypto.subtle.digest('SHA-256', pdf));
  const pdfSha256 = Array.from(pdfDigest, (b) => b.toString(16).padStart(2, '0')).join('');
  const json = new TextEncoder().encode(invoice);
  const jsonDigest = new Uint8Array(await crypto.subtle.digest('SHA-256', json));
  const jsonSha256 = Array.from(jsonDigest, (b) => b.toString(16).padStart(2, '0')).join('');
  const jsonBase64 = btoa(String.fromCharCode(...json));
  const etax = Uint8Array.from(atob(etaxBase64), (c) => c.charCodeAt(0));
  const etaxDigest = new Uint8Array(await crypto.subtle.digest('SHA-256', etax));
  const etaxSha256 = Array.from(etaxDigest, (b) => b.toString(16).padStart(2, '0')).join('');
  const asked = await post('/api/v1/signatures', { documents: [
    { name: 'lease.txt', size: bytes.length, sha256 },
    { name: 'application.pdf', size: pdf.length, sha256: pdfSha256,
      pdf: { content: pdfBase64, visible: { page: 1, rect: [340, 40, 560, 100] } } },
    { name: 'invoice.json', size: json.length, sha256: jsonSha256, json: { content: jsonBase64 } },
    { name: 'invoice.json', size: json.length, sha256: jsonSha256, json: { content: jsonBase64, detached: true } },
    { name: 'etax-invoice.xml', size: etax.length, sha256: etaxSha256, xml: { content: etaxBase64 } },
  ] }, csrf);
  out.startStatus = asked.status;
  out.shown = asked.body.documents;
  const pk = asked.body.public_key;
  pk.challenge = b64(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: b64(c.id) }));
  const confirmation = await navigator.credentials.get({ publicKey: pk });
  const finish = { credential: confirmation.toJSON(), contents: [pdfBase64, jsonBase64, jsonBase64, etaxBase64] };
  const signed = await post(`/api/v1/signatures/${asked.body.request_id}/finish`, finish, csrf);
  out.finishStatus = signed.status;
  out.text = text;
  out.signature = signed.body.signatures?.[0]?.signature;
  out.signedPdf = signed.body.signatures?.[1]?.pdf;
  out.attached = signed.body.signatures?.[2]?.jws;
  out.detached = signed.body.signatures?.[3]?.jws;
  out.etax = signed.body.signatures?.[4]?.xml;
  // The same confirmation once more signs nothing.
  out.replayStatus = (await post(`/api/v1/signatures/${asked.body.request_id}/finish`, finish, csrf)).status;
  return out;
}

test('a signed-in citizen signs a file, a PDF, a JSON invoice and an e-Tax invoice with one passkey confirmation; openssl, pyHanko, pdfsig, jose and xmlsec1 accept them', async () => {
  const { context, page } = await pageWithAuthenticator(browser);
  const invoice = JSON.stringify({ invoice: 'INV-2026-0042', total: '1,070.00', vat: 7.0, buyer: 'มาลี วงศ์ทอง' });
  const form = readFileSync(new URL('../fixtures/agency-form.pdf', import.meta.url));
  const result = await page.evaluate(signAFile, {
    person: {
      citizen_id: '1999000000041', thai_given_name: 'มาลี', thai_family_name: 'วงศ์ทอง',
      birth_date: '1990-01-31', laser_code: 'JC3-1111111-23',
    },
    pdfBase64: form.toString('base64'),
    invoice,
    etaxBase64: readFileSync(new URL('../fixtures/etax-invoice.xml', import.meta.url)).toString('base64'),
  });
  assert.equal(result.startStatus, 200);
  assert.deepEqual(result.shown.map((d) => [d.format, d.pages]),
    [['CAdES-B-T', undefined], ['PAdES-B-T', 2], ['JWS', undefined], ['JWS', undefined], ['XAdES-B-T', undefined]]);
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

  // The PDF: an incremental update of the form, judged by pyHanko (the
  // root the only trust anchor) and by pdfsig, its visible box drawn.
  const signedPdf = Buffer.from(result.signedPdf, 'base64');
  assert.ok(signedPdf.subarray(0, form.length).equals(form), 'the form as it was, then the signature');
  writeFileSync(join(dir, 'application.pdf'), signedPdf);
  // Revocation is checked online, hard: pyHanko asks the running
  // server's OCSP responder and fetches its CRLs, as the certificates' AIA
  // and distribution points say.
  const hanko = execFileSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print', '--force-revinfo',
    '--trust-replace', '--trust', 'root.pem', 'application.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.match(hanko, /The signature is judged VALID/);
  assert.doesNotMatch(hanko, /revocation.*(failed|not checked)/i);
  assert.match(hanko, /timestamp token is cryptographically sound/);
  const poppler = execFileSync('pdfsig', ['application.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.match(poppler, /Signature is Valid\./);
  const text = execFileSync('pdftotext', ['-f', '1', '-l', '1', 'application.pdf', '-'], { cwd: dir, encoding: 'utf8' });
  assert.match(text, /Digitally signed/);

  // The JSON documents: panva's jose verifies each JWS with the key of
  // the certificate it carries, which chains to the root.
  const [signerDer, issuingDer] = JSON.parse(Buffer.from(result.attached.json.protected, 'base64url')).x5c;
  const signerCert = new X509Certificate(Buffer.from(signerDer, 'base64'));
  const issuingCert = new X509Certificate(Buffer.from(issuingDer, 'base64'));
  const rootCert = new X509Certificate(root);
  assert.ok(signerCert.verify(issuingCert.publicKey) && issuingCert.verify(rootCert.publicKey), 'x5c chains to the root');
  const key = await jose.importX509(signerCert.toString(), 'ES256');
  const attached = await jose.compactVerify(result.attached.compact, key);
  assert.equal(new TextDecoder().decode(attached.payload), invoice);
  assert.equal(attached.protectedHeader.alg, 'ES256');
  const detached = await jose.flattenedVerify({ ...result.detached.json, payload: invoice }, key);
  assert.equal(detached.protectedHeader.b64, false);
  await assert.rejects(jose.flattenedVerify({ ...result.detached.json, payload: invoice.replace('1,070.00', '9,070.00') }, key));
  await assert.rejects(jose.compactVerify(result.detached.compact.replace('..', `.${Buffer.from(invoice).toString('base64url')}.`), key));

  // The e-Tax invoice: xmlsec1 verifies its XAdES signature to the root.
  writeFileSync(join(dir, 'etax-invoice.xml'), Buffer.from(result.etax, 'base64'));
  const xmlsec = spawnSync('xmlsec1', ['--verify', '--trusted-pem', 'root.pem',
    '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', 'etax-invoice.xml'],
  { cwd: dir, encoding: 'utf8' });
  assert.equal(xmlsec.status, 0, xmlsec.stderr);
  assert.match(xmlsec.stderr, /^OK/m);
  await context.close();
});
