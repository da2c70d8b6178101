// The fleet layer as it was before the clustered layer (commit 82d0c5c's dashboards/static/js/fleetlayer.js
// with state.js's GridIndex inlined), kept only as the 'before' of the browser test's
// measurement: that test serves it in place of /static/js/fleetlayer.js on a second page.

// Devices on a canvas: one <canvas> in a map pane draws every marker (an arrow along the
// heading when moving, a dot when stopped; colour by state), each a copy of a sprite drawn
// once per colour, shape and 10° of heading. The canvas sits in Leaflet's map pane, so a
// drag moves it with the map at the compositor's pace and it is redrawn only when the
// move ends, the zoom changes or positions arrive (at most once per animation frame); it
// covers the view plus a margin, so a drag shows markers that were already drawn.
// Hit-testing uses a grid of the drawn points (state.js GridIndex). Labels: on hover, and
// beside each marker once zoomed in (when few enough are in view).

import { markerLook } from './state.js';

const LABEL_ZOOM = 12;
const MAX_LABELS = 400;
const PAD = 0.25; // margin around the view, as a fraction of its size, on each side

export class FleetLayer {
  constructor(L, map, fleet, { onClick = () => {}, staleMs, selected = () => null } = {}) {
    this.L = L;
    this.map = map;
    this.fleet = fleet;
    this.staleMs = staleMs;
    this.selected = selected;
    this.grid = new GridIndex(24);
    this.frame = null;
    this.drawMs = [];
    this.sprites = new Map();
    this.origin = L.point(0, 0); // layer point of the canvas's top left corner
    map.createPane('fleetPane').style.zIndex = 450; // over fences (400), under tooltips
    this.canvas = L.DomUtil.create('canvas', 'fleet-canvas leaflet-zoom-hide', map.getPane('fleetPane'));
    this.canvas.style.pointerEvents = 'none';
    this.tip = L.DomUtil.create('div', 'fleet-tip', map.getContainer());
    this.tip.hidden = true;
    map.on('moveend zoomend resize viewreset', () => this.schedule());
    map.on('mousemove', (ev) => this.setHover(this.pick(ev.containerPoint), ev.containerPoint));
    map.on('mouseout', () => this.setHover(null));
    map.on('click', (ev) => {
      const dev = this.pick(ev.containerPoint);
      if (dev) onClick(dev);
    });
  }

  setClustering() {} // (added: today's app.js calls it; this layer never clustered)

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  /** The device drawn nearest a container point (within 10 px), or null. */
  pick(point) {
    const p = this.map.containerPointToLayerPoint(point);
    return this.grid.nearest(p.x - this.origin.x, p.y - this.origin.y, 10);
  }

  setHover(dev, point) {
    this.map.getContainer().style.cursor = dev ? 'pointer' : '';
    if (!dev) { this.tip.hidden = true; return; }
    const speed = typeof dev.pos.speed === 'number' ? ` · ${Math.round(dev.pos.speed * 3.6)} km/h` : '';
    this.tip.textContent = `${dev.id}${speed}`;
    this.tip.style.transform = `translate(${Math.round(point.x + 12)}px, ${Math.round(point.y - 28)}px)`;
    this.tip.hidden = false;
  }

