// Customer tracking page, served at /t/{tracking_token}: the shipment's state from
// GET /api/v1/track/{token}, live over /ws/track/{token}, in the customer's words
// (customer.js), times in the viewer's zone, the sender's brand from /config.json.

import { HttpError, LiveSocket, el, fetchJson, fmtDistance, isNum, setChildren, wsUrl } from '../common.js';
import { sendJson } from './api.js';
import {
  DEFAULT_CUSTOMER_CODES, STEPS, STATUS_TEXT, delayNotice, exceptionNotice, mapNote,
  milestoneText, statusNote, statusText, stepStates,
} from './customer.js';
import { createMap, loadConfig } from './map.js';
import { parseTs } from './state.js';
import { fmtAgo, fmtDateTimeZ, fmtFullZ, fmtTimeZ, fmtWindow, localZone } from './time.js';

const $ = (id) => document.getElementById(id);
const page = { token: null, s: null, map: null, marker: null, trail: null, lastT: null, follow: true, fitted: false, ends: null, socket: null, gone: false, tz: localZone(), codes: DEFAULT_CUSTOMER_CODES, brand: {} };

function tokenFromLocation() {
  const m = window.location.pathname.match(/\/t\/([^/]+)\/?$/);
  if (m) { try { return decodeURIComponent(m[1]); } catch { return null; } }
  return new URLSearchParams(window.location.search).get('token');
}

function show(view) {
  for (const id of ['loading', 'notfound', 'failed', 'content']) $(id).hidden = id !== view;
  $('more').hidden = view !== 'content';
}

function notFound() {
  page.gone = true;
  if (page.socket) page.socket.stop();
  show('notfound');
  document.body.classList.add('not-found');
}

function applyBrand(brand) {
  page.brand = brand || {};
  const name = page.brand.name || 'shiptrack';
  $('brand-name').textContent = name;
  if (page.brand.logo_url) {
    $('brand-logo').src = page.brand.logo_url;
    $('brand-logo').alt = name;
    $('brand-logo').hidden = false;
    $('brand-mark').hidden = true;
  }
  const lines = [];
  if (page.brand.contact_email) lines.push(el('a', { href: `mailto:${page.brand.contact_email}`, text: page.brand.contact_email }));
  if (page.brand.contact_phone) lines.push(el('a', { href: `tel:${page.brand.contact_phone.replace(/\s+/g, '')}`, text: page.brand.contact_phone }));
  if (page.brand.contact_url) lines.push(el('a', { href: page.brand.contact_url, rel: 'noopener', text: 'Help page' }));
  $('contact').hidden = lines.length === 0;
  setChildren($('contact-lines'), el('span', { text: `Contact ${name}: ` }), lines.flatMap((a, i) => (i ? [' · ', a] : [a])));
}

function render() {
  const s = page.s;
  if (!s) return;
  show('content');
  const ref = String(s.reference || 'Your shipment');
  $('reference').textContent = ref;
  $('kicker').textContent = page.brand.name ? `Shipment from ${page.brand.name}` : 'Shipment';
  $('status-line').textContent = statusText(s.status);
  document.title = `${ref} · ${statusText(s.status)}`;
  const delay = delayNotice(s, page.tz);
  $('delay').hidden = !delay;
  if (delay) { $('delay-title').textContent = delay.title; $('delay-text').textContent = delay.text ? ` ${delay.text}` : ''; }
  const exc = exceptionNotice(s, page.codes);
  $('exception').hidden = !exc;
  $('exception-text').textContent = exc || '';
  const note = statusNote(s.status);
  $('status-note').hidden = !note;
  $('status-note').textContent = note || '';
  const states = stepStates(s.status);
  setChildren($('steps'), STEPS.map((st, i) => el('li', { class: `step ${states[i]}`, 'aria-current': states[i] === 'current' ? 'step' : null },
    el('span', { class: 'step-dot', 'aria-hidden': 'true' }), el('span', { class: 'step-label', text: STATUS_TEXT[st] }),
    states[i] === 'done' ? el('span', { class: 'visually-hidden', text: ' (done)' }) : null)));
  renderEta(s);
  renderTimeline(s);
  // nothing more to tell once it is over
  if (['delivered', 'cancelled', 'returned_to_sender'].includes(s.status)) $('subscribe').hidden = true;
  renderMapNote();
  renderUpdated();
}

