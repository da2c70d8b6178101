import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  STALE_AFTER_MS, applyFix, clusterState, createFleet, deviceState, listDevices, markerKey, markerLook,
} from '../static/js/state.js';

const NOW = Date.parse('2026-12-01T10:00:00Z');

test('a fix hours old but just received is not stale (sped-up runs, buffered uploads)', () => {
  const fleet = createFleet();
  const dev = applyFix(fleet, 't1', { ts: '2026-12-01T04:00:00Z', lat: 52, lon: 13, speed: 20 }, NOW);
  assert.equal(deviceState(dev, NOW), 'moving');
  assert.equal(deviceState(dev, NOW + STALE_AFTER_MS + 1), 'stale');
});

test('never back in time, but an old fix still counts as a sign of life', () => {
  const fleet = createFleet();
  applyFix(fleet, 't1', { ts: '2026-12-01T09:00:00Z', lat: 52, lon: 13 }, NOW - 20 * 60000);
  assert.equal(applyFix(fleet, 't1', { ts: '2026-12-01T08:00:00Z', lat: 50, lon: 10 }, NOW), null);
  const dev = fleet.devices.get('t1');
  assert.equal(dev.pos.lat, 52);
  assert.equal(dev.received, NOW);
  assert.equal(applyFix(fleet, 't1', { ts: 'x', lat: 95, lon: 10 }, NOW), null);
  assert.equal(applyFix(fleet, '', { ts: 1, lat: 1, lon: 1 }, NOW), null);
});

test('marker look: arrow along the heading when moving, dot when stopped', () => {
  const fleet = createFleet();
  const moving = applyFix(fleet, 'a', { ts: 1, lat: 1, lon: 1, speed: 10, heading: -90 }, NOW);
  const stopped = applyFix(fleet, 'b', { ts: 1, lat: 1, lon: 1, speed: 0, heading: 90 }, NOW);
  assert.deepEqual(markerLook(moving, NOW), { state: 'moving', color: '#1a7f37', shape: 'arrow', heading: 270, radius: 6 });
  assert.equal(markerLook(stopped, NOW).shape, 'dot');
  assert.equal(markerLook(stopped, NOW, 'b').state, 'selected');
  assert.equal(markerLook(stopped, NOW, 'b').radius, 9);
});

test('list: filter and sorts', () => {
  const fleet = createFleet();
  applyFix(fleet, 'truck-10', { ts: 1, lat: 1, lon: 1, speed: 1 }, NOW - 5);
  applyFix(fleet, 'truck-9', { ts: 1, lat: 1, lon: 1, speed: 3 }, NOW);
  applyFix(fleet, 'van-1', { ts: 1, lat: 1, lon: 1 }, NOW - 9);
  assert.deepEqual(listDevices(fleet, 'TRUCK').map((d) => d.id), ['truck-9', 'truck-10']);
  assert.deepEqual(listDevices(fleet, '', 'seen').map((d) => d.id), ['truck-9', 'truck-10', 'van-1']);
  assert.deepEqual(listDevices(fleet, '', 'speed').map((d) => d.id), ['truck-9', 'truck-10', 'van-1']);
});

test('sprite keys: one per state and 10° of heading, dots share one per state', () => {
  const keys = new Set();
  for (const state of ['moving', 'stopped', 'stale', 'selected']) {
    keys.add(markerKey({ state, shape: 'dot', heading: 90 }));
    for (let heading = 0; heading < 360; heading += 10) keys.add(markerKey({ state, shape: 'arrow', heading }));
  }
  assert.equal(keys.size, 4 * 37);
  assert.equal(markerKey({ state: 'moving', shape: 'arrow', heading: 356 }), markerKey({ state: 'moving', shape: 'arrow', heading: 0 }));
  assert.equal(markerKey({ state: 'moving', shape: 'arrow', heading: 14 }), markerKey({ state: 'moving', shape: 'arrow', heading: 10 }));
  assert.equal(markerKey({ state: 'stale', shape: 'dot', heading: null }), markerKey({ state: 'stale', shape: 'dot', heading: 90 }));
});

test('a cluster shows stale when most are, else moving when half of the rest move', () => {
  assert.equal(clusterState(1, 1, 3), 'stale');
  assert.equal(clusterState(2, 1, 2), 'moving');
  assert.equal(clusterState(1, 2, 2), 'stopped');
  assert.equal(clusterState(0, 0, 0), 'stopped');
  assert.equal(clusterState(5, 5, 0), 'moving');
});
