// Dispatcher dashboard: live fleet map, devices, shipments, exceptions, geofences.
// Endpoints (SPEC): GET /api/v1/devices, /api/v1/devices/{id}/track, /api/v1/shipments,
// /api/v1/events, /api/v1/geofences; WebSocket /ws/fleet?token=...
import {
  HttpError, LiveSocket, append, el, exceptionReason, fetchAllPages, fetchJson, fmtAgo,
  fmtCoord, fmtDateTime, fmtDistance, fmtFull, fmtKmh, humanize, isNum, listItems,
  osmTiles, parseTs, sensorReading, setChildren, statusLabel, textContent, wsUrl,
} from './common.js';

const TOKEN_KEY = 'shiptrack.token';
const ACK_KEY = 'shiptrack.acknowledgedEvents';
const STALE_MS = 10 * 60 * 1000;
const MAX_LIST_ROWS = 1000;
const MAX_EVENTS = 300;
const TRACK_POINTS = 500;
const EXCEPTION_TYPES = [
  'device.offline', 'sensor.excursion', 'route.deviation', 'shipment.at_risk',
  'shipment.exception',
];
const COLORS = { moving: '#1a7f37', stopped: '#0969da', stale: '#8c959f', selected: '#d4380d' };

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  devices: new Map(), // device_id -> {id, pos, t, seen, marker, row}
  selectedId: null,
  trackLine: null,
  trackLastT: null,
  listDirty: true,
  fitted: false,
  msgCount: 0,
  rateWindow: [],
  shipments: new Map(),
  shipmentsCursor: null,
  shipmentsAvailable: null,
  events: [],
  eventKeys: new Set(),
  acked: loadAcked(),
  geofences: [],
  socket: null,
  booted: false,
  detailDirty: false,
  shipmentsDirty: false,
  eventsDirty: false,
  eventsUnavailable: null,
};

// ---- token ---------------------------------------------------------------------------

function tokenFromFragment() {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return null;
  const token = new URLSearchParams(hash).get('token');
  if (token) {
    // Do not leave the credential in the address bar or the history.
    window.history.replaceState(null, '', window.location.pathname + window.location.search);
  }
  return token;
}

function storedToken() {
  return window.localStorage.getItem(TOKEN_KEY) || window.sessionStorage.getItem(TOKEN_KEY);
}

function saveToken(token, remember) {
  window.localStorage.removeItem(TOKEN_KEY);
  window.sessionStorage.removeItem(TOKEN_KEY);
  if (token) (remember ? window.localStorage : window.sessionStorage).setItem(TOKEN_KEY, token);
}

function askToken(message) {
  const dialog = $('token-dialog');
  const error = $('token-error');
  error.hidden = !message;
  error.textContent = message || '';
  $('token-input').value = '';
  if (!dialog.open) dialog.showModal();
  $('token-input').focus();
}

function setupTokenDialog() {
  $('token-form').addEventListener('submit', (ev) => {
    const token = $('token-input').value.trim();
    if (!token) { ev.preventDefault(); return; }
    saveToken(token, $('token-remember').checked);
    window.location.reload();
  });
  $('token-forget').addEventListener('click', () => {
    saveToken(null);
    window.location.reload();
  });
  $('btn-token').addEventListener('click', () => askToken(null));
}

function authFailed() {
  if (state.socket) state.socket.stop();
  setConn('auth', 'Token refused');
  askToken('The server refused this token. Enter a valid token.');
}

// ---- map -----------------------------------------------------------------------------

let map;
let deviceLayer;
let geofenceLayer;
let trackLayer;

function setupMap() {
  map = L.map('map', { preferCanvas: true, worldCopyJump: true, zoomControl: true });
  map.setView([48, 10], 4);
  osmTiles(L).addTo(map);
  geofenceLayer = L.featureGroup().addTo(map);
  trackLayer = L.featureGroup().addTo(map);
  deviceLayer = L.featureGroup().addTo(map);
  L.control.layers(null, { Devices: deviceLayer, Geofences: geofenceLayer, Track: trackLayer },
    { collapsed: true }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  $('btn-fit').addEventListener('click', fitFleet);
}

function fitFleet() {
  const points = [];
  for (const dev of state.devices.values()) if (dev.marker) points.push(dev.marker.getLatLng());
  if (points.length === 1) map.setView(points[0], 13);
  else if (points.length > 1) map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 14 });
}

