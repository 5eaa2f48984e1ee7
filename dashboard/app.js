// The dashboard: hash routes over the public API. No framework and no
// build step; every module is served by sessiond itself.

import { api, clearCredentials, credentials, describeError, setHooks } from './api.js';
import { devicesPage } from './devices.js';
import { loginPage } from './login.js';
import { sessionsPage } from './sessions.js';
import { codeDialog, el, fill, formatNumber, loading } from './ui.js';
import { usersPage } from './users.js';

const routes = {
  '#/login': { page: loginPage, title: 'Sign in', public: true },
  '#/devices': { page: devicesPage, title: 'My devices' },
  '#/sessions': { page: sessionsPage, title: 'All sessions', admin: true },
  '#/users': { page: usersPage, title: 'Users', admin: true },
};

const main = document.getElementById('main');
const account = document.getElementById('account');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const notice = document.getElementById('notice');
const signOutButton = document.getElementById('sign-out');

const app = {
  me: null,
  signal: null,
  formatNumber,
  get isAdmin() {
    return Boolean(app.me?.roles?.includes('admin'));
  },
  async refreshMe() {
    const { data } = await api('/api/v1/me', { signal: app.signal });
    app.me = data;
    drawHeader();
    return data;
  },
  signedIn(me) {
    app.me = me;
    say('');
    go('#/devices');
  },
};

let controller = null;

function say(message, kind = 'info') {
  notice.textContent = message;
  notice.className = message ? `notice ${kind}` : 'notice';
  notice.hidden = !message;
}

function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function signedOut(message) {
  clearCredentials();
  app.me = null;
  if (message) say(message, 'warning');
  go('#/login');
}

setHooks({
  unauthorized: () => signedOut('Your session has ended. Sign in again.'),
  askCode: (message) => codeDialog(message),
});

function drawHeader() {
  const signedIn = Boolean(credentials() && app.me);
  nav.parentElement.hidden = !signedIn;
  account.hidden = !signedIn;
  if (!signedIn) return;
  const current = location.hash;
  fill(nav,
    ...Object.entries(routes)
      .filter(([, route]) => !route.public && (!route.admin || app.isAdmin))
      .map(([hash, route]) =>
        el('li', {}, el('a', { href: hash, 'aria-current': hash === current ? 'page' : null, text: route.title })),
      ),
  );
  fill(who,
    el('span', { class: 'who-name', text: app.me.name || app.me.username }),
    app.me.name && app.me.name !== app.me.username ? el('span', { class: 'muted', text: ` (${app.me.username})` }) : null,
  );
}

async function render() {
  controller?.abort();
  controller = new AbortController();
  app.signal = controller.signal;
  const signal = controller.signal;

  let hash = location.hash;
  if (!routes[hash]) hash = credentials() ? '#/devices' : '#/login';
  if (hash !== location.hash) {
    location.replace(hash);
    return;
  }
  const route = routes[hash];
  if (!route.public && !credentials()) {
    location.replace('#/login');
    return;
  }
  if (route.public && credentials()) {
    location.replace('#/devices');
    return;
  }

  main.setAttribute('aria-busy', 'true');
  if (!route.public && !app.me) {
    fill(main, loading());
    try {
      await app.refreshMe();
    } catch (error) {
      if (signal.aborted || error?.status === 401) return;
      fill(main,
        el('h1', { id: 'page-title', tabindex: '-1', text: route.title }),
        el('div', { class: 'notice error', role: 'alert' }, el('p', { text: describeError(error) }), el('button', { type: 'button', class: 'secondary', text: 'Retry', onclick: render })),
      );
      main.setAttribute('aria-busy', 'false');
      return;
    }
    if (signal.aborted) return;
  }
  drawHeader();
  document.title = `${route.title} · sessiond`;
  fill(main);
  main.setAttribute('aria-busy', 'false');
  if (route.admin && !app.isAdmin) {
    main.append(
      el('h1', { id: 'page-title', tabindex: '-1', text: route.title }),
      el('p', { class: 'notice warning', text: 'This page is for administrators.' }),
    );
  } else {
    const focus = route.page(main, app)?.focus;
    if (focus) {
      focus.focus();
      return;
    }
  }
  document.getElementById('page-title')?.focus();
}

signOutButton.addEventListener('click', async () => {
  signOutButton.disabled = true;
  try {
    await api('/api/v1/logout', { method: 'POST', body: {} });
  } catch {
    // Signed out locally either way; an expired session needs nothing more.
  } finally {
    signOutButton.disabled = false;
  }
  signedOut('You have signed out.');
});

window.addEventListener('hashchange', () => {
  // A notice belongs to the page it was shown on, except on the way to sign-in.
  if (location.hash !== '#/login') say('');
  render();
});
render();
