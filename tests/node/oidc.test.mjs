// The OpenID Provider as an agency meets it: panva's openid-client (a
// certified relying-party library) against the built tuaton binary, with a
// person logging in through Chromium and its virtual authenticator. The
// agency's redirect URI is a small HTTP server here on loopback; clients
// are registered with the `tuaton clients` command, as an operator would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as client from 'openid-client';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { base, launch, pageWithAuthenticator } from './browser.mjs';

const bin = process.env.TUATON_BIN;
if (!bin) throw new Error('TUATON_BIN is not set; run tests/run-e2e');
const issuer = new URL(base);
const insecure = { execute: [client.allowInsecureRequests] };

let browser;
let person;
let agency;
let callback;

// `tuaton clients …` on the server's database, as an operator runs it.
function clients(...args) {
  return JSON.parse(execFileSync(bin, ['clients', ...args, '--json'], { encoding: 'utf8' }));
}

// Logout tokens Tuaton posted to the agency's back-channel URI (…/bcl).
const logoutTokens = [];
// The key set the agency publishes at …/jwks.json, for a client registered with its jwks_uri.
let agencyKeys = { keys: [] };

// The agency's redirect target: answers 200; keeps only the logout tokens posted to it.
function startAgency() {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => { body += chunk; });
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/bcl') {
          logoutTokens.push(new URLSearchParams(body).get('logout_token'));
        }
        if (req.method === 'GET' && req.url === '/jwks.json') {
          res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
          res.end(JSON.stringify(agencyKeys));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('agency');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

before(async () => {
  browser = await launch();
  agency = await startAgency();
  callback = `http://127.0.0.1:${agency.address().port}/cb`;
  person = await pageWithAuthenticator(browser);
  const enrolled = await person.page.evaluate((p) => window.t.enrolAndRegister(p), {
    citizen_id: '1999000000033', thai_given_name: 'วิชัย', thai_family_name: 'ศรีสุข',
    birth_date: '1972-11-03', laser_code: 'AA2-7654321-12',
  });
  assert.equal(enrolled.registerStatus, 201, JSON.stringify(enrolled));
});

after(async () => {
  await browser?.close();
  agency?.close();
});

// Sends the person through the authorization request at `url` and returns
// the URL the browser was sent back to.
async function logInThrough(url, { screenshot } = {}) {
  const { page } = person;
  await page.goto(url.href);
  await page.waitForSelector('#login');
  if (screenshot && process.env.TUATON_SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, screenshot), fullPage: true });
  }
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(callback), { timeout: 15000 }),
    page.click('#login'),
  ]);
  return new URL(page.url());
}

// A code flow with PKCE, state and nonce, checked by openid-client; with
// `par`, the request is pushed first (RFC 9126); with `DPoP` (a handle of
// openid-client's), every request to Tuaton carries a proof (RFC 9449).
async function codeFlow(config, { screenshot, par, DPoP } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: callback, scope: 'openid', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  };
  const url = par ? await client.buildAuthorizationUrlWithPAR(config, params, { DPoP }) : client.buildAuthorizationUrl(config, params);
  const back = await logInThrough(url, { screenshot });
  const tokens = await client.authorizationCodeGrant(config, back, {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, { DPoP });
  return { tokens, back, verifier };
}

async function discover(clientId, auth, metadata = {}) {
  return client.discovery(issuer, clientId, { id_token_signed_response_alg: 'ES256', ...metadata }, auth, insecure);
}

// The RFC 7638 thumbprint of a P-256 public key, computed here from its JWK.
async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  const canonical = JSON.stringify({ crv, kty, x, y });
  return Buffer.from(await crypto.subtle.digest('SHA-256', Buffer.from(canonical))).toString('base64url');
}