function deviceColor(dev, now) {
  if (dev.id === state.selectedId) return COLORS.selected;
  if (dev.t === null || now - dev.t > STALE_MS) return COLORS.stale;
  return isNum(dev.pos.speed) && dev.pos.speed > 0.5 ? COLORS.moving : COLORS.stopped;
}

function styleMarker(dev, now = Date.now()) {
  if (!dev.marker) return;
  const color = deviceColor(dev, now);
  const radius = dev.id === state.selectedId ? 9 : 6;
  if (dev.color !== color || dev.radius !== radius) {
    dev.color = color;
    dev.radius = radius;
    dev.marker.setStyle({ fillColor: color });
    dev.marker.setRadius(radius);
    if (dev.id === state.selectedId) dev.marker.bringToFront();
  }
}

function placeMarker(dev) {
  const { lat, lon } = dev.pos;
  if (!isNum(lat) || !isNum(lon)) return;
  if (!dev.marker) {
    dev.marker = L.circleMarker([lat, lon], {
      radius: 6, color: '#ffffff', weight: 1.5, fillColor: COLORS.stopped, fillOpacity: 0.95,
    });
    dev.marker.bindTooltip(textContent(dev.id), { direction: 'top', offset: [0, -6] });
    dev.marker.on('click', () => selectDevice(dev.id, { pan: false }));
    dev.marker.addTo(deviceLayer);
    state.listDirty = true;
  } else {
    dev.marker.setLatLng([lat, lon]);
  }
  styleMarker(dev);
}

// ---- devices -------------------------------------------------------------------------

function getDevice(id) {
  let dev = state.devices.get(id);
  if (!dev) {
    dev = { id, pos: {}, t: null, seen: null, marker: null, row: null, color: null, radius: null };
    state.devices.set(id, dev);
    state.listDirty = true;
  }
  return dev;
}

const POSITION_FIELDS = [
  'ts', 'lat', 'lon', 'speed', 'heading', 'accuracy', 'alt', 'battery', 'sensors',
];

/** Apply one fix (REST last_position, snapshot entry or live message). */
function applyPosition(id, fix, seenAt = null) {
  if (typeof id !== 'string' || !id || !fix) return;
  const dev = getDevice(id);
  const t = parseTs(fix.ts);
  if (seenAt !== null && (dev.seen === null || seenAt > dev.seen)) dev.seen = seenAt;
  if (!isNum(fix.lat) || !isNum(fix.lon)) return;
  if (dev.t !== null && t !== null && t < dev.t) return; // never move back in time
  for (const key of POSITION_FIELDS) if (fix[key] !== undefined) dev.pos[key] = fix[key];
  dev.t = t;
  if (t !== null && (dev.seen === null || t > dev.seen)) dev.seen = t;
  placeMarker(dev);
  if (id === state.selectedId) {
    extendTrack(dev);
    state.detailDirty = true;
  }
}

async function loadDevices() {
  const items = await fetchAllPages('/api/v1/devices', { token: state.token, maxPages: 50 });
  for (const item of items) {
    if (!item || typeof item.device_id !== 'string') continue;
    getDevice(item.device_id);
    applyPosition(item.device_id, item.last_position, parseTs(item.last_seen_at));
  }
  state.listDirty = true;
}

function visibleDevices() {
  const filter = $('device-filter').value.trim().toLowerCase();
  const sort = $('device-sort').value;
  const list = [];
  for (const dev of state.devices.values()) {
    if (!filter || dev.id.toLowerCase().includes(filter)) list.push(dev);
  }
  if (sort === 'seen') list.sort((a, b) => (b.seen ?? -Infinity) - (a.seen ?? -Infinity));
  else if (sort === 'speed') list.sort((a, b) => (b.pos.speed ?? -1) - (a.pos.speed ?? -1));
  else list.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  return list;
}

function deviceRow(dev) {
  if (dev.row) return dev.row;
  const speed = el('span', { class: 'dev-speed' });
  const seen = el('span', { class: 'dev-seen' });
  const swatch = el('span', { class: 'sw', 'aria-hidden': 'true' });
  const button = el('button', {
    type: 'button', class: 'dev-row', onclick: () => selectDevice(dev.id, { pan: true }),
  }, swatch, el('span', { class: 'dev-id', text: dev.id }), speed, seen);
  dev.row = { li: el('li', {}, button), button, speed, seen, swatch };
  return dev.row;
}

