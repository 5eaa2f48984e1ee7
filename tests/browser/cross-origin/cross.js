// A page on another origin that uses the sessiond API as a separate
// dashboard would: log in, then list the sessions with the token headers.
// Whether the browser lets it read the answers is up to sessiond's CORS.
window.crossOriginCheck = async function crossOriginCheck({ api, user, password }) {
  const result = { origin: location.origin };
  try {
    const login = await fetch(`${api}/api/v1/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user, password }),
    });
    result.loginStatus = login.status;
    const body = await login.json();
    const list = await fetch(`${api}/api/v1/sessions/list?count=5`, {
      headers: { 'X-User-Id': body.data.userId, 'X-Auth-Token': body.data.authToken },
    });
    result.listStatus = list.status;
    result.requestId = list.headers.get('x-request-id');
    const page = await list.json();
    result.total = page.total;
    result.current = page.sessions.filter((session) => session.current).length;
    result.ok = true;
  } catch (error) {
    result.ok = false;
    result.error = `${error.name}: ${error.message}`;
  }
  return result;
};
