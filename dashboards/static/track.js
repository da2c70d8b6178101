// Customer tracking page, served at /t/{tracking_token}.
// Endpoints (SPEC, public): GET /api/v1/track/{token}; WebSocket /ws/track/{token}.
import {
  HttpError, LiveSocket, el, exceptionReason, fetchJson, fmtAgo, fmtDateTime, fmtDay,
  fmtDistance, fmtFull, fmtTime, humanize, isNum, osmTiles, parseTs, sameDay, setChildren,
  statusLabel, STATUS_LABELS, textContent, wsUrl,
} from './common.js';

const $ = (id) => document.getElementById(id);
const STEPS = Object.keys(STATUS_LABELS);

const MILESTONE_LABELS = {
  created: 'Shipment created',
  pickup: 'Picked up',
  picked_up: 'Picked up',
  departed: 'Departed',
  departed_origin: 'Left the origin',
  hub: 'Arrived at a hub',
  in_transit: 'In transit',
  out_for_delivery: 'Out for delivery',
  arrived: 'Arrived',
  arrived_destination: 'Arrived at the destination',
  delivery: 'Delivered',
  delivered: 'Delivered',
};

const SOURCE_LABELS = {
  scan: 'scanned', gps: 'by GPS', geofence: 'by GPS', position: 'by GPS', manual: 'updated by the sender',
  api: 'updated by the sender',
};

const page = {
  token: null,
  shipment: null,
  map: null,
  marker: null,
  trail: null,
  lastT: null,
  followMarker: true,
  positioned: false,
  socket: null,
  gone: false,
};

function tokenFromLocation() {
  const match = window.location.pathname.match(/\/t\/([^/]+)\/?$/);
  if (match) {
    try { return decodeURIComponent(match[1]); } catch { return null; }
  }
  // Local preview of the static file: /static/track.html?token=...
  return new URLSearchParams(window.location.search).get('token');
}

// ---- views ---------------------------------------------------------------------------

function show(view) {
  for (const id of ['loading', 'notfound', 'failed', 'content']) $(id).hidden = id !== view;
}

function notFound() {
  page.gone = true;
  if (page.socket) page.socket.stop();
  show('notfound');
  document.body.classList.add('not-found');
  setLive('stopped');
  document.title = 'Tracking link not found · shiptrack';
}

function render() {
  const s = page.shipment;
  if (!s) return;
  show('content');
  const ref = s.reference ? String(s.reference) : 'Your shipment';
  $('reference').textContent = ref;
  document.title = `${ref} · ${statusLabel(s.status)} · shiptrack`;
  renderNotices(s);
  renderSteps(s);
  renderEta(s);
  renderTimeline(s);
  renderUpdated();
}

function renderNotices(s) {
  const delivered = s.status === 'delivered';
  $('delay').hidden = !s.at_risk || delivered;
  $('delay-text').textContent = s.promised_by
    ? ` It was promised by ${fmtDateTime(s.promised_by)}; we now expect it later. The time below is our latest estimate.`
    : ' The time below is our latest estimate.';
  const reason = exceptionReason(s);
  $('exception').hidden = !reason;
  $('exception-text').textContent = reason ? ` ${humanize(reason)}.` : '';
}

function renderSteps(s) {
  const current = STEPS.indexOf(s.status);
  setChildren($('steps'), STEPS.map((status, i) => {
    const stateClass = i < current ? 'done' : i === current ? 'current' : 'todo';
    return el('li', { class: `step ${stateClass}`, 'aria-current': i === current ? 'step' : null },
      el('span', { class: 'step-dot', 'aria-hidden': 'true' }),
      el('span', { class: 'step-label', text: STATUS_LABELS[status] }),
      i < current ? el('span', { class: 'visually-hidden', text: ' (done)' }) : null);
  }));
}

function deliveredAt(s) {
  const ms = Array.isArray(s.milestones) ? s.milestones : [];
  const done = ms.filter((m) => m && (m.kind === 'delivered' || m.kind === 'delivery'));
  return done.length ? done[done.length - 1].ts : null;
}