function updateRow(dev, now) {
  const row = deviceRow(dev);
  row.speed.textContent = fmtKmh(dev.pos.speed);
  row.seen.textContent = dev.seen === null ? 'never' : fmtAgo(dev.seen, now);
  row.seen.title = dev.seen === null ? '' : fmtFull(dev.seen);
  row.swatch.style.background = dev.marker ? deviceColor(dev, now) : 'transparent';
  row.button.setAttribute('aria-pressed', dev.id === state.selectedId ? 'true' : 'false');
}

function renderDeviceList(now) {
  const list = visibleDevices();
  const shown = list.slice(0, MAX_LIST_ROWS);
  for (const dev of shown) updateRow(dev, now);
  setChildren($('device-list'), shown.map((dev) => dev.row.li));
  let note = '';
  if (state.devices.size === 0) note = state.booted ? 'No devices yet.' : 'Loading devices…';
  else if (list.length === 0) note = 'No device matches the filter.';
  else if (list.length > shown.length) {
    note = `Showing ${shown.length} of ${list.length}; filter to narrow.`;
  }
  $('devices-note').textContent = note;
}

function setupDeviceList() {
  const rerender = () => { state.listDirty = true; tick(); };
  $('device-filter').addEventListener('input', rerender);
  $('device-sort').addEventListener('change', rerender);
}

// ---- selected device and its track ---------------------------------------------------

function selectDevice(id, { pan }) {
  const previous = state.selectedId ? state.devices.get(state.selectedId) : null;
  state.selectedId = id;
  if (previous) styleMarker(previous);
  const dev = id ? state.devices.get(id) : null;
  trackLayer.clearLayers();
  state.trackLine = null;
  state.trackLastT = null;
  $('detail').hidden = !dev;
  if (!dev) { state.listDirty = true; tick(); return; }
  styleMarker(dev);
  if (pan && dev.marker) map.setView(dev.marker.getLatLng(), Math.max(map.getZoom(), 12));
  state.detailDirty = true;
  state.listDirty = true;
  tick();
  loadTrack(dev.id);
}

async function loadTrack(id) {
  const note = $('detail-track');
  note.textContent = 'Loading recent track…';
  let items;
  try {
    const body = await fetchJson(
      `/api/v1/devices/${encodeURIComponent(id)}/track?max_points=${TRACK_POINTS}`,
      { token: state.token },
    );
    items = listItems(body);
  } catch (err) {
    if (state.selectedId !== id) return;
    if (err instanceof HttpError && err.isAuth) { authFailed(); return; }
    note.textContent = err instanceof HttpError && err.isMissing
      ? 'Track not available.' : `Track could not be loaded: ${err.message}`;
    return;
  }
  if (state.selectedId !== id) return;
  const points = items
    .filter((p) => p && isNum(p.lat) && isNum(p.lon))
    .map((p) => ({ t: parseTs(p.ts), ll: [p.lat, p.lon] }))
    .sort((a, b) => (a.t ?? 0) - (b.t ?? 0));
  trackLayer.clearLayers();
  state.trackLine = L.polyline(points.map((p) => p.ll), {
    color: COLORS.selected, weight: 3, opacity: 0.8,
  }).addTo(trackLayer);
  state.trackLastT = points.length ? points[points.length - 1].t : null;
  const dev = state.devices.get(id);
  if (dev) extendTrack(dev);
  if (points.length > 1) {
    const first = points[0].t;
    note.textContent = `Track: ${points.length} points${first ? ` since ${fmtDateTime(first)}` : ''}.`;
    map.fitBounds(state.trackLine.getBounds(), { padding: [40, 40], maxZoom: 15 });
  } else {
    note.textContent = points.length ? 'Track: 1 point.' : 'No recent track.';
  }
}

function extendTrack(dev) {
  if (!state.trackLine || !isNum(dev.pos.lat)) return;
  if (state.trackLastT !== null && dev.t !== null && dev.t <= state.trackLastT) return;
  state.trackLine.addLatLng([dev.pos.lat, dev.pos.lon]);
  state.trackLastT = dev.t;
}

