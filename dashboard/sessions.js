// All sessions (administrators): everyone's active sessions from
// GET /api/v1/sessions/list.all, a detail panel from info.admin, and ending
// a session with POST /api/v1/sessions/logout. Every call needs the second
// factor; the API layer prompts for it. The page follows
// GET /api/v1/sessions/events: a session started or ended anywhere reloads
// the page shown.

import { api, describeError } from './api.js';
import { debounced, deviceName, LiveFeed, newDeviceBadge, SessionList } from './lists.js';
import { confirmDialog, dataTable, el, fill, statusLine, textOrDash, timeEl } from './ui.js';

export function sessionsPage(main, app) {
  const status = statusLine();
  const detail = el('aside', { class: 'detail card', 'aria-labelledby': 'detail-title', hidden: true });
  let selected = null;

  const list = new SessionList({
    path: '/api/v1/sessions/list.all',
    twoFactor: true,
    label: 'sessions',
    signal: app.signal,
    emptyText: 'No active sessions.',
    // The stream opens once the list has passed the second factor.
    onLoad: () => live.resumed(),
    renderRows: (sessions) =>
      dataTable({
        caption: 'Active sessions of all users',
        rows: sessions,
        sort: list.sort,
        onSort: (key) => list.setSort(key),
        rowClass: (session) => (session.sessionId === selected ? 'selected' : null),
        columns: [
          { label: 'User', sortKey: '_user.username', className: 'wrap', render: (session) => el('span', { class: 'strong', text: session._user?.username ?? '' }) },
          { label: 'Name', sortKey: '_user.name', className: 'wrap', render: (session) => textOrDash(session._user?.name) },
          { label: 'Device', sortKey: 'device.name', render: (session) => [el('span', { text: deviceName(session.device) }), newDeviceBadge(session)] },
          { label: 'Version', render: (session) => textOrDash(session.device?.version) },
          { label: 'OS', sortKey: 'device.os.name', render: (session) => textOrDash(session.device?.os?.name) },
          { label: 'OS version', sortKey: 'device.os.version', render: (session) => textOrDash(session.device?.os?.version) },
          { label: 'IP address', render: (session) => textOrDash(session.ip) },
          { label: 'Signed in', sortKey: 'loginAt', render: (session) => timeEl(session.loginAt) },
          {
            label: 'Actions',
            className: 'actions-cell',
            render: (session) => [
              el('button', {
                type: 'button',
                class: 'secondary small',
                'aria-label': `Details of session ${session.sessionId}`,
                'data-session-id': session.sessionId,
                text: 'Details',
                onclick: () => showDetail(session.sessionId),
              }),
              el('button', {
                type: 'button',
                class: 'danger small',
                'aria-label': `End session ${session.sessionId}`,
                text: 'End',
                onclick: () => endSession(session.sessionId, session._user?.username),
              }),
            ],
          },
        ],
      }),
  });

  function markSelected() {
    for (const row of main.querySelectorAll('tr.selected')) row.classList.remove('selected');
    if (!selected) return;
    main.querySelector(`button[data-session-id="${CSS.escape(selected)}"]`)?.closest('tr')?.classList.add('selected');
  }

  async function showDetail(sessionId) {
    selected = sessionId;
    markSelected();
    detail.hidden = false;
    fill(detail, el('h2', { id: 'detail-title', tabindex: '-1', text: `Session ${sessionId}` }), el('p', { class: 'loading', role: 'status', text: 'Loading…' }));
    try {
      const { data } = await api('/api/v1/sessions/info.admin', { query: { sessionId }, twoFactor: true, signal: app.signal });
      drawDetail(data);
    } catch (error) {
      if (error?.name === 'AbortError') return;
      fill(detail,
        el('h2', { id: 'detail-title', tabindex: '-1', text: `Session ${sessionId}` }),
        el('p', { class: 'status error', role: 'alert', text: describeError(error) }),
        closeButton(),
      );
    }
    detail.querySelector('h2').focus();
  }

  function closeButton() {
    return el('button', {
      type: 'button',
      class: 'secondary',
      text: 'Close details',
      onclick: () => {
        const opener = selected ? main.querySelector(`button[data-session-id="${CSS.escape(selected)}"]`) : null;
        selected = null;
        markSelected();
        detail.hidden = true;
        fill(detail);
        opener?.focus();
      },
    });
  }

  // The session the panel shows, so ending it can redraw the panel.
  let shown = null;
  let shownEnded = false;

  function drawDetail(info, endedAt = null) {
    shown = info;
    shownEnded = Boolean(endedAt);
    const device = info.device ?? {};
    const owner = info._user ?? {};
    const rows = [
      ['Session ID', info.sessionId],
      ['User', [owner.username, owner.name && owner.name !== owner.username ? `(${owner.name})` : ''].filter(Boolean).join(' ')],
      ['User ID', info.userId],
      ['Device', [device.name, device.longVersion].filter(Boolean).join(' ')],
      ['Device type', device.type],
      ['Operating system', [device.os?.name, device.os?.version].filter(Boolean).join(' ')],
      ['IP address', info.ip],
      ['Host', info.host],
      ['Signed in', timeEl(info.loginAt)],
      ['New device', info.newDevice ? 'Yes' : 'No'],
      ['Ended', endedAt ? timeEl(endedAt) : 'Active'],
    ];
    fill(detail,
      el('h2', { id: 'detail-title', tabindex: '-1', text: `Session ${info.sessionId}` }),
      el(
        'dl',
        { class: 'details' },
        rows.map(([term, value]) => [el('dt', { text: term }), el('dd', {}, value instanceof Node ? value : textOrDash(value))]),
      ),
      el(
        'div',
        { class: 'actions' },
        endedAt
          ? null
          : el('button', { type: 'button', class: 'danger', text: 'End this session', onclick: () => endSession(info.sessionId, owner.username ?? null) }),
        closeButton(),
      ),
    );
  }

  async function endSession(sessionId, username) {
    const ok = await confirmDialog({
      title: 'End this session?',
      message: username
        ? `The session ${sessionId} of ${username} will end at once; that device will have to sign in again.`
        : `The session ${sessionId} will end at once; that device will have to sign in again.`,
      confirmLabel: 'End session',
    });
    if (!ok) return;
    try {
      await api('/api/v1/sessions/logout', { method: 'POST', body: { sessionId }, twoFactor: true, signal: app.signal });
      status.info(`Ended the session ${sessionId}.`);
      // info.admin finds active sessions only: the panel keeps what it
      // showed and says when the session ended.
      if (selected === sessionId && shown?.sessionId === sessionId) {
        drawDetail(shown, new Date().toISOString());
        detail.querySelector('h2').focus();
      }
      list.load({ keepRows: true });
    } catch (error) {
      if (error?.name !== 'AbortError') status.error(describeError(error));
    }
  }

  // Live: a session started or ended reloads the page shown (quietly, and
  // once per burst); an ended session shown in the panel says so.
  const refresh = debounced(async () => {
    if (list.failed || live.paused) return;
    const error = await list.load({ keepRows: true, quiet: true });
    if (error?.errorType?.startsWith('totp')) live.pause(describeError(error));
  });
  const live = new LiveFeed({
    path: '/api/v1/sessions/events',
    query: { type: 'session.started,session.ended' },
    signal: app.signal,
    onEvent: (type, event) => {
      const sessionId = event.data?.sessionId;
      if (type === 'session.ended' && sessionId && selected === sessionId && shown?.sessionId === sessionId && !shownEnded && !detail.hidden) {
        drawDetail(shown, event.timestamp);
      }
      refresh();
    },
    onResume: () => list.load({ keepRows: true }),
  });

  main.append(
    el('div', { class: 'section-head' }, el('h1', { id: 'page-title', tabindex: '-1', text: 'All sessions' }), live.node),
    el('p', { class: 'lead', text: 'Every active session of every user, paged by the server and updated as sessions start and end. Filter with a regular expression over device, OS, session and user.' }),
    status.node,
    el('div', { class: 'split' }, el('div', { class: 'split-main' }, list.node), detail),
  );
  list.load().then((error) => {
    if (error) live.show('off');
  });
}
