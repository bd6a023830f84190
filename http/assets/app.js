'use strict';
/* evs dashboard: a hash-routed single page in plain JavaScript, no dependencies.
 * Every string that comes from the API reaches the DOM as text (h() / textContent), never as HTML.
 * The token for POST routes lives in sessionStorage and is sent only on POST requests. */

const POLL_MS = 2000;
const HISTORY = 60;          // chart samples kept
const STREAMS_PAGE = 50;
const EVENTS_PAGE = 100;
const CORRELATION_LIMIT = 500;
const TOKEN_KEY = 'evs.dashboard.token';
const COLORS = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const DL_STATUSES = ['parked', 'retry', 'retried', 'skipped'];

/* ---------- DOM helpers ---------- */

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// h('a', {href: '#/x', class: 'mono', onclick: fn}, 'text', child, [more]) -> element
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return append(el, children);
}

function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function styled(el, props) {
  for (const [k, v] of Object.entries(props)) el.style.setProperty(k, v);
  return el;
}

const $ = (sel) => document.querySelector(sel);
const enc = encodeURIComponent;
const loading = () => h('p', { class: 'muted loading' }, 'Loading…');
const empty = (text) => h('p', { class: 'empty' }, text);

function safeDecode(s) {
  try { return decodeURIComponent(s); } catch { return s; }
}

function debounce(fn, ms) {
  let t = 0;
  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };
}

/* ---------- links ---------- */

const streamHash = (id) => `#/streams/${enc(id)}`;
const eventHash = (pos) => `#/events/${enc(pos)}`;
const correlationHash = (id) => `#/correlation/${enc(id)}`;
const deadLetterHash = (d) => `#/dead-letters/${enc(d.projection)}/${enc(d.id)}`;

/* ---------- token ---------- */

function getToken() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token only lives in the input */ }
  const input = $('#token-input');
  if (input && input.value !== token) input.value = token;
  $('#token-field')?.classList.toggle('has-token', Boolean(token));
}

// "#token=abc", "#/overview&token=abc" or "#/x?y=1&token=abc": keep the token, drop it from the address.
function takeTokenFromHash() {
  const body = location.hash.slice(1);
  const m = body.match(/(?:^|[&?])token=([^&]*)/);
  if (!m) return;
  setToken(safeDecode(m[1]).trim());
  let rest = body.replace(/(^|[&?])token=[^&]*/, '$1').replace(/[&?]+$/, '').replace(/([?&])&+/g, '$1');
  if (!rest.startsWith('/')) rest = '/overview';
  history.replaceState(null, '', `${location.pathname}${location.search}#${rest}`);
}

/* ---------- API ---------- */

async function api(path, options = {}) {
  const method = options.method || 'GET';
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {          // the token never travels on a GET
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let res;
  try {
    res = await fetch(path, { method, headers, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw Object.assign(new Error(`${method} ${path}: server unreachable (${e.message})`), { status: 0 });
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const msg = (body && body.error) || text.trim().slice(0, 200) || res.statusText;
    throw Object.assign(new Error(`${method} ${path}: HTTP ${res.status}: ${msg}`),
      { status: res.status, serverMessage: msg });
  }
  if (body === null) throw Object.assign(new Error(`${method} ${path}: answer is not JSON`), { status: res.status });
  return body;
}

// Fetch several paths at once; a failing one yields null and its error.
async function fetchAll(paths) {
  const settled = await Promise.allSettled(paths.map((p) => api(p)));
  return {
    data: settled.map((s) => (s.status === 'fulfilled' ? s.value : null)),
    errors: settled.filter((s) => s.status === 'rejected').map((s) => s.reason),
  };
}

/* ---------- formatting ---------- */

const fmtInt = (n) => (n == null ? '—' : Number(n).toLocaleString('en-US'));

function fmtRate(r) {
  if (r == null || !Number.isFinite(r)) return '—';
  return `${r >= 100 ? Math.round(r).toLocaleString('en-US') : r.toFixed(r >= 10 ? 1 : 2)}/s`;
}

function fmtSeconds(s) {
  if (s == null || !Number.isFinite(Number(s))) return '—';
  s = Number(s);
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

// "2026-12-03T10:00:00.123456Z" -> milliseconds (with the microseconds kept as a fraction)
function parseTime(s) {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$/.exec(String(s || ''));
  if (!m) return NaN;
  const base = Date.parse(m[1] + (m[3] || 'Z'));
  return base + (m[2] ? Number(`0.${m[2]}`) * 1000 : 0);
}

const fmtTime = (s) => (s ? String(s).replace('T', ' ').replace(/(\.\d{3})\d*/, '$1').replace(/Z$/, '') : '—');
const timeOfDay = (s) => fmtTime(s).slice(11) || '—';

function fmtDelta(ms) {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1000) return `+${Math.round(ms)} ms`;
  return `+${fmtSeconds(ms / 1000)}`;
}

const pretty = (v) => JSON.stringify(v, null, 2);

function summarize(v, max = 110) {
  const s = v === undefined ? '' : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function payloadSummary(ev, max) {
  return 'payload' in ev ? summarize(ev.payload, max) : `⚠ payload not decoded: ${ev.payload_problem || 'unknown problem'}`;
}

/* ---------- page lifecycle, banners ---------- */

let page = { id: 0, timer: 0 };
const isCurrent = (p) => p === page;

function newPage() {
  clearTimeout(page.timer);
  page = { id: page.id + 1, timer: 0, redraw: null };
  delete document.body.dataset.loaded;
  return page;
}

function markLoaded(p) {
  if (isCurrent(p)) document.body.dataset.loaded = 'true';
}

function showError(msg) {
  const banner = $('#error-banner');
  fill(banner, h('span', {}, msg), h('button', { class: 'close', 'aria-label': 'Dismiss', onclick: clearError }, '×'));
  banner.hidden = false;
}

function clearError() {
  $('#error-banner').hidden = true;
}

function notice(msg, kind) {
  const el = $('#notice');
  el.className = kind;
  fill(el, h('span', {}, msg), h('button', { class: 'close', 'aria-label': 'Dismiss', onclick: () => { el.hidden = true; } }, '×'));
  el.hidden = false;
}

// Run one load of page p: errors go to the banner, the first success sets <body data-loaded="true">.
async function run(p, task) {
  try {
    await task();
    if (isCurrent(p)) { clearError(); markLoaded(p); }
  } catch (e) {
    if (!isCurrent(p)) return;
    showError(e.message);
    const ph = $('#view .loading');
    if (ph) ph.textContent = 'Could not load this page (see the message above).';
  }
}

// delay(): milliseconds until the next load (the overview asks sooner while its charts have too few samples).
function poll(p, task, delay = () => POLL_MS) {
  const tick = async () => {
    await run(p, task);
    if (isCurrent(p)) p.timer = setTimeout(tick, delay());
  };
  tick();
}

function setMode(readOnly) {
  state.readOnly = readOnly;
  $('#mode-badge').hidden = readOnly !== true;
}

function setQuery(path, params) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== '' && v != null)).toString();
  history.replaceState(null, '', `#${path}${qs ? `?${qs}` : ''}`);
}

const state = { readOnly: undefined, lastHead: null, samples: [] };

/* ---------- shared pieces ---------- */

function pageHead(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'page-tools' }, extra));
}

