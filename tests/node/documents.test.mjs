// The document API as an agency uses it: its back end takes a token for
// itself (client_credentials, with panva's openid-client), posts a PDF,
// sends the person to the signing page the answer names, and fetches the
// signed PDF once the browser comes back; the person logs in and confirms
// in Chromium with a passkey. pyHanko and pdfsig judge the result with
// Tuaton's root as the only trust anchor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { agencySite, base, launch, pageWithAuthenticator } from './browser.mjs';

const bin = process.env.TUATON_BIN;
if (!bin) throw new Error('TUATON_BIN is not set; run tests/run-e2e');
const python = process.env.TUATON_TEST_PYTHON
  ?? new URL('../../target/test-venv/bin/python', import.meta.url).pathname;
const insecure = { execute: [client.allowInsecureRequests] };
const form = readFileSync(new URL('../fixtures/agency-form.pdf', import.meta.url));

let browser;
let person;
let agency;
let callback;
let registry;
let other;
let registryToken;
let otherToken;
const dir = mkdtempSync(join(tmpdir(), 'tuaton-documents-'));

function clients(...args) {
  return JSON.parse(execFileSync(bin, ['clients', ...args, '--json'], { encoding: 'utf8' }));
}

// `method` on the document API with `token`; the answer's status, JSON
// body (or bytes), and type.
async function api(method, path, token, { body, type } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (type) headers['content-type'] = type;
  const r = await fetch(new URL(path, base), { method, headers, body });
  const kind = r.headers.get('content-type') ?? '';
  const bytes = Buffer.from(await r.arrayBuffer());
  return {
    status: r.status,
    type: kind,
    body: kind.includes('json') ? JSON.parse(bytes.toString('utf8')) : bytes,
    challenge: r.headers.get('www-authenticate'),
  };
}

// Posts `pdf` as `name` for the person to sign, back to `callback`.
function post(token, pdf = form, query = {}) {
  const params = new URLSearchParams({ name: 'คำร้องทะเบียนบ้าน · house-registration.pdf', redirect_uri: callback, state: 'st-42', ...query });
  return api('POST', `/agency/v1/documents?${params}`, token, { body: pdf, type: 'application/pdf' });
}

// Tuaton's root, the only trust anchor, as root.pem in the work directory.
async function writeRoot() {
  const root = Buffer.from(await (await fetch(`${base}/pki/root.crt`)).arrayBuffer());
  writeFileSync(join(dir, 'root.der'), root);
  execFileSync('openssl', ['x509', '-inform', 'DER', '-in', 'root.der', '-out', 'root.pem'], { cwd: dir });
}

before(async () => {
  browser = await launch();
  ({ server: agency, callback } = await agencySite());
  person = await pageWithAuthenticator(browser);
  const enrolled = await person.page.evaluate((p) => window.t.enrolAndRegister(p), {
    citizen_id: '1999000000106', thai_given_name: 'ศิริพร', thai_family_name: 'บุญมา',
    birth_date: '1988-06-06', laser_code: 'JC9-7777777-89',
  });
  assert.equal(enrolled.registerStatus, 201, JSON.stringify(enrolled));
  // The agency: its back end holds a token for itself; allowed signatures.
  const made = clients('add', '--id', 'e2e-registry', '--name', 'สำนักทะเบียน · Registration Office', '--redirect-uri', callback,
    '--auth', 'client_secret_basic', '--no-dpop', '--client-credentials', '--scope', 'credential',
    '--purpose', 'house-registration', '--purpose-text', 'ลงนามคำร้อง · Signing an application');
  registry = await client.discovery(new URL(base), 'e2e-registry', {}, client.ClientSecretBasic(made.client_secret), insecure);
  registryToken = (await client.clientCredentialsGrant(registry)).access_token;
  // Another agency's back end, also allowed signatures.
  const plain = clients('add', '--id', 'e2e-other-office', '--redirect-uri', callback, '--auth', 'client_secret_basic',
    '--no-dpop', '--client-credentials', '--scope', 'credential', '--purpose', 'other', '--purpose-text', 'other');
  other = await client.discovery(new URL(base), 'e2e-other-office', {}, client.ClientSecretBasic(plain.client_secret), insecure);
  otherToken = (await client.clientCredentialsGrant(other)).access_token;
});