function renderDetail(now) {
  const dev = state.selectedId ? state.devices.get(state.selectedId) : null;
  if (!dev) return;
  const p = dev.pos;
  $('detail-title').textContent = dev.id;
  const rows = [
    ['Last fix', dev.t === null ? 'none' : `${fmtAgo(dev.t, now)} · ${fmtDateTime(dev.t)}`, true],
    ['Position', fmtCoord(p.lat, p.lon), true],
    ['Speed', fmtKmh(p.speed)],
    ['Heading', isNum(p.heading) ? `${Math.round(p.heading)}°` : '–'],
  ];
  if (isNum(p.accuracy)) rows.push(['Accuracy', `± ${fmtDistance(p.accuracy)}`]);
  if (isNum(p.alt)) rows.push(['Altitude', `${Math.round(p.alt)} m`]);
  if (isNum(p.battery)) rows.push(['Battery', `${Math.round(p.battery * 100)} %`]);
  if (p.sensors && typeof p.sensors === 'object') {
    for (const [key, value] of Object.entries(p.sensors)) rows.push(sensorReading(key, value));
  }
  const ships = [...state.shipments.values()].filter((s) => s.device_id === dev.id);
  if (ships.length) rows.push(['Shipments', ships.map((s) => s.reference || s.id).join(', '), true]);
  setChildren($('detail-fields'), rows.map(([k, v, wide]) => el('div', { class: wide ? 'wide' : null },
    el('dt', { text: k }), el('dd', { text: v }))));
}

function setupDetail() {
  $('btn-unselect').addEventListener('click', () => selectDevice(null, { pan: false }));
  $('btn-zoom').addEventListener('click', () => {
    const dev = state.devices.get(state.selectedId);
    if (dev && dev.marker) map.setView(dev.marker.getLatLng(), Math.max(map.getZoom(), 14));
  });
}

// ---- shipments -----------------------------------------------------------------------

function shipmentsUrl(cursor) {
  const params = new URLSearchParams();
  const status = $('shipment-status').value;
  if (status) params.set('status', status);
  if ($('shipment-risk').checked) params.set('at_risk', 'true');
  if (cursor) params.set('cursor', cursor);
  const qs = params.toString();
  return qs ? `/api/v1/shipments?${qs}` : '/api/v1/shipments';
}

async function loadShipments({ more = false } = {}) {
  const note = $('shipments-note');
  let body;
  try {
    body = await fetchJson(shipmentsUrl(more ? state.shipmentsCursor : null), { token: state.token });
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { authFailed(); return; }
    state.shipmentsAvailable = !(err instanceof HttpError && err.isMissing);
    note.textContent = state.shipmentsAvailable
      ? `Shipments could not be loaded: ${err.message}` : 'Shipments: not available.';
    $('shipment-table').hidden = true;
    $('btn-shipments-more').hidden = true;
    return;
  }
  state.shipmentsAvailable = true;
  if (!more) state.shipments.clear();
  for (const s of listItems(body)) if (s && s.id !== undefined) state.shipments.set(String(s.id), s);
  state.shipmentsCursor = body && body.next_cursor ? body.next_cursor : null;
  renderShipments();
}

function etaText(s) {
  if (s.status === 'delivered') return 'delivered';
  if (!s.eta) return '–';
  return fmtDateTime(s.eta);
}

function shipmentRow(s) {
  const reason = exceptionReason(s);
  const flags = el('td', { class: 'flags' });
  if (s.at_risk) {
    const title = s.promised_by ? `promised by ${fmtFull(s.promised_by)}` : null;
    append(flags, el('span', { class: 'badge badge-risk', text: 'at risk', title }));
  }
  if (reason) {
    append(flags, el('span', { class: 'badge badge-exception', text: 'exception', title: reason }));
  }
  const range = s.eta_low && s.eta_high
    ? `window ${fmtDateTime(s.eta_low)} – ${fmtDateTime(s.eta_high)}` : null;
  const statusClass = `status status-${String(s.status || 'unknown').replace(/[^a-z_]/g, '')}`;
  const remaining = isNum(s.remaining_m) && s.status !== 'delivered'
    ? el('span', { class: 'sub', text: fmtDistance(s.remaining_m) }) : null;
  const tr = el('tr', { class: s.device_id ? 'clickable' : null },
    el('td', {}, el('span', { class: 'ref', text: s.reference || s.id }),
      s.device_id ? el('span', { class: 'sub', text: s.device_id }) : null),
    el('td', {}, el('span', { class: statusClass, text: statusLabel(s.status) })),
    el('td', { title: range }, etaText(s), remaining),
    flags);
  if (s.device_id) {
    tr.tabIndex = 0;
    tr.title = `Show device ${s.device_id}`;
    const go = () => { if (state.devices.has(s.device_id)) selectDevice(s.device_id, { pan: true }); };
    tr.addEventListener('click', go);
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(); });
  }
  return tr;
}

