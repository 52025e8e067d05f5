// app.js: the kernelhost dashboard. Five views (world, events, artifacts,
// contracts, flows) over one client-side model fed by the public HTTP API:
// the principals paged with their cursor, the events read once and then
// followed live (resuming after the last event number on any interruption),
// the artifacts listed by prefix and explained on demand. Everything is
// updated incrementally as events arrive; nothing reloads the page.

import { ApiError, call, get, follow, whoami, savedToken, saveToken, setToken, onReachability } from './api.js';
import { VList } from './vlist.js';
import { bars, line, hbars, graph } from './charts.js';

const MAX_EVENTS = 50000; // events kept in the page; older ones are dropped (counts stay)
const PAGE = 1000;
const KINDS = ['read', 'write', 'edit', 'delete', 'set_contract', 'invoke', 'transfer', 'grant_consent', 'revoke_consent',
  'grant_llm_consent', 'revoke_llm_consent', 'transfer_quota', 'consume_quota', 'grant_standing', 'revoke_standing',
  'set_spending_limit', 'mint_right', 'transfer_right', 'split_right', 'merge_rights', 'redeem_right', 'llm_call'];

const $ = id => document.getElementById(id);

/** h builds an element; children are nodes or strings (always text, never HTML). */
function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

function cells(row, ...vals) {
  while (row.childElementCount < vals.length) row.append(document.createElement('span'));
  while (row.childElementCount > vals.length) row.lastChild.remove();
  vals.forEach((v, i) => {
    const c = row.children[i];
    const [text, cls] = Array.isArray(v) ? v : [v, ''];
    if (c.textContent !== String(text)) c.textContent = String(text);
    c.className = cls || '';
    c.title = String(text);
  });
}

const fmt = n => (typeof n === 'number' ? n.toLocaleString('en-US') : String(n));
const sleep = ms => new Promise(r => setTimeout(r, ms));

// ---- the model ----
const S = {
  me: null,            // {admin, principal}
  running: false,
  abort: null,         // AbortController of the follow
  principals: [],      // [{id, balance, quotas: Map resource -> status, fresh}]
  pIndex: new Map(),
  principalsDone: false,
  events: [],          // oldest first, at most MAX_EVENTS
  seen: 0,             // events received in all
  lastSeq: 0,          // the last event number examined (resume point)
  perSecond: new Map(), // unix second -> events with that time
  byTarget: new Map(), // target -> {n, refused, fuel}
  artifacts: [],       // [{id, type}]
  artCursor: '',
  artInfo: new Map(),  // id -> {contract, revision, created_by, size, ...} from explain
  selPrincipal: null,
  selEvent: null,
  view: 'world',
};

// ---- alerts and stream state ----
let gone = false;
onReachability((ok, err) => {
  if (ok && gone) { gone = false; hideAlert('gone'); }
  if (!ok) { gone = true; showAlert('gone', `The server does not answer (${err.message}). Retrying; the view shows what it had.`); }
});

const alerts = new Map();
function showAlert(key, msg) { alerts.set(key, msg); drawAlerts(); }
function hideAlert(key) { alerts.delete(key); drawAlerts(); }
function drawAlerts() {
  const a = $('alert');
  a.hidden = alerts.size === 0;
  a.textContent = [...alerts.values()].join(' ');
}

function setStream(state, detail) {
  const p = $('stream-state');
  p.dataset.state = state;
  p.className = 'pill ' + (state === 'live' ? 'live' : state === 'connecting' ? '' : 'down');
  const text = {
    live: 'live',
    connecting: 'connecting…',
    interrupted: `stream interrupted: resuming after event #${S.lastSeq}`,
    offline: `server gone: resuming after event #${S.lastSeq} when it is back`,
  }[state] || state;
  p.textContent = text + (detail ? ` (${detail})` : '');
  if (state === 'interrupted') showAlert('stream', `The event stream was interrupted${detail ? ' (' + detail + ')' : ''}; it resumes after event #${S.lastSeq}.`);
  else hideAlert('stream');
}

// ---- sign in / out ----
async function signIn(tok, quiet) {
  const errBox = $('signin-error');
  errBox.textContent = '';
  setToken(tok);
  let me;
  try {
    me = await whoami();
  } catch (e) {
    setToken('');
    if (e instanceof ApiError && e.status === 401) errBox.textContent = 'That token is unknown or revoked (UNAUTHENTICATED). Check it and try again.';
    else if (e instanceof ApiError && e.status === 0) errBox.textContent = 'The server does not answer: is kernelhost serve running?';
    else errBox.textContent = `Sign-in failed: ${e.code || ''} ${e.message}`;
    if (quiet) saveToken('');
    return false;
  }
  saveToken(tok);
  S.me = me;
  $('token').value = '';
  $('signin').hidden = true;
  $('nav').hidden = false;
  $('who').hidden = false;
  $('who-name').textContent = me.admin ? 'admin (sees everything)' : `principal ${me.principal}`;
  $('who-name').dataset.principal = me.principal || '';
  start();
  route();
  return true;
}