after(async () => {
  await browser?.close();
  agency?.close();
});

// The person (or who `page` belongs to) opens `url`, checks what the page
// shows, and signs (or declines); returns the URL the browser came back to.
async function onPage(url, posted, { decline = false, screenshot, page = person.page, read } = {}) {
  await page.goto(url);
  await page.waitForSelector('#sign');
  if (read) {
    // The person logs in and saves the file to read it before signing.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#open')]);
    assert.ok(readFileSync(await download.path()).equals(read), 'the file saved is the one posted');
    assert.match(await page.textContent('#status'), /read it before you sign/);
  }
  if (posted.sha256) assert.equal(await page.textContent('#sha256'), posted.sha256);
  assert.equal(await page.textContent('#pages'), String(posted.pages));
  assert.match(await page.textContent('#client'), /สำนักทะเบียน/);
  assert.match(await page.textContent('#name'), /house-registration\.pdf/);
  if (screenshot && process.env.TUATON_SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, screenshot), fullPage: true });
  }
  const back = page.waitForURL((u) => u.href.startsWith(callback), { timeout: 20000 });
  await page.click(decline ? '#decline' : '#sign');
  await back;
  return new URL(page.url());
}

test('an agency posts a PDF, the person signs it with a passkey, and the agency fetches a file pyHanko and pdfsig judge valid', async () => {
  const posted = await post(registryToken);
  assert.equal(posted.status, 201, JSON.stringify(posted.body));
  assert.equal(posted.body.sha256, execFileSync('sha256sum', { input: form }).toString().split(' ')[0]);
  assert.ok(posted.body.sign_url.endsWith(`/documents/${posted.body.document}`));
  const waiting = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(waiting.body.state, 'pending');
  const pending = await api('GET', `/agency/v1/documents/${posted.body.document}/signed.pdf`, registryToken);
  assert.equal(pending.status, 409);

  // The file itself is only for a person logged in.
  const anonymous = await api('GET', `/documents/${posted.body.document}/file`);
  assert.equal(anonymous.status, 401);
  const back = await onPage(posted.body.sign_url, posted.body, { screenshot: 'document-sign.png', read: form });
  assert.equal(back.searchParams.get('document'), posted.body.document);
  assert.equal(back.searchParams.get('state'), 'st-42');
  assert.equal(back.searchParams.get('error'), null);

  const done = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(done.body.state, 'signed');
  assert.ok(done.body.signer?.sub, 'the agency learns its sub of the signer');
  const signed = await api('GET', done.body.signed_url, registryToken);
  assert.equal(signed.status, 200);
  assert.equal(signed.type, 'application/pdf');
  assert.ok(signed.body.subarray(0, form.length).equals(form), 'an incremental update: the posted bytes are untouched');
  writeFileSync(join(dir, 'signed.pdf'), signed.body);
  await writeRoot();
  const hanko = execFileSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print', '--force-revinfo',
    '--trust-replace', '--trust', 'root.pem', 'signed.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.match(hanko, /The signature is judged VALID/);
  assert.match(hanko, /ศิริพร|บุญมา/);
  assert.match(execFileSync('pdfsig', [join(dir, 'signed.pdf')], { encoding: 'utf8' }), /Signature is Valid\./);
  const flipped = Buffer.from(signed.body);
  flipped[form.length - 20] ^= 0x01;
  writeFileSync(join(dir, 'flipped.pdf'), flipped);
  assert.doesNotMatch(spawnSync('pdfsig', [join(dir, 'flipped.pdf')], { encoding: 'utf8' }).stdout, /Signature is Valid\./);
  const judged = spawnSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print',
    '--trust-replace', '--trust', 'root.pem', 'flipped.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.doesNotMatch(judged.stdout, /The signature is judged VALID/);

  // Signed once: the page shows it no more, another agency never sees it.
  const again = await api('GET', `/documents/${posted.body.document}`);
  assert.equal(again.status, 404);
  const stranger = await api('GET', `/agency/v1/documents/${posted.body.document}/signed.pdf`, otherToken);
  assert.equal(stranger.status, 404);
  assert.equal(stranger.body.code, 'unknown_document');
});

