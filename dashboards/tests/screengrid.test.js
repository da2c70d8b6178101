import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ScreenGrid, clusterCells, clusterRadius, countLabel } from '../static/js/screengrid.js';

function gridOf(points, cell = 40, w = 400, h = 400) {
  const xs = new Float32Array(points.map((p) => p[0]));
  const ys = new Float32Array(points.map((p) => p[1]));
  return new ScreenGrid(cell).build(xs, ys, points.length, w, h);
}

test('every point lands in exactly one cell, the right one', () => {
  const points = [[5, 5], [39, 39], [40, 0], [399, 399], [-3, 410], [200, 120]];
  const grid = gridOf(points);
  const seen = [];
  for (let c = 0; c < grid.cols * grid.rows; c += 1) seen.push(...grid.members(c));
  assert.deepEqual(seen.sort(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...grid.members(0)], [0, 1]);
  assert.deepEqual([...grid.members(1)], [2]);
  assert.deepEqual([...grid.members(grid.cellAt(200, 120))], [5]);
  assert.deepEqual([...grid.members(9 * 10 + 0)], [4]); // clamped to the edge cell
  assert.equal(grid.cellAt(-1, 5), -1);
});

test('nearest within reach, across cell borders, skipping what it is told to', () => {
  const grid = gridOf([[38, 10], [45, 10], [300, 300]]);
  assert.equal(grid.nearest(41, 10, 10), 0);
  assert.equal(grid.nearest(43, 10, 10), 1);
  assert.equal(grid.nearest(43, 10, 10, (i) => i === 1), 0);
  assert.equal(grid.nearest(150, 150, 10), -1);
});

test('the grid is rebuilt in place for the next frame', () => {
  const grid = gridOf([[5, 5], [6, 6], [7, 7]]);
  grid.build(new Float32Array([100, 5]), new Float32Array([100, 5]), 2, 400, 400);
  assert.equal(grid.count(0), 1);
  assert.deepEqual([...grid.members(grid.cellAt(100, 100))], [0]);
});

test('crowded cells become clusters at their centroid; the rest stay single', () => {
  const crowd = [[10, 10], [12, 14], [20, 20], [30, 10], [18, 26]];
  const grid = gridOf([...crowd, [100, 100], [102, 101], [300, 300]]);
  const { clusters, singles, clusterOfCell } = clusterCells(grid, 5);
  assert.equal(clusters.length, 1);
  assert.deepEqual(clusters[0].members, [0, 1, 2, 3, 4]);
  assert.equal(clusters[0].count, 5);
  assert.ok(Math.abs(clusters[0].x - 18) < 1e-6 && Math.abs(clusters[0].y - 16) < 1e-6);
  assert.deepEqual(singles.sort(), [5, 6, 7]);
  assert.equal(clusterOfCell[0], 0);
  assert.equal(clusterOfCell[grid.cellAt(100, 100)], -1);
  // every point is drawn once: in a cluster or single
  assert.equal(clusters.reduce((n, c) => n + c.count, 0) + singles.length, grid.n);
});

test('a kept point (the selected device) is never hidden in a cluster', () => {
  const grid = gridOf([[10, 10], [12, 14], [20, 20], [30, 10], [18, 26], [19, 19]]);
  const kept = clusterCells(grid, 5, (i) => i === 2);
  assert.deepEqual(kept.singles, [2]);
  assert.equal(kept.clusters[0].count, 5);
  const fewLeft = clusterCells(grid, 6, (i) => i === 2);
  assert.equal(fewLeft.clusters.length, 0);
  assert.equal(fewLeft.singles.length, 6);
});

test('count labels and bubble sizes', () => {
  assert.deepEqual([7, 999, 1000, 1250, 9999, 12345].map(countLabel), ['7', '999', '1k', '1.2k', '9.9k', '12k']);
  const radii = [5, 50, 500, 5000, 50000].map(clusterRadius);
  for (let i = 1; i < radii.length; i += 1) assert.ok(radii[i] >= radii[i - 1]);
  assert.ok(radii[0] >= 11 && radii[4] <= 26);
});
