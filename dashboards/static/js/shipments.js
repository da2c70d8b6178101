// Shipments: the list (status, ETA, at risk), a shipment's view (milestones, origin,
// destination, route, ETA window, promised time, link to its customer page), creating a
// shipment, and setting a status or an exception by hand (PATCH /api/v1/shipments/{id}).

import { append, el, fmtDistance, isNum, listItems, setChildren } from '../common.js';
import { statusText } from './customer.js';
import { HttpError, fetchJson, sendJson } from './api.js';
import { humanize } from './events.js';
import { fmtDateTimeZ, fmtWindow } from './time.js';

const $ = (id) => document.getElementById(id);
export const EXCEPTION_CODES = ['delayed', 'lost', 'damaged', 'address_issue', 'refused',
  'customs_hold', 'weather', 'other'];
const SPEC_STATUSES = ['created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered',
  'attempt_failed', 'available_for_pickup', 'returned_to_sender', 'cancelled'];

export const statusLabel = (s) => humanize(s) || 'Unknown';

export function setupShipments(ctx) {
  const reload = () => loadShipments(ctx);
  $('shipment-status').addEventListener('change', reload);
  $('shipment-risk').addEventListener('change', reload);
  $('btn-shipments-reload').addEventListener('click', reload);
  $('btn-shipments-more').addEventListener('click', () => loadShipments(ctx, { more: true }));
  $('btn-shipment-close').addEventListener('click', () => closeShipment(ctx));
  $('btn-new-shipment').addEventListener('click', () => { $('shipment-error').hidden = true; $('shipment-dialog').showModal(); });
  $('shipment-form').addEventListener('submit', (ev) => { ev.preventDefault(); createShipment(ctx); });
  $('shipment-cancel').addEventListener('click', () => $('shipment-dialog').close());
  const statuses = ctx.config.statuses && ctx.config.statuses.length ? [...new Set([...ctx.config.statuses, ...SPEC_STATUSES])] : SPEC_STATUSES;
  setChildren($('shipment-status'), el('option', { value: '', text: 'All statuses' }),
    statuses.map((s) => el('option', { value: s, text: statusLabel(s) })));
  setChildren($('set-status'), statuses.map((s) => el('option', { value: s, text: statusLabel(s) })));
  setChildren($('set-exception-code'), EXCEPTION_CODES.map((c) => el('option', { value: c, text: humanize(c) })));
  $('status-form').addEventListener('submit', (ev) => { ev.preventDefault(); patch(ctx, { status: $('set-status').value }); });
  $('exception-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const reason = $('set-exception-reason').value.trim();
    patch(ctx, { exception: true, exception_code: $('set-exception-code').value, exception_reason: reason || null });
  });
  $('btn-clear-exception').addEventListener('click', () => patch(ctx, { exception: false }));
}

function shipmentsUrl(cursor) {
  const params = new URLSearchParams();
  if ($('shipment-status').value) params.set('status', $('shipment-status').value);
  if ($('shipment-risk').checked) params.set('at_risk', 'true');
  if (cursor) params.set('cursor', cursor);
  const qs = params.toString();
  return qs ? `/api/v1/shipments?${qs}` : '/api/v1/shipments';
}

export async function loadShipments(ctx, { more = false } = {}) {
  let body;
  try {
    body = await fetchJson(shipmentsUrl(more ? ctx.shipmentsCursor : null), { token: ctx.token });
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return; }
    $('shipments-note').textContent = `Shipments could not be loaded: ${err.message}`;
    return;
  }
  if (!more) ctx.shipments.clear();
  for (const s of listItems(body)) if (s && s.id) ctx.shipments.set(String(s.id), s);
  ctx.shipmentsCursor = body && body.next_cursor ? body.next_cursor : null;
  renderShipments(ctx);
  if (ctx.openShipment && ctx.shipments.has(ctx.openShipment)) renderShipment(ctx, ctx.shipments.get(ctx.openShipment));
}

function etaCell(ctx, s) {
  if (s.status === 'delivered') return 'delivered';
  return s.eta ? fmtDateTimeZ(s.eta, ctx.tz) : '–';
}

export function renderShipments(ctx) {
  const rows = [...ctx.shipments.values()].map((s) => {
    const flags = el('td', { class: 'flags' });
    if (s.at_risk) append(flags, el('span', { class: 'badge badge-risk', text: 'at risk' }));
    if (s.exception) append(flags, el('span', { class: 'badge badge-exc', text: 'exception' }));
    return el('tr', { class: s.id === ctx.openShipment ? 'selected' : null, onclick: () => openShipment(ctx, s.id) },
      el('td', {}, el('button', { type: 'button', class: 'link', text: s.reference || s.id })),
      el('td', { text: statusLabel(s.status) }), el('td', { text: etaCell(ctx, s) }), flags);
  });
  setChildren($('shipment-rows'), rows);
  $('shipment-table').hidden = rows.length === 0;
  $('shipments-note').textContent = rows.length ? '' : 'No shipments.';
  $('btn-shipments-more').hidden = !ctx.shipmentsCursor;
  $('count-shipments').textContent = rows.length ? String(rows.length) : '';
}

function closeShipment(ctx) {
  ctx.openShipment = null;
  ctx.shipmentLayer.clearLayers();
  $('shipment-view').hidden = true;
  renderShipments(ctx);
}

export async function openShipment(ctx, id) {
  ctx.openShipment = id;
  let s = ctx.shipments.get(id);
  try {
    s = await fetchJson(`/api/v1/shipments/${encodeURIComponent(id)}`, { token: ctx.token });
    ctx.shipments.set(id, s);
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return; }
  }
  if (!s || ctx.openShipment !== id) return;
  renderShipments(ctx);
  renderShipment(ctx, s, { fit: true });
}