  /** Size and place the canvas over the view plus its margin; returns its size. */
  place() {
    const size = this.map.getSize();
    const w = Math.round(size.x * (1 + 2 * PAD));
    const h = Math.round(size.y * (1 + 2 * PAD));
    const ratio = window.devicePixelRatio || 1;
    if (ratio !== this.ratio) { this.sprites.clear(); this.ratio = ratio; }
    if (this.canvas.width !== Math.round(w * ratio) || this.canvas.height !== Math.round(h * ratio)) {
      this.canvas.width = Math.round(w * ratio);
      this.canvas.height = Math.round(h * ratio);
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    this.origin = this.map.containerPointToLayerPoint([-size.x * PAD, -size.y * PAD]).round();
    this.L.DomUtil.setPosition(this.canvas, this.origin);
    return { w, h };
  }

  draw() {
    const started = performance.now();
    const { w, h } = this.place();
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    this.grid.clear();
    const now = Date.now();
    const selectedId = this.selected();
    const zoom = this.map.getZoom();
    // canvas point = projected point at this zoom - pixel origin - the canvas's corner;
    // the projection (the costly part) is cached per device and zoom
    const pixelOrigin = this.map.getPixelOrigin();
    const dx = -pixelOrigin.x - this.origin.x;
    const dy = -pixelOrigin.y - this.origin.y;
    const view = this.map.getSize();
    const vx = view.x * PAD;
    const vy = view.y * PAD;
    const drawn = [];
    let inView = 0;
    let selected = null;
    for (const dev of this.fleet.devices.values()) {
      const { lat, lon } = dev.pos;
      if (typeof lat !== 'number') continue;
      let proj = dev.ui.proj;
      if (!proj || proj.z !== zoom || proj.lat !== lat || proj.lon !== lon) {
        const q = this.map.project([lat, lon], zoom);
        proj = { z: zoom, lat, lon, x: q.x, y: q.y };
        dev.ui.proj = proj;
      }
      const p = { x: proj.x + dx, y: proj.y + dy };
      if (p.x < -10 || p.y < -10 || p.x > w + 10 || p.y > h + 10) continue;
      if (p.x >= vx && p.y >= vy && p.x <= vx + view.x && p.y <= vy + view.y) inView += 1;
      const look = markerLook(dev, now, selectedId, this.staleMs);
      this.grid.add(p.x, p.y, dev);
      if (look.state === 'selected') { selected = { dev, p, look }; continue; }
      this.stamp(ctx, p, look);
      drawn.push({ dev, p });
    }
    if (selected) { this.stamp(ctx, selected.p, selected.look); drawn.push(selected); }
    if (zoom >= LABEL_ZOOM && drawn.length <= MAX_LABELS) this.labels(ctx, drawn);
    this.inView = inView;
    this.drawMs.push(performance.now() - started);
    if (this.drawMs.length > 120) this.drawMs.shift();
  }

  /** Draw one marker from its sprite. */
  stamp(ctx, p, look) {
    const bucket = look.shape === 'arrow' ? Math.round(look.heading / 10) % 36 : 0;
    const key = `${look.color}|${look.shape}|${bucket}|${look.radius}`;
    let sprite = this.sprites.get(key);
    if (!sprite) { sprite = this.sprite(look, bucket * 10); this.sprites.set(key, sprite); }
    ctx.drawImage(sprite, Math.round(p.x - sprite.half), Math.round(p.y - sprite.half),
      sprite.size, sprite.size);
  }

  sprite(look, heading) {
    const half = look.radius + 4;
    const size = half * 2;
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = Math.ceil(size * this.ratio);
    const c = canvas.getContext('2d');
    c.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    c.fillStyle = look.color;
    c.strokeStyle = '#ffffff';
    c.lineWidth = 1.5;
    c.beginPath();
    if (look.shape === 'arrow') {
      const r = look.radius + 2;
      const a = (heading * Math.PI) / 180; // from north, clockwise
      c.moveTo(half + Math.sin(a) * r, half - Math.cos(a) * r);
      c.lineTo(half + Math.sin(a + 2.5) * r, half - Math.cos(a + 2.5) * r);
      c.lineTo(half - Math.sin(a) * r * 0.35, half + Math.cos(a) * r * 0.35);
      c.lineTo(half + Math.sin(a - 2.5) * r, half - Math.cos(a - 2.5) * r);
      c.closePath();
    } else {
      c.arc(half, half, look.radius, 0, Math.PI * 2);
    }
    c.fill();
    c.stroke();
    return Object.assign(canvas, { half, size });
  }

  labels(ctx, items) {
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    ctx.lineWidth = 3;
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.fillStyle = '#1f2328';
    for (const { dev, p } of items) {
      ctx.strokeText(dev.id, p.x + 10, p.y);
      ctx.fillText(dev.id, p.x + 10, p.y);
    }
  }

  /** Median time of the last draws, in ms (the browser test reports it). */
  medianDrawMs() {
    const sorted = [...this.drawMs].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  }
}

/** A screen-space grid of points for hit-testing thousands of markers. */
export class GridIndex {
  constructor(cell = 24) {
    this.cell = cell;
    this.cells = new Map();
  }

  clear() { this.cells.clear(); }

  key(cx, cy) { return `${cx},${cy}`; }

  add(x, y, item) {
    const k = this.key(Math.floor(x / this.cell), Math.floor(y / this.cell));
    let bucket = this.cells.get(k);
    if (!bucket) { bucket = []; this.cells.set(k, bucket); }
    bucket.push({ x, y, item });
  }

  /** The item nearest to (x, y) within maxDist pixels, or null. */
  nearest(x, y, maxDist = 10) {
    const cx = Math.floor(x / this.cell);
    const cy = Math.floor(y / this.cell);
    const reach = Math.ceil(maxDist / this.cell);
    let best = null;
    let bestD = maxDist * maxDist;
    for (let i = cx - reach; i <= cx + reach; i += 1) {
      for (let j = cy - reach; j <= cy + reach; j += 1) {
        for (const p of this.cells.get(this.key(i, j)) || []) {
          const d = (p.x - x) ** 2 + (p.y - y) ** 2;
          if (d <= bestD) { bestD = d; best = p.item; }
        }
      }
    }
    return best;
  }
}
