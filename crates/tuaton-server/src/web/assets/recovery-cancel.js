// Cancels an account recovery with a passkey: the recovery's id comes from
// the notice's link (?r=…); the page asks the JSON API for a WebAuthn
// challenge for the account's passkeys and sends the assertion back.
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

const say = (status, th, en) => {
  status.textContent = `${th} · ${en}`;
};

async function cancelRecovery(button, status) {
  const id = new URLSearchParams(location.search).get('r');
  if (!id || !/^[0-9a-f]{32}$/.test(id)) {
    status.className = 'failed';
    say(status, 'ลิงก์ไม่ถูกต้อง', 'This link is not valid.');
    return;
  }
  button.disabled = true;
  status.className = '';
  say(status, 'กำลังขอพาสคีย์…', 'Asking for your passkey…');
  try {
    const path = `/api/v1/recovery/${id}/cancel`;
    const start = await post(`${path}/start`);
    if (start.status !== 200) throw new Error(start.body?.detail || String(start.status));
    const pk = start.body.public_key;
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
    const cred = await navigator.credentials.get({ publicKey: pk });
    const credential = typeof cred.toJSON === 'function' ? cred.toJSON() : assertionJson(cred);
    const done = await post(`${path}/finish`, { ceremony_id: start.body.ceremony_id, credential });
    if (done.status !== 204) throw new Error(done.body?.detail || String(done.status));
    status.className = 'done';
    say(status, 'ยกเลิกคำขอกู้คืนบัญชีแล้ว', 'The recovery was cancelled.');
  } catch (e) {
    status.className = 'failed';
    say(status, 'ยกเลิกไม่สำเร็จ', `It could not be cancelled: ${e.message}`);
    button.disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const button = document.getElementById('cancel');
  const status = document.getElementById('status');
  button.addEventListener('click', () => cancelRecovery(button, status));
});
