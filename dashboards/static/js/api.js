// Calls to the API with the dispatcher's bearer token; errors as common.js HttpError.

import { HttpError, fetchAllPages, fetchJson } from '../common.js';

export { HttpError, fetchAllPages, fetchJson };

/** POST/PATCH/PUT/DELETE a JSON body; answers the parsed JSON (or null). */
export async function sendJson(method, url, body, token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
  } catch {
    throw new HttpError(0, 'network', 'network error: the server cannot be reached');
  }
  const text = await response.text();
  let parsed = null;
  if (text) { try { parsed = JSON.parse(text); } catch { parsed = null; } }
  if (!response.ok) {
    const error = parsed && parsed.error ? parsed.error : {};
    throw new HttpError(response.status, error.code || `http_${response.status}`,
      error.message || `${response.status} ${response.statusText}`.trim());
  }
  return parsed;
}

/**
 * The URL of the fleet stream: with a short-lived ticket (POST /api/v1/ws-tickets) so the
 * bearer token never sits in a URL; with ?token= where the server has no tickets (404).
 */
export async function fleetStreamUrl(token, wsUrl) {
  try {
    const body = await sendJson('POST', '/api/v1/ws-tickets', {}, token);
    if (body && body.ticket) return wsUrl(`/ws/fleet?ticket=${encodeURIComponent(body.ticket)}`);
  } catch (err) {
    if (!(err instanceof HttpError && (err.isMissing || err.status === 422))) throw err;
  }
  return wsUrl(`/ws/fleet?token=${encodeURIComponent(token)}`);
}
