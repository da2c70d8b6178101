// Dispatcher dashboard: wires the modules together (map, devices, shipments, exceptions
// queue, geofences) around one context object, the live stream and a render loop.
// Endpoints: SPEC REST routes, /ws/fleet, /config.json (tiles, pairing, brand).

import { LiveSocket, wsUrl } from '../common.js';
import { HttpError, fetchAllPages, fetchJson, fleetStreamUrl } from './api.js';
import { onMoved, renderDetail, renderDeviceList, selectDevice, setupDevices } from './devices.js';
import { normalizeEvent } from './events.js';
import { loadQueue, onLiveEvent, reloadSoon, setupExceptions } from './exceptions.js';
import { FleetLayer } from './fleetlayer.js';
import { loadGeofences, setupGeofences } from './geofences.js';
import { createMap, loadConfig } from './map.js';
import { loadShipments, openShipment, renderShipment, renderShipments, setupShipments } from './shipments.js';
import { applyFix, createFleet, parseTs } from './state.js';
import { localZone } from './time.js';

const TOKEN_KEY = 'shiptrack.token';
const CLUSTER_KEY = 'shiptrack.cluster';
const $ = (id) => document.getElementById(id);

function tokenFromFragment() {
  const token = new URLSearchParams(window.location.hash.replace(/^#/, '')).get('token');
  if (token) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return token;
}

function saveToken(token, remember) {
  window.localStorage.removeItem(TOKEN_KEY);
  window.sessionStorage.removeItem(TOKEN_KEY);
  if (token) (remember ? window.localStorage : window.sessionStorage).setItem(TOKEN_KEY, token);
}

function askToken(message) {
  $('token-error').hidden = !message;
  $('token-error').textContent = message || '';
  $('token-input').value = '';
  if (!$('token-dialog').open) $('token-dialog').showModal();
}

function setupToken() {
  $('token-form').addEventListener('submit', (ev) => {
    const token = $('token-input').value.trim();
    if (!token) { ev.preventDefault(); return; }
    saveToken(token, $('token-remember').checked);
    window.location.reload();
  });
  $('token-forget').addEventListener('click', () => { saveToken(null); window.location.reload(); });
  $('btn-token').addEventListener('click', () => askToken(null));
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const activate = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute('aria-selected', String(on));
      t.tabIndex = on ? 0 : -1;
      $(t.getAttribute('aria-controls')).hidden = !on;
    }
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => activate(tab));
    tab.addEventListener('keydown', (ev) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
      if (step) { const next = tabs[(i + step + tabs.length) % tabs.length]; activate(next); next.focus(); }
    });
  });
}

// Grouping crowded markers into counted bubbles (on unless turned off on this device).
function setupClustering(ctx) {
  const box = $('cluster-toggle');
  box.checked = window.localStorage.getItem(CLUSTER_KEY) !== 'off';
  ctx.fleetLayer.setClustering(box.checked);
  box.addEventListener('change', () => {
    window.localStorage.setItem(CLUSTER_KEY, box.checked ? 'on' : 'off');
    ctx.fleetLayer.setClustering(box.checked);
  });
}

let toastTimer = null;
function toast(text) {
  $('toast').textContent = text;
  $('toast').hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $('toast').hidden = true; }, 6000);
}

const CONN = { connecting: 'Connecting…', open: 'Live', waiting: 'Reconnecting', stopped: 'Disconnected' };
function setConn(status, detail) {
  $('conn').dataset.state = status;
  $('conn-text').textContent = status === 'waiting' && detail && detail.delay
    ? `Reconnecting in ${Math.ceil(detail.delay / 1000)} s` : (typeof detail === 'string' ? detail : CONN[status] || status);
}

function onMessage(ctx, msg) {
  ctx.msgCount += 1;
  const now = Date.now();
  if (msg.type === 'snapshot') {
    for (const d of Array.isArray(msg.devices) ? msg.devices : []) if (d) moved(ctx, applyFix(ctx.fleet, d.device_id, d, now));
    ctx.dirty.list = true;
    if (!ctx.fitted && ctx.fleet.devices.size) { ctx.fitted = true; fitFleet(ctx); }
    // the server sends a snapshot once it is subscribed: whatever happened before that
    // (or while the stream was down) came as no event, so catch up on it
    reloadSoon(ctx); scheduleShipments(ctx);
  } else if (msg.type === 'position') {
    moved(ctx, applyFix(ctx.fleet, msg.device_id, msg, now));
  } else if (msg.type === 'event') {
    const ev = normalizeEvent(msg);
    if (!ev) return;
    onLiveEvent(ctx, ev);
    if (ev.shipment_id && ev.type.startsWith('shipment.')) scheduleShipments(ctx);
  } else if (msg.type === 'eta') {
    const s = ctx.shipments.get(String(msg.shipment_id));
    if (!s) return;
    for (const k of ['eta', 'eta_low', 'eta_high', 'remaining_m', 'at_risk', 'late_probability', 'eta_first']) if (msg[k] !== undefined) s[k] = msg[k];
    ctx.dirty.shipments = true;
  } else if (msg.type === 'error') {
    const code = String((msg.error && msg.error.code) || '');
    if (/unauth|forbidden|token/i.test(code)) ctx.authFailed();
  }
}

function moved(ctx, dev) {
  if (!dev) return;
  ctx.fleetLayer.schedule();
  onMoved(ctx, dev);
}

