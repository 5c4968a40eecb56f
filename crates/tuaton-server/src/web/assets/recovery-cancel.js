// Cancels an account recovery with a passkey: the recovery's id comes from
// the notice's link (?r=…); the page asks the JSON API for a WebAuthn
// challenge for the account's passkeys and sends the assertion back.
'use strict';

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
    const credential = await assertFor(start);
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