// Cells whose markup other tools read (<td class="position">N</td>, <td class="state">…) get no extra
// attribute: on narrow screens the stylesheet labels them by their class instead of by data-label.
const UNLABELLED = '.position, .state, .status, .error';

// headers: 'Label' or ['Label', 'class']; a numeric column's <th> takes its <td>'s class (num, position,
// partitions) so that both are right-aligned. Each other cell gets data-label="Label" for the narrow layout,
// where a table with class "stack" shows every row as a card.
function table(id, headers, rows, cls) {
  const cols = headers.map((x) => (Array.isArray(x) ? x : [x, null]));
  const body = h('tbody', {}, rows);
  for (const tr of body.rows) {
    [...tr.cells].forEach((td, i) => {
      if (cols[i] && !td.hasAttribute('data-label') && !td.matches(UNLABELLED)) td.setAttribute('data-label', cols[i][0]);
    });
  }
  return h('table', { id, class: cls },
    h('thead', {}, h('tr', {}, cols.map(([t, c]) => h('th', { scope: 'col', class: c }, t)))),
    body);
}

// Hidden marker the stylesheet reads (tr:has(...)) to colour the plain-text state/status cell.
const marker = (value) => h('span', { class: 'marker', 'data-state': value, hidden: true });

function jumpForm(label, placeholder, toHash, value = '') {
  const input = h('input', { type: 'text', placeholder, value, 'aria-label': label, spellcheck: 'false' });
  return h('form', {
    class: 'jump',
    onsubmit: (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (v) location.hash = toHash(v);
    },
  }, input, h('button', { type: 'submit' }, label));
}

const correlationJump = (value) => jumpForm('Correlation', 'correlation id…', correlationHash, value);

function pager(hasPrev, hasNext, onPrev, onNext) {
  return [
    h('button', { type: 'button', disabled: !hasPrev, onclick: onPrev }, '← Previous'),
    h('button', { type: 'button', disabled: !hasNext, onclick: onNext }, 'Next →'),
  ];
}

// Long text (errors): wraps in the width its column gets and shows at most three lines; the whole text is in
// the DOM and the tooltip, and a click (or Enter, Space) opens it in place. opened (a Set) and key keep it open
// across the page's refreshes.
function clampText(text, opened, key) {
  if (!text) return h('span', { class: 'muted' }, '—');
  const isOpen = Boolean(opened && opened.has(key));
  const el = h('span', { class: isOpen ? 'clamp open' : 'clamp', title: text, tabindex: 0, role: 'button', 'aria-expanded': String(isOpen) }, text);
  const toggle = () => {
    const open = el.classList.toggle('open');
    el.setAttribute('aria-expanded', String(open));
    if (opened) { if (open) opened.add(key); else opened.delete(key); }
  };
  el.addEventListener('click', toggle);
  el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); } });
  return el;
}

function progressBar(fraction) {
  const pct = Math.max(0, Math.min(100, fraction * 100));
  return h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct.toFixed(0) },
    styled(h('div', { class: 'bar' }), { width: `${pct}%` }));
}

function rebuildsPanel(list) {
  if (!list || !list.length) return null;
  return h('section', { class: 'panel', id: 'rebuilds' },
    h('h2', {}, 'Rebuilds in progress'),
    h('div', { class: 'box' }, list.map((r) => {
      const fraction = r.progress ?? (r.head ? r.position / r.head : 0);
      return h('div', { class: 'rebuild' },
        h('span', { class: 'mono' }, r.projection),
        progressBar(fraction),
        h('span', { class: 'muted mono' }, `${r.position} / ${r.head} · ${(fraction * 100).toFixed(1)}%`));
    })));
}