function scheduleShipments(ctx) {
  if (ctx.shipmentTimer) return;
  ctx.shipmentTimer = setTimeout(() => { ctx.shipmentTimer = null; loadShipments(ctx); }, 1500);
}

function fitFleet(ctx) {
  const pts = [...ctx.fleet.devices.values()].filter((d) => typeof d.pos.lat === 'number').map((d) => [d.pos.lat, d.pos.lon]);
  if (pts.length === 1) ctx.map.setView(pts[0], 12);
  else if (pts.length > 1) ctx.map.fitBounds(ctx.L.latLngBounds(pts), { padding: [30, 30], maxZoom: 14 });
}

function render(ctx) {
  const now = Date.now();
  const second = now - ctx.lastSecond >= 1000;
  if (ctx.dirty.list || second) { ctx.dirty.list = false; renderDeviceList(ctx, now); }
  if (ctx.dirty.detail || (second && ctx.selectedId)) { ctx.dirty.detail = false; renderDetail(ctx, now); }
  if (ctx.dirty.shipments) {
    ctx.dirty.shipments = false;
    renderShipments(ctx);
    if (ctx.openShipment && ctx.shipments.has(ctx.openShipment)) renderShipment(ctx, ctx.shipments.get(ctx.openShipment));
  }
  if (second) {
    ctx.rate.push(ctx.msgCount); ctx.msgCount = 0;
    if (ctx.rate.length > 5) ctx.rate.shift();
    const rate = ctx.rate.reduce((a, b) => a + b, 0) / ctx.rate.length;
    $('stat-rate').textContent = rate >= 10 ? String(Math.round(rate)) : rate.toFixed(1);
    $('stat-devices').textContent = String(ctx.fleet.devices.size);
    $('count-devices').textContent = String(ctx.fleet.devices.size);
    $('stat-onmap').textContent = String(ctx.fleetLayer.inView ?? 0);
    ctx.fleetLayer.schedule(); // staleness changes colours with time
    ctx.lastSecond = now;
  }
}

async function boot() {
  const L = window.L;
  const config = await loadConfig();
  const { map } = createMap(L, 'map', config, { preferCanvas: true });
  map.setView([48, 10], 4);
  const ctx = {
    L, map, config, token: null, tz: localZone(), staleMs: (config.stale_after_s || 600) * 1000,
    fleet: createFleet(), shipments: new Map(), selectedId: null, follow: false, track: null,
    dirty: { list: true, detail: false, shipments: false }, msgCount: 0, rate: [], lastSecond: 0,
    booted: false, fitted: false, toast, openShipment: null,
  };
  ctx.geofenceLayer = L.featureGroup().addTo(map);
  ctx.shipmentLayer = L.featureGroup().addTo(map);
  ctx.trackLayer = L.featureGroup().addTo(map);
  ctx.fleetLayer = new FleetLayer(L, map, ctx.fleet, {
    staleMs: ctx.staleMs, selected: () => ctx.selectedId,
    onClick: (dev) => { if (!ctx.drawing) selectDevice(ctx, dev.id); },
  });
  setupClustering(ctx);
  ctx.selectDevice = (id, opts) => selectDevice(ctx, id, opts);
  ctx.openShipmentById = (id) => openShipment(ctx, id);
  ctx.authFailed = () => { if (ctx.socket) ctx.socket.stop(); setConn('stopped', 'Token refused'); askToken('The server refused this token. Enter a valid token.'); };
  window.shiptrack = ctx; // for the console (and the browser tests' measurements)
  $('zone').textContent = `Times in ${ctx.tz}`;
  setupTabs(); setupToken(); setupDevices(ctx); setupShipments(ctx); setupExceptions(ctx); setupGeofences(ctx);
  $('btn-fit').addEventListener('click', () => fitFleet(ctx));
  const frame = () => { render(ctx); requestAnimationFrame(frame); };
  setInterval(() => render(ctx), 1000); // also when the tab is in the background
  requestAnimationFrame(frame);

  const fromFragment = tokenFromFragment();
  if (fromFragment) saveToken(fromFragment, true);
  ctx.token = fromFragment || window.localStorage.getItem(TOKEN_KEY) || window.sessionStorage.getItem(TOKEN_KEY);
  if (!ctx.token) { ctx.booted = true; setConn('stopped', 'No token'); askToken(null); return; }
  try {
    for (const item of await fetchAllPages('/api/v1/devices', { token: ctx.token, maxPages: 50 })) {
      if (item && item.last_position) applyFix(ctx.fleet, item.device_id, item.last_position, parseTs(item.last_seen_at));
    }
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { ctx.booted = true; ctx.authFailed(); return; }
    toast(`Devices could not be loaded: ${err.message}`);
  }
  ctx.booted = true;
  if (ctx.fleet.devices.size) { ctx.fitted = true; fitFleet(ctx); }
  ctx.fleetLayer.schedule();
  ctx.socket = new LiveSocket(() => fleetStreamUrl(ctx.token, wsUrl), {
    onMessage: (msg) => onMessage(ctx, msg), onStatus: setConn,
    shouldReconnect: async (ev) => {
      if (![1008, 4001, 4401, 4403].includes(ev.code)) return true;
      try { await fetchJson('/api/v1/devices', { token: ctx.token }); } catch (err) {
        if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return false; }
      }
      return true;
    },
  });
  ctx.socket.start();
  await Promise.allSettled([loadShipments(ctx), loadQueue(ctx), loadGeofences(ctx)]);
  setInterval(() => loadShipments(ctx), 60000);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