function renderShipments() {
  const rows = [...state.shipments.values()].sort((a, b) => {
    if (Boolean(b.at_risk) !== Boolean(a.at_risk)) return b.at_risk ? 1 : -1;
    return (parseTs(a.eta) ?? Infinity) - (parseTs(b.eta) ?? Infinity);
  });
  setChildren($('shipment-rows'), rows.map(shipmentRow));
  $('shipment-table').hidden = rows.length === 0;
  $('shipments-note').textContent = rows.length === 0 ? 'No shipments.' : '';
  $('btn-shipments-more').hidden = !state.shipmentsCursor;
  const risky = rows.filter((s) => s.at_risk).length;
  const count = $('count-shipments');
  count.textContent = rows.length ? String(rows.length) : '';
  count.classList.toggle('count-alert', risky > 0);
  count.title = risky ? `${risky} at risk` : '';
  state.detailDirty = true;
}

function applyEta(msg) {
  const id = msg.shipment_id !== undefined ? String(msg.shipment_id) : null;
  const s = id ? state.shipments.get(id) : null;
  if (!s) { if (state.shipmentsAvailable) scheduleShipmentReload(); return; }
  for (const key of ['eta', 'eta_low', 'eta_high', 'remaining_m', 'at_risk', 'status', 'promised_by']) {
    if (msg[key] !== undefined) s[key] = msg[key];
  }
  state.shipmentsDirty = true;
}

let shipmentReloadTimer = null;
function scheduleShipmentReload() {
  if (shipmentReloadTimer || state.shipmentsAvailable === false) return;
  shipmentReloadTimer = setTimeout(() => {
    shipmentReloadTimer = null;
    loadShipments();
  }, 5000);
}

function setupShipments() {
  $('shipment-status').addEventListener('change', () => loadShipments());
  $('shipment-risk').addEventListener('change', () => loadShipments());
  $('btn-shipments-reload').addEventListener('click', () => loadShipments());
  $('btn-shipments-more').addEventListener('click', () => loadShipments({ more: true }));
}

// ---- events / exceptions queue -------------------------------------------------------

function loadAcked() {
  try {
    const ids = JSON.parse(window.localStorage.getItem(ACK_KEY) || '[]');
    return new Set(Array.isArray(ids) ? ids : []);
  } catch { return new Set(); }
}

function saveAcked() {
  const ids = [...state.acked].slice(-1000);
  window.localStorage.setItem(ACK_KEY, JSON.stringify(ids));
}

/** One event from REST or from a live {"type":"event", ...} message, whatever its nesting. */
function normalizeEvent(raw) {
  const e = raw && typeof raw.event === 'object' && raw.event ? raw.event : raw;
  if (!e || typeof e !== 'object') return null;
  const data = [e.data, e.payload, e.details, e.detail].find((d) => d && typeof d === 'object') || {};
  const type = e.event_type || (e.type && e.type !== 'event' ? e.type : null) || e.kind || e.name || 'event';
  const ts = e.ts || e.timestamp || e.created_at || e.occurred_at || data.ts || null;
  const deviceId = e.device_id || data.device_id || null;
  const shipmentId = e.shipment_id ?? data.shipment_id ?? null;
  const id = e.id ?? e.event_id ?? null;
  const key = id !== null ? `id:${id}` : `k:${type}|${ts}|${deviceId}|${shipmentId}`;
  return { key, id, type: String(type), ts, t: parseTs(ts), deviceId, shipmentId, data, raw: e };
}

function isException(ev) {
  return EXCEPTION_TYPES.includes(ev.type) || /exception|excursion|deviation|offline|at_risk/.test(ev.type);
}

function addEvent(ev, { live }) {
  if (!ev || state.eventKeys.has(ev.key)) return false;
  state.eventKeys.add(ev.key);
  state.events.push(ev);
  if (live && ev.type.startsWith('shipment.')) scheduleShipmentReload();
  return true;
}

function trimEvents() {
  state.events.sort((a, b) => (b.t ?? 0) - (a.t ?? 0));
  while (state.events.length > MAX_EVENTS) state.eventKeys.delete(state.events.pop().key);
}

