// Human text for every event type (pure; unit-tested with `node --test`). What the
// dispatcher reads in the exceptions queue and the event log: no raw `key: value`, no ISO
// timestamps; sensors with their units, durations in words, times with their zone.

import { fmtDateTimeZ, fmtDuration } from './time.js';

const num = (v) => typeof v === 'number' && Number.isFinite(v);
const round = (v, digits = 1) => (num(v) ? String(Math.round(v * 10 ** digits) / 10 ** digits) : '?');

const STATUS_WORDS = {
  created: 'created', picked_up: 'picked up', in_transit: 'in transit',
  out_for_delivery: 'out for delivery', delivered: 'delivered', hub: 'scanned at a hub',
  attempt_failed: 'delivery attempt failed', available_for_pickup: 'available for pickup',
  returned_to_sender: 'returned to sender', cancelled: 'cancelled',
};

export function capitalize(s) {
  const text = String(s ?? '').trim();
  return text ? text[0].toUpperCase() + text.slice(1) : '';
}

/** "snake_case.kind" -> "Snake case kind", for a value nothing below knows. */
export function humanize(value) {
  return capitalize(String(value ?? '').replace(/[._]+/g, ' '));
}

// One table of sensor keys (the SPEC's `sensors` names end in their unit): the event
// texts and the device panel's readings both read it.
const SENSORS = [
  [/^temperature_c$/, 'Temperature', '°C'], [/^humidity_pct$/, 'Humidity', '%'],
  [/^shock_g$/, 'Shock', 'g'], [/^light_lux$/, 'Light', 'lx'], [/^pressure_hpa$/, 'Pressure', 'hPa'],
  [/_c$/, null, '°C'], [/_f$/, null, '°F'], [/_pct$/, null, '%'], [/_g$/, null, 'g'],
  [/_lux$/, null, 'lx'], [/_hpa$/, null, 'hPa'], [/_v$/, null, 'V'], [/_m$/, null, 'm'],
  [/_s$/, null, 's'], [/_ppm$/, null, 'ppm'],
];

/** A sensor key as a label and its unit: temperature_c -> ['Temperature', '°C']. */
export function sensorName(key) {
  const k = String(key ?? '');
  for (const [re, label, unit] of SENSORS) {
    if (re.test(k)) return [label || humanize(k.replace(re, '')), unit];
  }
  return [humanize(k), ''];
}

/** A reading with its unit, numbers to `digits` decimals at most; objects as JSON. */
export function sensorValue(key, value, digits = 1) {
  const [, unit] = sensorName(key);
  if (num(value)) return `${round(value, digits)}${unit ? ` ${unit}` : ''}`;
  return value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value ?? '?');
}

/** A sensor reading as [label, text]: temperature_c 4.2 -> ['Temperature', '4.2 °C']. */
export function sensorReading(key, value) {
  return [sensorName(key)[0], sensorValue(key, value, 2)];
}

function range(key, min, max) {
  const [, unit] = sensorName(key);
  const u = unit ? ` ${unit}` : '';
  if (num(min) && num(max)) return `${round(min)}–${round(max)}${u}`;
  if (num(max)) return `at most ${round(max)}${u}`;
  if (num(min)) return `at least ${round(min)}${u}`;
  return 'its range';
}

export function distance(m) {
  if (!num(m)) return '';
  return m < 1000 ? `${Math.round(m)} m` : `${round(m / 1000)} km`;
}

// A shipment's exception by its SPEC code (detectors', scans', carriers' and manual ones).
export const CODE_TITLES = {
  delayed: 'May arrive late', lost: 'Shipment lost', damaged: 'Shipment damaged',
  address_issue: 'Problem with the address', refused: 'Delivery refused',
  customs_hold: 'Held at customs', weather: 'Weather delay',
  sensor_excursion: 'Sensor out of range', offline: 'Tracker offline',
  route_deviation: 'Off the planned route', long_stop: 'Long stop', other: 'Exception raised',
};

const place = (d) => (d.name ? `“${d.name}”` : 'a geofence');