test('a document for another person is not signed by whoever opens the page; one the agency names its sub for is', async () => {
  const forOther = await post(registryToken, form, { subject: 'someone-else-entirely' });
  assert.equal(forOther.status, 201);
  const { page } = person;
  await page.goto(forOther.body.sign_url);
  await page.waitForSelector('#sign');
  await page.click('#sign');
  await page.waitForSelector('#status.failed', { timeout: 20000 });
  assert.match(await page.textContent('#status'), /another person/);
  // Logged in now, the person still cannot read another person's file.
  const peek = await page.evaluate(async (id) => (await fetch(`/documents/${id}/file`)).status, forOther.body.document);
  assert.equal(peek, 403);
  // Nor decline it: not without logging in, and not logged in as another.
  const anonymous = await api('POST', `/documents/${forOther.body.document}/decline`, undefined, { body: '{}', type: 'application/json' });
  assert.equal(anonymous.status, 401);
  await page.evaluate(() => { const s = document.getElementById('status'); s.className = ''; s.textContent = ''; });
  await page.click('#decline');
  await page.waitForSelector('#status.failed', { timeout: 20000 });
  assert.match(await page.textContent('#status'), /another person/);
  const still = await api('GET', `/agency/v1/documents/${forOther.body.document}`, registryToken);
  assert.equal(still.body.state, 'pending');

  // The sub the agency learnt from the first signing names this person.
  const first = await post(registryToken);
  const signer = await onPage(first.body.sign_url, first.body);
  const sub = (await api('GET', `/agency/v1/documents/${signer.searchParams.get('document')}`, registryToken)).body.signer.sub;
  const named = await post(registryToken, form, { subject: sub });
  const back = await onPage(named.body.sign_url, named.body);
  assert.equal(back.searchParams.get('document'), named.body.document);
  assert.equal((await api('GET', `/agency/v1/documents/${named.body.document}`, registryToken)).body.state, 'signed');
});

test('a person who declines sends the agency access_denied, and nothing is signed', async () => {
  const posted = await post(registryToken);
  const back = await onPage(posted.body.sign_url, posted.body, { decline: true });
  assert.equal(back.searchParams.get('error'), 'access_denied');
  assert.equal(back.searchParams.get('document'), posted.body.document);
  assert.equal(back.searchParams.get('state'), 'st-42');
  const read = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(read.body.state, 'declined');
  assert.equal((await api('GET', `/agency/v1/documents/${posted.body.document}/signed.pdf`, registryToken)).status, 409);
  // Declined is final.
  const start = await api('POST', `/documents/${posted.body.document}/decline`, undefined, { body: '{}', type: 'application/json' });
  assert.equal(start.status, 404);
});