async function loadEvents() {
  const urls = ['/api/v1/events?limit=50',
    ...EXCEPTION_TYPES.map((t) => `/api/v1/events?type=${encodeURIComponent(t)}&limit=50`)];
  const results = await Promise.allSettled(urls.map((u) => fetchJson(u, { token: state.token })));
  const first = results[0];
  if (first.status === 'rejected') {
    const err = first.reason;
    if (err instanceof HttpError && err.isAuth) { authFailed(); return; }
    state.eventsUnavailable = err instanceof HttpError && err.isMissing
      ? 'Event history: not available.' : `Events could not be loaded: ${err.message}`;
  } else {
    state.eventsUnavailable = null;
  }
  for (const r of results) {
    if (r.status !== 'fulfilled') continue;
    for (const item of listItems(r.value)) addEvent(normalizeEvent(item), { live: false });
  }
  trimEvents();
  state.eventsDirty = true;
}

function eventSummary(ev) {
  const skip = new Set(['device_id', 'shipment_id', 'ts', 'id']);
  const parts = [];
  for (const [key, value] of Object.entries(ev.data)) {
    if (skip.has(key) || value === null || typeof value === 'object') continue;
    const shown = typeof value === 'number' ? String(Math.round(value * 100) / 100) : String(value);
    parts.push(`${key.replace(/_/g, ' ')}: ${shown}`);
    if (parts.length >= 4) break;
  }
  return parts.join(' · ');
}

function renderEvents() {
  const all = $('events-all').checked;
  const showAcked = $('events-acked').checked;
  const list = state.events.filter((ev) => (all || isException(ev)) && (showAcked || !state.acked.has(ev.key)));
  const items = list.slice(0, 150).map((ev) => {
    const acked = state.acked.has(ev.key);
    const who = [ev.deviceId ? `device ${ev.deviceId}` : null,
      ev.shipmentId !== null ? `shipment ${shipmentName(ev.shipmentId)}` : null].filter(Boolean).join(' · ');
    const summary = eventSummary(ev);
    const body = el('div', { class: 'ev-body' },
      el('div', { class: 'ev-head' },
        el('span', { class: `ev-type ${isException(ev) ? 'ev-exc' : ''}`, text: humanize(ev.type) }),
        el('time', { datetime: ev.ts || null, title: fmtFull(ev.ts), text: fmtDateTime(ev.ts) })),
      who ? el('div', { class: 'ev-who', text: who }) : null,
      summary ? el('div', { class: 'ev-sum', text: summary }) : null);
    const actions = el('div', { class: 'ev-actions' });
    if (ev.deviceId && state.devices.has(ev.deviceId)) {
      append(actions, el('button', {
        type: 'button', class: 'btn btn-small', text: 'Show',
        'aria-label': `Show device ${ev.deviceId}`,
        onclick: () => selectDevice(ev.deviceId, { pan: true }),
      }));
    }
    if (!acked) {
      append(actions, el('button', {
        type: 'button', class: 'btn btn-small', text: 'Ack',
        'aria-label': `Acknowledge ${humanize(ev.type)}`,
        onclick: () => { state.acked.add(ev.key); saveAcked(); state.eventsDirty = true; tick(); },
      }));
    }
    return el('li', { class: acked ? 'acked' : null }, body, actions);
  });
  setChildren($('event-list'), items);
  const open = state.events.filter((ev) => isException(ev) && !state.acked.has(ev.key)).length;
  $('count-exceptions').textContent = open ? String(open) : '';
  let note = state.eventsUnavailable || '';
  if (!note && list.length === 0) note = all ? 'No events yet.' : 'No open exceptions.';
  $('events-note').textContent = note;
}

function shipmentName(id) {
  const s = state.shipments.get(String(id));
  return s && s.reference ? s.reference : String(id);
}

function setupEvents() {
  const rerender = () => { state.eventsDirty = true; tick(); };
  $('events-all').addEventListener('change', rerender);
  $('events-acked').addEventListener('change', rerender);
}

// ---- geofences -----------------------------------------------------------------------

function toFeature(item) {
  if (!item || typeof item !== 'object') return null;
  if (item.type === 'Feature' && item.geometry) return item;
  const inner = item.feature || item.geojson;
  const geometry = item.geometry || (inner && inner.geometry) || null;
  if (!geometry) return null;
  const properties = { ...((inner && inner.properties) || {}), ...(item.properties || {}) };
  if (item.name !== undefined && properties.name === undefined) properties.name = item.name;
  return { type: 'Feature', id: item.id, geometry, properties };
}

