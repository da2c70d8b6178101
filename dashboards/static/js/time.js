// Times shown with their zone (pure; unit-tested with `node --test`). The viewer's zone
// by default, or a given IANA zone; every absolute time a person reads carries its zone
// name ("14:05 CET"), so a dispatcher and a customer in different zones read the same.

import { parseTs } from './state.js';

export function localZone() {
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'; } catch { return 'UTC'; }
}

const cache = new Map();
function formatter(kind, timeZone, locale) {
  const key = `${kind}|${timeZone || ''}|${locale || ''}`;
  let fmt = cache.get(key);
  if (!fmt) {
    const base = { timeZone: timeZone || undefined, hour: '2-digit', minute: '2-digit' };
    const opts = {
      time: { ...base, timeZoneName: 'short' },
      timePlain: base,
      dateTime: { ...base, weekday: 'short', day: 'numeric', month: 'short', timeZoneName: 'short' },
      day: { timeZone: timeZone || undefined, weekday: 'short', day: 'numeric', month: 'short' },
      full: {
        ...base, year: 'numeric', month: 'short', day: 'numeric', second: '2-digit',
        timeZoneName: 'short',
      },
    }[kind];
    fmt = new Intl.DateTimeFormat(locale || undefined, opts);
    cache.set(key, fmt);
  }
  return fmt;
}

function format(kind, ts, timeZone, locale) {
  const t = parseTs(ts);
  if (t === null) return '–';
  try { return formatter(kind, timeZone, locale).format(t); } catch { return formatter(kind, null, locale).format(t); }
}

/** "14:05 CET" */
export const fmtTimeZ = (ts, tz, locale) => format('time', ts, tz, locale);
/** "14:05" (for a range whose zone is written once) */
export const fmtTimePlain = (ts, tz, locale) => format('timePlain', ts, tz, locale);
/** "Tue, 1 Dec, 14:05 CET" */
export const fmtDateTimeZ = (ts, tz, locale) => format('dateTime', ts, tz, locale);
/** "Tue, 1 Dec" */
export const fmtDayZ = (ts, tz, locale) => format('day', ts, tz, locale);
/** "1 Dec 2026, 14:05:09 CET" */
export const fmtFullZ = (ts, tz, locale) => format('full', ts, tz, locale);

export function sameDayIn(a, b, tz) {
  return fmtDayZ(a, tz, 'en-GB') === fmtDayZ(b, tz, 'en-GB');
}

/** "Tue, 1 Dec, 14:00 – 15:30 CET", or both ends in full when the days differ. */
export function fmtWindow(low, high, tz, locale) {
  if (parseTs(low) === null || parseTs(high) === null) return '–';
  if (sameDayIn(low, high, tz)) {
    return `${fmtDayZ(low, tz, locale)}, ${fmtTimePlain(low, tz, locale)} – ${fmtTimeZ(high, tz, locale)}`;
  }
  return `${fmtDateTimeZ(low, tz, locale)} – ${fmtDateTimeZ(high, tz, locale)}`;
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function fmtAgo(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < -60) return 'in the future';
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** A duration in seconds as "45 s", "12 min", "3 h 5 min", "2 d 4 h". */
export function fmtDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}