function signOut(msg) {
  S.running = false;
  if (S.abort) S.abort.abort();
  saveToken('');
  setToken('');
  if (msg) sessionStorage.setItem('kernelhost.signout', msg);
  location.hash = '';
  location.reload(); // drops every piece of the old session's model
}

const REFUSED = 'The server refused the token (UNAUTHENTICATED): it was revoked or replaced. Sign in again.';

// ---- views ----
const VIEWS = ['world', 'events', 'artifacts', 'contracts', 'flows'];
function route() {
  if (!S.me) return;
  let v = location.hash.replace(/^#/, '');
  if (!VIEWS.includes(v)) v = 'world';
  S.view = v;
  for (const name of VIEWS) $('view-' + name).hidden = name !== v;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.view === v) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  refresh(true);
}

let refreshTimer = 0, lastHeavy = 0;
/** refresh redraws the visible view, at most once a frame (heavy views at most 4 times a second). */
function refresh(now) {
  if (refreshTimer && !now) return;
  const go = () => {
    refreshTimer = 0;
    drawCounters();
    const heavy = S.view === 'contracts' || S.view === 'flows';
    if (heavy && !now && performance.now() - lastHeavy < 250) { refreshTimer = setTimeout(go, 250); return; }
    if (heavy) lastHeavy = performance.now();
    ({ world: drawWorld, events: drawEvents, artifacts: drawArtifacts, contracts: drawContracts, flows: drawFlows })[S.view]();
  };
  if (now) go(); else refreshTimer = requestAnimationFrame(go);
}

function drawCounters() {
  $('stat-events').textContent = fmt(S.seen);
  $('stat-lastseq').textContent = S.lastSeq ? `last event #${S.lastSeq}` : '';
}

// ---- world ----
let plist;
function principalRow(row, p) {
  row.dataset.id = p.id;
  const res = $('quota-resource').value;
  const q = p.quotas && p.quotas.get(res);
  if (!q || !p.fresh) wantQuotas(p);
  cells(row, p.id, fmt(p.balance), q ? `${fmt(q.used)} / ${fmt(q.available)} of ${fmt(q.quota)}` : '…');
}

function visiblePrincipals() {
  const f = $('principal-filter').value.trim();
  return f ? S.principals.filter(p => p.id.startsWith(f)) : S.principals;
}

function drawWorld() {
  const list = visiblePrincipals();
  plist.setItems(list);
  $('stat-principals').textContent = fmt(S.principals.length) + (S.principalsDone ? '' : '+');
  $('principal-count').textContent = `${fmt(list.length)} shown${S.principalsDone ? '' : ', loading…'}`;
  drawRate();
  if (!S.me.admin) {
    $('stat-ledger-label').textContent = 'Balances (sum of the list)';
    $('stat-ledger').textContent = fmt(S.principals.reduce((a, p) => a + p.balance, 0));
    $('stat-ledger-sub').textContent = 'minted and burned totals need the admin token';
  }
  if (S.selPrincipal) drawPrincipalDetail();
}

function drawRate() {
  const now = Math.floor(Date.now() / 1000);
  const vals = [];
  for (let s = now - 59; s <= now; s++) vals.push(S.perSecond.get(s) || 0);
  const last10 = vals.slice(-10).reduce((a, b) => a + b, 0) / 10;
  $('stat-rate').textContent = last10.toFixed(1);
  bars($('chart-rate'), vals, 'Actions per second over the last minute');
}

async function loadTotals() {
  if (!S.me.admin) return;
  try {
    const t = await get('/v1/totals');
    $('stat-ledger-label').textContent = 'Ledger (scrip)';
    $('stat-ledger').textContent = fmt(t.balances);
    $('stat-ledger-sub').textContent = `minted ${fmt(t.minted)} · burned ${fmt(t.burned)} · ${t.ledger_ok ? 'consistent' : 'PROBLEM: ' + t.ledger_problem}`;
    $('stat-ledger-sub').className = 'sub ' + (t.ledger_ok ? '' : 'deny');
  } catch (e) { /* the alert says the server is gone */ }
}

