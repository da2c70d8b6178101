// The device list, the selected device's card (with its recent track and follow mode)
// and "connect a device" (broker credentials, OwnTracks app settings).

import { el, fmtCoord, fmtDistance, fmtKmh, isNum, listItems, setChildren } from '../common.js';
import { HttpError, fetchJson, sendJson } from './api.js';
import { sensorReading } from './events.js';
import { deviceState, listDevices } from './state.js';
import { fmtAgo, fmtDateTimeZ, fmtFullZ } from './time.js';

const MAX_ROWS = 500;
const TRACK_POINTS = 500;
const $ = (id) => document.getElementById(id);

export function setupDevices(ctx) {
  const rerender = () => { ctx.dirty.list = true; };
  $('device-filter').addEventListener('input', rerender);
  $('device-sort').addEventListener('change', rerender);
  $('btn-unselect').addEventListener('click', () => selectDevice(ctx, null));
  $('btn-zoom').addEventListener('click', () => zoomTo(ctx, ctx.selectedId));
  $('follow').addEventListener('change', (ev) => setFollow(ctx, ev.target.checked));
  // Moving the map by hand ends follow mode (as in every navigation app).
  ctx.map.on('dragstart', () => setFollow(ctx, false));
  $('btn-connect-device').addEventListener('click', () => openConnect(ctx));
  $('connect-close').addEventListener('click', () => $('connect-dialog').close());
  $('connect-form').addEventListener('submit', (ev) => { ev.preventDefault(); makeCredentials(ctx); });
}

export function setFollow(ctx, on) {
  ctx.follow = Boolean(on) && Boolean(ctx.selectedId);
  $('follow').checked = ctx.follow;
  if (ctx.follow) followNow(ctx);
}

export function followNow(ctx) {
  const dev = ctx.selectedId ? ctx.fleet.devices.get(ctx.selectedId) : null;
  if (!ctx.follow || !dev || !isNum(dev.pos.lat)) return;
  const ll = [dev.pos.lat, dev.pos.lon];
  if (!ctx.map.getBounds().pad(-0.25).contains(ll)) ctx.map.panTo(ll, { animate: true });
}

function zoomTo(ctx, id) {
  const dev = id ? ctx.fleet.devices.get(id) : null;
  if (dev && isNum(dev.pos.lat)) ctx.map.setView([dev.pos.lat, dev.pos.lon], Math.max(ctx.map.getZoom(), 13));
}

export function selectDevice(ctx, id, { pan = false } = {}) {
  ctx.selectedId = id && ctx.fleet.devices.has(id) ? id : null;
  ctx.trackLayer.clearLayers();
  ctx.track = null;
  $('detail').hidden = !ctx.selectedId;
  if (!ctx.selectedId) setFollow(ctx, false);
  ctx.dirty.list = ctx.dirty.detail = true;
  ctx.fleetLayer.schedule();
  if (!ctx.selectedId) return;
  if (pan) zoomTo(ctx, id);
  loadTrack(ctx, id);
}

/** After a device's position changed: extend its track, follow it. */
export function onMoved(ctx, dev) {
  if (dev.id !== ctx.selectedId) return;
  ctx.dirty.detail = true;
  if (ctx.track && (ctx.track.lastT === null || (dev.t !== null && dev.t > ctx.track.lastT))) {
    ctx.track.line.addLatLng([dev.pos.lat, dev.pos.lon]);
    ctx.track.lastT = dev.t;
  }
  followNow(ctx);
}

async function loadTrack(ctx, id) {
  const note = $('detail-track');
  note.textContent = 'Loading recent track…';
  let items;
  try {
    items = listItems(await fetchJson(`/api/v1/devices/${encodeURIComponent(id)}/track?max_points=${TRACK_POINTS}`, { token: ctx.token }));
  } catch (err) {
    if (ctx.selectedId !== id) return;
    if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return; }
    note.textContent = `Track could not be loaded: ${err.message}`;
    return;
  }
  if (ctx.selectedId !== id) return;
  const points = items.filter((p) => p && isNum(p.lat) && isNum(p.lon));
  const line = ctx.L.polyline(points.map((p) => [p.lat, p.lon]), { color: '#d4380d', weight: 3, opacity: 0.8 });
  ctx.trackLayer.clearLayers();
  line.addTo(ctx.trackLayer);
  ctx.track = { line, lastT: points.length ? Date.parse(points[points.length - 1].ts) : null };
  note.textContent = points.length > 1
    ? `Track: ${points.length} points since ${fmtDateTimeZ(points[0].ts, ctx.tz)}.` : 'No recent track.';
  if (points.length > 1 && !ctx.follow) ctx.map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 15, animate: false });
}

function row(ctx, dev) {
  if (dev.ui.row) return dev.ui.row;
  const swatch = el('span', { class: 'sw', 'aria-hidden': 'true' });
  const speed = el('span', { class: 'dev-speed' });
  const seen = el('span', { class: 'dev-seen' });
  const button = el('button', { type: 'button', class: 'dev-row', onclick: () => selectDevice(ctx, dev.id, { pan: true }) },
    swatch, el('span', { class: 'dev-id', text: dev.id }), speed, seen);
  dev.ui.row = { li: el('li', {}, button), button, swatch, speed, seen };
  return dev.ui.row;
}

