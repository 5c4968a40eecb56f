// Remote signing as an agency does it: the Cloud Signature Consortium API
// v2.0, authorised through Tuaton's OpenID Provider. panva's openid-client
// is the agency's OAuth client; pyHanko's CSC signer (driven by
// tests/python/csc_sign.py) computes the PAdES hash, calls
// credentials/authorize and signatures/signHash and timestamps the
// signature; the person confirms the hash in Chromium with a passkey; and
// pyHanko and pdfsig judge the signed PDF with Tuaton's root as the only
// trust anchor.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { agencySite, base, launch, pageWithAuthenticator } from './browser.mjs';

const bin = process.env.TUATON_BIN;
if (!bin) throw new Error('TUATON_BIN is not set; run tests/run-e2e');
const python = process.env.TUATON_TEST_PYTHON
  ?? new URL('../../target/test-venv/bin/python', import.meta.url).pathname;
const driver = new URL('../python/csc_sign.py', import.meta.url).pathname;
const insecure = { execute: [client.allowInsecureRequests] };
const SHA256 = '2.16.840.1.101.3.4.2.1';
const ECDSA_SHA256 = '1.2.840.10045.4.3.2';

let browser;
let person;
let agency;
let callback;
let lands;
let other;
let credentialId;
let serviceToken;
// Each agency's client secret, by client id.
const secrets = {};
const dir = mkdtempSync(join(tmpdir(), 'tuaton-csc-'));

function clients(...args) {
  return JSON.parse(execFileSync(bin, ['clients', ...args, '--json'], { encoding: 'utf8' }));
}

// POSTs `body` as JSON to the CSC method `method` with `token`.
async function csc(method, token, body = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(new URL(`/csc/v2/${method}`, base), { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

// Runs `statement` on Tuaton's database as a database writer would: the
// sqlite3 or psql client beside the server, on TUATON_DATABASE_URL.
function sql(statement) {
  const url = process.env.TUATON_DATABASE_URL;
  if (!url) throw new Error('TUATON_DATABASE_URL is not set; run tests/run-e2e');
  if (url.startsWith('sqlite:')) {
    const path = url.replace(/^sqlite:(\/\/)?/, '').replace(/\?.*$/, '');
    return execFileSync('sqlite3', ['-cmd', '.timeout 5000', path, statement], { encoding: 'utf8' }).trim();
  }
  return execFileSync('psql', [url, '-qtAc', statement], { encoding: 'utf8' }).trim();
}

// The claims of the JWT access token `token`.
const claims = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const sha256 = (text) => createHash('sha256').update(text).digest();

before(async () => {
  browser = await launch();
  ({ server: agency, callback } = await agencySite());
  person = await pageWithAuthenticator(browser);
  const enrolled = await person.page.evaluate((p) => window.t.enrolAndRegister(p), {
    citizen_id: '1999000000076', thai_given_name: 'อนุชา', thai_family_name: 'ทองดี',
    birth_date: '1995-03-28', laser_code: 'AB6-4444444-56',
  });
  assert.equal(enrolled.registerStatus, 201, JSON.stringify(enrolled));
  // The agency: a confidential client with the CSC scopes, bearer tokens
  // (pyHanko's CSC signer sends no DPoP proofs), PAR as by default.
  const made = clients('add', '--id', 'e2e-lands', '--name', 'กรมที่ดิน · Department of Lands', '--redirect-uri', callback,
    '--auth', 'client_secret_basic', '--no-dpop', '--scope', 'service', '--scope', 'credential',
    '--purpose', 'deed-signing', '--purpose-text', 'ลงนามคำขอโอนที่ดิน · Signing a land transfer application');
  lands = await client.discovery(new URL(base), 'e2e-lands', { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(made.client_secret), insecure);
  secrets['e2e-lands'] = made.client_secret;
  // Another agency, allowed no signing.
  const plain = clients('add', '--id', 'e2e-no-signing', '--redirect-uri', callback, '--auth', 'client_secret_basic', '--no-dpop');
  other = await client.discovery(new URL(base), 'e2e-no-signing', { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(plain.client_secret), insecure);
  secrets['e2e-no-signing'] = plain.client_secret;
});

after(async () => {
  await browser?.close();
  agency?.close();
});

// Sends the person through a pushed authorization request of `config`
// with `extra` parameters; `onPage` runs on the page Tuaton shows after
// the login (the signing page) and must click through it. Returns the
// URL the browser came back to and the PKCE verifier, state and nonce.
async function authorize(config, extra, { onPage } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: callback, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    ...extra,
  });
  const { page } = person;
  await page.goto(url.href);
  await page.waitForSelector('#login');
  const back = page.waitForURL((u) => u.href.startsWith(callback), { timeout: 20000 });
  await page.click('#login');
  if (onPage) await onPage(page);
  await back;
  return { back: new URL(page.url()), verifier, state, nonce };
}

async function tokens(config, { back, verifier, state, nonce }) {
  return client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
}

// The details of a signature authorization for `hashes` ([hash, label]).
function details(hashes, id = credentialId) {
  return JSON.stringify([{
    type: 'credential', credentialID: id, hashAlgorithmOID: SHA256,
    documentDigests: hashes.map(([hash, label]) => ({ hash: b64(hash), label })),
  }]);
}

// Confirms on the signing page, after checking it shows each of `hashes`.
function confirm(hashes, screenshot) {
  return async (page) => {
    await page.waitForSelector('#sign', { timeout: 15000 });
    const shown = await page.$$eval('#hashes li', (items) => items.map((li) => [li.dataset.hash, li.textContent]));
    assert.deepEqual(shown.map(([h]) => h), hashes.map(([h]) => Buffer.from(h).toString('hex')));
    hashes.forEach(([, label], i) => assert.ok(shown[i][1].includes(label), `label ${label} shown`));
    assert.match(await page.textContent('#client'), /กรมที่ดิน/);
    if (screenshot && process.env.TUATON_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, screenshot), fullPage: true });
    }
    await page.click('#sign');
  };
}