async function loadPrincipals() {
  let cursor = '';
  for (;;) {
    let page;
    try {
      page = await get('/v1/principals', { limit: PAGE, cursor });
    } catch (e) {
      if (e.status === 401) return signOut(REFUSED);
      await sleep(2000);
      continue;
    }
    for (const p of page.principals) {
      if (S.pIndex.has(p.id)) continue;
      const row = { id: p.id, balance: p.balance, quotas: null, fresh: false };
      S.pIndex.set(p.id, row);
      S.principals.push(row);
    }
    refresh();
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  S.principalsDone = true;
  refresh();
}

// Quotas (and exact balances) of rows in view, fetched a few at a time.
const quotaQueue = new Set();
let quotaBusy = 0;
function wantQuotas(p) {
  if (p.loading) return;
  p.loading = true;
  quotaQueue.add(p);
  pumpQuotas();
}
function pumpQuotas() {
  while (quotaBusy < 4 && quotaQueue.size) {
    const p = quotaQueue.values().next().value;
    quotaQueue.delete(p);
    quotaBusy++;
    get('/v1/principals/' + encodeURIComponent(p.id)).then(v => {
      p.balance = v.balance;
      p.quotas = new Map((v.quotas || []).map(q => [q.resource, q]));
      p.fresh = true;
    }).catch(() => { p.fresh = true; /* shown as it was; retried when it changes */ })
      .finally(() => { p.loading = false; quotaBusy--; refresh(); pumpQuotas(); });
  }
}

/** touched marks principals whose standing an event changed: exact values are fetched again. */
function touched(id) {
  const p = S.pIndex.get(id);
  if (!p) {
    if (id && !S.pIndex.has(id) && S.principalsDone) addPrincipal(id);
    return;
  }
  p.fresh = false;
}

function addPrincipal(id) {
  const row = { id, balance: 0, quotas: null, fresh: false };
  S.pIndex.set(id, row);
  // keep id order, as the server lists them
  let lo = 0, hi = S.principals.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (S.principals[m].id < id) lo = m + 1; else hi = m; }
  S.principals.splice(lo, 0, row);
}

function openPrincipal(p) {
  S.selPrincipal = p.id;
  p.fresh = false;
  wantQuotas(p);
  drawPrincipalDetail(true);
}

let rightsFor = null, rightsCache = null;
function drawPrincipalDetail(fetchRights) {
  const p = S.pIndex.get(S.selPrincipal);
  const box = $('principal-detail');
  if (!p) return;
  const qs = p.quotas ? [...p.quotas.values()] : [];
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart');
  svg.id = 'chart-balance';
  const pts = balanceSeries(p);
  const range = line(svg, pts, `Balance of ${p.id} by event number`);
  const rights = h('div', { id: 'principal-rights' }, rightsFor === p.id && rightsCache ? rightsCache : h('p', { class: 'muted' }, 'rights: loading…'));
  box.replaceChildren(
    h('h3', {}, p.id),
    h('dl', { class: 'kv' }, h('dt', {}, 'balance'), h('dd', { id: 'detail-balance' }, fmt(p.balance))),
    h('h3', {}, 'Balance over the events seen'), svg,
    h('p', { class: 'muted' }, pts.length > 1 ? `from event #${pts[0].x} to #${pts[pts.length - 1].x}: between ${fmt(range.min)} and ${fmt(range.max)} (charges seen; mints are not events)` : 'no charge seen'),
    h('h3', {}, 'Quotas'),
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'resource'), h('th', { class: 'num' }, 'quota'), h('th', { class: 'num' }, 'used'), h('th', { class: 'num' }, 'available'))),
      h('tbody', {}, qs.map(q => h('tr', {}, h('td', {}, q.resource), h('td', { class: 'num' }, fmt(q.quota)), h('td', { class: 'num' }, fmt(q.used)), h('td', { class: 'num' }, fmt(q.available)))))),
    h('h3', {}, 'Rights held'), rights,
  );
  if (fetchRights) {
    rightsFor = p.id;
    rightsCache = null;
    get('/v1/principals/' + encodeURIComponent(p.id) + '/rights', { limit: 100 }).then(r => {
      const list = r.rights || [];
      rightsCache = list.length === 0 ? h('p', { class: 'muted' }, 'none')
        : h('ul', {}, list.map(x => h('li', {}, `${x.id}: ${fmt(x.amount)} ${x.resource}`)));
    }).catch(e => { rightsCache = h('p', { class: 'muted' }, `rights: ${e.code} ${e.message}`); })
      .finally(() => { if (S.selPrincipal === p.id && S.view === 'world') drawPrincipalDetail(); });
  }
}