const FENCE_STYLE = { color: '#8250df', weight: 2, opacity: 0.9, fillOpacity: 0.12 };

function drawGeofence(feature) {
  const g = feature.geometry;
  const props = feature.properties || {};
  const name = String(props.name || feature.id || 'geofence');
  let layer = null;
  let kind = humanize(g.type);
  if (g.type === 'Point' && Array.isArray(g.coordinates)) {
    const [lon, lat] = g.coordinates;
    const r = Number(props.radius_m);
    if (isNum(r) && r > 0) {
      layer = L.circle([lat, lon], { ...FENCE_STYLE, radius: r });
      kind = `circle, ${fmtDistance(r)} radius`;
    } else {
      layer = L.circleMarker([lat, lon], { ...FENCE_STYLE, radius: 5 });
      kind = 'point';
    }
  } else if (g.type === 'LineString' && Array.isArray(g.coordinates)) {
    layer = L.polyline(g.coordinates.map(([lon, lat]) => [lat, lon]),
      { ...FENCE_STYLE, dashArray: '8 6', weight: 4 });
    const b = Number(props.buffer_m);
    kind = isNum(b) ? `corridor, ± ${fmtDistance(b)}` : 'line';
  } else if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
    layer = L.geoJSON(feature, { style: () => FENCE_STYLE });
    kind = g.type === 'Polygon' ? 'polygon' : 'multipolygon';
  }
  if (!layer) return null;
  layer.bindTooltip(textContent(name), { sticky: true });
  layer.addTo(geofenceLayer);
  return { name, kind, layer };
}

async function loadGeofences() {
  const note = $('geofences-note');
  let items;
  try {
    items = await fetchAllPages('/api/v1/geofences', { token: state.token, maxPages: 20 });
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { authFailed(); return; }
    note.textContent = err instanceof HttpError && err.isMissing
      ? 'Geofences: not available.' : `Geofences could not be loaded: ${err.message}`;
    return;
  }
  geofenceLayer.clearLayers();
  state.geofences = items.map(toFeature).filter(Boolean).map(drawGeofence).filter(Boolean);
  state.geofences.sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  setChildren($('geofence-list'), state.geofences.map((gf) => el('li', {},
    el('button', {
      type: 'button', class: 'link-row',
      onclick: () => {
        const bounds = gf.layer.getBounds ? gf.layer.getBounds() : null;
        if (bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [40, 40], maxZoom: 16 });
        else if (gf.layer.getLatLng) map.setView(gf.layer.getLatLng(), 15);
        gf.layer.openTooltip();
      },
    }, el('span', { class: 'gf-name', text: gf.name }), el('span', { class: 'sub', text: gf.kind })))));
  note.textContent = state.geofences.length ? '' : 'No geofences.';
  $('count-geofences').textContent = state.geofences.length ? String(state.geofences.length) : '';
}

// ---- live stream ---------------------------------------------------------------------

function onMessage(msg) {
  state.msgCount += 1;
  switch (msg.type) {
    case 'snapshot':
      for (const d of Array.isArray(msg.devices) ? msg.devices : []) {
        if (d) applyPosition(d.device_id, d);
      }
      state.listDirty = true;
      if (!state.fitted && state.devices.size) { state.fitted = true; fitFleet(); }
      break;
    case 'position':
      applyPosition(msg.device_id, msg);
      break;
    case 'event': {
      const ev = normalizeEvent(msg);
      if (addEvent(ev, { live: true })) { trimEvents(); state.eventsDirty = true; }
      break;
    }
    case 'eta':
      applyEta(msg);
      break;
    case 'error': {
      const error = msg.error || {};
      const code = String(error.code || '');
      if (/unauth|forbidden|token/i.test(code)) authFailed();
      else toast(`Server: ${error.message || code || 'error'}`);
      break;
    }
    default:
      break;
  }
}

const CONN_TEXT = {
  connecting: 'Connecting…', open: 'Live', waiting: 'Reconnecting', stopped: 'Disconnected',
  auth: 'Token refused', offline: 'Server unreachable',
};

