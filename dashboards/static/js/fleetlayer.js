// Devices on a canvas: one <canvas> in a map pane draws the fleet from pre-rendered
// sprites (sprites.js: an arrow along the heading when moving, a dot when stopped, colour
// by state). Each frame projects the devices with plain arithmetic (projection.js, the
// world point cached per device), keeps those on the canvas, bins them in a screen grid
// (screengrid.js) and, below CLUSTER_MAX_ZOOM, draws a crowded cell as one bubble with
// its count. The canvas sits in Leaflet's map pane and covers the view plus a margin, so
// a drag moves it at the compositor's pace; it is redrawn (at most once per animation
// frame) when a move or zoom ends or positions arrive. Labels: on hover, and beside each
// marker from LABEL_ZOOM when few enough are drawn. A click selects a device, or zooms
// into a cluster.

import { toCanvas, worldX, worldY } from './projection.js';
import { ScreenGrid, clusterCells } from './screengrid.js';
import { Sprites } from './sprites.js';
import { STATE_INDEX, clusterState, deviceState, markerLook } from './state.js';

const LABEL_ZOOM = 12;
const MAX_LABELS = 400;
const PAD = 0.25; // margin around the view, as a fraction of its size, on each side
export const CLUSTER_CELL = 44; // px
export const CLUSTER_MIN = 5; // devices in a cell that make a cluster
export const CLUSTER_MAX_ZOOM = 14; // from this zoom on, every device is drawn

