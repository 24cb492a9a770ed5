// The console talks to the control plane's own /v1 API, authenticated by its session cookie.
// Every write carries the session's CSRF token.

let csrfToken = "";

/** @param {string} token */
export function setCsrfToken(token) {
  csrfToken = token;
}

/** An error response of the API: `{ error: { code, message, problems? } }`. */
export class ApiError extends Error {
  /** @param {number} status @param {any} body @param {Headers} headers */
  constructor(status, body, headers) {
    super(body?.error?.message ?? `request failed (${status})`);
    this.status = status;
    this.code = body?.error?.code ?? "unknown";
    /** @type {{ path: string, message: string, policyId?: string, field?: string, line?: number }[]} */
    this.problems = Array.isArray(body?.error?.problems) ? body.error.problems : [];
    this.headers = headers;
  }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, headers?: Record<string, string> }} [options]
 * @returns {Promise<{ data: any, headers: Headers, status: number }>}
 */
export async function request(method, path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-Warden-CSRF"] = csrfToken;
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store", body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  } catch {
    throw new ApiError(0, { error: { code: "network", message: "the control plane did not answer; check the connection and try again" } }, new Headers());
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok && response.status !== 304) {
    if (response.status === 401 && !path.startsWith("/console/session")) window.dispatchEvent(new CustomEvent("warden:signed-out"));
    throw new ApiError(response.status, data, response.headers);
  }
  return { data, headers: response.headers, status: response.status };
}

export const get = (path) => request("GET", path).then((r) => r.data);
export const post = (path, body, headers) => request("POST", path, { body, headers }).then((r) => r.data);

/** Builds `path?query` from defined, non-empty values. */
export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}