test('what an agency may not post or read is refused with a clear error and stores nothing', async () => {
  // No token, and one Tuaton never issued: RFC 6750.
  assert.equal((await post(undefined)).status, 401);
  const forged = await post('not-a-token');
  assert.equal(forged.status, 401);
  assert.match(forged.challenge, /invalid_token/);
  // Not a PDF, a redirect URI not registered, no name, the wrong type.
  const notPdf = await post(registryToken, Buffer.from('%PDF-1.7\nthis is not a PDF at all'));
  assert.equal(notPdf.status, 400);
  assert.equal(notPdf.body.code, 'invalid_documents');
  const reordered = await post(registryToken, form, { name: 'invoice\u202Efdp.exe' });
  assert.equal(reordered.status, 400, 'a name with a bidirectional override');
  assert.equal(reordered.body.code, 'invalid_documents');
  const elsewhere = await post(registryToken, form, { redirect_uri: `${callback}/../evil` });
  assert.equal(elsewhere.status, 400);
  const suffixed = await post(registryToken, form, { redirect_uri: `${callback}x` });
  assert.equal(suffixed.status, 400);
  const nameless = await api('POST', `/agency/v1/documents?redirect_uri=${encodeURIComponent(callback)}`, registryToken,
    { body: form, type: 'application/pdf' });
  assert.equal(nameless.status, 400);
  const asJson = await api('POST', `/agency/v1/documents?name=a.pdf&redirect_uri=${encodeURIComponent(callback)}`, registryToken,
    { body: form, type: 'application/json' });
  assert.equal(asJson.status, 415);
  // A client not allowed signatures.
  const plain = clients('add', '--id', 'e2e-no-documents', '--redirect-uri', callback, '--auth', 'client_secret_basic',
    '--no-dpop', '--client-credentials');
  const config = await client.discovery(new URL(base), 'e2e-no-documents', {}, client.ClientSecretBasic(plain.client_secret), insecure);
  const refused = await post((await client.clientCredentialsGrant(config)).access_token);
  assert.equal(refused.status, 400);
  assert.match(refused.body.detail, /credential scope/);
  // An id nobody posted.
  assert.equal((await api('GET', '/agency/v1/documents/0123456789abcdef0123456789abcdef', registryToken)).status, 404);
  assert.equal((await api('GET', '/documents/0123456789abcdef0123456789abcdef')).status, 404);
});

// Clicks sign on `url` in `page` and returns what the page says when it fails.
async function refusedOn(page, url) {
  await page.goto(url);
  await page.waitForSelector('#sign');
  await page.click('#sign');
  await page.waitForSelector('#status.failed', { timeout: 20000 });
  return page.textContent('#status');
}