function deliveredAt(s) {
  const done = (s.milestones || []).filter((m) => m && m.kind === 'delivered');
  return done.length ? done[done.length - 1].ts : s.delivered_at || null;
}

function renderEta(s) {
  const facts = [];
  if (s.status === 'delivered') {
    $('eta-title').textContent = 'Delivered';
    const at = deliveredAt(s);
    $('eta-main').textContent = at ? fmtDateTimeZ(at, page.tz) : 'Your shipment has been delivered.';
    $('eta-sub').textContent = '';
  } else if (['cancelled', 'returned_to_sender'].includes(s.status)) {
    $('eta-title').textContent = statusText(s.status);
    $('eta-main').textContent = '–';
    $('eta-sub').textContent = '';
  } else if (s.eta_low && s.eta_high) {
    $('eta-title').textContent = 'Estimated arrival';
    $('eta-main').textContent = fmtWindow(s.eta_low, s.eta_high, page.tz);
    $('eta-sub').textContent = s.eta ? `Most likely around ${fmtTimeZ(s.eta, page.tz)}` : '';
  } else if (s.eta) {
    $('eta-title').textContent = 'Estimated arrival';
    $('eta-main').textContent = fmtDateTimeZ(s.eta, page.tz);
    $('eta-sub').textContent = '';
  } else {
    $('eta-title').textContent = 'Estimated arrival';
    $('eta-main').textContent = 'Not available yet';
    $('eta-sub').textContent = 'An estimate appears once your shipment is on its way.';
  }
  if (s.status !== 'delivered' && isNum(s.remaining_m)) facts.push(['Distance to go', fmtDistance(s.remaining_m)]);
  if (s.promised_by) facts.push(['Promised by', fmtDateTimeZ(s.promised_by, page.tz)]);
  if (s.eta_first && s.status !== 'delivered') facts.push(['First estimate', fmtDateTimeZ(s.eta_first, page.tz)]);
  setChildren($('eta-facts'), facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))));
  $('zone').textContent = `Times in ${page.tz}.`;
}

function renderTimeline(s) {
  const ms = (s.milestones || []).filter((m) => m && typeof m === 'object')
    .sort((a, b) => (parseTs(b.ts) ?? 0) - (parseTs(a.ts) ?? 0));
  setChildren($('timeline'), ms.map((m, i) => el('li', { class: i === 0 ? 'latest' : null },
    el('span', { class: 'tl-dot', 'aria-hidden': 'true' }),
    el('div', {}, el('p', { class: 'tl-kind', text: milestoneText(m.kind) }),
      el('p', { class: 'tl-meta' }, el('time', { datetime: m.ts || null, title: fmtFullZ(m.ts, page.tz), text: fmtDateTimeZ(m.ts, page.tz) }))))));
  $('timeline-empty').hidden = ms.length > 0;
}

function renderMapNote() {
  const text = mapNote(page.s, Boolean(page.marker));
  $('map-note').hidden = !text;
  $('map-note').textContent = text || '';
}

function renderUpdated() {
  const p = page.s && page.s.status !== 'delivered' ? page.s.last_position : null;
  const t = p ? parseTs(p.ts) : null;
  $('updated').textContent = t ? `Last position update ${fmtAgo(t)}.` : '';
}

function drawEnds(s) {
  if (page.ends) return page.ends;
  page.ends = [];
  for (const [p, label, color] of [[s.origin, 'Origin', '#59636e'], [s.destination, 'Destination', '#1a7f37']]) {
    if (!p || !isNum(p.lat) || !isNum(p.lon)) continue;
    window.L.circleMarker([p.lat, p.lon], { radius: 7, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 })
      .bindTooltip(el('span', { text: label })).addTo(page.map);
    page.ends.push([p.lat, p.lon]);
  }
  return page.ends;
}

function fit(extra = []) {
  const pts = [...drawEnds(page.s), ...extra];
  if (pts.length === 1) page.map.setView(pts[0], 12);
  else if (pts.length > 1) page.map.fitBounds(window.L.latLngBounds(pts), { padding: [40, 40], maxZoom: 14 });
}

