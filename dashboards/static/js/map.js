// The map of both pages: tiles from the server's setting (SHIPTRACK_MAP_TILES_URL, with
// its attribution), and under everything a built-in base layer of coastlines and borders
// (Natural Earth, npm `world-atlas`, via `topojson-client`) so the map is readable when
// tiles cannot load (offline, behind a proxy, or tiles switched off).

/** Escape text for Leaflet's attribution control, which takes HTML. */
export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

const BASE_STYLE = {
  land: { stroke: false, fill: true, fillColor: '#eef0ea', fillOpacity: 1 },
  borders: { color: '#9aa4ad', weight: 0.8, fill: false, dashArray: '3 3' },
  coast: { color: '#6b7f95', weight: 1.1, fill: false },
};

/** Load the TopoJSON base layer into `pane`; resolves to the layer group, or null. */
export async function addBaseLayer(L, map, mapConfig, pane = 'basePane') {
  if (!mapConfig.base_layer || !mapConfig.topojson) return null;
  const [topojson, topology] = await Promise.all([
    import(mapConfig.topojson),
    fetch(mapConfig.base_layer, { cache: 'force-cache' }).then((r) => {
      if (!r.ok) throw new Error(`base layer: HTTP ${r.status}`);
      return r.json();
    }),
  ]);
  const countries = topology.objects.countries;
  const renderer = L.canvas({ pane, padding: 0.5 });
  const common = { pane, renderer, interactive: false };
  const land = topojson.merge(topology, countries.geometries);
  const borders = topojson.mesh(topology, countries, (a, b) => a !== b);
  const coast = topojson.mesh(topology, countries, (a, b) => a === b);
  const group = L.layerGroup([
    L.geoJSON(land, { ...common, style: BASE_STYLE.land }),
    L.geoJSON(borders, { ...common, style: BASE_STYLE.borders }),
    L.geoJSON(coast, { ...common, style: BASE_STYLE.coast }),
  ]).addTo(map);
  map.getContainer().dataset.baseLayer = 'ready';
  return group;
}

/**
 * A Leaflet map in `element` with the configured tiles over the base layer. Returns
 * {map, tiles, base} where `base` is a promise of the base layer (null if not installed).
 */
export function createMap(L, element, config, options = {}) {
  const mapConfig = config.map || {};
  const map = L.map(element, { worldCopyJump: true, zoomControl: true, ...options });
  map.createPane('basePane');
  map.getPane('basePane').style.zIndex = 150; // under the tiles (200)
  map.getContainer().style.background = '#c9dbe9'; // sea, when tiles are missing
  let tiles = null;
  if (mapConfig.tiles_url) {
    tiles = L.tileLayer(mapConfig.tiles_url, {
      maxZoom: mapConfig.max_zoom || 19,
      attribution: escapeHtml(mapConfig.attribution || ''),
      crossOrigin: false,
    }).addTo(map);
    // A tile that fails stays transparent, so the base layer shows through.
    tiles.on('tileerror', (ev) => { if (ev.tile) ev.tile.style.visibility = 'hidden'; });
  }
  map.attributionControl.addAttribution('Natural Earth');
  L.control.scale({ imperial: false }).addTo(map);
  const base = addBaseLayer(L, map, mapConfig).catch((err) => {
    map.getContainer().dataset.baseLayer = 'failed';
    console.warn('base layer not loaded:', err);
    return null;
  });
  if (!mapConfig.base_layer) {
    map.getContainer().dataset.baseLayer = 'missing';
    if (mapConfig.install_hint) {
      const note = L.control({ position: 'bottomleft' });
      note.onAdd = () => {
        const div = L.DomUtil.create('div', 'map-hint');
        div.textContent = `Built-in base map not installed (${mapConfig.install_hint}).`;
        return div;
      };
      note.addTo(map);
    }
  }
  return { map, tiles, base };
}

/** The page configuration from the server (/config.json), with safe defaults. */
export async function loadConfig() {
  const fallback = {
    map: { tiles_url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', attribution: '© OpenStreetMap contributors', max_zoom: 19 },
    brand: {}, exceptions: { kinds: {}, customer_codes: [] }, statuses: [], stale_after_s: 600,
  };
  try {
    const r = await fetch('/config.json', { cache: 'no-store' });
    if (!r.ok) return fallback;
    const body = await r.json();
    return { ...fallback, ...body, map: { ...fallback.map, ...(body.map || {}) } };
  } catch {
    return fallback;
  }
}
