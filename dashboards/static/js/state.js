// The fleet as the dashboard knows it: pure data and rules, no DOM, no Leaflet
// (unit-tested with `node --test`).
//
// Staleness is judged by when a fix was *received* (REST last_seen_at, or the arrival of a
// live message), never by the fix's own timestamp: during a sped-up simulation, or when a
// tracker uploads its buffer, fixes carry times hours in the past while the device is
// reporting right now. The list and the map use this one rule.

export const STALE_AFTER_MS = 10 * 60 * 1000;
export const MOVING_MPS = 0.5;

export const COLORS = {
  moving: '#1a7f37', stopped: '#0969da', stale: '#8c959f', selected: '#d4380d',
};

/** Milliseconds since the epoch from RFC 3339 or epoch seconds/milliseconds; null if bad. */
export function parseTs(ts) {
  if (ts === null || ts === undefined || ts === '') return null;
  if (typeof ts === 'number') return Number.isFinite(ts) ? (ts > 1e11 ? ts : ts * 1000) : null;
  const n = Date.parse(ts);
  return Number.isNaN(n) ? null : n;
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const FIELDS = ['ts', 'lat', 'lon', 'speed', 'heading', 'accuracy', 'alt', 'battery', 'sensors'];

export function createFleet() {
  return { devices: new Map(), version: 0 };
}

export function getDevice(fleet, id) {
  let dev = fleet.devices.get(id);
  if (!dev) {
    dev = { id, pos: {}, t: null, received: null, ui: {} };
    fleet.devices.set(id, dev);
    fleet.version += 1;
  }
  return dev;
}

/**
 * Apply one fix (REST last_position, snapshot entry or live message) received at
 * `receivedAt` (ms). Returns the device when its position changed, else null. A fix older
 * than the one shown never moves the device back in time, but still counts as a sign of
 * life.
 */
export function applyFix(fleet, id, fix, receivedAt) {
  if (typeof id !== 'string' || !id || !fix || typeof fix !== 'object') return null;
  const dev = getDevice(fleet, id);
  if (isNum(receivedAt) && (dev.received === null || receivedAt > dev.received)) {
    dev.received = receivedAt;
  }
  if (!isNum(fix.lat) || !isNum(fix.lon) || Math.abs(fix.lat) > 90 || Math.abs(fix.lon) > 180) {
    return null;
  }
  const t = parseTs(fix.ts);
  if (dev.t !== null && t !== null && t < dev.t) return null;
  for (const key of FIELDS) if (fix[key] !== undefined) dev.pos[key] = fix[key];
  dev.t = t;
  fleet.version += 1;
  return dev;
}

export function isStale(dev, now, staleMs = STALE_AFTER_MS) {
  return dev.received === null || now - dev.received > staleMs;
}

export function isMoving(dev) {
  return isNum(dev.pos.speed) && dev.pos.speed > MOVING_MPS;
}

/** The state a marker shows: 'selected' | 'stale' | 'moving' | 'stopped'. */
export function deviceState(dev, now, selectedId = null, staleMs = STALE_AFTER_MS) {
  if (dev.id === selectedId) return 'selected';
  if (isStale(dev, now, staleMs)) return 'stale';
  return isMoving(dev) ? 'moving' : 'stopped';
}

/** How to draw a device: an arrow along its heading when it moves, else a dot. */
export function markerLook(dev, now, selectedId = null, staleMs = STALE_AFTER_MS) {
  const state = deviceState(dev, now, selectedId, staleMs);
  const heading = isNum(dev.pos.heading) ? ((dev.pos.heading % 360) + 360) % 360 : null;
  const arrow = heading !== null && isMoving(dev);
  return {
    state,
    color: COLORS[state],
    shape: arrow ? 'arrow' : 'dot',
    heading,
    radius: state === 'selected' ? 9 : 6,
  };
}

export const STATE_INDEX = { moving: 0, stopped: 1, stale: 2, selected: 3 };
const HEADING_BUCKETS = 36; // sprites per 10 degrees of heading

/** A small integer naming a look's sprite: its state, and its heading bucket when an arrow. */
export function markerKey(look) {
  const bucket = look.shape === 'arrow' ? 1 + (Math.round(look.heading / 10) % HEADING_BUCKETS) : 0;
  return STATE_INDEX[look.state] * (HEADING_BUCKETS + 1) + bucket;
}

/**
 * The state a cluster shows from how many of its devices are moving, stopped and stale:
 * stale when more than half are, else moving when at least half are, else stopped.
 */
export function clusterState(moving, stopped, stale) {
  const total = moving + stopped + stale;
  if (stale * 2 > total) return 'stale';
  return moving * 2 >= total - stale && moving > 0 ? 'moving' : 'stopped';
}

/** Devices matching a filter text, sorted by 'id' | 'seen' | 'speed'. */
export function listDevices(fleet, filter = '', sort = 'id') {
  const needle = filter.trim().toLowerCase();
  const list = [...fleet.devices.values()].filter((d) => !needle || d.id.toLowerCase().includes(needle));
  if (sort === 'seen') list.sort((a, b) => (b.received ?? -Infinity) - (a.received ?? -Infinity));
  else if (sort === 'speed') list.sort((a, b) => (b.pos.speed ?? -1) - (a.pos.speed ?? -1));
  else list.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  return list;
}
