// Sign in: username and password, then a TOTP or backup code when the
// account has two-factor authentication.

import { api, ApiError, describeError, saveCredentials } from './api.js';
import { el, field } from './ui.js';

export function loginPage(main, app) {
  const username = field('Username', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off', spellcheck: 'false' });
  const password = field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const code = field(
    'Two-factor code',
    { name: 'code', autocomplete: 'one-time-code', spellcheck: 'false', autocapitalize: 'off' },
    'The 6-digit code from your authenticator app, or one of your backup codes.',
  );
  code.field.hidden = true;
  const message = el('p', { class: 'form-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'primary', text: 'Sign in' });

  const form = el(
    'form',
    { class: 'card', 'aria-labelledby': 'page-title', novalidate: true },
    username.field,
    password.field,
    code.field,
    message,
    el('div', { class: 'actions' }, submit),
  );

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    message.textContent = '';
    const user = username.input.value.trim();
    if (!user || !password.input.value) {
      message.textContent = 'Enter your username and password.';
      (user ? password.input : username.input).focus();
      return;
    }
    const body = { user, password: password.input.value };
    const needsCode = !code.field.hidden;
    if (needsCode) {
      const value = code.input.value.trim();
      if (!value) {
        message.textContent = 'Enter your two-factor code.';
        code.input.focus();
        return;
      }
      body.code = value;
    }
    submit.disabled = true;
    submit.textContent = 'Signing in…';
    try {
      const { data } = await api('/api/v1/login', { method: 'POST', body, auth: false });
      saveCredentials(data.data.userId, data.data.authToken);
      app.signedIn(data.data.me);
    } catch (error) {
      submit.disabled = false;
      submit.textContent = 'Sign in';
      if (!(error instanceof ApiError)) throw error;
      if (error.errorType === 'totp-required') {
        code.field.hidden = false;
        message.textContent = 'This account uses two-factor authentication: enter a code.';
        code.input.focus();
      } else if (error.errorType === 'totp-invalid') {
        message.textContent = 'That two-factor code is wrong or was already used.';
        code.input.select();
        code.input.focus();
      } else if (error.status === 401) {
        message.textContent = 'Wrong username or password.';
        password.input.select();
        password.input.focus();
      } else {
        message.textContent = describeError(error);
      }
    }
  });

  main.append(
    el(
      'div',
      { class: 'login' },
      el('h1', { id: 'page-title', tabindex: '-1', text: 'Sign in' }),
      el('p', { class: 'lead', text: 'See where you are signed in, and end the sessions you do not recognise.' }),
      form,
    ),
  );
  return { focus: username.input };
}