/* ---------- charts (canvas) ---------- */

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawChart(canvas, series, fmt) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300;
  const ht = canvas.clientHeight || 170;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(ht * dpr);
  const g = canvas.getContext('2d');
  if (!g) return;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, ht);
  const pad = { l: 52, r: 12, t: 10, b: 20 };
  const values = series.flatMap((s) => s.points).filter((v) => v != null && Number.isFinite(v));
  const max = niceMax(Math.max(1, ...values) * 1.05);
  // The x axis holds at least 12 samples and grows to HISTORY, so a young chart is not a dot at the right edge.
  const n = Math.max(0, ...series.map((s) => s.points.length));
  const slots = Math.min(HISTORY, Math.max(12, n));
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / (slots - 1);
  const y = (v) => pad.t + (ht - pad.t - pad.b) * (1 - v / max);
  g.font = '11px system-ui, -apple-system, "Segoe UI", sans-serif';
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const f of [0, 0.5, 1]) {
    const yy = Math.round(y(max * f)) + 0.5;
    g.strokeStyle = '#e5e7eb';
    g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(w - pad.r, yy); g.stroke();
    g.fillStyle = '#6b7280';
    g.fillText(fmt(max * f), pad.l - 6, yy);
  }
  g.textAlign = 'left';
  g.textBaseline = 'alphabetic';
  if (n >= 2) g.fillText(`last ${n} samples, one every ${POLL_MS / 1000} s`, pad.l, ht - 5);
  for (const s of series) drawSeries(g, s, slots - s.points.length, x, y, series.length === 1 ? y(0) : null);
}

function drawSeries(g, s, offset, x, y, baseline) {
  const pts = s.points.map((v, i) => (v == null || !Number.isFinite(v) ? null : [x(i + offset), y(v)]));
  const runs = [];
  let cur = [];
  for (const p of pts) { if (p) cur.push(p); else if (cur.length) { runs.push(cur); cur = []; } }
  if (cur.length) runs.push(cur);
  for (const r of runs) {
    if (baseline != null && r.length > 1) {       // light area under a single series
      g.fillStyle = `${s.color}1f`;
      g.beginPath(); g.moveTo(r[0][0], baseline);
      for (const [px, py] of r) g.lineTo(px, py);
      g.lineTo(r[r.length - 1][0], baseline); g.closePath(); g.fill();
    }
    g.strokeStyle = s.color; g.lineWidth = 2; g.lineJoin = 'round';
    g.beginPath();
    r.forEach(([px, py], i) => (i ? g.lineTo(px, py) : g.moveTo(px, py)));
    g.stroke();
  }
  const last = pts[pts.length - 1];
  if (last) { g.fillStyle = s.color; g.beginPath(); g.arc(last[0], last[1], 3, 0, 2 * Math.PI); g.fill(); }
}

/* ---------- overview ---------- */

function recordSample(ov, projections) {
  const t = Number.isFinite(parseTime(ov.now)) ? parseTime(ov.now) : Date.now();
  const prev = state.lastHead;
  let rate = null;
  if (prev && t > prev.t && ov.head >= prev.head) rate = ((ov.head - prev.head) * 1000) / (t - prev.t);
  state.lastHead = { t, head: ov.head };
  if (prev && t === prev.t) return state.samples.at(-1)?.rate ?? null;   // same server instant: not a new sample
  const lags = {};
  for (const pr of projections || []) lags[pr.name] = pr.lag_events;
  state.samples.push({ rate, lags });
  if (state.samples.length > HISTORY) state.samples.shift();
  return rate;
}

// subs: lines of small text under the value (strings or nodes); long values wrap instead of being cut.
function card(label, value, subs, cls = '') {
  return h('div', { class: cls ? `card ${cls}` : 'card' },
    h('div', { class: 'card-label' }, label),
    h('div', { class: 'card-value', title: String(value) }, value),
    [subs].flat().filter((x) => x != null && x !== '').map((x) => h('div', { class: 'card-sub' }, x)));
}

// "/work/main/build/checkout.db" -> "checkout.db"; anything else (a PostgreSQL connection) stays whole.
function storeName(store) {
  const s = String(store ?? '');
  const base = s.split(/[\\/]/).filter(Boolean).pop();
  return base && /^[^\s=]+$/.test(base) ? base : s;
}

// Text with a line-break opportunity (<wbr>) after each separator (path slashes by default).
const breakable = (text, after = /(?<=[\\/])/) => String(text).split(after).flatMap((part, i) => (i ? [h('wbr'), part] : [part]));

function overviewCards(ov, rate) {
  if (!ov) return [];
  const name = storeName(ov.store);
  return [
    card('Store', name, [name !== String(ov.store) && h('span', { class: 'mono path', title: ov.store }, breakable(ov.store)),
      `${ov.backend} · evs ${ov.version}`], 'mono-value'),
    card('Head position', String(ov.head), 'last event in the log', 'mono-value'),
    card('Streams', fmtInt(ov.streams)),
    card('Append rate', fmtRate(rate), rate == null ? 'collecting: needs two samples' : 'from successive heads'),
    card('Since start', `${fmtInt(ov.events_appended)} events`, `in ${fmtInt(ov.appends)} appends by this server`),
    card('Mode', ov.read_only ? 'read-only' : 'read-write', `server time ${timeOfDay(ov.now)}`),
  ];
}

function overviewProjectionRows(list) {
  return list.map((pr) => h('tr', { 'data-projection': pr.name },
    h('td', { class: 'name' }, marker(pr.state), h('a', { href: '#/projections', class: 'mono' }, pr.name)),
    h('td', { class: 'state' }, pr.state),
    h('td', { class: 'position' }, String(pr.position)),
    h('td', { class: 'num' }, String(pr.head)),
    h('td', { class: 'num' }, fmtInt(pr.lag_events)),
    h('td', { class: 'num' }, fmtSeconds(pr.lag_seconds)),
    h('td', { class: 'num' }, fmtRate(pr.events_per_second)),
    h('td', { class: 'num' }, fmtInt(pr.dead_letters))));
}

const projectionColor = (i) => COLORS[i % COLORS.length];

function lagSeries(projections) {
  return projections.map((pr, i) => ({
    name: pr.name,
    color: projectionColor(i),
    points: state.samples.map((s) => s.lags[pr.name] ?? null),
  }));
}