// A code flow in which the person confirms `hashes`; the access token.
async function confirmed(hashes, screenshot) {
  const flow = await authorize(lands, { scope: 'openid', authorization_details: details(hashes) },
    { onPage: confirm(hashes, screenshot) });
  return tokens(lands, flow);
}

test('a credential that is not the person\'s sends the agency invalid_request and makes no key', async () => {
  // Before the person has any signing key: naming a credential makes none.
  const keys = () => Number(sql("SELECT COUNT(*) FROM managed_keys WHERE purpose = 'user-signing'"));
  const before = keys();
  const flow = await authorize(lands, { scope: 'openid', authorization_details: details([[sha256('x'), 'x']], 'not-a-credential') });
  assert.equal(flow.back.searchParams.get('error'), 'invalid_request');
  assert.equal(flow.back.searchParams.get('state'), flow.state);
  assert.doesNotMatch(flow.back.searchParams.get('error_description'), /not-a-credential/);
  assert.equal(keys(), before);
});

test('the service token lists and describes the person\'s credential as CSC v2.0 says', async () => {
  const info = await csc('info');
  assert.equal(info.status, 200);
  assert.deepEqual(info.body.authType, ['oauth2code']);
  assert.equal(info.body.oauth2, base);
  assert.ok(info.body.methods.includes('signatures/signHash'));
  const metadata = lands.serverMetadata();
  assert.ok(metadata.scopes_supported.includes('service') && metadata.scopes_supported.includes('credential'));
  assert.deepEqual(metadata.authorization_details_types_supported, ['credential']);

  serviceToken = (await tokens(lands, await authorize(lands, { scope: 'openid service' }))).access_token;
  const list = await csc('credentials/list', serviceToken, { credentialInfo: true, certificates: 'chain', certInfo: true });
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.equal(list.body.credentialIDs.length, 1);
  [credentialId] = list.body.credentialIDs;
  const [described] = list.body.credentialInfos;
  assert.equal(described.credentialID, credentialId);
  assert.equal(described.SCAL, '2');
  assert.equal(described.cert.status, 'valid');
  assert.match(described.cert.subjectDN, /Anucha|อนุชา/);
  assert.equal(described.cert.certificates.length, 2, 'the signer and its issuing CA; the root is the validator\'s own anchor');

  const one = await csc('credentials/info', serviceToken, { credentialID: credentialId });
  assert.equal(one.status, 200);
  assert.equal(one.body.cert.certificates.length, 1, 'certificates=single by default');
  assert.ok(one.body.key.algo.includes(ECDSA_SHA256));
  const unknown = await csc('credentials/info', serviceToken, { credentialID: 'not-a-credential' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error, 'invalid_request');
  const anonymous = await csc('credentials/list', undefined);
  assert.equal(anonymous.status, 401);
});

test('pyHanko\'s CSC signer signs a PDF the person confirmed with a passkey; pyHanko and pdfsig judge it valid, a flipped byte not', async () => {
  const source = new URL('../fixtures/agency-form.pdf', import.meta.url).pathname;
  const target = join(dir, 'transfer-signed.pdf');
  const child = spawn(python, [driver, base, serviceToken, credentialId, source, target], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('close', resolve));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const asked = JSON.parse((await lines.next()).value ?? `{"error": ${JSON.stringify(stderr)}}`);
  assert.ok(asked.hashes, `pyHanko asks for a hash to be confirmed: ${stderr}`);
  const hashes = asked.hashes.map((h) => [Buffer.from(h, 'base64'), 'คำขอโอนที่ดิน · agency-form.pdf']);

  const granted = await confirmed(hashes, 'csc-sign.png');
  assert.equal(granted.authorization_details?.[0]?.type, 'credential', 'the token response names what was authorised');
  child.stdin.write(`${JSON.stringify({ token: granted.access_token })}\n`);
  const done = await lines.next();
  assert.equal(await exited, 0, stderr);
  assert.equal(JSON.parse(done.value).signed, target);

  const root = Buffer.from(await (await fetch(`${base}/pki/root.crt`)).arrayBuffer());
  writeFileSync(join(dir, 'root.der'), root);
  execFileSync('openssl', ['x509', '-inform', 'DER', '-in', 'root.der', '-out', 'root.pem'], { cwd: dir });
  const hanko = execFileSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print', '--force-revinfo',
    '--trust-replace', '--trust', 'root.pem', target], { cwd: dir, encoding: 'utf8' });
  assert.match(hanko, /The signature is judged VALID/);
  assert.match(hanko, /timestamp token is cryptographically sound/);
  assert.match(hanko, /Anucha|อนุชา/);
  assert.match(execFileSync('pdfsig', [target], { encoding: 'utf8' }), /Signature is Valid\./);

  // One byte changed inside the signed range: both refuse it.
  const signed = readFileSync(target);
  const original = readFileSync(source);
  const flipped = Buffer.from(signed);
  flipped[original.length - 20] ^= 0x01;
  writeFileSync(join(dir, 'flipped.pdf'), flipped);
  const judged = spawnSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print',
    '--trust-replace', '--trust', 'root.pem', 'flipped.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.doesNotMatch(judged.stdout, /The signature is judged VALID/);
  assert.doesNotMatch(spawnSync('pdfsig', [join(dir, 'flipped.pdf')], { encoding: 'utf8' }).stdout, /Signature is Valid\./);

  // The confirmation is spent: the same token signs nothing more.
  const again = await csc('signatures/signHash', granted.access_token, {
    credentialID: credentialId, hashes: asked.hashes, hashAlgorithmOID: SHA256, signAlgo: ECDSA_SHA256,
  });
  assert.equal(again.status, 400);
  assert.equal(again.body.error, 'invalid_request');
});

