// What the customer page says (pure; unit-tested with `node --test`): customer words for
// each status and exception code, which exceptions a customer is told about at all, the
// delay notice (consistent with the ETA and late_probability), the progress steps.

import { parseTs } from './state.js';
import { fmtDateTimeZ, fmtTimeZ } from './time.js';

export const STATUS_TEXT = {
  created: 'Order received',
  picked_up: 'Picked up',
  in_transit: 'On its way',
  out_for_delivery: 'Out for delivery',
  delivered: 'Delivered',
  attempt_failed: 'Delivery attempt failed',
  available_for_pickup: 'Ready for pickup',
  returned_to_sender: 'Returned to sender',
  cancelled: 'Cancelled',
};

export const STEPS = ['created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered'];

// Exception codes a customer is told about, in their words. The detections of the
// sender's operations (a tracker offline, a driver's legal rest, a detour, a sensor
// reading) are not facts about the parcel and stay on the dispatcher's screen.
export const EXCEPTION_TEXT = {
  delayed: 'Your shipment is delayed.',
  lost: 'We cannot locate your shipment right now. The sender is looking into it.',
  damaged: 'Your shipment was damaged on the way. The sender will contact you.',
  address_issue: 'There is a problem with the delivery address. Please contact the sender.',
  refused: 'The delivery was refused.',
  customs_hold: 'Your shipment is being held at customs.',
  weather: 'Bad weather is delaying your shipment.',
  other: 'The sender is looking into an issue with your shipment.',
};
export const DEFAULT_CUSTOMER_CODES = ['address_issue', 'customs_hold', 'damaged', 'delayed', 'lost', 'refused', 'weather'];

const STATUS_NOTE = {
  attempt_failed: 'We could not deliver your shipment. We will try again, or contact the sender.',
  available_for_pickup: 'Your shipment is waiting for you at the pickup point.',
  returned_to_sender: 'Your shipment is on its way back to the sender.',
  cancelled: 'This shipment was cancelled.',
};

export function statusText(status) {
  return STATUS_TEXT[status] || 'In progress';
}

export function statusNote(status) {
  return STATUS_NOTE[status] || null;
}

/** Each progress step as 'done' | 'current' | 'todo'; a delivered shipment is all done. */
export function stepStates(status) {
  if (status === 'delivered') return STEPS.map(() => 'done');
  const at = ['attempt_failed', 'available_for_pickup'].includes(status)
    ? STEPS.indexOf('out_for_delivery') : STEPS.indexOf(status);
  const current = at < 0 ? 0 : at;
  return STEPS.map((_, i) => (i < current ? 'done' : i === current ? 'current' : 'todo'));
}

/** The exception notice a customer sees, or null (internal or no exception). */
export function exceptionNotice(s, customerCodes = DEFAULT_CUSTOMER_CODES) {
  if (!s || !s.exception || ['delivered', 'cancelled'].includes(s.status)) return null;
  const code = s.exception_code;
  if (!code) return null; // no code: a detection of ours, not something to tell a customer
  if (code !== 'other' && !customerCodes.includes(code)) return null;
  return EXCEPTION_TEXT[code] || EXCEPTION_TEXT.other;
}

function percent(p) {
  return Math.max(1, Math.min(99, Math.round(p * 100)));
}

/**
 * The delay notice ({title, text}) or null. It never contradicts the ETA shown: "later"
 * only when the most likely time is after the promise; otherwise "may" with the chance
 * (late_probability) when the server gives one.
 */
export function delayNotice(s, tz) {
  if (!s || ['delivered', 'cancelled', 'returned_to_sender'].includes(s.status)) return null;
  const lp = typeof s.late_probability === 'number' && Number.isFinite(s.late_probability)
    ? s.late_probability : null;
  const eta = parseTs(s.eta);
  const promised = parseTs(s.promised_by);
  const risky = Boolean(s.at_risk) || (lp !== null && lp >= 0.5);
  if (promised === null) {
    return risky ? { title: 'Your delivery may take longer than planned.', text: '' } : null;
  }
  const promisedText = fmtDateTimeZ(s.promised_by, tz);
  if (eta !== null && eta > promised) {
    return {
      title: 'Your delivery will probably be late.',
      text: `It was promised by ${promisedText}; we now expect it around ${fmtDateTimeZ(s.eta, tz)}.`,
    };
  }
  if (!risky) return null;
  const chance = lp !== null ? ` (about a ${percent(lp)} % chance)` : '';
  const likely = eta !== null ? ` Most likely it arrives around ${fmtTimeZ(s.eta, tz)}, on time.` : '';
  return {
    title: 'Your delivery may be late.',
    text: `It could arrive after the promised ${promisedText}${chance}.${likely}`,
  };
}

/** The note over the map, or null when the map shows the shipment. */
export function mapNote(s, hasPosition) {
  if (!s) return null;
  if (s.status === 'delivered') return null;
  if (hasPosition) return null;
  if (['created'].includes(s.status)) return 'The map shows your shipment once it is on its way.';
  if (['cancelled', 'returned_to_sender', 'available_for_pickup'].includes(s.status)) return null;
  return 'Position not available yet.';
}

export const MILESTONE_TEXT = {
  created: 'Order received', picked_up: 'Picked up', in_transit: 'On its way',
  hub: 'Arrived at a sorting hub', out_for_delivery: 'Out for delivery', delivered: 'Delivered',
  attempt_failed: 'Delivery attempt failed', available_for_pickup: 'Ready for pickup',
  returned_to_sender: 'Returned to sender', cancelled: 'Cancelled',
};

export function milestoneText(kind) {
  return MILESTONE_TEXT[kind] || 'Update';
}