// A big number with a caption, shown in a chart's head.
const stat = (value, caption) =>
  h('div', { class: 'stat' }, h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-caption' }, caption));

// The current lag of each projection as a bar (also the lag chart's legend).
function lagBars(projections) {
  if (!projections.length) return h('li', { class: 'muted' }, 'No projections.');
  const max = Math.max(0, ...projections.map((pr) => Number(pr.lag_events) || 0));
  return projections.map((pr, i) => {
    const lag = Number(pr.lag_events) || 0;
    return styled(h('li', { 'data-lag': pr.name, title: `${pr.name}: ${fmtInt(pr.lag_events)} events, ${fmtSeconds(pr.lag_seconds)} behind (${pr.state})` },
      h('span', { class: 'lag-name' }, h('i', { 'aria-hidden': 'true' }), pr.name),
      h('span', { class: 'lag-value' }, fmtInt(pr.lag_events)),
      h('span', { class: 'lag-track', 'aria-hidden': 'true' },
        styled(h('span', { class: 'lag-fill' }), { width: max > 0 ? `${Math.max(lag > 0 ? 2 : 0, (lag / max) * 100)}%` : '0%' }))),
    { '--c': projectionColor(i) });
  });
}

function renderOverview(view, p) {
  const cards = h('div', { class: 'cards' });
  const rebuilds = h('div');
  const rateCanvas = h('canvas', { class: 'chart', role: 'img', 'aria-label': 'Append rate, events per second' });
  const lagCanvas = h('canvas', { class: 'chart', role: 'img', 'aria-label': 'Projection lag in events' });
  const collecting = (what) => h('p', { class: 'chart-note' }, 'collecting…', h('span', { class: 'small' }, what));
  const rateNote = collecting(`the rate needs two samples of the head, taken every ${POLL_MS / 1000} s`);
  const lagNote = collecting(`lag over time, sampled every ${POLL_MS / 1000} s`);
  const rateStats = h('div', { class: 'stats' });
  const lagStats = h('div', { class: 'stats' });
  const bars = h('ul', { class: 'lag-bars', 'aria-label': 'Current lag per projection, in events' });
  const projWrap = h('div', { class: 'table-wrap' }, loading());
  const dlWrap = h('div', { class: 'table-wrap' }, loading());
  const dlCount = h('span', { class: 'muted' });
  const openErrors = new Set();
  fill(view,
    pageHead('Overview',
      correlationJump(),
      jumpForm('Event', 'position…', (v) => eventHash(v.replace(/^#/, '')))),
    cards,
    rebuilds,
    h('div', { class: 'charts' },
      h('div', { class: 'chart-box', id: 'append-rate' },
        h('div', { class: 'chart-head' }, h('h2', {}, 'Append rate (events/s)'), rateStats),
        h('div', { class: 'chart-area' }, rateCanvas, rateNote)),
      h('div', { class: 'chart-box', id: 'projection-lag' },
        h('div', { class: 'chart-head' }, h('h2', {}, 'Projection lag (events)'), lagStats),
        h('div', { class: 'lag-body' }, h('div', { class: 'chart-area' }, lagCanvas, lagNote), bars))),
    h('section', { id: 'overview-projections', class: 'panel' },
      h('h2', {}, 'Projections ', h('a', { href: '#/projections', class: 'more' }, 'details →')), projWrap),
    h('section', { id: 'overview-dead-letters', class: 'panel' },
      h('h2', {}, 'Dead letters ', dlCount, ' ', h('a', { href: '#/dead-letters', class: 'more' }, 'manage →')), dlWrap));

  let projections = [];
  p.redraw = () => {
    const rates = state.samples.map((s) => s.rate);
    drawChart(rateCanvas, [{ color: COLORS[0], points: rates }], fmtRate);
    drawChart(lagCanvas, lagSeries(projections), fmtInt);
    rateNote.hidden = rates.filter((r) => r != null).length >= 2;
    lagNote.hidden = state.samples.length >= 2;
  };

  poll(p, async () => {
    const { data: [ov, pr, rb, dl], errors } =
      await fetchAll(['/api/overview', '/api/projections', '/api/rebuilds', '/api/dead-letters']);
    if (!isCurrent(p)) return;
    if (pr) projections = pr.projections || [];
    const rate = ov ? recordSample(ov, pr && projections) : null;
    if (ov) setMode(ov.read_only);
    fill(cards, overviewCards(ov, rate));
    fill(rebuilds, rebuildsPanel(rb && rb.rebuilds));
    if (ov) {
      fill(rateStats, stat(fmtRate(rate), rate == null ? 'now (collecting)' : 'now'),
        stat(fmtInt(ov.head), 'head position'));
    }
    if (pr) {
      const lags = projections.map((x) => Number(x.lag_events) || 0);
      const behind = lags.filter((v) => v > 0).length;
      fill(lagStats, stat(fmtInt(Math.max(0, ...lags)), 'max lag'),
        stat(behind ? `${behind} of ${projections.length}` : 'none', 'behind the head'));
      fill(bars, lagBars(projections));
      fill(projWrap, projections.length
        ? table('overview-projections-table',
          ['Name', 'State', ['Position', 'position'], ['Head', 'num'], ['Lag', 'num'], ['Lag (s)', 'num'], ['Rate', 'num'], ['Dead letters', 'num']],
          overviewProjectionRows(projections), 'stack')
        : empty('No projections.'));
    }
    if (dl) {
      const list = dl.dead_letters || [];
      fill(dlCount, `(${list.length})`);
      fill(dlWrap, list.length
        ? deadLetterTable('overview-dead-letters-table', list.slice(0, 20), { compact: true, openErrors })
        : empty('No dead letters.'));
    }
    p.redraw();
    if (ov && pr) markLoaded(p);
    if (errors.length) throw errors[0];
  }, () => (state.samples.filter((x) => x.rate != null).length < 2 ? 1000 : POLL_MS));   // first rates sooner
}

/* ---------- streams ---------- */

function renderStreams(view, p, _params, query) {
  const f = { category: query.get('category') || '', q: query.get('q') || '' };
  let after = '';
  let stack = [];
  let seq = 0;
  const catSel = h('select', { 'aria-label': 'Category' }, h('option', { value: '' }, 'all categories'),
    f.category && h('option', { value: f.category, selected: true }, f.category));
  const search = h('input', { type: 'search', placeholder: 'stream id contains…', value: f.q, 'aria-label': 'Search stream ids' });
  const wrap = h('div', { class: 'table-wrap' }, loading());
  const pagerBox = h('div', { class: 'pager' });
  fill(view, pageHead('Streams', correlationJump()), h('div', { class: 'filters' }, catSel, search), wrap, pagerBox);

  const load = () => run(p, async () => {
    const mine = ++seq;
    const qs = new URLSearchParams({ limit: STREAMS_PAGE });
    if (f.category) qs.set('category', f.category);
    if (f.q) qs.set('q', f.q);
    if (after) qs.set('after', after);
    const r = await api(`/api/streams?${qs}`);
    if (mine !== seq) return;
    const rows = (r.streams || []).map((s) => h('tr', { 'data-stream': s.id, onclick: (e) => { if (!e.target.closest('a')) location.hash = streamHash(s.id); } },
      h('td', { class: 'mono' }, h('a', { href: streamHash(s.id) }, s.id)),
      h('td', {}, s.category),
      h('td', { class: 'num' }, String(s.version)),
      h('td', { class: 'mono', title: s.updated_at }, fmtTime(s.updated_at))));
    fill(wrap, rows.length ? table('streams-table', ['Stream', 'Category', ['Version', 'num'], 'Updated (UTC)'], rows) : empty('No streams match.'));
    fill(pagerBox, pager(stack.length > 0, r.next != null,
      () => { after = stack.pop() || ''; load(); },
      () => { stack.push(after); after = String(r.next); load(); }));
  });
  const reset = () => { after = ''; stack = []; setQuery('/streams', f); load(); };
  catSel.addEventListener('change', () => { f.category = catSel.value; reset(); });
  search.addEventListener('input', debounce(() => { f.q = search.value.trim(); reset(); }, 300));

  api('/api/categories').then((r) => {
    fill(catSel, h('option', { value: '' }, 'all categories'), (r.categories || []).map((c) =>
      h('option', { value: c.name, selected: c.name === f.category }, `${c.name} (${fmtInt(c.streams)})`)));
  }).catch((e) => showError(e.message));
  load();
}

function payloadDetails(ev) {
  if (!('payload' in ev)) {
    return h('details', { class: 'payload problem' },
      h('summary', {}, `⚠ ${ev.payload_problem || 'payload not decoded'}`),
      h('pre', { class: 'b64' }, ev.payload_base64 || ''));
  }
  return h('details', { class: 'payload' }, h('summary', {}, summarize(ev.payload, 80)), h('pre', {}, pretty(ev.payload)));
}

function renderStream(view, p, [id], query) {
  let from = Number(query.get('from')) || 1;
  const stack = [];
  const info = h('p', { class: 'muted' });
  const wrap = h('div', { class: 'table-wrap' }, loading());
  const pagerBox = h('div', { class: 'pager' });
  const toggle = h('button', { type: 'button', onclick: () => {
    const all = [...wrap.querySelectorAll('details')];
    const open = !all.every((d) => d.open);
    all.forEach((d) => { d.open = open; });
  } }, 'Expand / collapse all');
  fill(view, pageHead(h('span', {}, 'Stream ', h('code', {}, id)), toggle, h('a', { href: '#/streams' }, '← all streams')),
    info, wrap, pagerBox);

  const load = () => run(p, async () => {
    const r = await api(`/api/streams/${enc(id)}?from=${from}&limit=${EVENTS_PAGE}`);
    const events = r.events || [];
    fill(info, `version ${r.version} · ${events.length} event${events.length === 1 ? '' : 's'} from version ${from}`);
    fill(wrap, events.length ? table('stream-events-table', [['Position', 'position'], ['Version', 'num'], 'Type', 'Recorded at (UTC)', 'Correlation', 'Payload'],
      events.map((ev) => h('tr', { 'data-position': String(ev.position) },
        h('td', { class: 'position' }, h('a', { href: eventHash(ev.position) }, String(ev.position))),
        h('td', { class: 'num' }, String(ev.version)),
        h('td', { class: 'type' }, ev.type, ev.current ? h('span', { class: 'tag', title: 'read as a newer version' }, 'upcast') : null),
        h('td', { class: 'mono', title: ev.recorded_at }, fmtTime(ev.recorded_at)),
        h('td', { class: 'mono' }, ev.correlation_id ? h('a', { href: correlationHash(ev.correlation_id) }, ev.correlation_id) : '—'),
        h('td', { class: 'payload-cell' }, payloadDetails(ev))))) : empty('No events in this range.'));
    fill(pagerBox, pager(stack.length > 0, r.next != null,
      () => { from = stack.pop() || 1; load(); },
      () => { stack.push(from); from = Number(r.next); load(); }));
  });
  load();
}

/* ---------- event ---------- */

function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? h('span', { class: 'muted' }, '—'))]));
}

