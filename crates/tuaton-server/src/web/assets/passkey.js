// What Tuaton's passkey pages share: the JSON API call, and an assertion
// made with the request options a ceremony's start answered with. Loaded
// before each page's own script (both `defer`, so in order).
'use strict';

const fromB64url = (s) => {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
};
const toB64url = (buf) => {
  let s = '';
  for (const b of new Uint8Array(buf)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
};

// The assertion as JSON, for browsers without PublicKeyCredential.toJSON.
const assertionJson = (cred) => ({
  id: cred.id,
  rawId: toB64url(cred.rawId),
  type: cred.type,
  response: {
    clientDataJSON: toB64url(cred.response.clientDataJSON),
    authenticatorData: toB64url(cred.response.authenticatorData),
    signature: toB64url(cred.response.signature),
    userHandle: cred.response.userHandle ? toB64url(cred.response.userHandle) : null,
  },
  extensions: cred.getClientExtensionResults(),
});

const post = async (path, body) => {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // A proxy's error page is not JSON: keep the status, drop the body.
  let parsed = null;
  if ((r.headers.get('content-type') || '').includes('json')) {
    try { parsed = JSON.parse(await r.text()); } catch { parsed = null; }
  }
  return { status: r.status, body: parsed };
};

// The credential, as JSON, that answers a ceremony's start (`started`, its
// 200 answer); throws the refusal's sentence otherwise.
const assertFor = async (started) => {
  if (started.status !== 200) throw new Error(started.body?.detail || String(started.status));
  const pk = started.body.public_key;
  pk.challenge = fromB64url(pk.challenge);
  pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  const cred = await navigator.credentials.get({ publicKey: pk });
  return typeof cred.toJSON === 'function' ? cred.toJSON() : assertionJson(cred);
};