/** balanceSeries walks the events seen back from the balance now: one point per charge to or from id. */
function balanceSeries(p) {
  const pts = [];
  let b = p.balance;
  pts.push({ x: S.lastSeq || 0, y: b });
  for (let i = S.events.length - 1; i >= 0 && pts.length < 2000; i--) {
    const ev = S.events[i];
    if (!ev.charges) continue;
    let d = 0;
    for (const c of ev.charges) {
      if (c.payer === p.id) d -= c.amount;
      if (c.payee === p.id) d += c.amount;
    }
    if (d === 0) continue;
    pts.push({ x: ev.seq, y: b });
    b -= d;
    pts.push({ x: ev.seq - 1, y: b });
  }
  return pts.reverse();
}

// ---- events ----
let elist;
let filtered = []; // newest first
function eventFilter() {
  const kind = $('f-kind').value, pr = $('f-principal').value.trim(), tg = $('f-target').value.trim(), denied = $('f-denied').checked;
  return ev => (!kind || ev.kind === kind) && (!pr || involves(ev, pr)) && (!tg || ev.target === tg) && (!denied || ev.code !== 'OK');
}
function involves(ev, id) {
  return ev.caller === id || ev.to === id || ev.holder === id || (ev.charges || []).some(c => c.payer === id || c.payee === id);
}
function refilter() {
  const f = eventFilter();
  filtered = [];
  for (let i = S.events.length - 1; i >= 0; i--) if (f(S.events[i])) filtered.push(S.events[i]);
  drawEvents();
}

function eventRow(row, ev) {
  row.dataset.seq = String(ev.seq);
  const ok = ev.code === 'OK';
  cells(row, ev.seq, ev.caller || '—', ev.kind, ev.target || (ev.to ? '→ ' + ev.to : ''), [ev.code, ok ? 'okc' : 'deny']);
}

function drawEvents() {
  elist.setItems(filtered);
  $('event-count').textContent = `${fmt(filtered.length)} of ${fmt(S.events.length)} events`;
}

function openEvent(ev) {
  S.selEvent = ev.seq;
  const dl = h('dl', { class: 'kv' });
  const add = (k, v) => { if (v !== undefined && v !== null && v !== '') dl.append(h('dt', {}, k), h('dd', {}, String(v))); };
  add('event', '#' + ev.seq); add('time', ev.time); add('caller', ev.caller); add('kind', ev.kind); add('target', ev.target);
  add('to', ev.to); add('resource', ev.resource); add('amount', ev.amount); add('revision', ev.revision); add('holder', ev.holder);
  add('depth', ev.depth);
  const dec = h('dl', { class: 'kv' });
  const addD = (k, v, cls) => dec.append(h('dt', {}, k), h('dd', { class: cls }, String(v)));
  addD('allowed', ev.allowed ? 'yes' : 'no', ev.allowed ? 'okc' : 'deny');
  addD('code', ev.code, ev.code === 'OK' ? 'okc' : 'deny');
  if (ev.reason) addD('reason', ev.reason);
  if (ev.message) addD('message', ev.message);
  addD('fuel', fmt(ev.fuel || 0));
  addD('cpu (µs)', fmt(ev.cpu_us || 0));
  const charges = ev.charges && ev.charges.length
    ? h('table', { class: 'table' }, h('thead', {}, h('tr', {}, h('th', {}, 'payer'), h('th', {}, 'payee'), h('th', { class: 'num' }, 'amount'), h('th', {}, 'why'))),
      h('tbody', {}, ev.charges.map(c => h('tr', {}, h('td', {}, c.payer), h('td', {}, c.payee || '(burned)'), h('td', { class: 'num' }, fmt(c.amount)), h('td', {}, c.reason)))))
    : h('p', { class: 'muted' }, 'no charges');
  $('event-detail').replaceChildren(
    h('h3', {}, `Event #${ev.seq}`), dl,
    h('h3', {}, 'Decision'), dec,
    h('h3', {}, 'Charges'), charges,
    h('details', {}, h('summary', {}, 'JSON'), h('pre', {}, JSON.stringify(ev, null, 2))),
  );
}

const queued = [];
let flushQueued = 0;
function queueEvent(ev) {
  if (ev.seq <= S.lastSeq) return; // seen already (a resumed stream never repeats one, but be sure)
  S.lastSeq = ev.seq;
  queued.push(ev);
  if (!flushQueued) flushQueued = requestAnimationFrame(flushEvents);
}