export class FleetLayer {
  constructor(L, map, fleet, { onClick = () => {}, staleMs, selected = () => null, cluster = true } = {}) {
    Object.assign(this, { L, map, fleet, staleMs, selected, clustering: cluster });
    this.grid = new ScreenGrid(CLUSTER_CELL);
    this.xs = new Float32Array(1024);
    this.ys = new Float32Array(1024);
    this.devs = [];
    this.clusters = [];
    this.clustered = new Uint8Array(0);
    this.frame = null;
    this.drawMs = [];
    this.sprites = null;
    this.origin = L.point(0, 0); // layer point of the canvas's top left corner
    Object.assign(this, { inView: 0, drawnMarkers: 0, drawnClusters: 0, clusteredDevices: 0, drawnLabels: 0 });
    map.createPane('fleetPane').style.zIndex = 450; // over fences (400), under tooltips
    this.canvas = L.DomUtil.create('canvas', 'fleet-canvas leaflet-zoom-hide', map.getPane('fleetPane'));
    this.canvas.style.pointerEvents = 'none';
    this.tip = L.DomUtil.create('div', 'fleet-tip', map.getContainer());
    this.tip.hidden = true;
    map.on('moveend zoomend resize viewreset', () => this.schedule());
    map.on('mousemove', (ev) => this.setHover(this.pick(ev.containerPoint), ev.containerPoint));
    map.on('mouseout', () => this.setHover(null));
    map.on('click', (ev) => {
      const hit = this.pick(ev.containerPoint);
      if (hit && hit.dev) onClick(hit.dev);
      else if (hit && hit.cluster) this.zoomInto(hit.cluster);
    });
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  setClustering(on) { this.clustering = Boolean(on); this.schedule(); }

  /** What is drawn under a container point: {dev} or {cluster}, or null. */
  pick(point) {
    const lp = this.map.containerPointToLayerPoint(point);
    const x = lp.x - this.origin.x;
    const y = lp.y - this.origin.y;
    for (const cluster of this.clusters) {
      if ((cluster.x - x) ** 2 + (cluster.y - y) ** 2 <= cluster.radius ** 2) return { cluster };
    }
    const i = this.grid.nearest(x, y, 10, (p) => this.clustered[p] === 1);
    return i >= 0 ? { dev: this.devs[i] } : null;
  }

  setHover(hit, point) {
    this.map.getContainer().style.cursor = hit ? 'pointer' : '';
    if (!hit) { this.tip.hidden = true; return; }
    if (hit.dev) {
      const speed = typeof hit.dev.pos.speed === 'number' ? ` · ${Math.round(hit.dev.pos.speed * 3.6)} km/h` : '';
      this.tip.textContent = `${hit.dev.id}${speed}`;
    } else {
      const [moving, stopped, stale] = hit.cluster.states;
      this.tip.textContent = `${hit.cluster.count} devices: ${moving} moving, ${stopped} stopped, ${stale} stale (click to zoom in)`;
    }
    this.tip.style.transform = `translate(${Math.round(point.x + 12)}px, ${Math.round(point.y - 28)}px)`;
    this.tip.hidden = false;
  }

  zoomInto(cluster) {
    const pts = cluster.members.map((i) => [this.devs[i].pos.lat, this.devs[i].pos.lon]);
    this.map.fitBounds(this.L.latLngBounds(pts), { padding: [40, 40], maxZoom: CLUSTER_MAX_ZOOM });
  }

  /** Size and place the canvas over the view plus its margin; returns its size. */
  place() {
    const size = this.map.getSize();
    const w = Math.round(size.x * (1 + 2 * PAD));
    const h = Math.round(size.y * (1 + 2 * PAD));
    const ratio = window.devicePixelRatio || 1;
    if (!this.sprites || ratio !== this.sprites.ratio) this.sprites = new Sprites(ratio);
    if (this.canvas.width !== Math.round(w * ratio) || this.canvas.height !== Math.round(h * ratio)) {
      this.canvas.width = Math.round(w * ratio);
      this.canvas.height = Math.round(h * ratio);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    this.origin = this.map.containerPointToLayerPoint([-size.x * PAD, -size.y * PAD]).round();
    this.L.DomUtil.setPosition(this.canvas, this.origin);
    return { w, h, view: size };
  }

  /** Project every device with a position; keep those on the canvas. Returns their count. */
  project(w, h, view) {
    const zoom = this.map.getZoom();
    const { scale, ox, oy } = toCanvas(zoom, this.map.getPixelOrigin(), this.origin);
    const size = this.fleet.devices.size;
    if (this.xs.length < size) { this.xs = new Float32Array(size * 2); this.ys = new Float32Array(size * 2); }
    const { xs, ys, devs } = this;
    const vx0 = view.x * PAD;
    const vy0 = view.y * PAD;
    let n = 0;
    let inView = 0;
    for (const dev of this.fleet.devices.values()) {
      const { lat, lon } = dev.pos;
      if (typeof lat !== 'number') continue;
      const ui = dev.ui;
      if (ui.lat !== lat || ui.lon !== lon) { ui.wx = worldX(lon); ui.wy = worldY(lat); ui.lat = lat; ui.lon = lon; }
      const x = ui.wx * scale - ox;
      const y = ui.wy * scale - oy;
      if (x < -10 || y < -10 || x > w + 10 || y > h + 10) continue;
      if (x >= vx0 && y >= vy0 && x <= vx0 + view.x && y <= vy0 + view.y) inView += 1;
      xs[n] = x; ys[n] = y; devs[n] = dev; n += 1;
    }
    devs.length = n;
    this.inView = inView;
    return n;
  }

  draw() {
    const started = performance.now();
    const { w, h, view } = this.place();
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(this.sprites.ratio, 0, 0, this.sprites.ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const n = this.project(w, h, view);
    const { xs, ys, devs } = this;
    this.grid.build(xs, ys, n, w, h);
    const now = Date.now();
    const selectedId = this.selected();
    const zoom = this.map.getZoom();
    let singles = null;
    this.clusters = [];
    if (this.clustering && zoom < CLUSTER_MAX_ZOOM) {
      const out = clusterCells(this.grid, CLUSTER_MIN, (i) => devs[i].id === selectedId);
      this.clusters = out.clusters;
      singles = out.singles;
    }
    if (this.clustered.length < n) this.clustered = new Uint8Array(xs.length);
    this.clustered.fill(0, 0, n);
    this.clusteredDevices = 0;
    for (const cluster of this.clusters) this.stampCluster(ctx, cluster, now);
    let selected = -1;
    let drawn = 0;
    const drawOne = (i) => {
      if (devs[i].id === selectedId) { selected = i; return; }
      this.stamp(ctx, i, markerLook(devs[i], now, null, this.staleMs));
      drawn += 1;
    };
    if (singles) for (const i of singles) drawOne(i);
    else for (let i = 0; i < n; i += 1) drawOne(i);
    if (selected >= 0) { this.stamp(ctx, selected, markerLook(devs[selected], now, selectedId, this.staleMs)); drawn += 1; }
    this.drawnMarkers = drawn;
    this.drawnClusters = this.clusters.length;
    this.drawnLabels = 0;
    if (zoom >= LABEL_ZOOM && drawn <= MAX_LABELS) this.labels(ctx, singles || [...Array(n).keys()]);
    this.drawMs.push(performance.now() - started);
    if (this.drawMs.length > 120) this.drawMs.shift();
  }

  /** Draw one marker from its sprite. */
  stamp(ctx, i, look) {
    const sprite = this.sprites.marker(look);
    ctx.drawImage(sprite, Math.round(this.xs[i] - sprite.half), Math.round(this.ys[i] - sprite.half),
      sprite.size, sprite.size);
  }

  stampCluster(ctx, cluster, now) {
    const states = [0, 0, 0];
    for (const i of cluster.members) {
      this.clustered[i] = 1;
      states[STATE_INDEX[deviceState(this.devs[i], now, null, this.staleMs)]] += 1;
    }
    const sprite = this.sprites.cluster(cluster.count, clusterState(...states));
    Object.assign(cluster, { states, radius: sprite.radius });
    this.clusteredDevices += cluster.count;
    ctx.drawImage(sprite, Math.round(cluster.x - sprite.half), Math.round(cluster.y - sprite.half),
      sprite.size, sprite.size);
  }

  labels(ctx, indices) {
    for (const i of indices) {
      const sprite = this.sprites.label(this.devs[i].id);
      ctx.drawImage(sprite, Math.round(this.xs[i] + 8), Math.round(this.ys[i] - sprite.h / 2), sprite.w, sprite.h);
      this.drawnLabels += 1;
    }
  }

  /** Median time of the last draws, in ms (the browser test reports it). */
  medianDrawMs() {
    const sorted = [...this.drawMs].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  }
}
