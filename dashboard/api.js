// The public API, as any outside client calls it: same-origin fetch with
// the X-User-Id / X-Auth-Token headers. The credentials live in
// sessionStorage only, so they end with the tab.

const STORAGE_KEY = 'sessiond.credentials';

export function credentials() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    if (typeof value?.userId === 'string' && typeof value?.authToken === 'string') {
      return value;
    }
  } catch {
    // Unreadable: treated as signed out.
  }
  return null;
}

export function saveCredentials(userId, authToken) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ userId, authToken }));
}

export function clearCredentials() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** The admin API's second-factor errors, as /api/v1 names them. */
const ADMIN_TWO_FACTOR = {
  err_TwoFactorRequired: 'totp-required',
  err_TwoFactorNotSetUp: 'totp-required',
  err_TwoFactorInvalid: 'totp-invalid',
  err_TwoFactorMaxAttempts: 'totp-max-attempts',
};

/** A request the server (or the network) refused. */
export class ApiError extends Error {
  constructor(status, body, headers, message) {
    super(message ?? `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.body = body && typeof body === 'object' ? body : null;
    this.retryAfterSeconds = parseRetryAfter(headers?.get('Retry-After'));
    // /api/v1 bodies carry `errorType`; the admin API carries `Error`,
    // whose second-factor codes are read as the /api/v1 ones.
    const type = this.body?.errorType ?? this.body?.Error ?? null;
    this.errorType = ADMIN_TWO_FACTOR[type] ?? type;
    this.twoFactorNotSetUp = type === 'err_TwoFactorNotSetUp';
  }

  /** The user cancelled a prompt this request needed. */
  get cancelled() {
    return this.status === -1;
  }
}

function parseRetryAfter(value) {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

const hooks = {
  // Called on 401 from an authenticated request.
  unauthorized: () => {},
  // Asks for a two-factor code; resolves to the code, or null if cancelled.
  askCode: async () => null,
};

export function setHooks(newHooks) {
  Object.assign(hooks, newHooks);
}

// One prompt at a time: requests that meet the second-factor check while a
// prompt is open wait for it, then retry without a code, since a good code
// opens the session's 2FA window for every request.
let openPrompt = null;

async function secondFactor(message) {
  if (openPrompt) {
    await openPrompt.catch(() => null);
    return undefined;
  }
  openPrompt = hooks.askCode(message);
  try {
    return await openPrompt;
  } finally {
    openPrompt = null;
  }
}

/** Whether a 400 asks for a code this user can give (TOTP is set up). */
export function wantsCode(error) {
  if (error.status !== 400) return false;
  if (error.errorType === 'totp-invalid') return true;
  if (error.errorType !== 'totp-required' || error.twoFactorNotSetUp) return false;
  const methods = error.body?.details?.availableMethods;
  return !Array.isArray(methods) || methods.length > 0;
}

/**
 * Calls the API. `query` values that are empty are left out; POSTs always
 * send a JSON body (`{}` when there is none). With `twoFactor`, a
 * `totp-required` or `totp-invalid` answer opens the code prompt and the
 * request is retried with the code in `x-2fa-code`.
 * Resolves to `{ data, headers, status }`; rejects with an ApiError.
 */
export async function api(path, options = {}) {
  const { method = 'GET', query, body, twoFactor = false, auth = true, signal } = options;
  const url = withQuery(path, query);
  // A page left behind sends nothing more (and cannot sign the next one out).
  if (signal?.aborted) throw new DOMException('The page was left', 'AbortError');
  let code;
  for (let attempt = 0; ; attempt += 1) {
    const headers = { Accept: 'application/json' };
    if (auth) {
      const held = credentials();
      if (!held) {
        const error = new ApiError(401, null, null, 'Not signed in');
        hooks.unauthorized(error);
        throw error;
      }
      headers['X-User-Id'] = held.userId;
      headers['X-Auth-Token'] = held.authToken;
    }
    const init = { method, headers, credentials: 'omit', cache: 'no-store', signal };
    if (method !== 'GET') {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body ?? {});
    }
    if (code) headers['x-2fa-code'] = code;

    let response;
    try {
      response = await fetch(url, init);
    } catch (cause) {
      if (cause?.name === 'AbortError') throw cause;
      throw new ApiError(0, null, null, 'The server could not be reached');
    }
    const data = await readJson(response);
    if (response.ok) return { data, headers: response.headers, status: response.status };

    const error = new ApiError(response.status, data, response.headers);
    if (response.status === 401 && auth) {
      hooks.unauthorized(error);
      throw error;
    }
    if (twoFactor && wantsCode(error) && attempt < 20) {
      const message =
        error.errorType === 'totp-invalid'
          ? 'That code is wrong or was already used. Enter the next code from your app, or a backup code.'
          : 'This page needs your two-factor code.';
      const answer = await secondFactor(message);
      if (answer === null) {
        throw new ApiError(-1, null, null, 'A two-factor code is needed to continue');
      }
      code = answer;
      continue;
    }
    throw error;
  }
}

/** `path` with the non-empty values of `query`. */
function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Opens a Server-Sent Events stream with the credentials: fetch, since an
 * EventSource cannot send the headers. Resolves to the Response once the
 * server has accepted it, for its body to be read as it comes; rejects
 * with an ApiError as `api` does (a 401 signs out), but never asks for a
 * two-factor code: the caller decides whether to.
 */
export async function openStream(path, { query, signal } = {}) {
  if (signal?.aborted) throw new DOMException('The page was left', 'AbortError');
  const held = credentials();
  if (!held) {
    const error = new ApiError(401, null, null, 'Not signed in');
    hooks.unauthorized(error);
    throw error;
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), {
      headers: { Accept: 'text/event-stream', 'X-User-Id': held.userId, 'X-Auth-Token': held.authToken },
      credentials: 'omit',
      cache: 'no-store',
      signal,
    });
  } catch (cause) {
    if (cause?.name === 'AbortError') throw cause;
    throw new ApiError(0, null, null, 'The server could not be reached');
  }
  if (response.ok) return response;
  const error = new ApiError(response.status, await readJson(response), response.headers);
  if (response.status === 401) hooks.unauthorized(error);
  throw error;
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const timeOfDay = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

/** What to tell the user about a failed request. */
export function describeError(error) {
  if (!(error instanceof ApiError)) {
    return 'Something went wrong in this page; reload it and try again.';
  }
  const body = error.body ?? {};
  const wait = error.retryAfterSeconds;
  const retryAt = wait == null ? '' : ` (at ${timeOfDay.format(new Date(Date.now() + wait * 1000))})`;
  switch (error.errorType) {
    case 'totp-max-attempts': {
      const seconds = body.details?.retryAfterSeconds ?? wait;
      return `Too many wrong two-factor codes. Try again in ${seconds ?? 'a few'} seconds${retryAt}.`;
    }
    case 'totp-required':
      if (!wantsCode(error)) {
        return 'This page needs two-factor authentication, which is not set up for your account yet: turn it on under My devices, then come back.';
      }
      return 'A two-factor code is needed.';
    case 'totp-invalid':
      return 'The two-factor code is wrong or was already used.';
    default:
      break;
  }
  switch (error.status) {
    case -1:
      return error.message;
    case 0:
      return 'The server could not be reached. Check the connection and retry.';
    case 401:
      return 'Your session has ended. Sign in again.';
    case 403:
      return 'Your account is not allowed to do this.';
    case 408:
      return 'The request took too long to send. Retry.';
    case 429:
      return `Too many requests. Retry in ${wait ?? 'a few'} seconds${retryAt}.`;
    case 503:
      if (error.errorType === 'error-busy' || error.errorType === 'err_Busy') {
        return `The server is busy. Retry in ${wait ?? 'a few'} seconds${retryAt}.`;
      }
      return `The session store is unavailable right now. Retry shortly${retryAt}.`;
    default:
      break;
  }
  const text = body.Message ?? body.error ?? body.message;
  if (typeof text === 'string' && text) return text;
  return `The request failed (HTTP ${error.status}).`;
}