test('a batch of hashes confirmed once is signed once; a hash not confirmed, another request\'s SAD or a replay sign nothing', async () => {
  const batch = [1, 2, 3].map((n) => [sha256(`page ${n} of the application`), `หน้า ${n} · page ${n}`]);
  const first = await confirmed(batch, 'csc-sign-batch.png');
  const second = await confirmed([[sha256('another application'), 'คำขออื่น · another application']]);
  const signHash = (token, hashes, extra = {}) => csc('signatures/signHash', token, {
    credentialID: credentialId, hashes: hashes.map(b64), hashAlgorithmOID: SHA256, signAlgo: ECDSA_SHA256, ...extra,
  });

  // A hash the person did not confirm: refused, and the confirmation stays.
  const stranger = await signHash(first.access_token, [batch[0][0], sha256('not shown to the person')]);
  assert.equal(stranger.status, 400);
  assert.match(stranger.body.error_description, /hash 1 is not one the person confirmed/);
  // The service token carries no confirmation; another client's none either.
  assert.equal((await signHash(serviceToken, [batch[0][0]])).status, 400);
  // A SAD taken for the second request does not serve the first's token.
  const sad = await csc('credentials/authorize', second.access_token, {
    credentialID: credentialId, numSignatures: 1, hashes: [b64(sha256('another application'))], hashAlgorithmOID: SHA256,
  });
  assert.equal(sad.status, 200, JSON.stringify(sad.body));
  assert.ok(sad.body.expiresIn > 0 && sad.body.expiresIn <= 300);
  assert.equal((await signHash(first.access_token, [batch[0][0]], { SAD: sad.body.SAD })).status, 400);
  // A PIN is not how Tuaton authorises.
  const pin = await csc('credentials/authorize', first.access_token, { credentialID: credentialId, numSignatures: 1, PIN: '1234' });
  assert.equal(pin.status, 400);

  // The confirmed batch signs, each signature by the certificate's key.
  const own = await csc('credentials/authorize', first.access_token, {
    credentialID: credentialId, numSignatures: 3, hash: batch.map(([h]) => b64(h)), hashAlgo: SHA256,
  });
  assert.equal(own.status, 200, 'v1.0.4 field names are read too');
  const signed = await signHash(first.access_token, batch.map(([h]) => h), { SAD: own.body.SAD });
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  assert.equal(signed.body.signatures.length, 3);
  // Each is ECDSA over the hash as given, by the certificate's key:
  // openssl's pkeyutl verifies a signature over a digest it is handed.
  const info = await csc('credentials/info', serviceToken, { credentialID: credentialId });
  const cert = new X509Certificate(Buffer.from(info.body.cert.certificates[0], 'base64'));
  writeFileSync(join(dir, 'signer.pem'), cert.publicKey.export({ type: 'spki', format: 'pem' }));
  batch.forEach(([hash], i) => {
    writeFileSync(join(dir, `sig-${i}.der`), Buffer.from(signed.body.signatures[i], 'base64'));
    writeFileSync(join(dir, `hash-${i}.bin`), hash);
    const ok = spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'signer.pem',
      '-sigfile', `sig-${i}.der`, '-in', `hash-${i}.bin`], { cwd: dir, encoding: 'utf8' });
    assert.match(ok.stdout, /Signature Verified Successfully/, ok.stderr);
  });
  // Spent: the same hashes, the same SAD, sign nothing again.
  assert.equal((await signHash(first.access_token, [batch[0][0]], { SAD: own.body.SAD })).status, 400);
  // The second request still signs its own hash.
  assert.equal((await signHash(second.access_token, [sha256('another application')], { SAD: sad.body.SAD })).status, 200);
});

