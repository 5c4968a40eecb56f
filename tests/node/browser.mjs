// The shared browser: Debian's Chromium with a virtual authenticator per page.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

export const base = process.env.TUATON_URL;
if (!base) throw new Error('TUATON_URL is not set; run tests/run-e2e');

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// An agency's site on loopback whose every page says "agency": where a
// browser comes back to; `callback` is its redirect URI.
export async function agencySite() {
  const server = await new Promise((resolve) => {
    const s = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('agency'); });
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
  return { server, callback: `http://127.0.0.1:${server.address().port}/cb` };
}

// A page on Tuaton's origin with a CTAP2 platform authenticator that
// verifies the user and keeps resident keys.
export async function pageWithAuthenticator(browser, path = '/healthz') {
  const context = await browser.newContext();
  await context.addInitScript(installPageHelpers);
  const page = await context.newPage();
  // Any same-origin document gives the page Tuaton's origin for WebAuthn.
  await page.goto(`${base}${path}`);
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
      hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
    },
  });
  return { context, page, cdp, authenticatorId };
}

// Installed in every page as `window.t`: the calls a web page or app makes.
function installPageHelpers() {
  const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4)), (c) => c.charCodeAt(0));
  const post = async (path, body, csrf) => {
    const headers = { 'content-type': 'application/json' };
    if (csrf) headers['x-csrf-token'] = csrf;
    const r = await fetch(path, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  };
  // Enrols `person` and registers a passkey with the enrolment's grant.
  const enrolAndRegister = async (person) => {
    const out = {};
    const enrolled = await post('/api/v1/enrolments', person);
    out.enrolStatus = enrolled.status;
    const start = await post('/api/v1/passkeys/registration/start', { enrolment_token: enrolled.body.enrolment_token });
    const pk = start.body.public_key;
    pk.challenge = b64(pk.challenge);
    pk.user.id = b64(pk.user.id);
    pk.excludeCredentials = (pk.excludeCredentials || []).map((c) => ({ ...c, id: b64(c.id) }));
    out.residentKeyRequested = pk.authenticatorSelection?.residentKey;
    const created = await navigator.credentials.create({ publicKey: pk });
    const finish = await post('/api/v1/passkeys/registration/finish', { ceremony_id: start.body.ceremony_id, name: 'Chromium', credential: created.toJSON() });
    out.registerStatus = finish.status;
    out.registeredAal = finish.body.aal;
    return out;
  };
  window.t = { b64, post, enrolAndRegister };
}