function eventView(ev) {
  const meta = ev.metadata && Object.keys(ev.metadata).length ? h('pre', {}, pretty(ev.metadata)) : empty('No metadata.');
  const payload = 'payload' in ev
    ? h('pre', { class: 'payload-json' }, pretty(ev.payload))
    : [h('p', { class: 'problem-text' }, `Payload not decoded: ${ev.payload_problem || 'unknown problem'}. Raw bytes (base64):`),
      h('pre', { class: 'b64' }, ev.payload_base64 || '')];
  const current = (ev.current || []).map((c) => [
    h('h3', {}, `As ${c.type} v${c.schema_version}`),
    h('pre', {}, pretty(c.payload)),
  ]);
  return [
    kv([
      ['Position', h('span', { class: 'mono' }, String(ev.position))],
      ['Stream', h('a', { class: 'mono', href: streamHash(ev.stream) }, ev.stream)],
      ['Version', String(ev.version)],
      ['Type', h('span', { class: 'mono' }, ev.type)],
      ['Schema version', String(ev.schema_version)],
      ['Encoding', ev.encoding],
      ['Event id', h('span', { class: 'mono' }, ev.event_id)],
      ['Recorded at', h('span', { class: 'mono' }, ev.recorded_at)],
      ['Correlation id', ev.correlation_id ? h('a', { class: 'mono', href: correlationHash(ev.correlation_id) }, ev.correlation_id) : null],
      ['Causation id', ev.causation_id ? h('span', { class: 'mono' }, ev.causation_id) : null],
    ]),
    h('section', { class: 'panel' }, h('h2', {}, 'Metadata'), meta),
    h('section', { class: 'panel' }, h('h2', {}, `Payload (${ev.type} v${ev.schema_version})`), payload),
    current.length ? h('section', { class: 'panel' }, h('h2', {}, 'Current version (upcast)'), current) : null,
  ];
}