// A DPoP proof made by hand (RFC 9449 §4.2) with `keyPair`, for requests
// openid-client would never send: `claims` override what a good proof says.
async function handProof(keyPair, htm, path, claims = {}) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', keyPair.publicKey);
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const payload = { jti: crypto.randomUUID(), htm, htu: new URL(path, base).href, iat: Math.floor(Date.now() / 1000), ...claims };
  const input = `${b64({ typ: 'dpop+jwt', alg: 'ES256', jwk: { crv, kty, x, y } })}.${b64(payload)}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keyPair.privateKey, Buffer.from(input));
  return `${input}.${Buffer.from(sig).toString('base64url')}`;
}

// POSTs `form` to the token endpoint with `proof` in the DPoP header.
async function tokenRequest(form, proof) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (proof) headers.dpop = proof;
  return fetch(new URL('/token', base), { method: 'POST', headers, body: new URLSearchParams(form) });
}

test('discovery names every endpoint and says only what Tuaton does', async () => {
  const config = await discover('nobody', client.None());
  const m = config.serverMetadata();
  assert.equal(m.issuer, base);
  assert.deepEqual(m.response_types_supported, ['code']);
  assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(m.dpop_signing_alg_values_supported, ['ES256', 'PS256', 'RS256']);
  assert.equal(m.request_parameter_supported, true);
  assert.equal(m.backchannel_logout_supported, true);
  assert.equal(m.authorization_response_iss_parameter_supported, true);
  assert.ok(m.id_token_signing_alg_values_supported.includes('ES256'));
  for (const endpoint of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) {
    assert.ok(m[endpoint].startsWith(base), endpoint);
  }
});

test('a public client logs a person in with code and PKCE; the hand-back passes Chromium\'s form-action', async () => {
  // Bearer tokens (--no-dpop): the compatibility path for software that cannot make DPoP proofs.
  clients('add', '--id', 'e2e-public', '--name', 'กรมทดสอบ · Test Department', '--redirect-uri', callback, '--auth', 'none', '--no-dpop');
  const config = await discover('e2e-public', client.None());
  const { tokens, back } = await codeFlow(config, { screenshot: 'oidc-authorize.png' });
  assert.equal(back.searchParams.get('iss'), base, 'RFC 9207 iss in the response');
  const claims = tokens.claims();
  assert.equal(claims.iss, base);
  assert.equal(claims.aud, 'e2e-public');
  assert.equal(claims.acr, 'urn:tuaton:aal:2.2');
  assert.ok(claims.amr.includes('user'));
  assert.ok(Math.abs(claims.auth_time - Date.now() / 1000) < 60);
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
});

test('a code redeemed twice fails and revokes what the first redemption issued', async () => {
  const config = await discover('e2e-public', client.None());
  const { tokens, back, verifier } = await codeFlow(config);
  const again = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: callback,
      code_verifier: verifier, client_id: 'e2e-public',
    }),
  });
  assert.equal(again.status, 400);
  assert.equal((await again.json()).error, 'invalid_grant');
  await assert.rejects(
    client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub),
    (e) => e instanceof client.WWWAuthenticateChallengeError || e.status === 401 || /invalid_token/.test(String(e.cause?.error ?? e.code ?? e.message)),
  );
});

test('a confidential client with client_secret_basic, and one in another sector sees another sub', async () => {
  // The compatibility path: a shared secret, requests through the browser.
  const made = clients('add', '--id', 'e2e-basic', '--redirect-uri', callback, '--auth', 'client_secret_basic', '--no-par', '--no-dpop');
  assert.match(made.client_secret, /^[A-Za-z0-9_-]{43}$/);
  const config = await discover('e2e-basic', client.ClientSecretBasic(made.client_secret));
  const basic = (await codeFlow(config)).tokens.claims();
  // The public client shares the sector (the redirect URIs' host): same sub.
  const pub = (await codeFlow(await discover('e2e-public', client.None()))).tokens.claims();
  assert.equal(basic.sub, pub.sub, 'one sector, one sub');
  clients('add', '--id', 'e2e-other-sector', '--redirect-uri', callback, '--auth', 'none', '--sector', 'other.example.go.th', '--no-dpop');
  const other = (await codeFlow(await discover('e2e-other-sector', client.None()))).tokens.claims();
  assert.notEqual(other.sub, basic.sub, 'another sector, another sub');
  const wrong = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('e2e-basic:not-the-secret').toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: callback, code_verifier: client.randomPKCECodeVerifier() }),
  });
  assert.equal(wrong.status, 401);
  assert.match(wrong.headers.get('www-authenticate'), /^Basic /, 'RFC 6749 §5.2: the challenge for a Basic client');
  assert.equal((await wrong.json()).error, 'invalid_client');
});

test('refresh tokens rotate, a reused one revokes the family; introspection and revocation', async () => {
  const made = clients('add', '--id', 'e2e-refresh', '--redirect-uri', callback, '--auth', 'client_secret_basic', '--no-par', '--no-dpop');
  const config = await discover('e2e-refresh', client.ClientSecretBasic(made.client_secret));
  const { tokens } = await codeFlow(config);
  const next = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(next.refresh_token, tokens.refresh_token, 'rotated');
  const seen = await client.tokenIntrospection(config, next.access_token);
  assert.equal(seen.active, true);
  assert.equal(seen.client_id, 'e2e-refresh');
  assert.match(seen.ial, /^urn:tuaton:ial:/);
  // The first refresh token again, as a thief would: the family is revoked.
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_grant');
  await assert.rejects(client.refreshTokenGrant(config, next.refresh_token), (e) => e.error === 'invalid_grant');
  assert.equal((await client.tokenIntrospection(config, next.access_token)).active, false);

  const again = (await codeFlow(config)).tokens;
  await client.tokenRevocation(config, again.refresh_token);
  assert.equal((await client.tokenIntrospection(config, again.access_token)).active, false, 'revoking the refresh token ends its access tokens');
  await client.tokenRevocation(config, 'never-issued');
});

test('an agency back end with client_credentials gets a token for itself', async () => {
  const made = clients('add', '--id', 'e2e-batch', '--redirect-uri', callback, '--auth', 'client_secret_basic', '--client-credentials', '--no-dpop');
  const config = await discover('e2e-batch', client.ClientSecretBasic(made.client_secret));
  const tokens = await client.clientCredentialsGrant(config);
  assert.equal(tokens.id_token, undefined);
  assert.equal(tokens.refresh_token, undefined);
  const seen = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(seen.active, true);
  assert.equal(seen.sub, 'e2e-batch');
  const basic = await discover('e2e-basic', client.ClientSecretBasic('unused'));
  await assert.rejects(client.clientCredentialsGrant(basic), (e) => e.status === 401 || e.error === 'unauthorized_client');
});

test('a client on the secure defaults: private_key_jwt, PAR and DPoP; a replayed assertion is refused', async () => {
  const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'agency-key-1', use: 'sig', alg: 'ES256' };
  delete jwk.key_ops;
  delete jwk.ext;
  const dir = mkdtempSync(join(tmpdir(), 'tuaton-e2e-jwks-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  clients('add', '--id', 'e2e-jwt', '--redirect-uri', callback, '--auth', 'private_key_jwt', '--jwks', join(dir, 'jwks.json'));
  const config = await discover('e2e-jwt', client.PrivateKeyJwt({ key: privateKey, kid: 'agency-key-1' }));
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  const { tokens } = await codeFlow(config, { par: true, DPoP });
  assert.equal(tokens.claims().aud, 'e2e-jwt');
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  // Introspection tells a resource which key the token is bound to (RFC 9449 §6.2).
  const seen = await client.tokenIntrospection(config, tokens.access_token);
  assert.equal(seen.token_type, 'DPoP');
  assert.equal(seen.cnf.jkt, await thumbprint(keyPair.publicKey));
  const next = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert.equal(next.token_type.toLowerCase(), 'dpop');
  assert.ok((await client.fetchUserInfo(config, next.access_token, tokens.claims().sub, { DPoP })).sub);
  // The same client sending its request through the browser is refused.
  const plain = client.buildAuthorizationUrl(config, {
    redirect_uri: callback, scope: 'openid', state: 'plain-1',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const refused = await fetch(plain, { redirect: 'manual' });
  assert.equal(refused.status, 303);
  const back = new URL(refused.headers.get('location'));
  assert.equal(back.searchParams.get('error'), 'invalid_request');
  assert.equal(back.searchParams.get('state'), 'plain-1');

  // One assertion, sent twice: the second is a replay. The token endpoint spends an
  // assertion with the tokens it obtains; a request refused for another reason (an
  // unknown code) leaves it unspent, so that a refusal writes nothing.
  let captured;
  const capturing = await discover('e2e-jwt', client.PrivateKeyJwt({ key: privateKey, kid: 'agency-key-1' }), {});
  capturing[client.customFetch] = async (url, options) => {
    if (String(url).endsWith('/token') && options.body) {
      captured = new URLSearchParams(options.body.toString()).get('client_assertion');
    }
    return fetch(url, options);
  };
  await assert.rejects(client.authorizationCodeGrant(capturing, new URL(`${callback}?code=x&iss=${encodeURIComponent(base)}`),
    { pkceCodeVerifier: client.randomPKCECodeVerifier() }, undefined, { DPoP: client.getDPoPHandle(capturing, keyPair) }),
  (e) => e.error === 'invalid_grant');
  await codeFlow(capturing, { par: true, DPoP: client.getDPoPHandle(capturing, keyPair) });
  const replay = await fetch(new URL('/token', base), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: 'x', redirect_uri: callback, code_verifier: client.randomPKCECodeVerifier(),
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: captured,
    }),
  });
  assert.equal(replay.status, 401);
  assert.equal((await replay.json()).error, 'invalid_client');
});

test('DPoP: a public client\'s code and tokens are bound to its key; proofs for another key, method or URL are refused', async () => {
  clients('add', '--id', 'e2e-dpop', '--redirect-uri', callback, '--auth', 'none');
  const config = await discover('e2e-dpop', client.None());
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(config, keyPair);
  // The pushed request carries a proof, which binds the code to the key (RFC 9449 §10.1).
  const { tokens } = await codeFlow(config, { par: true, DPoP });
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  const sub = tokens.claims().sub;
  assert.equal((await client.fetchUserInfo(config, tokens.access_token, sub, { DPoP })).sub, sub);
  // A copied access token is worthless: as a bearer token, or with another key's proof.
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, sub), (e) => e.status === 401 || e instanceof client.WWWAuthenticateChallengeError);
  const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, sub, { DPoP: thief }),
    (e) => e instanceof client.WWWAuthenticateChallengeError && e.cause.some((c) => c.scheme === 'dpop' && c.parameters.error === 'invalid_dpop_proof'));
  // So is a copied refresh token: another key, or none, is refused, and the family stands.
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: thief }), (e) => e.error === 'invalid_dpop_proof');
  await assert.rejects(client.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === 'invalid_dpop_proof');
  const next = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP });
  assert.equal(next.token_type.toLowerCase(), 'dpop');

  // Proofs made by hand, with the nonce the server gives out.
  const form = { grant_type: 'refresh_token', refresh_token: next.refresh_token, client_id: 'e2e-dpop' };
  const noNonce = await tokenRequest(form, await handProof(keyPair, 'POST', '/token'));
  assert.equal(noNonce.status, 400);
  assert.equal((await noNonce.json()).error, 'use_dpop_nonce');
  const nonce = noNonce.headers.get('dpop-nonce');
  assert.ok(nonce, 'the nonce comes in the DPoP-Nonce header (RFC 9449 §8)');
  for (const [proof, why] of [
    [await handProof(keyPair, 'GET', '/token', { nonce }), 'another method'],
    [await handProof(keyPair, 'POST', '/userinfo', { nonce }), 'another URL'],
    [await handProof(keyPair, 'POST', '/token', { nonce, iat: Math.floor(Date.now() / 1000) - 600 }), 'an old proof'],
    ['not.a.proof', 'not a JWT'],
  ]) {
    const refused = await tokenRequest(form, proof);
    assert.equal(refused.status, 400, why);
    assert.equal((await refused.json()).error, 'invalid_dpop_proof', why);
  }
  const good = await handProof(keyPair, 'POST', '/token', { nonce });
  const answered = await tokenRequest(form, good);
  assert.equal(answered.status, 200);
  const last = await answered.json();
  assert.equal(last.token_type, 'DPoP');
  const replayed = await tokenRequest({ ...form, refresh_token: last.refresh_token }, good);
  assert.equal(replayed.status, 400);
  assert.match((await replayed.json()).error_description, /used before/, 'a proof works once');
  // At userinfo, a proof that does not hash the token it came with (ath) is refused.
  const userinfo = await fetch(new URL('/userinfo', base), {
    headers: { authorization: `DPoP ${last.access_token}`, dpop: await handProof(keyPair, 'GET', '/userinfo', { nonce }) },
  });
  assert.equal(userinfo.status, 401);
  assert.match(userinfo.headers.get('www-authenticate'), /^DPoP error="invalid_dpop_proof"/);
  assert.match(userinfo.headers.get('www-authenticate'), /algs="ES256 PS256 RS256"/);
});

test('consent: asked with the agency, purpose and each claim, remembered, withdrawn and asked again', async () => {
  clients('add', '--id', 'e2e-consent', '--name', 'กรมสรรพากร · Revenue Department', '--redirect-uri', callback,
    '--auth', 'none', '--no-dpop', '--scope', 'profile', '--purpose', 'tax-filing', '--purpose-text', 'ยื่นแบบภาษีเงินได้ · Filing your income tax');
  const config = await discover('e2e-consent', client.None());
  const { page } = person;
  const flow = async (extra = {}) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback, scope: 'openid profile', state, ...extra,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    await page.waitForSelector('#login');
    await page.click('#login');
    // Either back to the agency at once, or Tuaton's consent page first.
    await page.waitForURL((u) => u.href.startsWith(callback) || u.pathname === '/authorize/continue');
    let asked = null;
    if (!page.url().startsWith(callback)) {
      await page.waitForSelector('#share');
      asked = {
        client: await page.textContent('#client'),
        purpose: await page.textContent('#purpose'),
        claims: await page.$$eval('#claims li', (lis) => lis.map((li) => li.dataset.claim)),
        csrf: await page.inputValue('input[name=csrf_token]'),
      };
      if (process.env.TUATON_SCREENSHOTS) {
        await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, 'oidc-consent.png'), fullPage: true });
      }
      await Promise.all([page.waitForURL((u) => u.href.startsWith(callback)), page.click('#share')]);
    }
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: state });
    return { asked, tokens };
  };
  const first = await flow();
  assert.ok(first.asked, 'the first login asks');
  assert.equal(first.asked.client, 'กรมสรรพากร · Revenue Department');
  assert.match(first.asked.purpose, /income tax/);
  assert.deepEqual(first.asked.claims, ['name', 'birthdate']);
  const info = await client.fetchUserInfo(config, first.tokens.access_token, first.tokens.claims().sub);
  assert.equal(info.name, 'วิชัย ศรีสุข');
  assert.equal(info['given_name#th'], 'วิชัย');
  assert.equal(info.birthdate, '1972-11-03');
  assert.equal(info.citizen_id, undefined, 'not asked for, not released');

  const second = await flow();
  assert.equal(second.asked, null, 'remembered');
  const forced = await flow({ prompt: 'consent' });
  assert.ok(forced.asked, 'prompt=consent asks again');

  // Withdrawn from the account (the PDPA API): the agency's tokens stop and the next login asks.
  await page.goto(`${base}/healthz`);
  const withdrawn = await page.evaluate(async (csrf) => {
    const list = await (await fetch('/api/v1/me/consents')).json();
    const live = list.filter((c) => c.agency === 'e2e-consent' && !c.withdrawn_at);
    const r = await fetch(`/api/v1/me/consents/${live[0].id}/withdraw`, { method: 'POST', headers: { 'x-csrf-token': csrf } });
    return { live: live.length, status: r.status };
  }, forced.asked.csrf);
  assert.deepEqual(withdrawn, { live: 1, status: 200 });
  await assert.rejects(client.fetchUserInfo(config, forced.tokens.access_token, forced.tokens.claims().sub));
  const after = await flow();
  assert.ok(after.asked, 'asked again after the withdrawal');
});

test('business login: a director chooses the company, and the ID token names it beside the person', async () => {
  clients('add', '--id', 'e2e-biz', '--name', 'กรมพัฒนาธุรกิจการค้า · Department of Business Development', '--redirect-uri', callback,
    '--auth', 'none', '--no-dpop', '--scope', 'business', '--purpose', 'company-filing', '--purpose-text', 'ยื่นงบการเงิน · Filing the company\'s accounts');
  const config = await discover('e2e-biz', client.None());
  // Another person, in a browser of their own: Thanaphon directs two fictional companies.
  const director = await pageWithAuthenticator(browser);
  const { page } = director;
  const enrolled = await page.evaluate((p) => window.t.enrolAndRegister(p), {
    citizen_id: '1999000000050', thai_given_name: 'ธนพล', thai_family_name: 'มั่นคง',
    birth_date: '1978-05-09', laser_code: 'ME4-2222222-34',
  });
  assert.equal(enrolled.registerStatus, 201, JSON.stringify(enrolled));
  const start = async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: callback, scope: 'openid business', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    await page.click('#login');
    await page.waitForSelector('#share');
    assert.deepEqual(await page.$$eval('#claims li', (lis) => lis.map((li) => li.dataset.claim)), ['company']);
    await page.click('#share');
    await page.waitForSelector('#companies', { state: 'attached' });
    return { verifier, state };
  };
  // No company linked yet: the page says so; the person links one from the account API.
  await start();
  assert.ok(await page.$('#no-company'));
  const csrf = await page.inputValue('input[name=csrf_token]');
  const linked = await page.evaluate(async (token) => (await fetch('/api/v1/me/companies', {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token },
    body: JSON.stringify({ juristic_id: '0105599000019' }),
  })).status, csrf);
  assert.equal(linked, 201);
  // The next login lists it; choosing it sends the browser back to the agency.
  const { verifier, state } = await start();
  if (process.env.TUATON_SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, 'oidc-company.png'), fullPage: true });
  }
  await Promise.all([page.waitForURL((u) => u.href.startsWith(callback)), page.click('button[name=company][value="0105599000019"]')]);
  const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: state });
  const claims = tokens.claims();
  assert.deepEqual(claims.company, { juristic_id: '0105599000019', name: 'บริษัท ตัวตนพัฒนา จำกัด' });
  assert.notEqual(claims.sub, '0105599000019', 'the person stays the sub');
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.deepEqual(info.company, claims.company);
  await director.context.close();
});

test('signed request objects (JAR): through the browser and inside a pushed request; the query beside one is ignored', async () => {
  const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'jar-key-1', use: 'sig', alg: 'ES256' };
  delete jwk.key_ops;
  delete jwk.ext;
  const dir = mkdtempSync(join(tmpdir(), 'tuaton-e2e-jar-'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }));
  clients('add', '--id', 'e2e-jar', '--redirect-uri', callback, '--auth', 'private_key_jwt', '--jwks', join(dir, 'jwks.json'), '--no-par', '--no-dpop');
  const signingKey = { key: privateKey, kid: 'jar-key-1' };
  const config = await discover('e2e-jar', client.PrivateKeyJwt(signingKey));
  const request = async () => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = await client.buildAuthorizationUrlWithJAR(config, {
      redirect_uri: callback, scope: 'openid', state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    }, signingKey);
    return { url, verifier, state, nonce };
  };
  // Through the browser, with a query changed on the way: only the signed object counts.
  const front = await request();
  assert.ok(front.url.searchParams.get('request'));
  front.url.searchParams.set('state', 'changed-in-the-browser');
  const back = await logInThrough(front.url);
  assert.equal(back.searchParams.get('state'), front.state, 'the signed state comes back');
  const tokens = await client.authorizationCodeGrant(config, back,
    { pkceCodeVerifier: front.verifier, expectedState: front.state, expectedNonce: front.nonce, idTokenExpected: true });
  assert.equal(tokens.claims().aud, 'e2e-jar');
  // Inside a pushed request (RFC 9126 §3).
  const pushed = await request();
  const parUrl = await client.buildAuthorizationUrlWithPAR(config, { request: pushed.url.searchParams.get('request') });
  const backPushed = await logInThrough(parUrl);
  const viaPar = await client.authorizationCodeGrant(config, backPushed,
    { pkceCodeVerifier: pushed.verifier, expectedState: pushed.state, expectedNonce: pushed.nonce, idTokenExpected: true });
  assert.equal(viaPar.claims().sub, tokens.claims().sub);
  // An object signed with no key is refused on Tuaton's page, never sent back.
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = new URL('/authorize', base);
  unsigned.searchParams.set('client_id', 'e2e-jar');
  unsigned.searchParams.set('request', `${b64({ alg: 'none' })}.${b64({ iss: 'e2e-jar', aud: base, redirect_uri: callback })}.`);
  const refused = await fetch(unsigned, { redirect: 'manual' });
  assert.equal(refused.status, 400);
});

test('a client publishing its keys at a jwks_uri authenticates, and rotates its key without calling the operator', async () => {
  const newKey = async (kid) => {
    const { publicKey, privateKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
    const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid, use: 'sig', alg: 'ES256' };
    delete jwk.key_ops;
    delete jwk.ext;
    return { privateKey, jwk, kid };
  };
  const first = await newKey('published-1');
  agencyKeys = { keys: [first.jwk] };
  const jwksUri = callback.replace(/\/cb$/, '/jwks.json');
  clients('add', '--id', 'e2e-jwks-uri', '--redirect-uri', callback, '--auth', 'private_key_jwt', '--jwks-uri', jwksUri, '--no-par', '--no-dpop');
  const before = (await codeFlow(await discover('e2e-jwks-uri', client.PrivateKeyJwt({ key: first.privateKey, kid: first.kid })))).tokens;
  assert.equal(before.claims().aud, 'e2e-jwks-uri');
  // The agency rotates: a new key, the old one withdrawn. Tuaton fetches the set again when
  // an assertion does not verify with the one it holds (at most every few seconds).
  const second = await newKey('published-2');
  agencyKeys = { keys: [second.jwk] };
  await new Promise((r) => { setTimeout(r, 5500); });
  const after = (await codeFlow(await discover('e2e-jwks-uri', client.PrivateKeyJwt({ key: second.privateKey, kid: second.kid })))).tokens;
  assert.equal(after.claims().sub, before.claims().sub);
  // The withdrawn key no longer authenticates.
  await assert.rejects(
    client.refreshTokenGrant(await discover('e2e-jwks-uri', client.PrivateKeyJwt({ key: first.privateKey, kid: first.kid })), after.refresh_token),
    (e) => e.status === 401 || e.error === 'invalid_client',
  );
});

test('a login on one agency\'s page is not spent on a request another agency started since', async () => {
  const config = await discover('e2e-public', client.None());
  const challenge = await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier());
  const first = client.buildAuthorizationUrl(config, { redirect_uri: callback, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
  const { page, context } = person;
  await page.goto(first.href);
  await page.waitForSelector('#login');
  // Another agency's request, begun in another tab of the same browser.
  const other = await context.newPage();
  const second = client.buildAuthorizationUrl(await discover('e2e-other-sector', client.None()),
    { redirect_uri: callback, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
  await other.goto(second.href);
  await other.close();
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/authorize/continue')),
    page.click('#login'),
  ]);
  assert.equal(answer.status(), 409);
  await page.waitForURL((u) => u.pathname === '/authorize/continue');
  assert.match(await page.textContent('body'), /Another agency/);
});

test('a client registered for PS256 is signed for by the PS256 line of id-token keys, beside the ES256 default', async () => {
  // The operator brings the PS256 line in (no relying party has cached it yet: no pre-publication needed).
  execFileSync(bin, ['keys', 'rotate', '--purpose', 'id-token', '--alg', 'PS256', '--prepublish', '0', '--dev'], { cwd: '../..', encoding: 'utf8' });
  clients('add', '--id', 'e2e-ps256', '--redirect-uri', callback, '--auth', 'none', '--no-dpop', '--alg', 'PS256');
  const config = await discover('e2e-ps256', client.None(), { id_token_signed_response_alg: 'PS256' });
  assert.ok(config.serverMetadata().id_token_signing_alg_values_supported.includes('PS256'));
  const algOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')).alg;
  const { tokens } = await codeFlow(config);
  assert.equal(algOf(tokens.id_token), 'PS256', 'openid-client verified it with the published RSA key');
  const es = (await codeFlow(await discover('e2e-public', client.None()))).tokens;
  assert.equal(algOf(es.id_token), 'ES256', 'the default line is untouched');
});

test('an id-token key rotation in the middle of the suite fails no client', async () => {
  const config = await discover('e2e-public', client.None());
  const before = (await codeFlow(config)).tokens;
  const kidOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url')).kid;
  // The operator's rotation: the next key is published at once and signs a second later.
  execFileSync(bin, ['keys', 'rotate', '--purpose', 'id-token', '--prepublish', '1', '--dev'], { cwd: '../..', encoding: 'utf8' });
  let after;
  for (let i = 0; i < 15 && (!after || kidOf(after.id_token) === kidOf(before.id_token)); i += 1) {
    await new Promise((r) => { setTimeout(r, 1000); });
    // The same configuration: openid-client keeps its cached key set and
    // fetches it again when it meets the new kid.
    after = (await codeFlow(config)).tokens;
  }
  assert.notEqual(kidOf(after.id_token), kidOf(before.id_token), 'the new key signs');
  const info = await client.fetchUserInfo(config, before.access_token, before.claims().sub);
  assert.equal(info.sub, before.claims().sub, 'a token signed by the retiring key still works');
});

test('RP-initiated logout: confirmed on Tuaton, back to the registered URI, the grant and the session ended', async () => {
  const bye = callback.replace(/\/cb$/, '/bye');
  clients('update', 'e2e-public', '--post-logout-redirect-uri', bye);
  const config = await discover('e2e-public', client.None());
  const { tokens } = await codeFlow(config);
  assert.ok(tokens.claims().sid, 'the ID token names its session');
  const { page } = person;
  const unregistered = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: `${bye}/other` });
  assert.equal((await page.goto(unregistered.href)).status(), 400, 'an unregistered URI is refused on the page');
  const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token, post_logout_redirect_uri: bye, state: 'bye-1' });
  // A form on another site cannot skip the confirmation (it cannot send the page's cookie).
  const forged = await fetch(new URL('/logout', base), {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ id_token_hint: tokens.id_token, confirm: 'guessed' }),
  });
  assert.equal(forged.status, 403);
  assert.ok((await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub)).sub, 'nothing was revoked');
  await page.goto(url.href);
  if (process.env.TUATON_SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.TUATON_SCREENSHOTS, 'oidc-logout.png'), fullPage: true });
  }
  await Promise.all([page.waitForURL((u) => u.href.startsWith(bye)), page.click('button[type=submit]')]);
  assert.equal(new URL(page.url()).searchParams.get('state'), 'bye-1');
  await assert.rejects(client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub));
  await page.goto(`${base}/healthz`);
  assert.equal(await page.evaluate(async () => (await fetch('/api/v1/me')).status), 401, 'Tuaton\'s session ended');
});

test('back-channel logout: logging out at one agency sends the others of the session a logout token, which jose verifies', async () => {
  const bcl = callback.replace(/\/cb$/, '/bcl');
  clients('add', '--id', 'e2e-bcl', '--redirect-uri', callback, '--auth', 'none', '--no-dpop', '--backchannel-logout-uri', bcl);
  const bclConfig = await discover('e2e-bcl', client.None());
  const held = (await codeFlow(bclConfig)).tokens;
  // A login to another agency in the same browser: the session carries on.
  const publicConfig = await discover('e2e-public', client.None());
  const other = (await codeFlow(publicConfig)).tokens;
  const { page } = person;
  const bye = callback.replace(/\/cb$/, '/bye');
  const url = client.buildEndSessionUrl(publicConfig, { id_token_hint: other.id_token, post_logout_redirect_uri: bye });
  await page.goto(url.href);
  const before = logoutTokens.length;
  await Promise.all([page.waitForURL((u) => u.href.startsWith(bye)), page.click('button[type=submit]')]);
  // Upkeep posts the token within a few seconds.
  for (let i = 0; i < 50 && logoutTokens.length === before; i += 1) {
    await new Promise((r) => { setTimeout(r, 200); });
  }
  assert.equal(logoutTokens.length, before + 1, 'one logout token, to the other agency');
  const token = logoutTokens.at(-1);
  // Verified as Back-Channel Logout 1.0 §2.6 asks, with panva's jose and Tuaton's published keys.
  const jwks = createRemoteJWKSet(new URL(bclConfig.serverMetadata().jwks_uri));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: base, audience: 'e2e-bcl', typ: 'logout+jwt', maxTokenAge: '2 minutes' });
  assert.equal(protectedHeader.typ, 'logout+jwt');
  assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
  assert.equal(payload.sid, held.claims().sid);
  assert.equal(payload.sub, held.claims().sub);
  assert.equal(payload.nonce, undefined, 'a logout token never carries a nonce');
  assert.ok(payload.jti);
  // The session with that agency is over at Tuaton too.
  await assert.rejects(client.refreshTokenGrant(bclConfig, held.refresh_token), (e) => e.error === 'invalid_grant');
});

test('acr_values: an identity level the account lacks comes back as unmet_authentication_requirements', async () => {
  const config = await discover('e2e-public', client.None());
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback, scope: 'openid', state, acr_values: 'urn:tuaton:ial:2.3 urn:tuaton:aal:2.2',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const back = await logInThrough(url);
  await assert.rejects(
    client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state }),
    (e) => e.error === 'unmet_authentication_requirements',
  );
  // The same level as an essential acr in the claims parameter (OpenID Connect Core §5.5.1.1).
  const essential = client.randomPKCECodeVerifier();
  const claimsUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: callback, scope: 'openid', state,
    claims: JSON.stringify({ id_token: { acr: { essential: true, values: ['urn:tuaton:ial:2.3'] } } }),
    code_challenge: await client.calculatePKCECodeChallenge(essential), code_challenge_method: 'S256',
  });
  await assert.rejects(
    client.authorizationCodeGrant(config, await logInThrough(claimsUrl), { pkceCodeVerifier: essential, expectedState: state }),
    (e) => e.error === 'unmet_authentication_requirements',
  );
  const met = await codeFlow(config);
  assert.equal(met.tokens.claims().acr, 'urn:tuaton:aal:2.2', 'the level reached, never the one asked for');
});

test('declining sends access_denied back with state and iss; an unregistered redirect stays on Tuaton', async () => {
  const config = await discover('e2e-public', client.None());
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: callback, scope: 'openid', state,
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const { page } = person;
  await page.goto(url.href);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(callback)), page.click('#deny')]);
  const back = new URL(page.url());
  assert.equal(back.searchParams.get('error'), 'access_denied');
  assert.equal(back.searchParams.get('state'), state);
  assert.equal(back.searchParams.get('iss'), base);

  const evil = new URL(url);
  evil.searchParams.set('redirect_uri', `${callback}.evil.example/`);
  const shown = await page.goto(evil.href);
  assert.equal(shown.status(), 400);
  assert.ok(page.url().startsWith(base), 'the browser stays on Tuaton');
  assert.match(await page.textContent('body'), /redirect_uri/);
});