test('a SAD signs only the hashes and the number it was taken for, and a person holds a few at most', async () => {
  const batch = [1, 2].map((n) => [sha256(`annex ${n}`), `ภาคผนวก ${n} · annex ${n}`]);
  const granted = await confirmed(batch);
  const authorize = (extra) => csc('credentials/authorize', granted.access_token, {
    credentialID: credentialId, hashAlgorithmOID: SHA256, ...extra,
  });
  const signHash = (hashes, SAD) => csc('signatures/signHash', granted.access_token, {
    credentialID: credentialId, hashes: hashes.map(b64), hashAlgorithmOID: SHA256, signAlgo: ECDSA_SHA256, SAD,
  });
  const first = await authorize({ numSignatures: 1, hashes: [b64(batch[0][0])] });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const both = batch.map(([h]) => h);
  // Taken for the first hash: it signs neither the second nor both.
  assert.equal((await signHash([batch[1][0]], first.body.SAD)).status, 400);
  assert.equal((await signHash(both, first.body.SAD)).status, 400);
  // numSignatures 1 over both hashes: one signature at most.
  const one = await authorize({ numSignatures: 1, hashes: both.map(b64) });
  assert.equal(one.status, 200);
  assert.equal((await signHash(both, one.body.SAD)).status, 400);
  // The refusals spent nothing: a SAD for both signs both.
  const all = await authorize({ numSignatures: 2 });
  assert.equal(all.status, 200);
  const signed = await signHash(both, all.body.SAD);
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  assert.equal(signed.body.signatures.length, 2);

  // A token cannot fill the store with SADs: a few are live at once.
  const again = await confirmed([[sha256('annex 3'), 'ภาคผนวก 3 · annex 3']]);
  let refused;
  for (let i = 0; i < 9 && !refused; i += 1) {
    const r = await csc('credentials/authorize', again.access_token, { credentialID: credentialId, numSignatures: 1 });
    if (r.status !== 200) refused = r;
  }
  assert.ok(refused, 'the ninth live SAD is refused');
  assert.equal(refused.status, 400);
  assert.match(refused.body.error_description, /at most 8 SADs/);
});

