// Devices on a canvas: one <canvas> over the map draws every marker (an arrow along the
// heading when moving, a dot when stopped; colour by state) in one pass per animation
// frame, each a copy of a sprite drawn once per colour, shape and 10° of heading, so 10,000 devices pan and zoom smoothly where 10,000 DOM or SVG markers would
// not. Hit-testing uses a screen-space grid (state.js GridIndex). Labels: on hover, and
// drawn beside each marker once zoomed in (when few enough are in view).

import { GridIndex, markerLook } from './state.js';

const LABEL_ZOOM = 12;
const MAX_LABELS = 400;

export class FleetLayer {
  constructor(L, map, fleet, { onClick = () => {}, staleMs, selected = () => null } = {}) {
    this.L = L;
    this.map = map;
    this.fleet = fleet;
    this.onClick = onClick;
    this.staleMs = staleMs;
    this.selected = selected;
    this.grid = new GridIndex(24);
    this.hover = null;
    this.frame = null;
    this.drawMs = [];
    this.sprites = new Map();
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'fleet-canvas';
    Object.assign(this.canvas.style, { position: 'absolute', left: 0, top: 0, zIndex: 450, pointerEvents: 'none' });
    map.getContainer().appendChild(this.canvas);
    this.tip = document.createElement('div');
    this.tip.className = 'fleet-tip';
    this.tip.hidden = true;
    map.getContainer().appendChild(this.tip);
    const redraw = () => this.schedule();
    map.on('move zoom resize viewreset', redraw);
    map.on('zoomstart', () => { this.canvas.style.visibility = 'hidden'; });
    map.on('zoomend', () => { this.canvas.style.visibility = 'visible'; this.schedule(); });
    map.on('mousemove', (ev) => this.onMove(ev));
    map.on('mouseout', () => this.setHover(null));
    map.on('click', (ev) => {
      const dev = this.pick(ev.containerPoint);
      if (dev) onClick(dev);
    });
    this.resize();
  }

  resize() {
    const size = this.map.getSize();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(size.x * ratio);
    this.canvas.height = Math.round(size.y * ratio);
    this.canvas.style.width = `${size.x}px`;
    this.canvas.style.height = `${size.y}px`;
    if (this.ratio !== ratio && this.sprites) this.sprites.clear();
    this.ratio = ratio;
  }

  schedule() {
    if (this.frame === null) this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  pick(point) {
    return this.grid.nearest(point.x, point.y, 10);
  }

  onMove(ev) {
    this.setHover(this.pick(ev.containerPoint), ev.containerPoint);
  }

  setHover(dev, point) {
    this.hover = dev;
    this.map.getContainer().style.cursor = dev ? 'pointer' : '';
    if (!dev) { this.tip.hidden = true; return; }
    const speed = typeof dev.pos.speed === 'number' ? ` · ${Math.round(dev.pos.speed * 3.6)} km/h` : '';
    this.tip.textContent = `${dev.id}${speed}`;
    this.tip.style.transform = `translate(${Math.round(point.x + 12)}px, ${Math.round(point.y - 28)}px)`;
    this.tip.hidden = false;
  }

  draw() {
    const started = performance.now();
    const size = this.map.getSize();
    if (Math.round(size.x * this.ratio) !== this.canvas.width
        || Math.round(size.y * this.ratio) !== this.canvas.height) this.resize();
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    ctx.clearRect(0, 0, size.x, size.y);
    this.grid.clear();
    const now = Date.now();
    const selectedId = this.selected();
    const zoom = this.map.getZoom();
    // container point = projected point at this zoom - pixel origin - layer point of the
    // container's corner; the projection (the costly part) is cached per device and zoom
    const origin = this.map.getPixelOrigin();
    const corner = this.map.containerPointToLayerPoint([0, 0]);
    const dx = -origin.x - corner.x;
    const dy = -origin.y - corner.y;
    const inView = [];
    const looks = [];
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
      if (p.x < -20 || p.y < -20 || p.x > size.x + 20 || p.y > size.y + 20) continue;
      const look = markerLook(dev, now, selectedId, this.staleMs);
      this.grid.add(p.x, p.y, dev);
      if (look.state === 'selected') { selected = { dev, p, look }; continue; }
      inView.push({ dev, p });
      looks.push(look);
    }
    for (let i = 0; i < looks.length; i += 1) this.stamp(ctx, inView[i].p, looks[i]);
    if (selected) { this.stamp(ctx, selected.p, selected.look); inView.push(selected); }
    if (zoom >= LABEL_ZOOM && inView.length <= MAX_LABELS) this.labels(ctx, inView);
    this.inView = inView.length;
    this.drawMs.push(performance.now() - started);
    if (this.drawMs.length > 120) this.drawMs.shift();
  }

  /** Draw one marker from its sprite (drawn once per colour, shape and 10° of heading). */
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

  /** Median time of the last draws, in ms (shown in the browser test's figures). */
  medianDrawMs() {
    const sorted = [...this.drawMs].sort((a, b) => a - b);
    return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
  }
}