function windowText(low, high) {
  if (sameDay(low, high)) return `${fmtDay(low)}, ${fmtTime(low)} – ${fmtTime(high)}`;
  return `${fmtDateTime(low)} – ${fmtDateTime(high)}`;
}

function renderEta(s) {
  const facts = [];
  if (s.status === 'delivered') {
    const at = deliveredAt(s);
    $('eta-title').textContent = 'Delivered';
    $('eta-main').textContent = at ? fmtDateTime(at) : 'Your shipment has been delivered.';
    $('eta-sub').textContent = '';
  } else if (s.eta || (s.eta_low && s.eta_high)) {
    $('eta-title').textContent = 'Estimated arrival';
    if (s.eta_low && s.eta_high) {
      $('eta-main').textContent = windowText(s.eta_low, s.eta_high);
      $('eta-sub').textContent = s.eta ? `Most likely around ${fmtTime(s.eta)}` : '';
    } else {
      $('eta-main').textContent = fmtDateTime(s.eta);
      $('eta-sub').textContent = '';
    }
  } else {
    $('eta-title').textContent = 'Estimated arrival';
    $('eta-main').textContent = 'Not available yet';
    $('eta-sub').textContent = 'An estimate appears once your shipment is on its way.';
  }
  if (s.status !== 'delivered' && isNum(s.remaining_m)) facts.push(['Distance to go', fmtDistance(s.remaining_m)]);
  if (s.promised_by) facts.push(['Promised by', fmtDateTime(s.promised_by)]);
  facts.push(['Status', statusLabel(s.status)]);
  setChildren($('eta-facts'), facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v }))));
}

function renderTimeline(s) {
  const ms = (Array.isArray(s.milestones) ? s.milestones : [])
    .filter((m) => m && typeof m === 'object')
    .map((m) => ({ ...m, t: parseTs(m.ts) }))
    .sort((a, b) => (b.t ?? 0) - (a.t ?? 0));
  setChildren($('timeline'), ms.map((m, i) => el('li', { class: i === 0 ? 'latest' : null },
    el('span', { class: 'tl-dot', 'aria-hidden': 'true' }),
    el('div', {},
      el('p', { class: 'tl-kind', text: MILESTONE_LABELS[m.kind] || humanize(m.kind) || 'Update' }),
      el('p', { class: 'tl-meta' },
        el('time', { datetime: m.ts || null, title: fmtFull(m.ts), text: fmtDateTime(m.ts) }),
        m.source ? ` · ${SOURCE_LABELS[m.source] || humanize(m.source)}` : '')))));
  $('timeline-empty').hidden = ms.length > 0;
}

function renderUpdated() {
  const p = page.shipment && page.shipment.last_position;
  const t = p ? parseTs(p.ts) : null;
  $('updated').textContent = t ? `Last position update ${fmtAgo(t)}.` : '';
  $('updated').title = t ? fmtFull(t) : '';
}

// ---- map -----------------------------------------------------------------------------

function setupMap() {
  page.map = L.map('map', { worldCopyJump: true }).setView([30, 10], 2);
  osmTiles(L).addTo(page.map);
  L.control.scale({ imperial: false }).addTo(page.map);
  page.trail = L.polyline([], { color: '#0b3d91', weight: 3, opacity: 0.6 }).addTo(page.map);
  // Stop following the shipment once the viewer moves the map themselves.
  page.map.on('dragstart', () => { page.followMarker = false; });
}

function placeEnd(point, label, color) {
  if (!point || !isNum(point.lat) || !isNum(point.lon)) return null;
  return L.circleMarker([point.lat, point.lon], {
    radius: 7, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1,
  }).bindTooltip(textContent(label)).addTo(page.map);
}

let endsDrawn = false;
function drawEnds(s) {
  if (endsDrawn) return [];
  endsDrawn = true;
  return [placeEnd(s.origin, 'Origin', '#59636e'), placeEnd(s.destination, 'Destination', '#1a7f37')]
    .filter(Boolean).map((m) => m.getLatLng());
}

