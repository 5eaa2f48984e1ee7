// Users (administrators): the admin API's users with active sessions
// (GET /api/admin/v1/authenticated-sessions/list, total in X-Total-Count,
// pages in Link), one user's sessions, and revoking one or all of them.

import { api, describeError } from './api.js';
import { confirmDialog, dataTable, el, fill, formatNumber, loading, pager, pageSizeSelect, statusLine, textOrDash, timeEl } from './ui.js';

const BASE = '/api/admin/v1/authenticated-sessions';
const PAGE_SIZES = [10, 20, 50, 100];

/** The `rel` → page number pairs of an RFC 8288 Link header. */
export function linkPages(header) {
  const pages = {};
  if (!header) return pages;
  for (const part of header.split(',')) {
    const match = /<([^>]*)>\s*;\s*rel="?([a-z]+)"?/i.exec(part.trim());
    if (!match) continue;
    const page = Number(new URL(match[1], location.origin).searchParams.get('page') ?? '1');
    if (Number.isInteger(page) && page > 0) pages[match[2].toLowerCase()] = page;
  }
  return pages;
}

function totalOf(headers, fallback) {
  const total = Number(headers.get('X-Total-Count'));
  return Number.isFinite(total) ? total : fallback;
}

/** A page-numbered list with X-Total-Count and Link, drawn by `render`. */
class PagedList {
  constructor({ label, pageSize, fetchPage, render, emptyText, signal }) {
    Object.assign(this, { label, pageSize, fetchPage, render, emptyText, signal });
    this.page = 1;
    this.sequence = 0;
    this.node = el('div', { class: 'results', 'aria-busy': 'false' });
  }

  async load() {
    const sequence = ++this.sequence;
    this.node.setAttribute('aria-busy', 'true');
    if (!this.rows) fill(this.node, loading(`Loading ${this.label}…`));
    let answer;
    try {
      answer = await this.fetchPage(this.page, this.pageSize);
    } catch (error) {
      if (sequence !== this.sequence || error?.name === 'AbortError') return;
      this.node.setAttribute('aria-busy', 'false');
      fill(this.node,
        el(
          'div',
          { class: 'notice error', role: 'alert' },
          el('p', { text: describeError(error) }),
          el('button', { type: 'button', class: 'secondary', text: 'Retry', onclick: () => this.load() }),
        ),
      );
      return;
    }
    if (sequence !== this.sequence) return;
    this.node.setAttribute('aria-busy', 'false');
    const rows = Array.isArray(answer.data) ? answer.data : [];
    const total = totalOf(answer.headers, rows.length);
    if (rows.length === 0 && this.page > 1 && total > 0) {
      // Rows went away under this page: show the last one there is.
      this.page = Math.max(1, Math.ceil(total / this.pageSize));
      return this.load();
    }
    this.rows = rows;
    if (rows.length === 0) {
      fill(this.node, el('p', { class: 'empty', text: this.emptyText }));
      return;
    }
    const links = linkPages(answer.headers.get('Link'));
    fill(this.node,
      this.render(rows),
      pager({
        label: `Pages of ${this.label}`,
        first: (this.page - 1) * this.pageSize + 1,
        shown: rows.length,
        total,
        page: this.page,
        pages: Math.ceil(total / this.pageSize),
        hasPrevious: Boolean(links.prev) && this.page > 1,
        hasNext: Boolean(links.next),
        onPrevious: () => {
          this.page = links.prev;
          this.load();
        },
        onNext: () => {
          this.page = links.next;
          this.load();
        },
      }),
    );
  }
}