function flushEvents() {
  flushQueued = 0;
  const batch = queued.splice(0);
  if (!batch.length) return;
  addEvents(batch, true);
}

function addEvents(batch, live) {
  const f = eventFilter();
  let totals = false;
  const fresh = [];
  for (const ev of batch) {
    S.seen++;
    S.events.push(ev);
    const sec = Math.floor(Date.parse(ev.time) / 1000);
    if (!Number.isNaN(sec)) S.perSecond.set(sec, (S.perSecond.get(sec) || 0) + 1);
    if (ev.target) {
      let t = S.byTarget.get(ev.target);
      if (!t) S.byTarget.set(ev.target, t = { n: 0, refused: 0, fuel: 0 });
      t.n++;
      if (ev.code !== 'OK') t.refused++;
      t.fuel += ev.fuel || 0;
    }
    // Balances move with the charges at once; the exact standing is fetched again.
    for (const c of ev.charges || []) {
      const a = S.pIndex.get(c.payer), b = c.payee ? S.pIndex.get(c.payee) : null;
      // (Only for live events: the backlog is in the balances listed.)
      if (a && live) a.balance -= c.amount;
      if (b && live) b.balance += c.amount;
      touched(c.payer); if (c.payee) touched(c.payee);
      totals = true;
    }
    for (const id of [ev.caller, ev.to]) if (id) touched(id);
    if (ev.kind === 'write' && ev.code === 'OK' && ev.target) noteArtifact(ev.target);
    if (f(ev)) fresh.push(ev);
  }
  if (S.events.length > MAX_EVENTS) S.events.splice(0, S.events.length - MAX_EVENTS);
  if (fresh.length) {
    filtered = fresh.reverse().concat(filtered);
    if (filtered.length > MAX_EVENTS) filtered.length = MAX_EVENTS;
  }
  if (totals) throttledTotals();
  // Rows in view whose principal changed refetch their standing when drawn.
  refresh();
}

let totalsTimer = 0;
function throttledTotals() {
  if (totalsTimer) return;
  totalsTimer = setTimeout(() => { totalsTimer = 0; loadTotals(); }, 500);
}

async function loadBacklog() {
  let after = 0;
  for (;;) {
    const page = await get('/v1/events', { after, limit: PAGE });
    const evs = page.events.filter(e => e.seq > S.lastSeq);
    if (evs.length) { S.lastSeq = evs[evs.length - 1].seq; addEvents(evs); }
    after = page.next;
    if (after > S.lastSeq) S.lastSeq = after;
    if (!page.next_cursor) return;
  }
}

async function streamLoop() {
  setStream('connecting');
  for (;;) {
    try { await loadBacklog(); break; } catch (e) {
      if (e.status === 401) return signOut(REFUSED);
      setStream(e.status === 0 ? 'offline' : 'interrupted', e.code);
      await sleep(1000);
    }
  }
  let backoff = 250;
  while (S.running) {
    S.abort = new AbortController();
    try {
      await follow(S.lastSeq, {
        onEvent: queueEvent,
        onPosition: n => { if (n > S.lastSeq) { S.lastSeq = n; refresh(); } },
        onOpen: () => { setStream('live'); backoff = 250; },
        signal: S.abort.signal,
      });
      if (!S.running) return;
      setStream('interrupted', 'the server ended it');
    } catch (e) {
      if (!S.running) return;
      if (e.status === 401) return signOut(REFUSED);
      setStream(e.status === 0 ? 'offline' : 'interrupted', e.code);
    }
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 5000);
  }
}

// ---- artifacts ----
let alist;
function noteArtifact(id) {
  if (S.artifacts.some(a => a.id === id)) { S.artInfo.delete(id); return; }
  const prefix = $('a-prefix').value;
  if (id.startsWith(prefix) && !S.artCursor) {
    S.artifacts.push({ id, type: '?' });
    S.artifacts.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }
}

function artifactRow(row, a) {
  row.dataset.id = a.id;
  const info = S.artInfo.get(a.id);
  // An explain's answer when there is one, else what the listing said.
  cells(row, a.id, a.type, (info && info.contract) || a.access_contract || '—', info && info.revision !== undefined ? info.revision : (a.revision ?? ''));
}

function shownArtifacts() {
  const ty = $('a-type').value.trim(), ct = $('a-contract').value.trim();
  return S.artifacts.filter(a => (!ty || a.type === ty) && (!ct || (S.artInfo.get(a.id) || {}).contract === ct));
}