function setConn(status, detail) {
  const conn = $('conn');
  conn.dataset.state = status;
  let text = CONN_TEXT[status] || status;
  if (status === 'waiting' && detail && detail.delay) {
    text = `Reconnecting in ${Math.ceil(detail.delay / 1000)} s`;
  } else if (typeof detail === 'string') text = detail;
  $('conn-text').textContent = text;
}

async function shouldReconnect(ev) {
  // Auth failures close with a policy code; ask the REST API whether the token still works.
  if ([1008, 4001, 4401, 4403].includes(ev.code)) {
    try {
      await fetchJson('/api/v1/devices', { token: state.token });
    } catch (err) {
      if (err instanceof HttpError && err.isAuth) { authFailed(); return false; }
    }
  }
  return true;
}

function connect() {
  state.socket = new LiveSocket(
    () => wsUrl(`/ws/fleet?token=${encodeURIComponent(state.token)}`),
    { onMessage, onStatus: setConn, shouldReconnect },
  );
  state.socket.start();
}

// ---- periodic rendering --------------------------------------------------------------

let lastSecond = 0;
function tick() {
  const now = Date.now();
  if (state.listDirty || now - lastSecond >= 1000) {
    state.listDirty = false;
    renderDeviceList(now);
  }
  if (state.shipmentsDirty) { state.shipmentsDirty = false; renderShipments(); }
  if (state.eventsDirty) { state.eventsDirty = false; renderEvents(); }
  if (state.detailDirty || (state.selectedId && now - lastSecond >= 1000)) {
    state.detailDirty = false;
    renderDetail(now);
  }
  const onMap = [...state.devices.values()].filter((d) => d.marker).length;
  $('stat-devices').textContent = String(state.devices.size);
  $('stat-onmap').textContent = String(onMap);
  $('count-devices').textContent = String(state.devices.size);
}

function everySecond() {
  const now = Date.now();
  state.rateWindow.push(state.msgCount);
  state.msgCount = 0;
  if (state.rateWindow.length > 5) state.rateWindow.shift();
  const rate = state.rateWindow.reduce((a, b) => a + b, 0) / state.rateWindow.length;
  $('stat-rate').textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
  for (const dev of state.devices.values()) styleMarker(dev, now); // stale colouring
  if (state.socket && state.socket.retryAt && $('conn').dataset.state === 'waiting') {
    const left = Math.max(0, Math.ceil((state.socket.retryAt - now) / 1000));
    $('conn-text').textContent = `Reconnecting in ${left} s`;
  }
  lastSecond = 0; // force the per-second refresh in tick()
  tick();
  lastSecond = now;
}

let toastTimer = null;
function toast(text) {
  const node = $('toast');
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

// ---- tabs ----------------------------------------------------------------------------

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const activate = (tab, focus) => {
    for (const t of tabs) {
      const selected = t === tab;
      t.setAttribute('aria-selected', String(selected));
      t.tabIndex = selected ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !selected;
    }
    if (focus) tab.focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => activate(tab, false));
    tab.addEventListener('keydown', (ev) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
      if (step) activate(tabs[(i + step + tabs.length) % tabs.length], true);
      else if (ev.key === 'Home') activate(tabs[0], true);
      else if (ev.key === 'End') activate(tabs[tabs.length - 1], true);
    });
  });
}

// ---- boot ----------------------------------------------------------------------------

async function boot() {
  setupMap();
  setupTabs();
  setupTokenDialog();
  setupDeviceList();
  setupDetail();
  setupShipments();
  setupEvents();
  setInterval(everySecond, 1000);

  const fromFragment = tokenFromFragment();
  if (fromFragment) saveToken(fromFragment, true); // remembered like one typed in the dialog
  state.token = fromFragment || storedToken();
  if (!state.token) {
    setConn('auth', 'No token');
    state.booted = true;
    tick();
    askToken(null);
    return;
  }
  try {
    await loadDevices();
  } catch (err) {
    state.booted = true;
    if (err instanceof HttpError && err.isAuth) { authFailed(); return; }
    if (!(err instanceof HttpError && err.isMissing)) {
      toast(`Devices could not be loaded: ${err.message}`);
    }
  }
  state.booted = true;
  if (state.devices.size) { state.fitted = true; fitFleet(); }
  tick();
  connect();
  await Promise.allSettled([loadShipments(), loadEvents(), loadGeofences()]);
  tick();
  setInterval(() => { if (state.shipmentsAvailable) loadShipments(); }, 60000);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot);
} else {
  boot();
}