/** Move the shipment's marker to a fix (never backwards in time). */
function updatePosition(fix) {
  if (!fix || !isNum(fix.lat) || !isNum(fix.lon)) return;
  const t = parseTs(fix.ts);
  if (page.lastT !== null && t !== null && t <= page.lastT) return;
  page.lastT = t;
  const ll = [fix.lat, fix.lon];
  if (!page.marker) {
    page.marker = L.marker(ll, { title: 'Your shipment', alt: 'Your shipment', keyboard: false })
      .bindTooltip(textContent('Your shipment')).addTo(page.map);
  } else {
    page.marker.setLatLng(ll);
  }
  page.trail.addLatLng(ll);
  $('map-note').hidden = true;
  if (page.shipment) page.shipment.last_position = { ...(page.shipment.last_position || {}), ...fix };
  if (!page.positioned) {
    page.positioned = true;
    const ends = page.shipment ? drawEnds(page.shipment) : [];
    if (ends.length) {
      page.map.fitBounds(L.latLngBounds([ll, ...ends]), { padding: [40, 40], maxZoom: 14 });
    } else {
      page.map.setView(ll, 13);
    }
  } else if (page.followMarker && !page.map.getBounds().pad(-0.1).contains(ll)) {
    page.map.panTo(ll);
  }
  renderUpdated();
}

// ---- data ----------------------------------------------------------------------------

async function loadState() {
  try {
    page.shipment = await fetchJson(`/api/v1/track/${encodeURIComponent(page.token)}`);
  } catch (err) {
    if (err instanceof HttpError && (err.status === 404 || err.status === 410)) { notFound(); return false; }
    if (!page.shipment) {
      show('failed');
      $('failed-text').textContent = `We could not load your shipment (${err.message}). We will try again shortly.`;
    }
    return null;
  }
  render();
  if (page.shipment.last_position) updatePosition(page.shipment.last_position);
  else if (!page.positioned) {
    $('map-note').hidden = false;
    const ends = drawEnds(page.shipment);
    if (ends.length === 1) page.map.setView(ends[0], 11);
    else if (ends.length > 1) page.map.fitBounds(L.latLngBounds(ends), { padding: [40, 40] });
  }
  return true;
}

let reloadTimer = null;
function scheduleReload(delay = 1500) {
  if (reloadTimer || page.gone) return;
  reloadTimer = setTimeout(() => { reloadTimer = null; loadState(); }, delay);
}

function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot':
      for (const d of Array.isArray(msg.devices) ? msg.devices : []) updatePosition(d);
      break;
    case 'position':
      updatePosition(msg);
      break;
    case 'eta': {
      const s = page.shipment;
      if (!s) break;
      for (const key of ['eta', 'eta_low', 'eta_high', 'remaining_m', 'at_risk', 'status', 'promised_by']) {
        if (msg[key] !== undefined) s[key] = msg[key];
      }
      render();
      break;
    }
    case 'event':
      scheduleReload(); // milestones and flags: take the server's view of the shipment
      break;
    case 'error': {
      const code = String((msg.error && msg.error.code) || '');
      if (/not_found|unknown|invalid/.test(code)) notFound();
      break;
    }
    default:
      break;
  }
}

const LIVE_TEXT = { connecting: 'Connecting…', open: 'Live', waiting: 'Reconnecting…', stopped: 'Offline' };

function setLive(status) {
  $('live').dataset.state = status;
  $('live-text').textContent = LIVE_TEXT[status] || status;
}

async function shouldReconnect() {
  // The link may have been revoked: ask the REST route before trying again.
  const ok = await loadState();
  return ok !== false;
}

async function boot() {
  setupMap();
  page.token = tokenFromLocation();
  if (!page.token) { notFound(); return; }
  let ok = await loadState();
  while (ok === null) { // transient failure: retry until it loads or is not found
    await new Promise((resolve) => { setTimeout(resolve, 15000); });
    ok = await loadState();
  }
  if (ok === false) return;
  page.socket = new LiveSocket(
    () => wsUrl(`/ws/track/${encodeURIComponent(page.token)}`),
    { onMessage, onStatus: setLive, shouldReconnect },
  );
  page.socket.start();
  setInterval(() => { if (!page.gone) loadState(); }, 60000);
  setInterval(renderUpdated, 10000);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot);
} else {
  boot();
}