function drawArtifacts() {
  const list = shownArtifacts();
  alist.setItems(list);
  $('artifact-count').textContent = `${fmt(list.length)} of ${fmt(S.artifacts.length)} listed${S.artCursor ? ', more to load' : ''}`;
  $('a-more').disabled = !S.artCursor;
  $('a-resolve').disabled = S.me.admin;
}

async function listArtifacts(more) {
  const prefix = $('a-prefix').value.trim();
  if (!more) { S.artifacts = []; S.artCursor = ''; }
  try {
    const page = await get('/v1/artifacts', { prefix, limit: 200, cursor: more ? S.artCursor : '' });
    S.artifacts.push(...page.artifacts);
    // The listing names each artifact's governing contract and revision:
    // the contracts view groups by them without an explain.
    for (const a of page.artifacts) {
      const info = S.artInfo.get(a.id);
      if (!info) S.artInfo.set(a.id, { contract: a.access_contract, revision: a.revision });
      else if (!info.contract) info.contract = a.access_contract;
    }
    S.artCursor = page.next_cursor || '';
    if (page.quota_exceeded) showAlert('artifacts', `Listing stopped: ${page.quota_exceeded.message}`); else hideAlert('artifacts');
  } catch (e) {
    showAlert('artifacts', `Cannot list artifacts: ${e.code} ${e.message}`);
  }
  refresh(true);
}

async function explain(kind, target, extra) {
  try {
    return { ok: true, ex: await call('POST', '/v1/explain', Object.assign({ kind, target }, extra || {})) };
  } catch (e) {
    return { ok: false, err: e };
  }
}

async function resolve(id) {
  const r = await explain('read', id);
  if (r.ok && r.ex.request) {
    const q = r.ex.request;
    S.artInfo.set(id, { contract: r.ex.contract, revision: q.revision, created_by: q.created_by, size: q.size, type: q.target_type, ex: r.ex });
  }
  return r;
}

async function resolveListed() {
  const todo = shownArtifacts().filter(a => !(S.artInfo.get(a.id) || {}).ex).slice(0, 500);
  let i = 0;
  const worker = async () => { while (i < todo.length) { await resolve(todo[i++].id); refresh(); } };
  await Promise.all([worker(), worker(), worker()]);
  refresh(true);
}