test('a database writer who changes the confirmed hashes gets nothing signed, and the token names the request only', async () => {
  const hash = sha256('the deed as the person read it');
  const forged = sha256('the deed a database writer wants');
  const granted = await confirmed([[hash, 'โฉนด · deed']]);
  const token = claims(granted.access_token);
  assert.ok(token.signing_request, 'the access token names the confirmed request');
  assert.equal(token.authorization_details, undefined, 'hashes and labels stay out of the access token');
  const hex = (h) => Buffer.from(h).toString('hex');
  sql(`UPDATE signing_requests SET documents = REPLACE(documents, '${hex(hash)}', '${hex(forged)}') WHERE id = '${token.signing_request}'`);
  const r = await csc('signatures/signHash', granted.access_token, {
    credentialID: credentialId, hashes: [b64(forged)], hashAlgorithmOID: SHA256, signAlgo: ECDSA_SHA256,
  });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(sql(`SELECT state FROM signing_requests WHERE id = '${token.signing_request}'`), 'pending');
  // Put back, the row is what the person confirmed, and the hash they
  // confirmed signs: the refusal spent nothing.
  sql(`UPDATE signing_requests SET documents = REPLACE(documents, '${hex(forged)}', '${hex(hash)}') WHERE id = '${token.signing_request}'`);
  const signed = await csc('signatures/signHash', granted.access_token, {
    credentialID: credentialId, hashes: [b64(hash)], hashAlgorithmOID: SHA256, signAlgo: ECDSA_SHA256,
  });
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  assert.equal(sql(`SELECT state FROM signing_requests WHERE id = '${token.signing_request}'`), 'signed');
});

