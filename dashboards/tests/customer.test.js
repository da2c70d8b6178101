import assert from 'node:assert/strict';
import { test } from 'node:test';

import { delayNotice, exceptionNotice, mapNote, stepStates, statusText } from '../static/js/customer.js';
import { fmtWindow } from '../static/js/time.js';

test('every SPEC status has customer words', () => {
  for (const s of ['created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered',
    'attempt_failed', 'available_for_pickup', 'returned_to_sender', 'cancelled']) {
    assert.notEqual(statusText(s), 'In progress', s);
  }
});

test('a delivered shipment has every step done and no position note', () => {
  assert.deepEqual(stepStates('delivered'), ['done', 'done', 'done', 'done', 'done']);
  assert.deepEqual(stepStates('in_transit'), ['done', 'done', 'current', 'todo', 'todo']);
  assert.deepEqual(stepStates('attempt_failed'), ['done', 'done', 'done', 'current', 'todo']);
  assert.equal(mapNote({ status: 'delivered' }, false), null);
  assert.equal(mapNote({ status: 'in_transit' }, false), 'Position not available yet.');
});

test('internal detections are not shown to customers', () => {
  for (const code of ['long_stop', 'offline', 'route_deviation', 'sensor_excursion']) {
    assert.equal(exceptionNotice({ status: 'in_transit', exception: true, exception_code: code }), null, code);
  }
  assert.equal(exceptionNotice({ status: 'in_transit', exception: true, exception_reason: 'temperature_c 9.18 outside 2..8' }), null);
  assert.match(exceptionNotice({ status: 'in_transit', exception: true, exception_code: 'customs_hold' }), /customs/);
  assert.equal(exceptionNotice({ status: 'delivered', exception: true, exception_code: 'damaged' }), null);
});

test('the delay text agrees with the ETA', () => {
  const early = { status: 'in_transit', at_risk: true, eta: '2026-12-01T10:00:00Z', promised_by: '2026-12-01T16:00:00Z', late_probability: 0.55 };
  const n = delayNotice(early, 'UTC');
  assert.equal(n.title, 'Your delivery may be late.');
  assert.ok(!/later/.test(n.text), n.text);
  assert.match(n.text, /55 % chance/);
  assert.match(n.text, /10:00 UTC, on time/);
  const late = { ...early, eta: '2026-12-01T18:30:00Z' };
  assert.match(delayNotice(late, 'UTC').text, /expect it around Tue 1 Dec, 18:30 UTC/);
  assert.equal(delayNotice({ ...early, at_risk: false, late_probability: 0.1 }, 'UTC'), null);
  assert.equal(delayNotice({ ...late, status: 'delivered' }, 'UTC'), null);
});

test('the ETA window carries its zone', () => {
  assert.equal(fmtWindow('2026-12-01T13:00:00Z', '2026-12-01T14:30:00Z', 'Europe/Berlin', 'en-GB'), 'Tue 1 Dec, 14:00 – 15:30 CET');
});