function renderEvent(view, p, [pos]) {
  fill(view, pageHead(`Event ${pos}`), loading());
  run(p, async () => {
    const ev = await api(`/api/events/${enc(pos)}`);
    const n = Number(ev.position);
    fill(view,
      pageHead(h('span', {}, 'Event ', h('code', {}, String(ev.position))),
        n > 1 && h('a', { href: eventHash(n - 1) }, '← previous'),
        h('a', { href: eventHash(n + 1) }, 'next →'),
        h('a', { href: streamHash(ev.stream) }, 'stream'),
        ev.correlation_id && h('a', { href: correlationHash(ev.correlation_id) }, 'correlation')),
      eventView(ev));
  });
}

/* ---------- correlation ---------- */

function timeline(events) {
  const t0 = parseTime(events[0].recorded_at);
  const byId = new Map(events.map((e) => [e.event_id, e]));
  const streamColor = new Map();
  let prevDate = '';
  return h('ol', { class: 'timeline' }, events.map((ev) => {
    if (!streamColor.has(ev.stream)) streamColor.set(ev.stream, COLORS[streamColor.size % COLORS.length]);
    const date = String(ev.recorded_at || '').slice(0, 10);
    const showDate = date !== prevDate;
    prevDate = date;
    const cause = ev.causation_id && byId.get(ev.causation_id);
    return h('li', { class: 'tl-item', 'data-position': String(ev.position) },
      h('div', { class: 'tl-time', title: ev.recorded_at },
        h('div', { class: 'mono' }, timeOfDay(ev.recorded_at)),
        showDate && h('div', { class: 'tl-date' }, date),
        h('div', { class: 'tl-delta' }, fmtDelta(parseTime(ev.recorded_at) - t0))),
      styled(h('div', { class: 'tl-dot', 'aria-hidden': 'true' }), { '--dot': streamColor.get(ev.stream) }),
      h('div', { class: 'tl-body' },
        h('div', { class: 'tl-head' },
          h('span', { class: 'tl-type' }, ev.type),
          h('a', { class: 'mono', href: streamHash(ev.stream) }, ev.stream), h('span', { class: 'muted' }, ` v${ev.version}`),
          h('a', { class: 'mono muted-link', href: eventHash(ev.position) }, `#${ev.position}`),
          cause && h('span', { class: 'muted' }, 'caused by ', h('a', { href: eventHash(cause.position) }, `#${cause.position}`))),
        h('div', { class: 'tl-summary mono', title: payloadSummary(ev, 2000) }, payloadSummary(ev, 160))));
  }));
}

function renderCorrelation(view, p, [cid]) {
  fill(view, pageHead(h('span', {}, 'Correlation ', h('code', {}, cid)), correlationJump(cid)), loading());
  run(p, async () => {
    const r = await api(`/api/correlation/${enc(cid)}?limit=${CORRELATION_LIMIT}`);
    const events = r.events || [];
    const streams = new Set(events.map((e) => e.stream));
    const span = events.length ? parseTime(events.at(-1).recorded_at) - parseTime(events[0].recorded_at) : 0;
    fill(view,
      pageHead(h('span', {}, 'Correlation ', h('code', {}, r.correlation_id ?? cid)), correlationJump(cid)),
      events.length
        ? [h('p', { class: 'muted' }, `${events.length} event${events.length === 1 ? '' : 's'} in ${streams.size} stream${streams.size === 1 ? '' : 's'}, over ${fmtDelta(span).slice(1) || '0 ms'}; first at ${fmtTime(events[0].recorded_at)} UTC`),
          timeline(events),
          events.length >= CORRELATION_LIMIT && h('p', { class: 'muted' }, `Only the first ${CORRELATION_LIMIT} events are shown.`)]
        : empty('No event carries this correlation id.'));
  });
}

/* ---------- projections ---------- */

function partitionsCell(pr) {
  const td = h('td', { class: 'partitions' }, pr.partitions == null ? '—' : String(pr.partitions));
  if (pr.claims && pr.claims.length) {
    append(td, [
      h('div', { class: 'sub', title: 'this node, partitions it holds, fenced' }, `${pr.node || '—'} holds ${pr.partitions_held ?? 0}${pr.fenced ? `, fenced ${pr.fenced}` : ''}`),
      h('ul', { class: 'claims' }, pr.claims.map((c) =>
        h('li', { title: c.lease_until ? `lease until ${c.lease_until}` : null }, `p${c.partition} ${c.owner} e${c.epoch}`)))]);
  }
  return td;
}

