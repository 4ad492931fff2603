// Talking to glmserve: the signed-in key, JSON calls and SSE streams, all to this origin only.
//
// The key lives in sessionStorage (gone when the tab closes) and travels only in the
// Authorization header: never in a URL, a cookie or a log line. The API decides what a key may
// see (a user key only itself); the page only hides what the API would refuse anyway.

const STORE = "glmserve.console.key";
const ME = "glmserve.console.me";

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(STORE);
  },
  get me() {
    const raw = sessionStorage.getItem(ME);
    return raw ? JSON.parse(raw) : null;
  },
  get isAdmin() {
    return this.me?.role === "admin";
  },
  save(key, me) {
    sessionStorage.setItem(STORE, key);
    sessionStorage.setItem(ME, JSON.stringify(me));
  },
  clear() {
    sessionStorage.removeItem(STORE);
    sessionStorage.removeItem(ME);
  },
};

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function headers(key) {
  return { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
}

async function errorOf(response) {
  let message = `HTTP ${response.status}`;
  let code;
  try {
    const body = await response.json();
    message = body?.error?.message || message;
    code = body?.error?.code;
  } catch {
    /* not JSON */
  }
  return new ApiError(response.status, message, code);
}

// A JSON call; `key` overrides the session's (sign-in checks a key before keeping it).
export async function api(path, { method = "GET", body, query, key, signal } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const response = await fetch(url, {
    method,
    headers: headers(key || session.key),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !key) onUnauthorized(error);
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

// POST a streaming request and call onEvent(json) for each SSE `data:` event until [DONE].
export async function stream(path, body, onEvent, signal) {
  const response = await fetch(new URL(path, location.origin), {
    method: "POST",
    headers: headers(session.key),
    body: JSON.stringify(body),
    signal,
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") return;
      onEvent(JSON.parse(data));
    }
  }
}
