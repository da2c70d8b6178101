// Pre-rendered images for the fleet canvas: each marker look (state x heading bucket),
// each cluster bubble (state x count text) and each device label is drawn once to an
// offscreen canvas and then only copied (drawImage), which is what makes 10,000
// markers affordable without a GPU.

import { COLORS, markerKey } from './state.js';
import { clusterRadius, countLabel } from './screengrid.js';

const MAX_CACHED = 4000; // labels and clusters kept; the cache starts afresh beyond
const LABEL_FONT = '11px system-ui, sans-serif';
let probe = null; // a 1 x 1 canvas to measure label widths

function canvasOf(w, h, ratio) {
  const canvas = document.createElement('canvas');
  canvas.width = Math.ceil(w * ratio);
  canvas.height = Math.ceil(h * ratio);
  const c = canvas.getContext('2d');
  c.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { canvas, c };
}

export class Sprites {
  constructor(ratio = 1) {
    this.ratio = ratio;
    this.markers = [];
    this.clusters = new Map();
    this.labels = new Map();
  }

  /** The sprite of a marker look (markerLook in state.js). */
  marker(look) {
    const key = markerKey(look);
    return this.markers[key] || (this.markers[key] = this.drawMarker(look));
  }

  drawMarker(look) {
    const half = look.radius + 4;
    const { canvas, c } = canvasOf(half * 2, half * 2, this.ratio);
    c.fillStyle = look.color;
    c.strokeStyle = '#ffffff';
    c.lineWidth = 1.5;
    c.beginPath();
    if (look.shape === 'arrow') {
      const r = look.radius + 2;
      const a = (Math.round(look.heading / 10) * 10 * Math.PI) / 180; // from north, clockwise
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
    return Object.assign(canvas, { half, size: half * 2 });
  }

  /** The bubble of a cluster of `count` devices in `state` (clusterState in state.js). */
  cluster(count, state) {
    const text = countLabel(count);
    const key = `${state}|${text}`;
    let sprite = this.clusters.get(key);
    if (!sprite) {
      if (this.clusters.size >= MAX_CACHED) this.clusters.clear();
      sprite = this.drawCluster(text, clusterRadius(count), COLORS[state]);
      this.clusters.set(key, sprite);
    }
    return sprite;
  }

  drawCluster(text, radius, color) {
    const half = radius + 3;
    const { canvas, c } = canvasOf(half * 2, half * 2, this.ratio);
    c.globalAlpha = 0.3;
    c.fillStyle = color;
    c.beginPath(); c.arc(half, half, radius + 2, 0, Math.PI * 2); c.fill();
    c.globalAlpha = 1;
    c.beginPath(); c.arc(half, half, radius - 2, 0, Math.PI * 2); c.fill();
    c.strokeStyle = '#ffffff'; c.lineWidth = 1.5; c.stroke();
    c.fillStyle = '#ffffff';
    c.font = `600 ${radius > 16 ? 12 : 11}px system-ui, sans-serif`;
    c.textAlign = 'center';
    c.textBaseline = 'middle';
    c.fillText(text, half, half + 0.5);
    return Object.assign(canvas, { half, size: half * 2, radius });
  }

  /** A device's label (its id), outlined so it reads on any background. */
  label(text) {
    let sprite = this.labels.get(text);
    if (!sprite) {
      if (this.labels.size >= MAX_CACHED) this.labels.clear();
      if (!probe) { probe = canvasOf(1, 1, 1).c; probe.font = LABEL_FONT; }
      const w = Math.ceil(probe.measureText(text).width) + 6;
      const { canvas, c } = canvasOf(w, 16, this.ratio);
      c.font = LABEL_FONT;
      c.textBaseline = 'middle';
      c.lineWidth = 3;
      c.strokeStyle = 'rgba(255,255,255,0.9)';
      c.fillStyle = '#1f2328';
      c.strokeText(text, 3, 8);
      c.fillText(text, 3, 8);
      sprite = Object.assign(canvas, { w, h: 16 });
      this.labels.set(text, sprite);
    }
    return sprite;
  }
}