function projectionRow(pr, expanded) {
  return h('tr', { 'data-projection': pr.name },
    h('td', { class: 'name' }, marker(pr.state), h('span', { class: 'mono strong' }, pr.name)),
    h('td', { class: 'kind' }, breakable(pr.kind ?? '', /(?<=_)/)),
    h('td', { class: 'state' }, pr.state),
    h('td', { class: 'position' }, String(pr.position)),
    h('td', { class: 'num' }, String(pr.head)),
    h('td', { class: 'num lag' }, fmtInt(pr.lag_events)),
    h('td', { class: 'num' }, fmtSeconds(pr.lag_seconds)),
    h('td', { class: 'num' }, fmtRate(pr.events_per_second)),
    h('td', { class: 'num' }, fmtInt(pr.processed)),
    h('td', { class: 'num' }, pr.dead_letters
      ? h('a', { href: `#/dead-letters?projection=${enc(pr.name)}` }, fmtInt(pr.dead_letters)) : '0'),
    partitionsCell(pr),
    h('td', { class: 'last-error' }, clampText(pr.last_error, expanded, pr.name)));
}

function renderProjections(view, p) {
  const expanded = new Set();
  const rebuilds = h('div');
  const wrap = h('div', { class: 'table-wrap' }, loading());
  const stamp = h('span', { class: 'muted small' });
  fill(view, pageHead('Projections', stamp), rebuilds, wrap);
  poll(p, async () => {
    const { data: [pr, rb], errors } = await fetchAll(['/api/projections', '/api/rebuilds']);
    if (!isCurrent(p)) return;
    fill(rebuilds, rebuildsPanel(rb && rb.rebuilds));
    if (pr) {
      const list = pr.projections || [];
      fill(wrap, list.length ? table('projections-table',
        ['Name', 'Kind', 'State', ['Position', 'position'], ['Head', 'num'], ['Lag', 'num'], ['Lag (s)', 'num'], ['Rate', 'num'],
          ['Processed', 'num'], ['Dead letters', 'num'], ['Partitions', 'partitions'], 'Last error'],
        list.map((x) => projectionRow(x, expanded)), 'stack') : empty('No projections.'));
      fill(stamp, `refreshed ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`);
      markLoaded(p);
    }
    if (errors.length) throw errors[0];
  });
}

/* ---------- dead letters ---------- */

function actionError(e) {
  const server = e.serverMessage ? ` (server: ${e.serverMessage})` : '';
  if (e.status === 401) return `token missing or wrong: paste the token printed by the server${server}`;
  if (e.status === 403) return `the server runs read-only: dead letters cannot be changed${server}`;
  if (e.status === 409) return `not possible in the dead letter's current state: ${e.serverMessage || 'conflict'}`;
  return e.message;
}

async function act(d, action, after) {
  const verb = action === 'retry' ? 'Retry' : 'Skip';
  const what = action === 'retry'
    ? 'The projection will process the event again.'
    : 'The projection will never process this event.';
  if (!window.confirm(`${verb} dead letter ${d.projection}/${d.id} (event ${d.position}, ${d.type})?\n${what}`)) return;
  try {
    const r = await api(`/api/dead-letters/${enc(d.projection)}/${enc(d.id)}/${action}`, { method: 'POST' });
    notice(`${d.projection}/${d.id}: ${action === 'retry' ? 'queued for retry' : 'skipped'}; status is now ${r.dead_letter?.status ?? 'unknown'}.`, 'ok');
  } catch (e) {
    notice(actionError(e), 'error');
  }
  after();
}

function actionButtons(d, after) {
  if (state.readOnly !== false) return null;   // unknown or read-only: no buttons
  return [
    d.status === 'parked' && h('button', { type: 'button', class: 'primary', onclick: () => act(d, 'retry', after) }, 'Retry'),
    (d.status === 'parked' || d.status === 'retry') && h('button', { type: 'button', class: 'danger', onclick: () => act(d, 'skip', after) }, 'Skip'),
  ];
}

// compact (the overview): no stream, parked time nor actions. The full table puts the stream and the position
// under the event type and the date under the time, so that it fits a laptop screen with its actions.
function deadLetterTable(id, list, { compact = false, after, openErrors } = {}) {
  const headers = compact
    ? ['Projection', ['Id', 'num'], ['Position', 'num'], 'Type', 'Error', ['Attempts', 'num'], 'Status']
    : ['Projection', ['Id', 'num'], 'Event', 'Error', ['Attempts', 'num'], 'Parked at (UTC)', 'Status', 'Actions'];
  return table(id, headers, list.map((d) => h('tr', {
    'data-dead-letter': `${d.projection}/${d.id}`,
    onclick: (e) => { if (!e.target.closest('a, button, .clamp')) location.hash = deadLetterHash(d); },
  },
  h('td', { class: 'mono dl-projection' }, marker(d.status), d.projection),
  h('td', { class: 'num' }, h('a', { href: deadLetterHash(d) }, String(d.id))),
  compact && h('td', { class: 'num' }, h('a', { href: eventHash(d.position) }, String(d.position))),
  compact
    ? h('td', { class: 'mono type' }, d.type)
    : h('td', { class: 'event' }, h('div', { class: 'mono type' }, d.type),
      h('div', { class: 'sub mono' }, h('a', { href: streamHash(d.stream) }, d.stream), ' · ',
        h('a', { href: eventHash(d.position), title: `event at position ${d.position}` }, `#${d.position}`))),
  h('td', { class: 'error' }, clampText(d.error, openErrors, `${d.projection}/${d.id}`)),
  h('td', { class: 'num' }, String(d.attempts)),
  !compact && h('td', { class: 'parked', title: d.parked_at },
    h('div', { class: 'mono' }, timeOfDay(d.parked_at).replace(/\.\d+$/, '')),
    h('div', { class: 'sub mono' }, String(d.parked_at || '').slice(0, 10))),
  h('td', { class: 'status' }, d.status),
  !compact && h('td', { class: 'actions' }, actionButtons(d, after)))), 'stack');
}