/** Title of an event: what happened, in a few words. */
export function eventTitle(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case 'geofence.enter': return `Entered ${place(d)}`;
    case 'geofence.exit': return `Left ${place(d)}`;
    case 'geofence.dwell': return `In ${place(d)} for ${fmtDuration(d.dwell_s) || 'a while'}`;
    case 'shipment.milestone': return `Shipment ${STATUS_WORDS[d.kind] || humanize(d.kind).toLowerCase() || 'updated'}`;
    case 'shipment.eta_changed': return 'New arrival estimate';
    case 'shipment.at_risk': return 'May arrive late';
    case 'shipment.at_risk_cleared': return 'Back on time';
    case 'shipment.exception': return CODE_TITLES[d.code || d.exception_code] || 'Exception raised';
    case 'shipment.exception_cleared': return 'Exception cleared';
    case 'device.offline': return 'Tracker offline';
    case 'device.online': return 'Tracker back online';
    case 'device.long_stop': return `Stopped for ${num(d.minutes) ? fmtDuration(d.minutes * 60) : 'a long time'}`;
    case 'device.long_stop_resolved': return 'Moving again';
    case 'sensor.excursion': return `${sensorName(d.sensor)[0]} out of range`;
    case 'sensor.excursion_resolved': return `${sensorName(d.sensor)[0]} back in range`;
    case 'route.deviation': return 'Off the planned route';
    case 'route.deviation_resolved': return 'Back on the planned route';
    case 'exception.acknowledged': return `Acknowledged by ${d.by || 'a dispatcher'}`;
    default: return humanize(ev.type) || 'Event';
  }
}

/** One line of detail (may be empty), with times in zone `tz`. */
export function eventDetail(ev, tz) {
  const d = ev.data || {};
  const at = (ts) => fmtDateTimeZ(ts, tz);
  switch (ev.type) {
    case 'geofence.enter': case 'geofence.exit': case 'geofence.dwell': return '';
    case 'shipment.milestone': {
      const by = { geofence: 'by GPS', scan: 'by a scan', manual: 'set by hand', carrier: 'by the carrier' }[d.source];
      return [d.reference, by].filter(Boolean).join(' · ');
    }
    case 'shipment.eta_changed': return d.eta ? `now ${at(d.eta)}${d.previous_eta ? `, was ${at(d.previous_eta)}` : ''}` : '';
    case 'shipment.at_risk': return [d.eta ? `expected ${at(d.eta)}` : '', d.promised_by ? `promised ${at(d.promised_by)}` : ''].filter(Boolean).join(', ');
    case 'shipment.at_risk_cleared': return d.eta ? `expected ${at(d.eta)}` : '';
    // a person's or a carrier's words; a detector's reason is machine text (its own event,
    // shown instead where the queue has it, says it in words)
    case 'shipment.exception': return d.reason && d.source !== 'device' ? String(d.reason) : '';
    case 'shipment.exception_cleared': return Array.isArray(d.cleared) && d.cleared.length
      ? `${d.cleared.length} cleared by hand` : '';
    case 'device.offline': return d.last_seen ? `last position ${at(d.last_seen)}` : '';
    case 'device.online': return d.offline_since ? `silent since ${at(d.offline_since)}` : '';
    case 'device.long_stop': return d.since ? `since ${at(d.since)}, outside known places` : 'outside known places';
    case 'device.long_stop_resolved': return num(d.minutes) ? `after ${fmtDuration(d.minutes * 60)}` : '';
    case 'sensor.excursion': return `${sensorValue(d.sensor, d.value)}, allowed ${range(d.sensor, d.min, d.max)}${d.since ? `, since ${at(d.since)}` : ''}`;
    case 'sensor.excursion_resolved': {
      const parts = [];
      if (num(d.duration_s)) parts.push(`after ${fmtDuration(d.duration_s)}`);
      if (num(d.peak)) parts.push(`peak ${sensorValue(d.sensor, d.peak)}`);
      return parts.join(', ');
    }
    case 'route.deviation': return num(d.distance_m) ? `${distance(d.distance_m)} from the route` : '';
    case 'route.deviation_resolved': return [num(d.duration_s) ? `after ${fmtDuration(d.duration_s)}` : '',
      num(d.max_distance_m) ? `at most ${distance(d.max_distance_m)} off` : ''].filter(Boolean).join(', ');
    case 'exception.acknowledged': return d.note ? `“${d.note}”` : '';
    default: return '';
  }
}

/** One event from REST or from a live {"type":"event", ...} message. */
export function normalizeEvent(raw) {
  const e = raw && typeof raw.event === 'object' && raw.event ? raw.event : raw;
  if (!e || typeof e !== 'object') return null;
  const type = typeof e.event_type === 'string' ? e.event_type
    : (typeof e.type === 'string' && e.type !== 'event' ? e.type : null);
  if (!type) return null;
  return {
    id: e.id ?? null, type, ts: e.ts ?? null, device_id: e.device_id ?? null,
    shipment_id: e.shipment_id ?? null, geofence_id: e.geofence_id ?? null,
    data: e.data && typeof e.data === 'object' ? e.data : {},
  };
}

/** Whether a live event changes the exceptions queue (by the server's pairing). */
export function touchesQueue(type, pairing) {
  if (!pairing || !pairing.kinds) return false;
  if (type === pairing.acknowledged || pairing.kinds[type]) return true;
  return Object.values(pairing.kinds).some((k) => (k.resolved_by || []).includes(type));
}