test('signDoc signs the PDF, the file and the e-Tax invoice whose hashes the person confirmed: PAdES that pyHanko and pdfsig accept, CAdES that openssl cms verifies, XAdES that xmlsec1 verifies', async () => {
  const pdf = readFileSync(new URL('../fixtures/agency-form.pdf', import.meta.url));
  const text = Buffer.from('ใบรับการโอน · transfer receipt\n');
  const etax = readFileSync(new URL('../fixtures/etax-invoice.xml', import.meta.url));
  const granted = await confirmed([[sha256(pdf), 'คำขอโอน · agency-form.pdf'], [sha256(text), 'ใบรับ · receipt.txt'],
    [sha256(etax), 'ใบกำกับภาษี · etax-invoice.xml']]);
  const signDoc = (documents, extra = {}) => csc('signatures/signDoc', granted.access_token, {
    credentialID: credentialId, documents, ...extra,
  });
  const doc = (bytes, format, more = {}) => ({
    document: b64(bytes), signature_format: format, conformance_level: 'Ades-B-T', signAlgo: ECDSA_SHA256, ...more,
  });

  // Refused, each spending nothing: a file not confirmed, JAdES, a level
  // Tuaton does not make, digests instead of documents, a PDF signed as
  // an attached CAdES.
  const stranger = await signDoc([doc(Buffer.from('a file the person never saw'), 'C')]);
  assert.equal(stranger.status, 400);
  assert.match(stranger.body.error_description, /not one the person confirmed/);
  for (const [refused, why] of [
    [{ documents: [doc(text, 'J')] }, /JAdES/],
    [{ documents: [doc(text, 'C', { conformance_level: 'Ades-B-LTA' })] }, /conformance_level/],
    [{ documents: [doc(pdf, 'P', { signed_envelope_property: 'Certification' })] }, /signed_envelope_property/],
    [{ documents: [doc(text, 'C')], documentDigests: [{ hashes: [b64(sha256(text))] }] }, /documentDigests/],
  ]) {
    const r = await csc('signatures/signDoc', granted.access_token, { credentialID: credentialId, ...refused });
    assert.equal(r.status, 400, JSON.stringify(refused).slice(0, 80));
    assert.match(r.body.error_description, why);
  }

  const signed = await signDoc([doc(pdf, 'P'), doc(text, 'C'), doc(etax, 'X')]);
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  assert.equal(signed.body.DocumentWithSignature.length, 2, 'the PDF and the XML, each with its signature in it');
  assert.equal(signed.body.SignatureObject.length, 1);
  const root = Buffer.from(await (await fetch(`${base}/pki/root.crt`)).arrayBuffer());
  writeFileSync(join(dir, 'root.der'), root);
  execFileSync('openssl', ['x509', '-inform', 'DER', '-in', 'root.der', '-out', 'root.pem'], { cwd: dir });
  const signedPdf = Buffer.from(signed.body.DocumentWithSignature[0], 'base64');
  assert.ok(signedPdf.subarray(0, pdf.length).equals(pdf), 'an incremental update of the file confirmed');
  writeFileSync(join(dir, 'signdoc.pdf'), signedPdf);
  const hanko = execFileSync(python, ['-m', 'pyhanko', 'sign', 'validate', '--pretty-print', '--force-revinfo',
    '--trust-replace', '--trust', 'root.pem', 'signdoc.pdf'], { cwd: dir, encoding: 'utf8' });
  assert.match(hanko, /The signature is judged VALID/);
  assert.match(execFileSync('pdfsig', [join(dir, 'signdoc.pdf')], { encoding: 'utf8' }), /Signature is Valid\./);
  writeFileSync(join(dir, 'receipt.txt'), text);
  writeFileSync(join(dir, 'receipt.p7s'), Buffer.from(signed.body.SignatureObject[0], 'base64'));
  const cms = (content) => spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'receipt.p7s',
    '-content', content, '-CAfile', 'root.pem', '-out', '/dev/null'], { cwd: dir, encoding: 'utf8' });
  const good = cms('receipt.txt');
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stderr, /Verification successful/);
  const changed = Buffer.from(text);
  changed[0] ^= 0x01;
  writeFileSync(join(dir, 'receipt-changed.txt'), changed);
  assert.notEqual(cms('receipt-changed.txt').status, 0);

  // The e-Tax invoice: an enveloped XAdES signature xmlsec1 verifies to the
  // root, and not once an amount is changed.
  const xml = Buffer.from(signed.body.DocumentWithSignature[1], 'base64');
  assert.ok(xml.toString('utf8').includes('SignedProperties'), 'XAdES properties in the signature');
  const xmlsec = (file) => spawnSync('xmlsec1', ['--verify', '--trusted-pem', 'root.pem',
    '--id-attr:Id', 'http://uri.etsi.org/01903/v1.3.2#:SignedProperties', file], { cwd: dir, encoding: 'utf8' });
  writeFileSync(join(dir, 'signdoc-etax.xml'), xml);
  const verified = xmlsec('signdoc-etax.xml');
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(verified.stderr, /^OK/m);
  const amount = xml.toString('utf8').match(/>(\d+\.\d\d)</);
  assert.ok(amount, 'the invoice has an amount to change');
  writeFileSync(join(dir, 'signdoc-etax-changed.xml'), xml.toString('utf8').replace(amount[0], `>${amount[1]}1<`));
  assert.notEqual(xmlsec('signdoc-etax-changed.xml').status, 0);

  // Spent: the same documents sign nothing again.
  assert.equal((await signDoc([doc(pdf, 'P'), doc(text, 'C'), doc(etax, 'X')])).status, 400);
});

test('an agency not allowed signatures, or malformed authorization details, gets the standard error and no signing page', async () => {
  const hash = sha256('a deed');
  const bad = async (config, extra) => {
    const id = config.clientMetadata().client_id;
    const verifier = client.randomPKCECodeVerifier();
    const params = new URLSearchParams({
      response_type: 'code', client_id: id, redirect_uri: callback, scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
    });
    const r = await fetch(new URL('/par', base), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${id}:${secrets[id]}`).toString('base64')}`,
      },
      body: params,
    });
    return { status: r.status, body: await r.json() };
  };
  const refused = await bad(other, { authorization_details: details([[hash, 'deed']]) });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error, 'invalid_scope');
  for (const malformed of [
    '[{"type":"payment_initiation"}]',
    details([[hash, 'deed']]).replace(SHA256, '1.3.14.3.2.26'),
    JSON.stringify([{ type: 'credential', credentialID: credentialId, hashAlgorithmOID: SHA256, documentDigests: [] }]),
    JSON.stringify([{ type: 'credential', credentialID: credentialId, hashAlgorithmOID: SHA256, documentDigests: [{ hash: 'AAAA', label: 'short' }] }]),
    'not json',
  ]) {
    const r = await bad(lands, { authorization_details: malformed });
    assert.equal(r.status, 400, malformed);
    assert.equal(r.body.error, 'invalid_authorization_details', malformed);
  }
});
