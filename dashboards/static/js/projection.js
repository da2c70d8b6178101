// Web Mercator (EPSG:3857, Leaflet's default CRS) with plain arithmetic, so the fleet
// layer projects 10,000 devices without a Leaflet call each. Pure; unit-tested.
//
// A world point is in pixels of zoom 0 (the world is 256 px wide); at zoom z a layer
// multiplies by 2^z. Same numbers as Leaflet's `map.project(latlng, z)`.

export const TILE = 256;
export const MAX_LAT = 85.0511287798; // Leaflet's SphericalMercator.MAX_LATITUDE

/** x of a longitude at zoom 0. */
export function worldX(lon) {
  return TILE * (0.5 + lon / 360);
}

/** y of a latitude at zoom 0 (clamped to the Mercator square). */
export function worldY(lat) {
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  return TILE * (0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI));
}

/** The pixel scale of a (possibly fractional) zoom. */
export function zoomScale(zoom) {
  return 2 ** zoom;
}

/**
 * The affine map from world points to a canvas: canvas = world * scale - offset, where
 * offset is the map's pixel origin plus the canvas's corner (layer point).
 */
export function toCanvas(zoom, pixelOrigin, corner) {
  return { scale: zoomScale(zoom), ox: pixelOrigin.x + corner.x, oy: pixelOrigin.y + corner.y };
}

/** Latitude and longitude of a world point (the inverse, for cluster bounds). */
export function unproject(x, y) {
  const lon = (x / TILE - 0.5) * 360;
  const lat = (2 * Math.atan(Math.exp((0.5 - y / TILE) * 2 * Math.PI)) - Math.PI / 2) * (180 / Math.PI);
  return { lat, lon };
}
