// The page an agency sends a person to for a document it posted: a passkey
// login through the JSON API, then a second assertion over the signing
// challenge, which commits to this file; Tuaton signs it and the browser
// goes back to the agency. "Do not sign" tells the agency access_denied.
'use strict';

const say = (status, cls, th, en) => {
  status.className = cls;
  status.textContent = `${th} · ${en}`;
};

// A POST within the session just made, with its CSRF token.
const postIn = async (csrf, path, body) => {
  const r = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
    body: JSON.stringify(body),
  });
  let parsed = null;
  if ((r.headers.get('content-type') || '').includes('json')) {
    try { parsed = JSON.parse(await r.text()); } catch { parsed = null; }
  }
  return { status: r.status, body: parsed };
};

async function sign(id, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  say(status, '', 'กำลังขอพาสคีย์เพื่อเข้าสู่ระบบ…', 'Asking for your passkey to log in…');
  try {
    const citizen = document.getElementById('citizen_id').value.replace(/[\s-]/g, '');
    const start = await post('/api/v1/login/start', citizen ? { citizen_id: citizen } : {});
    const login = await assertFor(start);
    const done = await post('/api/v1/login/finish', { ceremony_id: start.body.ceremony_id, credential: login });
    if (done.status !== 200) throw new Error(done.body?.detail || String(done.status));
    const csrf = done.body.csrf_token;
    const asked = await postIn(csrf, `/documents/${id}/start`, {});
    if (asked.status === 200 && asked.body.sha256 !== document.getElementById('sha256').textContent) {
      throw new Error('the file to sign is not the one shown');
    }
    say(status, '', 'กำลังขอพาสคีย์เพื่อลงลายมือชื่อ…', 'Asking for your passkey to sign…');
    const credential = await assertFor(asked);
    const signed = await postIn(csrf, `/documents/${id}/finish`, { credential });
    if (signed.status !== 200) throw new Error(signed.body?.detail || String(signed.status));
    say(status, 'done', 'ลงลายมือชื่อแล้ว กำลังกลับไปยังหน่วยงาน…', 'Signed; going back to the agency…');
    window.location.assign(signed.body.redirect);
  } catch (e) {
    say(status, 'failed', 'ลงลายมือชื่อไม่สำเร็จ', `The signing did not succeed: ${e.message}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

async function decline(id, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  const r = await post(`/documents/${id}/decline`, {});
  if (r.status === 200) {
    window.location.assign(r.body.redirect);
  } else {
    say(status, 'failed', 'ทำรายการไม่สำเร็จ', `That did not work: ${r.body?.detail || r.status}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const id = document.getElementById('document').dataset.document;
  const signButton = document.getElementById('sign');
  const declineButton = document.getElementById('decline');
  const status = document.getElementById('status');
  const buttons = [signButton, declineButton];
  signButton.addEventListener('click', () => sign(id, buttons, status));
  declineButton.addEventListener('click', () => decline(id, buttons, status));
});