function renderDeadLetters(view, p, _params, query) {
  const f = { projection: query.get('projection') || '', status: query.get('status') || '' };
  const projSel = h('select', { 'aria-label': 'Projection' }, h('option', { value: '' }, 'all projections'),
    f.projection && h('option', { value: f.projection, selected: true }, f.projection));
  const statusSel = h('select', { 'aria-label': 'Status' }, h('option', { value: '' }, 'any status'),
    DL_STATUSES.map((s) => h('option', { value: s, selected: s === f.status }, s)));
  const wrap = h('div', { class: 'table-wrap' }, loading());
  const info = h('span', { class: 'muted small' });
  const refresh = h('button', { type: 'button', onclick: () => load() }, 'Refresh');
  const openErrors = new Set();
  fill(view, pageHead('Dead letters', info, refresh), h('div', { class: 'filters' }, projSel, statusSel), wrap);

  const load = () => run(p, async () => {
    const qs = new URLSearchParams();
    if (f.projection) qs.set('projection', f.projection);
    if (f.status) qs.set('status', f.status);
    const [dl, ov] = await Promise.all([api(`/api/dead-letters${qs.toString() ? `?${qs}` : ''}`), api('/api/overview')]);
    setMode(ov.read_only);
    const list = dl.dead_letters || [];
    fill(info, `${list.length} shown${ov.read_only ? ' · server is read-only: no actions' : ''}`);
    fill(wrap, list.length ? deadLetterTable('dead-letters-table', list, { after: load, openErrors }) : empty('No dead letters match.'));
  });
  const change = () => { f.projection = projSel.value; f.status = statusSel.value; setQuery('/dead-letters', f); load(); };
  projSel.addEventListener('change', change);
  statusSel.addEventListener('change', change);

  api('/api/projections').then((r) => {
    const names = new Set((r.projections || []).map((x) => x.name));
    if (f.projection) names.add(f.projection);
    fill(projSel, h('option', { value: '' }, 'all projections'),
      [...names].sort().map((n) => h('option', { value: n, selected: n === f.projection }, n)));
  }).catch((e) => showError(e.message));
  load();
}

function renderDeadLetter(view, p, [projection, id]) {
  fill(view, pageHead(`Dead letter ${projection}/${id}`), loading());
  const load = () => run(p, async () => {
    const [d, ov] = await Promise.all([api(`/api/dead-letters/${enc(projection)}/${enc(id)}`), api('/api/overview')]);
    setMode(ov.read_only);
    fill(view,
      pageHead(h('span', {}, 'Dead letter ', h('code', {}, `${d.projection}/${d.id}`)),
        actionButtons(d, load), h('a', { href: `#/dead-letters?projection=${enc(d.projection)}` }, '← dead letters')),
      h('div', { class: 'dl-detail' }, marker(d.status), kv([
        ['Projection', h('span', { class: 'mono' }, d.projection)],
        ['Status', h('span', { class: 'status' }, d.status)],
        ['Attempts', String(d.attempts)],
        ['Parked at', h('span', { class: 'mono' }, d.parked_at)],
        ['Position', h('a', { class: 'mono', href: eventHash(d.position) }, String(d.position))],
        ['Stream', h('a', { class: 'mono', href: streamHash(d.stream) }, d.stream)],
        ['Type', h('span', { class: 'mono' }, d.type)],
        ['Event id', h('span', { class: 'mono' }, d.event_id)],
      ])),
      h('section', { class: 'panel' }, h('h2', {}, 'Error'), h('pre', { class: 'error-text' }, d.error || '')),
      h('section', { class: 'panel' }, h('h2', {}, 'Event'), d.event ? eventView(d.event) : empty('The event is not available.')));
  });
  load();
}

/* ---------- router ---------- */

const ROUTES = [
  [/^\/overview$/, renderOverview],
  [/^\/streams$/, renderStreams],
  [/^\/streams\/(.+)$/, renderStream],
  [/^\/events\/(\d+)$/, renderEvent],
  [/^\/correlation\/(.+)$/, renderCorrelation],
  [/^\/projections$/, renderProjections],
  [/^\/dead-letters$/, renderDeadLetters],
  [/^\/dead-letters\/([^/]+)\/([^/]+)$/, renderDeadLetter],
];

function parseHash() {
  const body = location.hash.slice(1);
  const cut = body.search(/[?&]/);
  const path = cut < 0 ? body : body.slice(0, cut);
  return { path, query: new URLSearchParams(cut < 0 ? '' : body.slice(cut + 1)) };
}

function highlightNav(path) {
  let section = path.split('/')[1] || '';
  if (section === 'events' || section === 'correlation') section = 'streams';
  for (const a of document.querySelectorAll('#nav a')) {
    const on = a.dataset.nav === section;
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

function route() {
  takeTokenFromHash();
  const { path, query } = parseHash();
  if (!path || path === '/') {
    history.replaceState(null, '', `${location.pathname}${location.search}#/overview`);
    return route();
  }
  const p = newPage();
  clearError();
  $('#notice').hidden = true;
  highlightNav(path);
  const view = $('#view');
  window.scrollTo(0, 0);
  for (const [re, render] of ROUTES) {
    const m = path.match(re);
    if (m) {
      fill(view);
      render(view, p, m.slice(1).map(safeDecode), query);
      return undefined;
    }
  }
  fill(view, pageHead('Page not found'),
    h('p', {}, 'Nothing at ', h('code', {}, path), '. ', h('a', { href: '#/overview' }, 'Go to the overview.')));
  return undefined;
}

function init() {
  const input = $('#token-input');
  setToken(getToken());
  input.addEventListener('change', () => setToken(input.value.trim()));
  $('#token-form').addEventListener('submit', (e) => { e.preventDefault(); setToken(input.value.trim()); });
  window.addEventListener('hashchange', route);
  window.addEventListener('resize', debounce(() => page.redraw && page.redraw(), 150));
  route();
}

init();
