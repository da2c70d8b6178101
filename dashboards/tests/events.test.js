import assert from 'node:assert/strict';
import { test } from 'node:test';

import { eventDetail, eventTitle, normalizeEvent, sensorReading, touchesQueue } from '../static/js/events.js';

const TYPES = [
  'geofence.enter', 'geofence.exit', 'geofence.dwell', 'shipment.milestone',
  'shipment.eta_changed', 'shipment.at_risk', 'shipment.at_risk_cleared', 'shipment.exception',
  'shipment.exception_cleared', 'device.offline', 'device.online', 'device.long_stop',
  'device.long_stop_resolved', 'sensor.excursion', 'sensor.excursion_resolved',
  'route.deviation', 'route.deviation_resolved', 'exception.acknowledged',
];

test('every event type has words of its own, no raw key: value, no ISO times', () => {
  const titles = new Set();
  for (const type of TYPES) {
    const title = eventTitle({ type, data: {} });
    assert.ok(title && !title.includes('.') && !title.includes('_'), `${type}: ${title}`);
    titles.add(title);
  }
  assert.equal(titles.size, TYPES.length);
});

test('a sensor excursion reads as a person would say it, with the zone', () => {
  const ev = { type: 'sensor.excursion', data: { sensor: 'temperature_c', value: 9.18, min: 2, max: 8, since: '2026-12-01T06:01:47.736Z' } };
  assert.equal(eventTitle(ev), 'Temperature out of range');
  assert.equal(eventDetail(ev, 'UTC'), '9.2 °C, allowed 2–8 °C, since Tue 1 Dec, 06:01 UTC');
  const back = { type: 'sensor.excursion_resolved', data: { sensor: 'temperature_c', duration_s: 754, peak: 9.8 } };
  assert.equal(eventDetail(back, 'UTC'), 'after 13 min, peak 9.8 °C');
});

test('details of the other detections', () => {
  assert.equal(eventTitle({ type: 'device.long_stop', data: { minutes: 45 } }), 'Stopped for 45 min');
  assert.equal(eventDetail({ type: 'route.deviation', data: { distance_m: 1520 } }), '1.5 km from the route');
  assert.equal(eventTitle({ type: 'geofence.enter', data: { name: 'Berlin hub' } }), 'Entered “Berlin hub”');
  assert.equal(eventTitle({ type: 'shipment.milestone', data: { kind: 'out_for_delivery' } }), 'Shipment out for delivery');
  assert.equal(eventTitle({ type: 'exception.acknowledged', data: { by: 'Ana' } }), 'Acknowledged by Ana');
  assert.equal(eventTitle({ type: 'vendor.thing_done', data: {} }), 'Vendor thing done');
});

test('live and REST shapes normalize alike; the queue follows the server pairing', () => {
  const live = normalizeEvent({ type: 'event', event_type: 'device.offline', id: 'e1', data: { a: 1 } });
  const rest = normalizeEvent({ type: 'device.offline', id: 'e1', data: { a: 1 } });
  assert.deepEqual(live, rest);
  assert.equal(normalizeEvent({ type: 'event' }), null);
  const pairing = { acknowledged: 'exception.acknowledged', kinds: { 'device.offline': { resolved_by: ['device.online'] } } };
  assert.ok(touchesQueue('device.online', pairing));
  assert.ok(touchesQueue('exception.acknowledged', pairing));
  assert.ok(!touchesQueue('geofence.enter', pairing));
});

test('a shipment exception reads by its code; a detector reason is not shown raw', () => {
  assert.equal(eventTitle({ type: 'shipment.exception', data: { code: 'customs_hold' } }), 'Held at customs');
  assert.equal(eventDetail({ type: 'shipment.exception', data: { code: 'sensor_excursion', source: 'device', reason: 'temperature_c 9.18 outside 2..8' } }), '');
  assert.equal(eventDetail({ type: 'shipment.exception', data: { code: 'damaged', source: 'api', reason: 'pallet crushed' } }), 'pallet crushed');
});

test('a device\'s sensor readings use the event texts\' one table of names and units', () => {
  assert.deepEqual(sensorReading('temperature_c', 4.236), ['Temperature', '4.24 °C']);
  assert.deepEqual(sensorReading('battery_v', 3.7), ['Battery', '3.7 V']);
  assert.deepEqual(sensorReading('cargo_f', 40), ['Cargo', '40 °F']);
  assert.deepEqual(sensorReading('pressure_hpa', 1013.25), ['Pressure', '1013.25 hPa']);
  assert.deepEqual(sensorReading('door_open', true), ['Door open', 'true']);
  assert.deepEqual(sensorReading('tilt', { x: 1, y: 2 }), ['Tilt', '{"x":1,"y":2}']);
});
