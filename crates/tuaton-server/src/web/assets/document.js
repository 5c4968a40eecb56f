// The page an agency sends a person to for a document it posted: a passkey
// login through the JSON API, then a second assertion over the signing
// challenge, which commits to this file; Tuaton signs it and the browser
// goes back to the agency. "Open the file" logs in the same way and saves
// the file, once its SHA-256 is the one shown. "Do not sign" tells the
// agency access_denied.
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

// The session's CSRF token once the person logged in on this page.
let csrf = null;

async function loggedIn(status) {
  if (csrf) return csrf;
  say(status, '', 'กำลังขอพาสคีย์เพื่อเข้าสู่ระบบ…', 'Asking for your passkey to log in…');
  const citizen = document.getElementById('citizen_id').value.replace(/[\s-]/g, '');
  const start = await post('/api/v1/login/start', citizen ? { citizen_id: citizen } : {});
  const login = await assertFor(start);
  const done = await post('/api/v1/login/finish', { ceremony_id: start.body.ceremony_id, credential: login });
  if (done.status !== 200) throw new Error(done.body?.detail || String(done.status));
  csrf = done.body.csrf_token;
  return csrf;
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

async function open(id, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await loggedIn(status);
    const r = await fetch(`/documents/${id}/file`);
    if (r.status !== 200) {
      let detail = String(r.status);
      try { detail = (await r.json()).detail || detail; } catch { /* not JSON */ }
      throw new Error(detail);
    }
    const bytes = await r.arrayBuffer();
    if (hex(await crypto.subtle.digest('SHA-256', bytes)) !== document.getElementById('sha256').textContent) {
      throw new Error('the file is not the one shown');
    }
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([bytes], { type: 'application/pdf' }));
    link.download = document.getElementById('name').textContent;
    document.body.append(link);
    link.click();
    link.remove();
    say(status, '', 'บันทึกไฟล์แล้ว เปิดอ่านได้ก่อนลงลายมือชื่อ', 'The file is saved; read it before you sign.');
  } catch (e) {
    say(status, 'failed', 'เปิดไฟล์ไม่สำเร็จ', `The file could not be opened: ${e.message}`);
  }
  buttons.forEach((b) => { b.disabled = false; });
}

// A confirmation whose signing failed for want of a time stamp is kept by
// Tuaton until its request expires: the next click sends it again instead
// of asking for the passkey once more.
let confirmed = null;

async function sign(id, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  try {
    await loggedIn(status);
    let credential = confirmed;
    if (!credential) {
      const asked = await postIn(csrf, `/documents/${id}/start`, {});
      if (asked.status === 200 && asked.body.sha256 !== document.getElementById('sha256').textContent) {
        throw new Error('the file to sign is not the one shown');
      }
      say(status, '', 'กำลังขอพาสคีย์เพื่อลงลายมือชื่อ…', 'Asking for your passkey to sign…');
      credential = await assertFor(asked);
    }
    confirmed = null;
    const signed = await postIn(csrf, `/documents/${id}/finish`, { credential });
    if (signed.body?.code === 'time_stamp_unavailable') confirmed = credential;
    if (signed.status !== 200) throw new Error(signed.body?.detail || String(signed.status));
    say(status, 'done', 'ลงลายมือชื่อแล้ว กำลังกลับไปยังหน่วยงาน…', 'Signed; going back to the agency…');
    window.location.assign(signed.body.redirect);
  } catch (e) {
    say(status, 'failed', 'ลงลายมือชื่อไม่สำเร็จ', `The signing did not succeed: ${e.message}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// A company's document is declined by a director, logged in, and one the
// agency posted for one person by that person, logged in; one posted for
// anyone by whoever holds the page.
async function decline(id, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  try {
    const path = `/documents/${id}/decline`;
    const named = document.getElementById('document').dataset.named === 'true';
    const r = document.getElementById('company') || named
      ? await postIn(await loggedIn(status), path, {})
      : await post(path, {});
    if (r.status !== 200) throw new Error(r.body?.detail || String(r.status));
    window.location.assign(r.body.redirect);
  } catch (e) {
    say(status, 'failed', 'ทำรายการไม่สำเร็จ', `That did not work: ${e.message}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const id = document.getElementById('document').dataset.document;
  const signButton = document.getElementById('sign');
  const openButton = document.getElementById('open');
  const declineButton = document.getElementById('decline');
  const status = document.getElementById('status');
  const buttons = [openButton, signButton, declineButton];
  openButton.addEventListener('click', () => open(id, buttons, status));
  signButton.addEventListener('click', () => sign(id, buttons, status));
  declineButton.addEventListener('click', () => decline(id, buttons, status));
});
