// Geofences: drawn on the map and listed; created by pasting GeoJSON, by drawing a
// polygon (click the corners, click the first one or "Finish"), or a circle (click the
// centre, give a radius). POST /api/v1/geofences; the server checks the geometry.

import { el, fmtDistance, isNum, setChildren } from '../common.js';
import { HttpError, fetchAllPages, sendJson } from './api.js';

const $ = (id) => document.getElementById(id);
const STYLE = { color: '#8250df', weight: 2, opacity: 0.9, fillOpacity: 0.12 };

export function setupGeofences(ctx) {
  ctx.drawing = null;
  $('btn-new-geofence').addEventListener('click', () => openDialog(ctx));
  $('geofence-cancel').addEventListener('click', () => $('geofence-dialog').close());
  $('geofence-form').addEventListener('submit', (ev) => { ev.preventDefault(); savePasted(ctx); });
  $('btn-draw-polygon').addEventListener('click', () => startDrawing(ctx, 'polygon'));
  $('btn-draw-circle').addEventListener('click', () => startDrawing(ctx, 'circle'));
  $('btn-draw-finish').addEventListener('click', () => finishDrawing(ctx));
  $('btn-draw-cancel').addEventListener('click', () => stopDrawing(ctx));
  ctx.map.on('click', (ev) => { if (ctx.drawing) addPoint(ctx, ev.latlng); });
}

function openDialog() {
  $('geofence-error').hidden = true;
  $('geofence-dialog').showModal();
}

/** A Feature from pasted text: a Feature, or a bare geometry (named from the form). */
export function featureFromText(text, name) {
  const parsed = JSON.parse(text);
  const feature = parsed && parsed.type === 'Feature' ? parsed : { type: 'Feature', geometry: parsed, properties: {} };
  feature.properties = { ...(feature.properties || {}) };
  if (name) feature.properties.name = name;
  return feature;
}

async function create(ctx, feature) {
  const gf = await sendJson('POST', '/api/v1/geofences', feature, ctx.token);
  await loadGeofences(ctx);
  return gf;
}

async function savePasted(ctx) {
  const error = $('geofence-error');
  error.hidden = true;
  try {
    await create(ctx, featureFromText($('geofence-json').value, $('geofence-name').value.trim()));
    $('geofence-dialog').close();
  } catch (err) {
    error.textContent = err instanceof SyntaxError ? `Not JSON: ${err.message}` : err.message;
    error.hidden = false;
  }
}

function startDrawing(ctx, kind) {
  const name = $('geofence-name').value.trim();
  if (!name) { $('geofence-error').textContent = 'Give the geofence a name first.'; $('geofence-error').hidden = false; return; }
  $('geofence-dialog').close();
  ctx.drawing = { kind, name, points: [], layer: ctx.L.layerGroup().addTo(ctx.map) };
  $('draw-bar').hidden = false;
  $('draw-text').textContent = kind === 'polygon' ? `Drawing “${name}”: click the corners, then Finish.` : `Drawing “${name}”: click the centre.`;
}

function stopDrawing(ctx) {
  if (ctx.drawing) ctx.drawing.layer.remove();
  ctx.drawing = null;
  $('draw-bar').hidden = true;
}

function addPoint(ctx, ll) {
  const d = ctx.drawing;
  d.points.push([ll.lng, ll.lat]);
  d.layer.clearLayers();
  if (d.kind === 'circle') { finishDrawing(ctx); return; }
  ctx.L.polygon(d.points.map(([lon, lat]) => [lat, lon]), { ...STYLE, dashArray: '4 4' }).addTo(d.layer);
}

async function finishDrawing(ctx) {
  const d = ctx.drawing;
  if (!d) return;
  let feature;
  if (d.kind === 'circle') {
    const radius = Number($('geofence-radius').value) || 500;
    feature = { type: 'Feature', geometry: { type: 'Point', coordinates: d.points[0] }, properties: { name: d.name, radius_m: radius } };
  } else {
    if (d.points.length < 3) { $('draw-text').textContent = 'A polygon needs at least 3 corners.'; return; }
    feature = { type: 'Feature', geometry: { type: 'Polygon', coordinates: [[...d.points, d.points[0]]] }, properties: { name: d.name } };
  }
  try {
    await create(ctx, feature);
    stopDrawing(ctx);
  } catch (err) {
    $('draw-text').textContent = `Not saved: ${err.message}`;
  }
}

function draw(ctx, gf) {
  const g = gf.geometry || {};
  const props = gf.properties || {};
  const name = String(props.name || gf.id || 'geofence');
  let layer = null;
  let kind = '';
  if (g.type === 'Point' && isNum(Number(props.radius_m))) {
    const [lon, lat] = g.coordinates;
    layer = ctx.L.circle([lat, lon], { ...STYLE, radius: Number(props.radius_m) });
    kind = `circle, ${fmtDistance(Number(props.radius_m))}`;
  } else if (g.type === 'LineString') {
    layer = ctx.L.polyline(g.coordinates.map(([lon, lat]) => [lat, lon]), { ...STYLE, dashArray: '8 6', weight: 4 });
    kind = `corridor, ± ${fmtDistance(Number(props.buffer_m))}`;
  } else if (g.type === 'Polygon' || g.type === 'MultiPolygon') {
    layer = ctx.L.geoJSON({ type: 'Feature', geometry: g, properties: {} }, { style: () => STYLE });
    kind = g.type.toLowerCase();
  }
  if (!layer) return null;
  layer.bindTooltip(el('span', { text: name }), { sticky: true });
  layer.addTo(ctx.geofenceLayer);
  return { id: gf.id, name, kind, layer };
}

export async function loadGeofences(ctx) {
  let items;
  try {
    items = await fetchAllPages('/api/v1/geofences', { token: ctx.token, maxPages: 20 });
  } catch (err) {
    if (err instanceof HttpError && err.isAuth) { ctx.authFailed(); return; }
    $('geofences-note').textContent = `Geofences could not be loaded: ${err.message}`;
    return;
  }
  ctx.geofenceLayer.clearLayers();
  const fences = items.map((gf) => draw(ctx, gf)).filter(Boolean)
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { numeric: true }));
  setChildren($('geofence-list'), fences.map((gf) => el('li', {}, el('button', {
    type: 'button', class: 'link-row',
    onclick: () => {
      const b = gf.layer.getBounds ? gf.layer.getBounds() : null;
      if (b && b.isValid()) ctx.map.fitBounds(b, { padding: [40, 40], maxZoom: 16 });
      gf.layer.openTooltip();
    },
  }, el('span', { class: 'gf-name', text: gf.name }), el('span', { class: 'sub', text: gf.kind })))));
  $('geofences-note').textContent = fences.length ? '' : 'No geofences.';
  $('count-geofences').textContent = fences.length ? String(fences.length) : '';
}
