// The exceptions queue, shared by every dispatcher: GET /api/v1/exceptions?state=...,
// POST /api/v1/exceptions/{id}/acknowledge (with a note; who and when are recorded on
// the server). Live events that open, resolve or acknowledge an exception (by the
// server's pairing, /config.json) reload it, so an acknowledgement made in one browser
// shows in every other within a moment; a slow poll covers a lost stream.

import { el, listItems, setChildren } from '../common.js';
import { HttpError, fetchJson, sendJson } from './api.js';
import { eventDetail, eventTitle, touchesQueue } from './events.js';
import { fmtDateTimeZ, fmtFullZ } from './time.js';

const $ = (id) => document.getElementById(id);
const NAME_KEY = 'shiptrack.dispatcherName';
const POLL_MS = 30000;

export function setupExceptions(ctx) {
  // the select's value, not a constant: it may have been changed before this ran
  ctx.queue = { items: [], state: $('queue-state').value || 'open', timer: null, seq: 0, openCount: 0 };
  $('queue-state').addEventListener('change', (ev) => { ctx.queue.state = ev.target.value; loadQueue(ctx); });
  $('dispatcher-name').value = window.localStorage.getItem(NAME_KEY) || '';
  $('dispatcher-name').addEventListener('change', (ev) => window.localStorage.setItem(NAME_KEY, ev.target.value.trim()));
  setInterval(() => loadQueue(ctx), POLL_MS);
}

/** A live event: reload the queue soon if it concerns it. */
export function onLiveEvent(ctx, ev) {
  if (ctx.queue.state !== 'log' && !touchesQueue(ev.type, ctx.config.exceptions)) return;
  reloadSoon(ctx);
}

/**
 * Reload the queue soon (several calls within 300 ms make one request). Also called when
 * the stream (re)starts: what happened while it was down came as no event.
 */
export function reloadSoon(ctx) {
  clearTimeout(ctx.queue.timer);
  ctx.queue.timer = setTimeout(() => loadQueue(ctx), 300);
}

async function count(ctx) {
  try {
    const body = await fetchJson('/api/v1/exceptions?state=open&limit=500', { token: ctx.token });
    const n = listItems(body).length;
    $('count-exceptions').textContent = n ? (body.next_cursor ? `${n}+` : String(n)) : '';
  } catch { /* the list below says what went wrong */ }
}

export async function loadQueue(ctx) {
  const note = $('queue-note');
  const seq = ++ctx.queue.seq; // only the newest request's answer is shown
  let body;
  const log = ctx.queue.state === 'log'; // every event, newest first: the log, in words
  try {
    body = await fetchJson(log ? '/api/v1/events?limit=200'
      : `/api/v1/exceptions?state=${encodeURIComponent(ctx.queue.state)}&limit=200`, { token: ctx.token });
  } catch (err) {
    if (seq !== ctx.queue.seq) return;
    if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return; }
    note.textContent = err instanceof HttpError && err.isMissing
      ? 'The exceptions queue is not available on this server.' : `Exceptions could not be loaded: ${err.message}`;
    return;
  }
  if (seq !== ctx.queue.seq) return; // an older answer, arriving after a newer request
  ctx.queue.items = listItems(body);
  renderQueue(ctx);
  count(ctx);
}

function who(ctx, item) {
  const parts = [];
  if (item.reference) parts.push(`shipment ${item.reference}`);
  else if (item.shipment_id) parts.push(`shipment ${item.shipment_id}`);
  if (item.device_id) parts.push(`device ${item.device_id}`);
  return parts.join(' · ');
}

function stateLine(ctx, item) {
  if (item.resolved) return `${eventTitle({ type: item.resolved.type, data: {} })} · ${fmtDateTimeZ(item.resolved.ts, ctx.tz)}`;
  if (item.acknowledged) {
    const a = item.acknowledged;
    return `Acknowledged by ${a.by} · ${fmtDateTimeZ(a.at, ctx.tz)}${a.note ? ` · “${a.note}”` : ''}`;
  }
  return '';
}

function ackForm(ctx, item) {
  const input = el('input', { type: 'text', class: 'ack-note', maxlength: '2000', placeholder: 'Note (optional)', 'aria-label': `Note for ${eventTitle(item)}` });
  const form = el('form', { class: 'ack-form' }, input,
    el('button', { type: 'submit', class: 'btn btn-small btn-primary', text: 'Acknowledge' }));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); acknowledge(ctx, item, input.value, form); });
  return form;
}

function renderQueue(ctx) {
  const items = ctx.queue.items.map((item) => {
    // a detector's exception: its own event (sensor, value, distance ...) says it best
    const shown = item.detection ? { type: item.detection.type, data: item.detection.data } : item;
    const detail = eventDetail(shown, ctx.tz);
    const status = stateLine(ctx, item);
    const actions = el('div', { class: 'ev-actions' });
    if (item.device_id && ctx.fleet.devices.has(item.device_id)) {
      actions.append(el('button', { type: 'button', class: 'btn btn-small', text: 'Show', onclick: () => ctx.selectDevice(item.device_id, { pan: true }) }));
    }
    if (item.shipment_id && ctx.openShipmentById) {
      actions.append(el('button', { type: 'button', class: 'btn btn-small', text: 'Shipment', onclick: () => ctx.openShipmentById(item.shipment_id) }));
    }
    return el('li', { class: `exc exc-${item.state || 'log'}`, 'data-id': item.id },
      el('div', { class: 'ev-body' },
        el('div', { class: 'ev-head' },
          el('span', { class: `ev-type${item.state ? ' ev-exc' : ''}`, text: eventTitle(shown) }),
          el('time', { datetime: item.ts, title: fmtFullZ(item.ts, ctx.tz), text: fmtDateTimeZ(item.ts, ctx.tz) })),
        who(ctx, item) ? el('div', { class: 'ev-who', text: who(ctx, item) }) : null,
        detail ? el('div', { class: 'ev-sum', text: detail }) : null,
        status ? el('div', { class: 'ev-state', text: status }) : null,
        item.state === 'open' ? ackForm(ctx, item) : null),
      actions);
  });
  setChildren($('event-list'), items);
  const empty = { log: 'No events yet.', open: 'No open exceptions.', acknowledged: 'Nothing acknowledged and still open.', resolved: 'No resolved exceptions yet.' };
  $('queue-note').textContent = items.length ? '' : empty[ctx.queue.state] || '';
}

async function acknowledge(ctx, item, note, form) {
  const by = $('dispatcher-name').value.trim();
  const body = {};
  if (note.trim()) body.note = note.trim();
  if (by) body.by = by;
  form.querySelector('button').disabled = true;
  try {
    await sendJson('POST', `/api/v1/exceptions/${encodeURIComponent(item.id)}/acknowledge`, body, ctx.token);
  } catch (err) {
    if (!(err instanceof HttpError && err.status === 409)) ctx.toast(`Not acknowledged: ${err.message}`);
  }
  await loadQueue(ctx);
}
