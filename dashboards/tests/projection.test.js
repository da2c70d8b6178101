import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_LAT, toCanvas, unproject, worldX, worldY, zoomScale } from '../static/js/projection.js';

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('the world square at zoom 0: 256 px, (0, 0) in the middle, clamped at the poles', () => {
  close(worldX(0), 128);
  close(worldY(0), 128);
  close(worldX(-180), 0);
  close(worldX(180), 256);
  close(worldY(MAX_LAT), 0, 1e-6);
  close(worldY(-MAX_LAT), 256, 1e-6);
  assert.equal(worldY(90), worldY(MAX_LAT));
});

test('Berlin falls in the OpenStreetMap tile 550/335 at zoom 10', () => {
  const s = zoomScale(10) / 256;
  assert.equal(Math.floor(worldX(13.405) * s), 550);
  assert.equal(Math.floor(worldY(52.52) * s), 335);
});

test('unproject inverts the projection', () => {
  for (const [lat, lon] of [[52.52, 13.405], [-33.86, 151.21], [0, 0], [70, -150]]) {
    const back = unproject(worldX(lon), worldY(lat));
    close(back.lat, lat, 1e-9);
    close(back.lon, lon, 1e-9);
  }
});

test('canvas offset: world * scale minus pixel origin and canvas corner', () => {
  const t = toCanvas(6, { x: 8000, y: 5000 }, { x: -100, y: -50 });
  assert.deepEqual(t, { scale: 64, ox: 7900, oy: 4950 });
  close(worldX(10.5) * t.scale - t.ox, 64 * 256 * (0.5 + 10.5 / 360) - 7900);
});