function updatePosition(fix) {
  if (!fix || !isNum(fix.lat) || !isNum(fix.lon) || (page.s && page.s.status === 'delivered')) return;
  const t = parseTs(fix.ts);
  if (page.lastT !== null && t !== null && t <= page.lastT) return;
  page.lastT = t;
  const ll = [fix.lat, fix.lon];
  if (!page.marker) {
    page.marker = window.L.marker(ll, { title: 'Your shipment', alt: 'Your shipment', keyboard: false }).addTo(page.map);
  } else page.marker.setLatLng(ll);
  page.trail.addLatLng(ll);
  if (page.s) page.s.last_position = { ...(page.s.last_position || {}), ...fix };
  if (!page.fitted) { page.fitted = true; fit([ll]); } else if (page.follow && !page.map.getBounds().pad(-0.1).contains(ll)) page.map.panTo(ll);
  renderMapNote();
  renderUpdated();
}

async function loadState() {
  try {
    page.s = await fetchJson(`/api/v1/track/${encodeURIComponent(page.token)}`);
  } catch (err) {
    if (err instanceof HttpError && (err.status === 404 || err.status === 410)) { notFound(); return false; }
    if (!page.s) { show('failed'); $('failed-text').textContent = `We could not load your shipment (${err.message}). We will try again shortly.`; }
    return null;
  }
  if (page.s.status === 'delivered' && page.marker) { page.marker.remove(); page.marker = null; }
  render();
  if (page.s.last_position) updatePosition(page.s.last_position);
  else if (!page.fitted) { page.fitted = true; fit(); }
  return true;
}

let reloadTimer = null;
function scheduleReload() {
  if (reloadTimer || page.gone) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadState(); }, 1000);
}

function onMessage(msg) {
  if (msg.type === 'snapshot') {
    for (const d of Array.isArray(msg.devices) ? msg.devices : []) updatePosition(d);
    if (msg.shipment && typeof msg.shipment === 'object') { page.s = { ...page.s, ...msg.shipment }; render(); }
  } else if (msg.type === 'position') updatePosition(msg);
  else if (msg.type === 'eta' && page.s) {
    for (const k of ['eta', 'eta_low', 'eta_high', 'remaining_m', 'at_risk', 'late_probability', 'eta_first']) if (msg[k] !== undefined) page.s[k] = msg[k];
    render();
  } else if (msg.type === 'event') scheduleReload();
  else if (msg.type === 'error' && /not_found/.test(String((msg.error && msg.error.code) || ''))) notFound();
}

const LIVE = { connecting: 'Connecting…', open: 'Live', waiting: 'Reconnecting…', stopped: 'Offline' };
function setLive(status) { $('live').dataset.state = status; $('live-text').textContent = LIVE[status] || status; }

function setupSubscribe() {
  $('subscribe-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('subscribe-result');
    const body = { address: $('subscribe-email').value.trim(), language: (navigator.language || 'en').slice(0, 2), timezone: page.tz };
    try {
      await sendJson('POST', `/api/v1/track/${encodeURIComponent(page.token)}/subscriptions`, body);
      out.textContent = `Almost done: we sent a confirmation link to ${body.address}.`;
      $('subscribe-form').hidden = true;
    } catch (err) {
      if (err instanceof HttpError && err.isMissing) { $('subscribe').hidden = true; return; }
      out.textContent = err.status === 429 ? 'Too many tries: please wait a little and try again.' : `That did not work: ${err.message}`;
    }
  });
}

async function boot() {
  const config = await loadConfig();
  applyBrand(config.brand);
  if (config.exceptions && Array.isArray(config.exceptions.customer_codes) && config.exceptions.customer_codes.length) page.codes = config.exceptions.customer_codes;
  page.map = createMap(window.L, 'map', config).map.setView([30, 10], 2);
  page.trail = window.L.polyline([], { color: '#0b3d91', weight: 3, opacity: 0.6 }).addTo(page.map);
  page.map.on('dragstart', () => { page.follow = false; });
  setupSubscribe();
  page.token = tokenFromLocation();
  if (!page.token) { notFound(); return; }
  let ok = await loadState();
  while (ok === null) { await new Promise((r) => { setTimeout(r, 15000); }); ok = await loadState(); }
  if (ok === false) return;
  page.socket = new LiveSocket(() => wsUrl(`/ws/track/${encodeURIComponent(page.token)}`), {
    onMessage, onStatus: setLive, shouldReconnect: async () => (await loadState()) !== false,
  });
  page.socket.start();
  window.shiptrackTrack = page;
  setInterval(() => { if (!page.gone) loadState(); }, 60000);
  setInterval(renderUpdated, 10000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
