// Helpers shared by the dispatcher dashboard (app.js) and the customer page (track.js).
// Plain ES module, no build step. Text from the server is only ever inserted with
// textContent / createTextNode (see el()), never as HTML.

/** Create an element: el('div', {class: 'x', text: 'hi', onclick: fn}, child, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, ...children);
  return node;
}

/** Append children (nodes or strings as text; null/undefined skipped). */
export function append(node, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace all children of node. */
export function setChildren(node, ...children) {
  node.replaceChildren();
  return append(node, ...children);
}

export class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  get isAuth() { return this.status === 401 || this.status === 403; }
  get isMissing() { return this.status === 404 || this.status === 405 || this.status === 501; }
}

/** GET a JSON document; throws HttpError with the API's {"error":{code,message}}. */
export async function fetchJson(url, { token = null, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, { headers, signal, cache: 'no-store' });
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new HttpError(0, 'network', 'network error: the server cannot be reached');
  }
  let body = null;
  const text = await response.text();
  if (text) {
    try { body = JSON.parse(text); } catch { body = null; }
  }
  if (!response.ok) {
    const error = body && typeof body === 'object' && body.error ? body.error : {};
    const detail = body && typeof body.detail === 'string' ? body.detail : null;
    throw new HttpError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || detail || `${response.status} ${response.statusText}`.trim(),
    );
  }
  return body;
}

/** Fetch every page of a list endpoint ({items, next_cursor}), up to maxPages. */
export async function fetchAllPages(url, { token, maxPages = 20 } = {}) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const sep = url.includes('?') ? '&' : '?';
    const pageUrl = cursor ? `${url}${sep}cursor=${encodeURIComponent(cursor)}` : url;
    const body = await fetchJson(pageUrl, { token });
    items.push(...listItems(body));
    cursor = body && !Array.isArray(body) ? body.next_cursor : null;
    if (!cursor) break;
  }
  return items;
}

/** Items of a list answer: {"items": [...]} or a bare array. */
export function listItems(body) {
  if (Array.isArray(body)) return body;
  if (body && Array.isArray(body.items)) return body.items;
  return [];
}

/** Absolute ws:// or wss:// URL for a path on this server, per the page's protocol. */
export function wsUrl(path) {
  const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${window.location.host}${path}`;
}

/**
 * A WebSocket that reconnects by itself with exponential backoff (1 s doubling to 30 s,
 * with jitter). Callbacks: onMessage(obj), onStatus(status, detail) where status is
 * 'connecting' | 'open' | 'waiting' | 'stopped'; shouldReconnect(closeEvent) may return
 * false (or a promise of false) to stop, e.g. when the token was refused.
 */
export class LiveSocket {
  constructor(makeUrl, { onMessage, onStatus = () => {}, shouldReconnect = () => true } = {}) {
    this.makeUrl = makeUrl;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.shouldReconnect = shouldReconnect;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.retryAt = null;
    window.addEventListener('online', () => { if (!this.stopped && !this.ws) this.reconnectNow(); });
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000, 'client closing');
    }
    this.onStatus('stopped');
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.attempt = 0;
    this.connect();
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  async connect() {
    if (this.stopped) return;
    this.onStatus('connecting');
    let ws;
    try {
      const url = await this.makeUrl(); // may be a promise (a fresh stream ticket)
      if (this.stopped) return;
      ws = new WebSocket(url);
    } catch (err) {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.onStatus('open');
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.attempt = 0; // the server talks to us: next failure starts from a short delay
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg && typeof msg === 'object') this.onMessage(msg);
    });
    ws.addEventListener('close', async (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      let again = true;
      try { again = await this.shouldReconnect(ev); } catch { again = true; }
      if (again === false) { this.stop(); return; }
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    if (this.stopped) return;
    const base = Math.min(30000, 1000 * 2 ** Math.min(this.attempt, 5));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.onStatus('waiting', { delay, attempt: this.attempt });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

// ---- number formatting (times: js/time.js) ------------------------------------------

export function isNum(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Speed in m/s (SPEC units) shown as km/h. */
export function fmtKmh(mps) {
  return isNum(mps) ? `${Math.round(mps * 3.6)} km/h` : '–';
}

export function fmtDistance(m) {
  if (!isNum(m)) return '–';
  if (m < 1000) return `${Math.round(m)} m`;
  if (m < 100000) return `${(m / 1000).toFixed(1)} km`;
  return `${Math.round(m / 1000)} km`;
}

export function fmtCoord(lat, lon) {
  return isNum(lat) && isNum(lon) ? `${lat.toFixed(5)}, ${lon.toFixed(5)}` : '–';
}

