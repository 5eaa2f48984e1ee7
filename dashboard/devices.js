// My devices: the caller's own sessions (GET /api/v1/sessions/list), ending
// one or all others, and two-factor authentication set-up. The list follows
// GET /api/v1/sessions/events.me: a session of this user started or ended
// anywhere reloads it.

import { api, describeError } from './api.js';
import { debounced, deviceName, LiveFeed, newDeviceBadge, SessionList } from './lists.js';
import { confirmDialog, dataTable, el, field, fill, statusLine, textOrDash, timeEl } from './ui.js';

export function devicesPage(main, app) {
  const status = statusLine();
  const list = new SessionList({
    path: '/api/v1/sessions/list',
    twoFactor: false,
    label: 'devices',
    signal: app.signal,
    emptyText: 'No active sessions.',
    onLoad: () => live.resumed(),
    renderRows: (sessions) =>
      dataTable({
        caption: 'Your signed-in devices',
        rows: sessions,
        sort: list.sort,
        onSort: (key) => list.setSort(key),
        rowClass: (session) => (session.current ? 'current' : null),
        columns: [
          {
            label: 'Device',
            sortKey: 'device.name',
            render: (session) => [
              el('span', { class: 'strong', text: deviceName(session.device) }),
              session.device?.type ? el('span', { class: 'muted small', text: ` ${session.device.type}` }) : null,
              session.current ? el('span', { class: 'badge', text: 'This device' }) : null,
              newDeviceBadge(session),
            ],
          },
          { label: 'Version', render: (session) => textOrDash(session.device?.version) },
          { label: 'OS', sortKey: 'device.os.name', render: (session) => textOrDash(session.device?.os?.name) },
          { label: 'OS version', sortKey: 'device.os.version', render: (session) => textOrDash(session.device?.os?.version) },
          { label: 'IP address', render: (session) => textOrDash(session.ip) },
          { label: 'Host', className: 'wrap', render: (session) => textOrDash(session.host) },
          { label: 'Signed in', sortKey: 'loginAt', render: (session) => timeEl(session.loginAt) },
          {
            label: 'Actions',
            className: 'actions-cell',
            render: (session) =>
              session.current
                ? el('span', { class: 'muted', text: 'Use Sign out' })
                : el('button', {
                    type: 'button',
                    class: 'danger small',
                    'aria-label': `End the session on ${deviceName(session.device)} (${session.sessionId})`,
                    text: 'End session',
                    onclick: () => endOne(session),
                  }),
          },
        ],
      }),
  });

  async function endOne(session) {
    const ok = await confirmDialog({
      title: 'End this session?',
      message: `The device "${deviceName(session.device)}" (session ${session.sessionId}) will be signed out.`,
      confirmLabel: 'End session',
    });
    if (!ok) return;
    try {
      await api('/api/v1/sessions/logout.me', { method: 'POST', body: { sessionId: session.sessionId }, signal: app.signal });
      status.info(`Ended the session ${session.sessionId}.`);
      list.load({ keepRows: true });
    } catch (error) {
      if (error?.name !== 'AbortError') status.error(describeError(error));
    }
  }

  async function endOthers() {
    const ok = await confirmDialog({
      title: 'Sign out all other devices?',
      message: 'Every session except this one will end. Those devices will have to sign in again.',
      confirmLabel: 'Sign out other devices',
    });
    if (!ok) return;
    try {
      const { data } = await api('/api/v1/sessions/logout.others', { method: 'POST', body: {}, signal: app.signal });
      status.info(data.count === 1 ? 'Signed out 1 other session.' : `Signed out ${app.formatNumber(data.count)} other sessions.`);
      list.stack.reset();
      list.load({ keepRows: true });
    } catch (error) {
      if (error?.name !== 'AbortError') status.error(describeError(error));
    }
  }

  const twoFactor = el('section', { class: 'card', 'aria-labelledby': 'tfa-title' });

  const refresh = debounced(async () => {
    if (!list.failed) await list.load({ keepRows: true, quiet: true });
  });
  const live = new LiveFeed({
    path: '/api/v1/sessions/events.me',
    query: { type: 'session.started,session.ended' },
    signal: app.signal,
    onEvent: refresh,
  });

  main.append(
    el('div', { class: 'section-head' }, el('h1', { id: 'page-title', tabindex: '-1', text: 'My devices' }), live.node),
    el(
      'section',
      { 'aria-labelledby': 'devices-title' },
      el(
        'div',
        { class: 'section-head' },
        el('h2', { id: 'devices-title', text: 'Signed-in devices' }),
        el('button', { type: 'button', class: 'danger', text: 'Sign out all other devices', onclick: endOthers }),
      ),
      status.node,
      list.node,
    ),
    twoFactor,
  );
  drawTwoFactor(twoFactor, app);
  list.load().then((error) => {
    if (error) live.show('off');
  });
}

