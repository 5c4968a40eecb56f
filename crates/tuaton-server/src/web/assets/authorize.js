// The login an agency's authorization request waits for: a passkey login
// through the JSON API, then the form goes back to Tuaton, which sends the
// browser on to the agency with the code. "Do not log in" sends the agency
// access_denied. When the agency asks for signatures, a second page shows
// the hashes and the passkey confirms them.
'use strict';

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
    const credential = await assertFor(start);
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

// The signing page: the passkey answers the challenge the page carries,
// which commits to the hashes shown; the assertion goes back with the form.
async function confirmSigning(form, buttons, status) {
  buttons.forEach((b) => { b.disabled = true; });
  say(status, '', 'กำลังขอพาสคีย์…', 'Asking for your passkey…');
  try {
    const options = JSON.parse(document.getElementById('options').value);
    const credential = await assertFor({ status: 200, body: { public_key: options } });
    document.getElementById('credential').value = JSON.stringify(credential);
    say(status, 'done', 'ยืนยันแล้ว กำลังกลับไปยังหน่วยงาน…', 'Confirmed; going back to the agency…');
    form.submit();
  } catch (e) {
    say(status, 'failed', 'ยืนยันไม่สำเร็จ', `The confirmation did not succeed: ${e.message}`);
    buttons.forEach((b) => { b.disabled = false; });
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const form = document.getElementById('continue');
  const login = document.getElementById('login');
  const sign = document.getElementById('sign');
  const deny = document.getElementById('deny');
  const status = document.getElementById('status');
  if (login) login.addEventListener('click', () => logIn(form, [login, deny], status));
  if (sign) sign.addEventListener('click', () => confirmSigning(form, [sign, deny], status));
  deny.addEventListener('click', () => {
    document.getElementById('decision').value = 'deny';
    form.submit();
  });
});