function placeOf(p) {
  return p && isNum(p.lat) && isNum(p.lon) ? [p.lat, p.lon] : null;
}

function drawShipment(ctx, s, fit) {
  const L = ctx.L;
  ctx.shipmentLayer.clearLayers();
  const pts = [];
  for (const [p, label, color] of [[s.origin, 'Origin', '#59636e'], [s.destination, 'Destination', '#1a7f37']]) {
    const ll = placeOf(p);
    if (!ll) continue;
    pts.push(ll);
    L.circle(ll, { radius: p.radius_m || 250, color, weight: 2, fillOpacity: 0.15 }).addTo(ctx.shipmentLayer);
    L.circleMarker(ll, { radius: 6, color: '#fff', weight: 2, fillColor: color, fillOpacity: 1 })
      .bindTooltip(el('span', { text: label })).addTo(ctx.shipmentLayer);
  }
  if (s.route && Array.isArray(s.route.coordinates)) {
    const line = s.route.coordinates.map(([lon, lat]) => [lat, lon]);
    L.polyline(line, { color: '#8250df', weight: 3, dashArray: '6 6' }).addTo(ctx.shipmentLayer);
    pts.push(...line);
  }
  const pos = placeOf(s.last_position);
  if (pos) pts.push(pos);
  if (fit && pts.length) ctx.map.fitBounds(ctx.L.latLngBounds(pts), { padding: [40, 40], maxZoom: 13 });
}

export function renderShipment(ctx, s, { fit = false } = {}) {
  $('shipment-view').hidden = false;
  $('shipment-title').textContent = s.reference || s.id;
  const link = s.tracking_url || (s.tracking_token ? `/t/${s.tracking_token}` : null);
  const facts = [
    ['Status', `${statusLabel(s.status)}${s.exception ? ' · exception' : ''}`],
    ['Device', s.device_id || '–'],
    ['ETA', s.status === 'delivered' ? 'delivered' : (s.eta_low && s.eta_high ? fmtWindow(s.eta_low, s.eta_high, ctx.tz) : (s.eta ? fmtDateTimeZ(s.eta, ctx.tz) : '–'))],
    ['Most likely', s.eta && s.status !== 'delivered' ? fmtDateTimeZ(s.eta, ctx.tz) : '–'],
    ['First ETA', s.eta_first ? fmtDateTimeZ(s.eta_first, ctx.tz) : '–'],
    ['Promised by', s.promised_by ? fmtDateTimeZ(s.promised_by, ctx.tz) : '–'],
    ['Late chance', isNum(s.late_probability) ? `${Math.round(s.late_probability * 100)} %` : (s.at_risk ? 'at risk' : '–')],
    ['Remaining', isNum(s.remaining_m) ? fmtDistance(s.remaining_m) : '–'],
  ];
  if (s.carrier) facts.push(['Carrier', `${s.carrier} ${s.carrier_tracking_number || ''}`.trim()]);
  if (s.exception_reason) facts.push(['Exception', String(s.exception_reason)]);
  setChildren($('shipment-fields'), facts.map(([k, v]) => el('div', { class: 'wide' }, el('dt', { text: k }), el('dd', { text: v }))));
  const ms = (Array.isArray(s.milestones) ? s.milestones : []).slice().sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
  setChildren($('shipment-milestones'), ms.map((m) => el('li', {},
    el('span', { class: 'ms-kind', text: statusText(m.kind) === 'In progress' ? humanize(m.kind) : statusText(m.kind) }),
    el('time', { datetime: m.ts, text: fmtDateTimeZ(m.ts, ctx.tz) }),
    el('span', { class: 'sub', text: m.source || '' }))));
  const a = $('shipment-link');
  a.hidden = !link;
  if (link) a.href = link;
  $('shipment-action-error').hidden = true;
  drawShipment(ctx, s, fit);
}

async function patch(ctx, body) {
  const id = ctx.openShipment;
  const error = $('shipment-action-error');
  error.hidden = true;
  try {
    const s = await sendJson('PATCH', `/api/v1/shipments/${encodeURIComponent(id)}`, body, ctx.token);
    ctx.shipments.set(id, s);
    renderShipment(ctx, s);
    renderShipments(ctx);
  } catch (err) {
    if (err.status === 422 && body.exception_code && /exception_code/.test(err.message)) {
      const { exception_code: _code, ...older } = body; // a server without exception codes
      await patch(ctx, older);
      return;
    }
    error.textContent = err.message;
    error.hidden = false;
  }
}

function point(prefix) {
  const lat = Number($(`${prefix}-lat`).value);
  const lon = Number($(`${prefix}-lon`).value);
  const radius = Number($(`${prefix}-radius`).value);
  const p = { lat, lon };
  if (radius > 0) p.radius_m = radius;
  return p;
}

async function createShipment(ctx) {
  const error = $('shipment-error');
  error.hidden = true;
  const body = {
    reference: $('new-reference').value.trim(), device_id: $('new-device').value.trim(),
    origin: point('new-origin'), destination: point('new-destination'),
  };
  if ($('new-promised').value) body.promised_by = new Date($('new-promised').value).toISOString();
  const route = $('new-route').value.trim();
  try {
    if (route) {
      const parsed = JSON.parse(route);
      body.route = parsed.type === 'Feature' ? parsed.geometry : parsed;
    }
    const s = await sendJson('POST', '/api/v1/shipments', body, ctx.token);
    $('shipment-dialog').close();
    ctx.shipments.set(String(s.id), s);
    renderShipments(ctx);
    openShipment(ctx, String(s.id));
  } catch (err) {
    error.textContent = err instanceof SyntaxError ? `Route is not JSON: ${err.message}` : err.message;
    error.hidden = false;
  }
}