test('a company whose rule needs two directors gets one PDF carrying both signatures, in order, each valid in pyHanko and pdfsig', async () => {
  // บริษัท สองกรรมการสาธิต จำกัด: two directors must act together.
  const company = '0105599000043';
  const kamala = await pageWithAuthenticator(browser);
  const pranee = await pageWithAuthenticator(browser);
  for (const [who, details] of [
    [kamala, { citizen_id: '1999000000068', thai_given_name: 'กมลา', thai_family_name: 'สุวรรณรัตน์', birth_date: '1969-09-12', laser_code: 'JT5-3333333-45' }],
    [pranee, { citizen_id: '1999000000084', thai_given_name: 'ปราณี', thai_family_name: 'แก้วมณี', birth_date: '1942', laser_code: 'JT7-5555555-67' }],
  ]) {
    const enrolled = await who.page.evaluate((p) => window.t.enrolAndRegister(p), details);
    assert.equal(enrolled.registerStatus, 201, JSON.stringify(enrolled));
  }
  // A company's document names no one person, and its id must be one.
  assert.equal((await post(registryToken, form, { company, subject: 'someone' })).status, 400);
  const badId = await post(registryToken, form, { company: '0105599000044' });
  assert.equal(badId.status, 400);
  assert.match(badId.body.detail, /juristic id/);
  const posted = await post(registryToken, form, { company });
  assert.equal(posted.status, 201, JSON.stringify(posted.body));
  const url = posted.body.sign_url;

  // Someone the registry does not list as a director signs nothing, and
  // whoever holds the link cannot decline it for the company.
  assert.match(await refusedOn(person.page, url), /not list you as a director/);
  const anonymous = await api('POST', `/documents/${posted.body.document}/decline`, undefined, { body: '{}', type: 'application/json' });
  assert.equal(anonymous.status, 401);
  const outsider = await person.page.evaluate(async (id) => (await fetch(`/documents/${id}/file`)).status, posted.body.document);
  assert.equal(outsider, 403, 'a non-director does not read the company\'s file');
  const untouched = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(untouched.body.state, 'pending');
  assert.deepEqual(untouched.body.signatures, []);

  // The first director signs; the document waits for a second.
  const { page } = kamala;
  await page.goto(url);
  await page.waitForSelector('#company');
  assert.match(await page.textContent('#company'), /สองกรรมการสาธิต/);
  assert.equal(await page.textContent('#signatures'), '0');
  const first = await onPage(url, posted.body, { page, screenshot: 'document-company.png' });
  assert.equal(first.searchParams.get('document'), posted.body.document);
  const waiting = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(waiting.body.state, 'pending');
  assert.equal(waiting.body.company.juristic_id, company);
  assert.equal(waiting.body.signatures.length, 1);
  assert.equal(waiting.body.signer, undefined, 'no signer until it is signed');
  assert.equal((await api('GET', `/agency/v1/documents/${posted.body.document}/signed.pdf`, registryToken)).status, 409);
  // The same director twice is still one director.
  assert.match(await refusedOn(page, url), /signed this document for the company already/);

  // The second director sees the file as the first signed it, and signs it.
  await pranee.page.goto(url);
  await pranee.page.waitForSelector('#signatures');
  assert.equal(await pranee.page.textContent('#signatures'), '1');
  const shownDigest = await pranee.page.textContent('#sha256');
  assert.notEqual(shownDigest, posted.body.sha256, 'the once-signed file, not the posted one');
  const [download] = await Promise.all([pranee.page.waitForEvent('download'), pranee.page.click('#open')]);
  const partial = readFileSync(await download.path());
  assert.equal(createHash('sha256').update(partial).digest('hex'), shownDigest);
  assert.ok(partial.subarray(0, form.length).equals(form), 'the posted file with the first signature after it');
  await onPage(url, { sha256: shownDigest, pages: posted.body.pages }, { page: pranee.page });
  const done = await api('GET', `/agency/v1/documents/${posted.body.document}`, registryToken);
  assert.equal(done.body.state, 'signed');
  assert.equal(done.body.signatures.length, 2);
  assert.equal(done.body.signatures[0].sub, waiting.body.signatures[0].sub, 'in the order they signed');
  assert.notEqual(done.body.signatures[1].sub, done.body.signatures[0].sub);
  assert.equal(done.body.signer.sub, done.body.signatures[1].sub);
  const signed = await api('GET', done.body.signed_url, registryToken);
  assert.ok(signed.body.subarray(0, form.length).equals(form), 'the posted bytes are untouched');
  writeFileSync(join(dir, 'company.pdf'), signed.body);
  await writeRoot();

  const sigs = execFileSync('pdfsig', [join(dir, 'company.pdf')], { encoding: 'utf8' });
  assert.equal((sigs.match(/Signature is Valid\./g) ?? []).length, 2, sigs);
  assert.match(sigs, /Signature #1:[^#]*PNOTH-1999000000068[\s\S]*Signature #2:[^#]*PNOTH-1999000000084/, 'in order');
  const hanko = execFileSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print', '--force-revinfo',
    '--trust-replace', '--trust', 'root.pem', 'company.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.equal((hanko.match(/The signature is judged VALID/g) ?? []).length, 2, hanko);
  // Each certificate names the company as the organisation its holder represents.
  assert.match(hanko, /NTRTH-0105599000043/);
  assert.match(hanko, /Song Kammakan Sathit/);
  // Signed is final.
  assert.equal((await api('GET', `/documents/${posted.body.document}`)).status, 404);
  await kamala.context.close();
  await pranee.context.close();
});