export function usersPage(main, app) {
  const status = statusLine();
  let sort = { key: 'UserName', dir: 1 };
  let shownUser = null;
  const panel = el('section', { class: 'card user-sessions', 'aria-labelledby': 'user-sessions-title', hidden: true });

  const users = new PagedList({
    label: 'users',
    pageSize: 20,
    signal: app.signal,
    emptyText: 'No user has an active session.',
    fetchPage: (page, pageSize) =>
      api(`${BASE}/list`, {
        query: { page, pageSize, sort: `${sort.key}:${sort.dir === 1 ? 'asc' : 'desc'}` },
        twoFactor: true,
        signal: app.signal,
      }),
    render: (rows) =>
      dataTable({
        caption: 'Users with active sessions',
        rows,
        sort,
        onSort: (key) => {
          sort = sort.key === key ? { key, dir: -sort.dir } : { key, dir: key === 'SessionCount' ? -1 : 1 };
          users.page = 1;
          users.load();
        },
        rowClass: (user) => (user.UserGuid === shownUser?.UserGuid ? 'selected' : null),
        columns: [
          { label: 'User name', sortKey: 'UserName', className: 'wrap', render: (user) => el('span', { class: 'strong', text: user.UserName }) },
          { label: 'Sessions', sortKey: 'SessionCount', className: 'num', render: (user) => formatNumber(user.SessionCount) },
          { label: 'Operator', render: (user) => (user.IsOperator ? el('span', { class: 'badge', text: 'Operator' }) : 'No') },
          {
            label: 'Actions',
            className: 'actions-cell',
            render: (user) => [
              el('button', {
                type: 'button',
                class: 'secondary small',
                'aria-label': `Sessions of ${user.UserName}`,
                'data-user-guid': user.UserGuid,
                text: 'Sessions',
                onclick: () => showUser(user),
              }),
              el('button', {
                type: 'button',
                class: 'danger small',
                'aria-label': `Revoke all sessions of ${user.UserName}`,
                text: 'Revoke all',
                onclick: () => revokeUser(user),
              }),
            ],
          },
        ],
      }),
  });

  let userSessions = null;

  function showUser(user) {
    shownUser = user;
    const title = el('h2', { id: 'user-sessions-title', tabindex: '-1' }, 'Sessions of ', el('span', { class: 'strong', text: user.UserName }));
    userSessions = new PagedList({
      label: `sessions of ${user.UserName}`,
      pageSize: 10,
      signal: app.signal,
      emptyText: 'This user has no active session.',
      fetchPage: (page, pageSize) =>
        api(`${BASE}/user-sessions/${encodeURIComponent(user.UserGuid)}`, { query: { page, pageSize }, twoFactor: true, signal: app.signal }),
      render: (rows) =>
        dataTable({
          caption: `Active sessions of ${user.UserName}`,
          rows,
          columns: [
            { label: 'ID', className: 'num', render: (row) => String(row.ID) },
            { label: 'Last active', render: (row) => timeEl(row.LastUpdated) },
            { label: 'Expires', render: (row) => timeEl(row.ExpirationDate) },
            { label: 'Smartphone', render: (row) => textOrDash(row.Smartphone === '-' ? '' : row.Smartphone) },
            { label: 'Operating system', render: (row) => textOrDash(row.OperatingSystem) },
            { label: 'Application', render: (row) => textOrDash(row.Application) },
            {
              label: 'Actions',
              className: 'actions-cell',
              render: (row) =>
                el('button', {
                  type: 'button',
                  class: 'danger small',
                  'aria-label': `Revoke session ${row.ID}`,
                  text: 'Revoke',
                  onclick: () => revokeSession(row),
                }),
            },
          ],
        }),
    });
    panel.hidden = false;
    fill(panel,
      title,
      userSessions.node,
      el('div', { class: 'actions' }, el('button', {
        type: 'button',
        class: 'secondary',
        text: 'Close',
        onclick: () => {
          const opener = main.querySelector(`button[data-user-guid="${CSS.escape(user.UserGuid)}"]`);
          shownUser = null;
          userSessions = null;
          panel.hidden = true;
          opener?.focus();
        },
      })),
    );
    title.focus();
    userSessions.load();
  }

  async function revokeSession(row) {
    const ok = await confirmDialog({
      title: 'Revoke this session?',
      message: `Session ${row.ID} of ${row.UserName} will end at once.`,
      confirmLabel: 'Revoke session',
    });
    if (!ok) return;
    try {
      await api(`${BASE}/revoke`, { method: 'POST', body: { Session: row.ID }, twoFactor: true, signal: app.signal });
      status.info(`Revoked session ${row.ID}.`);
      // One after the other: each is an expensive list, of which a user
      // may run only a few at once.
      await userSessions?.load();
      await users.load();
    } catch (error) {
      if (error?.name !== 'AbortError') status.error(describeError(error));
    }
  }

  async function revokeUser(user) {
    const ok = await confirmDialog({
      title: 'Revoke all sessions of this user?',
      message: `Every active session of ${user.UserName} (${formatNumber(user.SessionCount)}) will end at once.`,
      confirmLabel: 'Revoke all',
    });
    if (!ok) return;
    try {
      const { data } = await api(`${BASE}/revoke-user`, { method: 'POST', body: { UserGuid: user.UserGuid }, twoFactor: true, signal: app.signal });
      status.info(`Revoked ${formatNumber(data.Count)} ${data.Count === 1 ? 'session' : 'sessions'} of ${user.UserName}.`);
      if (shownUser?.UserGuid === user.UserGuid) await userSessions?.load();
      await users.load();
    } catch (error) {
      if (error?.name !== 'AbortError') status.error(describeError(error));
    }
  }

  main.append(
    el('h1', { id: 'page-title', tabindex: '-1', text: 'Users' }),
    el('p', { class: 'lead', text: 'Users with active sessions, from the admin API, a page at a time.' }),
    el(
      'div',
      { class: 'toolbar' },
      pageSizeSelect(users.pageSize, PAGE_SIZES, (size) => {
        users.pageSize = size;
        users.page = 1;
        users.load();
      }),
    ),
    status.node,
    users.node,
    panel,
  );
  users.load();
}
