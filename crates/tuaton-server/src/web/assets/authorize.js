// The login an agency's authorization request waits for: a passkey login
// through the JSON API, then the form goes back to Tuaton, which sends the
// browser on to the agency with the code. "Do not log in" sends the agency
// access_denied.
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
    body: JSON.stringify(body),
  });
  let parsed = null;
  if ((r.headers.get('content-type') || '').includes('json')) {
    try { parsed = JSON.parse(await r.text()); } catch { parsed = null; }
  }
  return { status: r.status, body: parsed };
};

const say = (status, cls, th, en) => {
  status.className = cls;
  status.textContent = `${th} · ${en}`;
};

async function logIn(form, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  say(status, '', 'กำลังขอพาสคีย์…', 'Asking for your passkey…');
  try {
    const id = document.getElementById('citizen_id').value.replace(/[\s-]/g, '');
    const start = await post('/api/v1/login/start', id ? { citizen_id: id } : {});
    if (start.status !== 200) throw new Error(start.body?.detail || String(start.status));
    const pk = start.body.public_key;
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = (pk.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
    const cred = await navigator.credentials.get({ publicKey: pk });
    const credential = typeof cred.toJSON === 'function' ? cred.toJSON() : assertionJson(cred);
    const done = await post('/api/v1/login/finish', { ceremony_id: start.body.ceremony_id, credential });
    if (done.status !== 200) throw new Error(done.body?.detail || String(done.status));
    document.getElementById('csrf_token').value = done.body.csrf_token;
    document.getElementById('decision').value = 'allow';
    say(status, 'done', 'เข้าสู่ระบบแล้ว กำลังกลับไปยังหน่วยงาน…', 'Logged in; going back to the agency…');
    form.submit();
  } catch (e) {
    say(status, 'failed', 'เข้าสู่ระบบไม่สำเร็จ', `The login did not succeed: ${e.message}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('continue');
  const login = document.getElementById('login');
  const deny = document.getElementById('deny');
  const status = document.getElementById('status');
  login.addEventListener('click', () => logIn(form, [login, deny], status));
  deny.addEventListener('click', () => {
    document.getElementById('decision').value = 'deny';
    form.submit();
  });
});