export function renderDeviceList(ctx, now) {
  const list = listDevices(ctx.fleet, $('device-filter').value, $('device-sort').value);
  const shown = list.slice(0, MAX_ROWS);
  for (const dev of shown) {
    const r = row(ctx, dev);
    const state = deviceState(dev, now, ctx.selectedId, ctx.staleMs);
    r.swatch.className = `sw sw-${state}`;
    r.speed.textContent = fmtKmh(dev.pos.speed);
    r.seen.textContent = fmtAgo(dev.received, now); // the same clock as the marker colour
    r.seen.title = dev.received === null ? '' : `received ${fmtFullZ(dev.received, ctx.tz)}`;
    r.button.setAttribute('aria-pressed', String(dev.id === ctx.selectedId));
  }
  const order = shown.map((d) => d.id).join('\n');
  if (order !== ctx.listOrder) { // re-attach rows only when the list itself changed
    ctx.listOrder = order;
    setChildren($('device-list'), shown.map((d) => d.ui.row.li));
  }
  let note = '';
  if (!ctx.fleet.devices.size) note = ctx.booted ? 'No devices yet.' : 'Loading devices…';
  else if (!list.length) note = 'No device matches the filter.';
  else if (list.length > shown.length) note = `Showing ${shown.length} of ${list.length}; filter to narrow.`;
  $('devices-note').textContent = note;
}

export function renderDetail(ctx, now) {
  const dev = ctx.selectedId ? ctx.fleet.devices.get(ctx.selectedId) : null;
  if (!dev) return;
  const p = dev.pos;
  $('detail-title').textContent = dev.id;
  const rows = [
    ['Received', dev.received === null ? 'never' : `${fmtAgo(dev.received, now)}`, true],
    ['Fix time', dev.t === null ? '–' : fmtDateTimeZ(dev.t, ctx.tz), true],
    ['Position', fmtCoord(p.lat, p.lon), true],
    ['Speed', fmtKmh(p.speed)],
    ['Heading', isNum(p.heading) ? `${Math.round(p.heading)}°` : '–'],
  ];
  if (isNum(p.accuracy)) rows.push(['Accuracy', `± ${fmtDistance(p.accuracy)}`]);
  if (isNum(p.battery)) rows.push(['Battery', `${Math.round(p.battery * 100)} %`]);
  if (p.sensors && typeof p.sensors === 'object') {
    for (const [k, v] of Object.entries(p.sensors)) rows.push(sensorReading(k, v));
  }
  const ships = [...ctx.shipments.values()].filter((s) => s.device_id === dev.id);
  if (ships.length) rows.push(['Shipments', ships.map((s) => s.reference || s.id).join(', '), true]);
  setChildren($('detail-fields'), rows.map(([k, v, wide]) => el('div', { class: wide ? 'wide' : null },
    el('dt', { text: k }), el('dd', { text: v }))));
}

// ---- connect a device ------------------------------------------------------------------

function openConnect(ctx) {
  $('connect-result').replaceChildren();
  $('connect-error').hidden = true;
  $('connect-dialog').showModal();
}

function broker(ctx) {
  const url = (ctx.config.devices && ctx.config.devices.mqtt_url) || '';
  const m = url.match(/^(mqtts?):\/\/([^:/]+)(?::(\d+))?/);
  return m ? { url, tls: m[1] === 'mqtts', host: m[2], port: m[3] || (m[1] === 'mqtts' ? '8883' : '1883') } : null;
}

function facts(pairs) {
  return el('dl', { class: 'fields' }, pairs.map(([k, v]) => el('div', { class: 'wide' },
    el('dt', { text: k }), el('dd', {}, el('code', { text: v })))));
}

async function makeCredentials(ctx) {
  const kind = $('connect-kind').value;
  const name = $('connect-id').value.trim();
  const error = $('connect-error');
  error.hidden = true;
  const path = kind === 'owntracks'
    ? `/api/v1/owntracks/users/${encodeURIComponent(name)}/credentials`
    : `/api/v1/devices/${encodeURIComponent(name)}/credentials`;
  let cred = null;
  try {
    cred = await sendJson('POST', path, {}, ctx.token);
  } catch (err) {
    // 404: an older server; 409 identity_off: the broker does not check logins here
    const noIdentity = err instanceof HttpError && (err.isMissing || err.code === 'identity_off');
    if (!noIdentity) {
      error.textContent = `Could not make credentials: ${err.message}`;
      error.hidden = false;
      return;
    }
  }
  const b = broker(ctx);
  const base = (ctx.config.devices && ctx.config.devices.public_url) || window.location.origin;
  const out = [];
  if (!cred) out.push(el('p', { class: 'note', text: 'This server does not issue device credentials: devices connect without a password.' }));
  else out.push(el('p', { class: 'note', text: 'The password is shown only now: copy it to the device.' }));
  if (kind === 'owntracks') {
    out.push(el('h3', { text: 'OwnTracks app, MQTT mode' }), facts([
      ['Host', b ? b.host : '–'], ['Port', b ? b.port : '–'], ['TLS', b && b.tls ? 'on' : 'off'],
      ['Username', cred ? cred.username : name], ['Password', cred ? cred.password : '(none)'],
      ...(cred ? [['Client id (device id in the app)', cred.client_id]] : []),
      ['Topic', `owntracks/${name}/<device>`]]));
    out.push(el('h3', { text: 'OwnTracks app, HTTP mode' }), facts([
      ['URL', `${base}/api/v1/owntracks?u=${encodeURIComponent(name)}&d=<device>`],
      ['Authentication', 'user: anything, password: an API token']]));
  } else {
    out.push(facts([['Broker', b ? b.url : '–'], ['Username', cred ? cred.username : name],
      ['Password', cred ? cred.password : '(none)'],
      ...(cred ? [['Client id (the broker refuses any other)', cred.client_id]] : []),
      ['Topic', `shiptrack/v1/devices/${name}/position`]]));
  }
  setChildren($('connect-result'), out);
}
