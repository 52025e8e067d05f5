// api.js: the dashboard's only way to the server, the public HTTP API
// (docs/http.md), with the signed-in token as a bearer token on every
// request. The token lives in sessionStorage: it survives a reload of the
// tab, not the tab itself, and is never put in a URL or a cookie (a URL
// lands in logs and history; a cookie would be sent by any page that makes
// the browser call the server, which needs CSRF defences a bearer header
// does not).

const TOKEN_KEY = 'kernelhost.token';

/** ApiError is a failed request: HTTP status (0: no answer), the API's error_code, its message. */
export class ApiError extends Error {
  constructor(status, code, message, retriable) {
    super(message);
    this.status = status;
    this.code = code;
    this.retriable = !!retriable;
  }
}

export function savedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function saveToken(tok) {
  try {
    if (tok) sessionStorage.setItem(TOKEN_KEY, tok); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the session lasts as long as the page */ }
}

let token = '';
let onReachable = () => {};

/** setToken sets the token every request sends. */
export function setToken(tok) { token = tok; }

/** onReachability registers f(ok, err), called after every request with whether the server answered. */
export function onReachability(f) { onReachable = f; }

/** call sends one request and returns the decoded JSON answer, or throws ApiError. */
export async function call(method, path, body) {
  const headers = { 'Authorization': 'Bearer ' + token, 'Accept': 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    const err = new ApiError(0, 'SERVER_GONE', 'the server does not answer (' + e.message + ')', true);
    onReachable(false, err);
    throw err;
  }
  onReachable(true);
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!resp.ok) {
    const code = data && data.error_code ? data.error_code : 'HTTP_' + resp.status;
    const msg = data && data.message ? data.message : resp.statusText;
    throw new ApiError(resp.status, code, msg, data && data.retriable);
  }
  return data;
}

/** get is call('GET', ...) with query parameters. */
export function get(path, params) {
  if (params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const s = q.toString();
    if (s) path += '?' + s;
  }
  return call('GET', path);
}

/**
 * whoami finds what the token is: {admin: true} or {admin: false, principal: id}.
 * GET /v1/quotas answers a principal's own quotas (with its id) and refuses
 * the admin token (403); GET /v1/totals answers only the admin token.
 */
export async function whoami() {
  try {
    const q = await get('/v1/quotas');
    return { admin: false, principal: q.principal };
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 403) throw e;
  }
  await get('/v1/totals');
  return { admin: true, principal: null };
}

/**
 * follow streams the events after `after` through GET /v1/events with
 * Accept: text/event-stream, read with fetch() so that the token goes in
 * the Authorization header (EventSource cannot send one, and a token in the
 * query string would land in logs). It calls onEvent(ev) per event and
 * onPosition(seq) for a message with only an id (events the token may not
 * see were skipped), and returns when the stream ends; it throws ApiError
 * when the request fails. signal aborts it.
 */
export async function follow(after, { onEvent, onPosition, onOpen, signal }) {
  let resp;
  try {
    resp = await fetch('/v1/events?follow=1&limit=1000', {
      headers: { 'Authorization': 'Bearer ' + token, 'Accept': 'text/event-stream', 'Last-Event-ID': String(after) },
      cache: 'no-store', credentials: 'omit', signal,
    });
  } catch (e) {
    if (signal && signal.aborted) return;
    const err = new ApiError(0, 'SERVER_GONE', 'the server does not answer (' + e.message + ')', true);
    onReachable(false, err);
    throw err;
  }
  onReachable(true);
  if (!resp.ok) {
    let data = null;
    try { data = await resp.json(); } catch { data = null; }
    throw new ApiError(resp.status, data && data.error_code || 'HTTP_' + resp.status, data && data.message || resp.statusText, data && data.retriable);
  }
  if (onOpen) onOpen();
  const reader = resp.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      if (signal && signal.aborted) return;
      throw new ApiError(0, 'STREAM_INTERRUPTED', 'the event stream was cut (' + e.message + ')', true);
    }
    if (chunk.done) return;
    buf += dec.decode(chunk.value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const msg = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let id = null, data = '', kind = 'message';
      for (const line of msg.split('\n')) {
        if (line.startsWith(':')) continue; // keep-alive comment
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? '' : line.slice(c + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'id') id = value;
        else if (field === 'data') data += (data ? '\n' : '') + value;
        else if (field === 'event') kind = value;
      }
      if (kind === 'error') {
        let e = null;
        try { e = JSON.parse(data); } catch { e = null; }
        throw new ApiError(500, e && e.error_code || 'INTERNAL', e && e.message || 'the stream failed', true);
      }
      if (data) {
        const ev = JSON.parse(data);
        onEvent(ev);
      } else if (id !== null && /^\d+$/.test(id)) {
        onPosition(Number(id));
      }
    }
  }
}
