// A screen-space grid over the points one frame draws: built in O(n) with typed arrays
// (a counting sort by cell, no object or string per point), it answers "which point is
// under the mouse" and groups crowded cells into clusters. Pure; unit-tested.

export class ScreenGrid {
  /** `cell`: cell size in px; the grid covers [0, w) x [0, h) (points outside are kept out). */
  constructor(cell = 40) {
    this.cell = cell;
    this.n = 0;
    this.xs = new Float32Array(0);
    this.ys = new Float32Array(0);
    this.cellOf = new Int32Array(0);
    this.start = new Int32Array(1);
    this.order = new Int32Array(0);
    this.cols = 0;
    this.rows = 0;
  }

  /** Build from the first n points of xs/ys (canvas pixels). */
  build(xs, ys, n, w, h) {
    const cell = this.cell;
    this.cols = Math.max(1, Math.ceil(w / cell));
    this.rows = Math.max(1, Math.ceil(h / cell));
    const cells = this.cols * this.rows;
    if (this.cellOf.length < n) { this.cellOf = new Int32Array(n); this.order = new Int32Array(n); }
    if (this.start.length < cells + 1) this.start = new Int32Array(cells + 1);
    const { cellOf, order, start, cols, rows } = this;
    start.fill(0, 0, cells + 1);
    for (let i = 0; i < n; i += 1) {
      const cx = Math.min(cols - 1, Math.max(0, Math.floor(xs[i] / cell)));
      const cy = Math.min(rows - 1, Math.max(0, Math.floor(ys[i] / cell)));
      const c = cy * cols + cx;
      cellOf[i] = c;
      start[c + 1] += 1;
    }
    for (let c = 0; c < cells; c += 1) start[c + 1] += start[c];
    const fill = start.slice(0, cells);
    for (let i = 0; i < n; i += 1) { order[fill[cellOf[i]]] = i; fill[cellOf[i]] += 1; }
    this.xs = xs; this.ys = ys; this.n = n;
    return this;
  }

  /** How many points fall in cell c. */
  count(c) { return this.start[c + 1] - this.start[c]; }

  /** The points of cell c (indices into xs/ys). */
  members(c) { return this.order.subarray(this.start[c], this.start[c + 1]); }

  /** The cell of a canvas point, or -1 outside the grid. */
  cellAt(x, y) {
    const cx = Math.floor(x / this.cell);
    const cy = Math.floor(y / this.cell);
    return cx < 0 || cy < 0 || cx >= this.cols || cy >= this.rows ? -1 : cy * this.cols + cx;
  }

  /** Index of the point nearest (x, y) within maxDist px, or -1; `skip(i)` leaves points out. */
  nearest(x, y, maxDist = 10, skip = null) {
    const cell = this.cell;
    const reach = Math.ceil(maxDist / cell);
    const cx = Math.floor(x / cell);
    const cy = Math.floor(y / cell);
    let best = -1;
    let bestD = maxDist * maxDist;
    for (let j = Math.max(0, cy - reach); j <= Math.min(this.rows - 1, cy + reach); j += 1) {
      for (let i = Math.max(0, cx - reach); i <= Math.min(this.cols - 1, cx + reach); i += 1) {
        for (const p of this.members(j * this.cols + i)) {
          if (skip && skip(p)) continue;
          const d = (this.xs[p] - x) ** 2 + (this.ys[p] - y) ** 2;
          if (d <= bestD) { bestD = d; best = p; }
        }
      }
    }
    return best;
  }
}

/**
 * Group the grid's crowded cells: a cell holding at least `minCount` points becomes one
 * cluster at their centroid; the points of the other cells stay single. `keep(i)` true
 * keeps a point single wherever it is (the selected device). Returns
 * {clusters: [{x, y, count, cell, members}], singles: number[], clusterOfCell: Int32Array}.
 */
export function clusterCells(grid, minCount, keep = () => false) {
  const cells = grid.cols * grid.rows;
  const clusterOfCell = new Int32Array(cells).fill(-1);
  const clusters = [];
  const singles = [];
  for (let c = 0; c < cells; c += 1) {
    const n = grid.count(c);
    if (n === 0) continue;
    const all = grid.members(c);
    if (n < minCount) { for (const i of all) singles.push(i); continue; }
    const members = [];
    let sx = 0;
    let sy = 0;
    for (const i of all) {
      if (keep(i)) { singles.push(i); continue; }
      members.push(i); sx += grid.xs[i]; sy += grid.ys[i];
    }
    if (members.length < minCount) { for (const i of members) singles.push(i); continue; }
    clusterOfCell[c] = clusters.length;
    clusters.push({ x: sx / members.length, y: sy / members.length, count: members.length, cell: c, members });
  }
  return { clusters, singles, clusterOfCell };
}

/** Short count text for a cluster: 7, 42, 999, 1.2k, 12k. */
export function countLabel(n) {
  if (n < 1000) return String(n);
  if (n < 10000) return `${(Math.floor(n / 100) / 10).toFixed(1).replace(/\.0$/, '')}k`;
  return `${Math.floor(n / 1000)}k`;
}

/** The radius (px) of a cluster's bubble, growing with the log of its size. */
export function clusterRadius(n) {
  return Math.min(26, Math.round(11 + 3.2 * Math.log10(Math.max(1, n)) * 1.5));
}