/** The two-factor section: set-up with QR code and backup codes, or turning it off. */
function drawTwoFactor(section, app, view = null) {
  const title = el('h2', { id: 'tfa-title', tabindex: '-1', text: 'Two-factor authentication' });
  const message = el('p', { class: 'form-error', role: 'alert' });
  const enabled = Boolean(app.me?.services?.totp?.enabled);

  if (view?.codes) {
    fill(section,
      title,
      el('p', { class: 'success', role: 'status', text: 'Two-factor authentication is on.' }),
      el('p', { text: 'Save these backup codes somewhere safe. Each works once, in place of a code from the app. They are shown only now.' }),
      el('ol', { class: 'backup-codes', 'aria-label': 'Backup codes' }, view.codes.map((code) => el('li', {}, el('code', { text: code })))),
      el('button', { type: 'button', class: 'primary', text: 'I have saved the codes', onclick: () => drawTwoFactor(section, app) }),
    );
    return;
  }

  if (view?.enrollment) {
    const { qrcode, secret } = view.enrollment;
    const code = field('Code from the app', { name: 'totp-code', autocomplete: 'one-time-code', inputmode: 'numeric', required: true, spellcheck: 'false' });
    const form = el(
      'form',
      { class: 'inline-form', 'aria-label': 'Confirm two-factor set-up' },
      code.field,
      el('button', { type: 'submit', class: 'primary', text: 'Turn on' }),
      el('button', { type: 'button', class: 'secondary', text: 'Cancel', onclick: () => drawTwoFactor(section, app) }),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      message.textContent = '';
      const value = code.input.value.trim();
      if (!value) {
        message.textContent = 'Enter the code your app shows.';
        code.input.focus();
        return;
      }
      try {
        const { data } = await api('/api/v1/users.2fa.validateTempToken', { method: 'POST', body: { code: value }, signal: app.signal });
        await app.refreshMe();
        drawTwoFactor(section, app, { codes: data.codes });
        section.querySelector('h2').focus();
      } catch (error) {
        if (error?.name === 'AbortError') return;
        message.textContent = describeError(error);
        code.input.select();
        code.input.focus();
      }
    });
    // Only a PNG data URL from the server becomes the image's source.
    const qr = typeof qrcode === 'string' && qrcode.startsWith('data:image/png;base64,')
      ? el('img', { class: 'qr', src: qrcode, alt: 'QR code of the two-factor secret', width: '200', height: '200' })
      : null;
    fill(section,
      title,
      el('p', { text: 'Scan the QR code with an authenticator app, or type the secret into it. Then enter the code it shows.' }),
      el('div', { class: 'enroll' }, qr, el('p', {}, 'Secret: ', el('code', { class: 'secret', 'data-secret': '', text: secret }))),
      form,
      message,
    );
    code.input.focus();
    return;
  }

  if (enabled) {
    const code = field(
      'Code (from the app, or a backup code)',
      { name: 'disable-code', autocomplete: 'one-time-code', required: true, spellcheck: 'false' },
    );
    const form = el(
      'form',
      { class: 'inline-form', 'aria-label': 'Turn off two-factor authentication' },
      code.field,
      el('button', { type: 'submit', class: 'danger', text: 'Turn off' }),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      message.textContent = '';
      const value = code.input.value.trim();
      if (!value) {
        message.textContent = 'Enter a code to turn two-factor authentication off.';
        code.input.focus();
        return;
      }
      try {
        await api('/api/v1/users.2fa.disableTOTP', { method: 'POST', body: { code: value }, signal: app.signal });
        await app.refreshMe();
        drawTwoFactor(section, app, { off: true });
      } catch (error) {
        if (error?.name === 'AbortError') return;
        message.textContent = describeError(error);
        code.input.select();
        code.input.focus();
      }
    });
    fill(section,
      title,
      el('p', {}, el('span', { class: 'badge on', text: 'On' }), ' Signing in asks for a code from your authenticator app.'),
      form,
      message,
    );
    return;
  }

  const start = el('button', { type: 'button', class: 'primary', text: 'Set up two-factor authentication' });
  start.addEventListener('click', async () => {
    message.textContent = '';
    start.disabled = true;
    try {
      const { data } = await api('/api/v1/users.2fa.enableTOTP', { method: 'POST', body: {}, signal: app.signal });
      drawTwoFactor(section, app, { enrollment: data });
    } catch (error) {
      if (error?.name === 'AbortError') return;
      start.disabled = false;
      message.textContent = describeError(error);
    }
  });
  fill(section,
    title,
    view?.off ? el('p', { class: 'success', role: 'status', text: 'Two-factor authentication is now off.' }) : null,
    el(
      'p',
      {},
      el('span', { class: 'badge off', text: 'Off' }),
      app.isAdmin ? ' The administration pages need it: set it up to use them.' : ' Add a second step to signing in.',
    ),
    start,
    message,
  );
}