async function openArtifact(a) {
  const box = $('artifact-detail');
  const recent = S.events.filter(e => e.target === a.id).slice(-10).reverse();
  const recentList = h('ul', { id: 'artifact-events' }, recent.length ? recent.map(e => h('li', {}, `#${e.seq} ${e.caller} ${e.kind}: ${e.code}`)) : h('li', { class: 'muted' }, 'none seen'));
  if (S.me.admin) {
    box.replaceChildren(h('h3', {}, a.id), h('dl', { class: 'kv' }, h('dt', {}, 'type'), h('dd', {}, a.type),
      h('dt', {}, 'contract'), h('dd', { 'data-field': 'contract' }, a.access_contract || '—'),
      h('dt', {}, 'revision'), h('dd', { 'data-field': 'revision' }, String(a.revision ?? ''))),
      h('p', { class: 'muted' }, 'Explain judges an action as a principal: sign in with a principal\'s token to see who may do what.'),
      h('h3', {}, 'Recent events'), recentList);
    return;
  }
  box.replaceChildren(h('h3', {}, a.id), h('p', { class: 'muted' }, 'explaining…'));
  const r = await resolve(a.id);
  const info = S.artInfo.get(a.id) || {};
  const dl = h('dl', { class: 'kv', id: 'artifact-facts' });
  const add = (k, v) => { if (v !== undefined && v !== '') dl.append(h('dt', {}, k), h('dd', { 'data-field': k }, String(v))); };
  add('type', a.type); add('contract', info.contract); add('revision', info.revision); add('created by', info.created_by); add('size', info.size);
  const meta = r.ok && r.ex.request && r.ex.request.metadata && Object.keys(r.ex.request.metadata).length
    ? h('dl', { class: 'kv' }, Object.entries(r.ex.request.metadata).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
    : h('p', { class: 'muted' }, r.ok && (r.ex.redacted || []).includes('metadata') ? 'metadata withheld: you may not read it' : 'no metadata');
  const kinds = [['read'], ['write', { content: '' }], ['edit', { text: '' }], ['delete'], ['set_contract', { contract: info.contract || 'genesis/private' }], ['invoke', { method: 'describe' }]];
  const tbody = h('tbody');
  const table = h('table', { class: 'table', id: 'artifact-may' },
    h('caption', {}, `What ${S.me.principal} may do (POST /v1/explain; nothing is done or recorded, the contract runs are charged to your cpu_rate)`),
    h('thead', {}, h('tr', {}, h('th', {}, 'action'), h('th', {}, 'decision'), h('th', { class: 'num' }, 'cost'), h('th', {}, 'payer'), h('th', {}, 'outcome'))), tbody);
  box.replaceChildren(h('h3', {}, a.id), r.ok ? dl : h('p', { class: 'deny' }, `explain: ${r.err.code} ${r.err.message}`),
    h('h3', {}, 'Metadata'), meta, h('h3', {}, 'Who may do what'), table, h('h3', {}, 'Recent events'), recentList);
  for (const [kind, extra] of kinds) {
    const res = kind === 'read' ? r : await explain(kind, a.id, extra);
    let cols;
    if (!res.ok) cols = [kind, ['—', 'muted'], '', '', [res.err.code, 'deny']];
    else {
      const d = res.ex.decision, o = res.ex.outcome || {};
      cols = [kind, d ? [d.allowed ? 'allowed' : 'denied' + (d.reason ? ': ' + d.reason : ''), d.allowed ? 'okc' : 'deny'] : ['no contract ran', 'muted'],
        d ? fmt(d.cost) : '', d ? d.payer || '(caller)' : '', [o.ok ? 'OK' : o.error_code || '', o.ok ? 'okc' : 'deny']];
    }
    tbody.append(h('tr', { 'data-kind': kind }, cols.map(c => Array.isArray(c) ? h('td', { class: c[1] }, c[0]) : h('td', {}, c))));
  }
  refresh();
}

// ---- contracts ----
function drawContracts() {
  const contracts = new Map(); // id -> {governs: [], n, refused, fuel}
  const ensure = id => { let c = contracts.get(id); if (!c) contracts.set(id, c = { governs: 0, n: 0, refused: 0, fuel: 0 }); return c; };
  // Which contract governs each artifact: an explain's answer, else the
  // listing's.
  const governor = new Map();
  for (const a of S.artifacts) if (a.access_contract) governor.set(a.id, a.access_contract);
  for (const [id, info] of S.artInfo) if (info.contract) governor.set(id, info.contract);
  for (const a of S.artifacts) if (a.type === 'contract') ensure(a.id);
  for (const c of governor.values()) ensure(c).governs++;
  const unresolved = { governs: 0, n: 0, refused: 0, fuel: 0 };
  for (const [target, t] of S.byTarget) {
    const g = governor.get(target);
    const c = g ? ensure(g) : unresolved;
    c.n += t.n; c.refused += t.refused; c.fuel += t.fuel;
  }
  const rows = [...contracts.entries()].sort((a, b) => b[1].fuel - a[1].fuel || (a[0] < b[0] ? -1 : 1));
  if (unresolved.n) rows.push(['(governing contract not resolved)', unresolved]);
  const pct = c => (c.n ? Math.round((100 * c.refused) / c.n) + '%' : '—');
  $('contract-table').tBodies[0].replaceChildren(...rows.map(([id, c]) => h('tr', { 'data-id': id },
    h('td', {}, id), h('td', { class: 'num' }, fmt(c.governs)), h('td', { class: 'num' }, fmt(c.n)),
    h('td', { class: 'num' + (c.refused ? ' deny' : '') }, `${fmt(c.refused)} (${pct(c)})`), h('td', { class: 'num' }, fmt(c.fuel)))));
  hbars($('chart-fuel'), rows.slice(0, 12).map(([id, c]) => ({ label: id, value: c.fuel })), 'Fuel used by the actions each contract judged', ' fuel');
  const targets = [...S.byTarget.entries()].sort((a, b) => b[1].refused - a[1].refused || b[1].n - a[1].n).slice(0, 50);
  $('target-table').tBodies[0].replaceChildren(...targets.map(([id, t]) => h('tr', {},
    h('td', {}, id), h('td', { class: 'num' }, fmt(t.n)), h('td', { class: 'num' + (t.refused ? ' deny' : '') }, `${fmt(t.refused)} (${pct(t)})`), h('td', { class: 'num' }, fmt(t.fuel)))));
  $('contracts-note').textContent = S.me.admin
    ? 'Contracts are those listed under the artifacts view\'s prefix; an artifact counts for the contract its listing names. Actions on artifacts not listed count under the targets below.'
    : 'Contracts are those listed under the artifacts view\'s prefix; an artifact counts for the contract its listing names. Counts cover the events you may see.';
}

// ---- flows ----
function drawFlows() {
  const win = Number($('flow-window').value), scrip = $('flow-scrip').checked, quota = $('flow-quota').checked;
  const since = win ? Date.now() - win * 1000 : -Infinity;
  const edges = new Map();
  const add = (from, to, kind, unit, amount) => {
    const k = `${from}\u0000${to}\u0000${kind}\u0000${unit}`;
    let e = edges.get(k);
    if (!e) edges.set(k, e = { from, to, kind, unit, amount: 0, times: 0 });
    e.amount += amount; e.times++;
  };
  let n = 0;
  for (let i = S.events.length - 1; i >= 0; i--) {
    const ev = S.events[i];
    if (win && Date.parse(ev.time) < since) break;
    if (ev.code !== 'OK') continue;
    n++;
    if (scrip) for (const c of ev.charges || []) if (c.amount) add(c.payer, c.payee || '(burned)', 'scrip', 'scrip', c.amount);
    if (quota && ev.kind === 'transfer_quota' && ev.to) add(ev.caller, ev.to, 'quota', ev.resource, ev.amount || 0);
    if (quota && ev.kind === 'transfer_right' && ev.to) add(ev.caller, ev.to, 'quota', 'right ' + ev.target, 1);
  }
  const list = [...edges.values()].sort((a, b) => b.amount - a.amount);
  const volume = new Map();
  for (const e of list) for (const id of [e.from, e.to]) volume.set(id, (volume.get(id) || 0) + e.amount);
  const nodes = [...volume.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30).map(x => x[0]).sort();
  graph($('flow-graph'), nodes, list.filter(e => nodes.includes(e.from) && nodes.includes(e.to)),
    `Flows between ${nodes.length} principals: ` + list.slice(0, 10).map(e => `${e.from} to ${e.to} ${e.amount} ${e.unit}`).join('; '));
  $('flow-count').textContent = `${fmt(list.length)} flows in ${fmt(n)} events`;
  $('flow-table').tBodies[0].replaceChildren(...list.slice(0, 200).map(e => h('tr', {},
    h('td', {}, e.from), h('td', {}, e.to), h('td', {}, e.unit), h('td', { class: 'num' }, fmt(e.amount)), h('td', { class: 'num' }, fmt(e.times)))));
}

// ---- start ----
function start() {
  if (S.running) return;
  S.running = true;
  loadPrincipals();
  loadTotals();
  listArtifacts(false);
  streamLoop();
  setInterval(() => { if (S.view === 'world') { drawRate(); } }, 1000);
  setInterval(() => { if (S.view === 'world') loadTotals(); }, 10000);
}

function init() {
  plist = new VList($('principal-list'), principalRow, openPrincipal, p => p.id);
  elist = new VList($('event-list'), eventRow, openEvent, e => e.seq);
  alist = new VList($('artifact-list'), artifactRow, openArtifact, a => a.id);
  for (const k of KINDS) $('f-kind').append(h('option', { value: k }, k));
  for (const id of ['f-kind', 'f-principal', 'f-target', 'f-denied']) $(id).addEventListener('input', refilter);
  $('event-filters').addEventListener('submit', e => e.preventDefault());
  $('principal-filter').addEventListener('input', () => refresh(true));
  $('quota-resource').addEventListener('change', () => refresh(true));
  $('artifact-form').addEventListener('submit', e => { e.preventDefault(); listArtifacts(false); });
  $('a-type').addEventListener('input', () => refresh(true));
  $('a-contract').addEventListener('input', () => refresh(true));
  $('a-more').addEventListener('click', () => listArtifacts(true));
  $('a-resolve').addEventListener('click', resolveListed);
  for (const id of ['flow-window', 'flow-scrip', 'flow-quota']) $(id).addEventListener('input', () => refresh(true));
  $('signin-form').addEventListener('submit', e => { e.preventDefault(); signIn($('token').value.trim()); });
  $('signout').addEventListener('click', () => signOut());
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', e => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
    if (typing || !S.me || e.ctrlKey || e.metaKey || e.altKey) return;
    const i = '12345'.indexOf(e.key);
    if (i >= 0) { location.hash = VIEWS[i]; e.preventDefault(); }
    if (e.key === '/') {
      const first = $('view-' + S.view).querySelector('input, select');
      if (first) { first.focus(); e.preventDefault(); }
    }
  });
  const msg = sessionStorage.getItem('kernelhost.signout');
  if (msg) { sessionStorage.removeItem('kernelhost.signout'); $('signin-error').textContent = msg; }
  const tok = savedToken();
  if (tok) signIn(tok, true); else $('token').focus();
}

init();
