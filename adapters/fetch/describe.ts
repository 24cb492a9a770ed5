import type { FetchOptions, FetchRequest } from "ofetch";

/**
 * An outbound request as policies see it: `http.<method>` with these arguments.
 * @example
 * import { createGovernedFetch, type HttpCall } from "agent-warden/fetch";
 * const http = createGovernedFetch(warden, { toolName: (call: HttpCall) => (call.host === "api.stripe.com" ? "payments.http" : `http.${call.method.toLowerCase()}`) });
 */
export interface HttpCall {
  /** Origin and path, without the query string (query values can hold secrets; they are in `query`, where redaction reaches them). */
  url: string;
  /** Host name, without the port: `api.stripe.com`. */
  host: string | undefined;
  /** The port when the URL names one. */
  port?: number | undefined;
  path: string;
  query: Record<string, string>;
  /** Upper case: `GET`, `POST`… */
  method: string;
  /** The body as sent: objects as they are (so redaction masks their fields), JSON text parsed, forms as fields, binary bodies as a marker. */
  body?: unknown;
}

/**
 * Reads what a request will do, resolving `baseURL` and `query` the way ofetch does: the arguments a
 * governed request is decided on.
 * @example
 * import { describeRequest } from "agent-warden/fetch";
 * describeRequest("/refunds", { method: "POST", body: { amount: 2800 } }, { baseURL: "https://api.stripe.com/v1" });
 * // { url: "https://api.stripe.com/v1/refunds", host: "api.stripe.com", path: "/v1/refunds", query: {}, method: "POST", body: { amount: 2800 } }
 */
export function describeRequest(request: FetchRequest, options: FetchOptions<any>, defaults: FetchOptions<any>): HttpCall {
  const isRequest = typeof request === "object" && request !== null && "url" in request && typeof request.url === "string";
  const method = (options.method ?? defaults.method ?? (isRequest ? (request as Request).method : undefined) ?? "GET").toUpperCase();
  const target = isRequest ? (request as Request).url : String(request);
  const baseURL = options.baseURL ?? defaults.baseURL;
  const query = { ...defaults.params, ...defaults.query, ...options.params, ...options.query } as Record<string, unknown>;
  let url: URL | undefined;
  try {
    url = new URL(isRequest ? target : withBase(target, baseURL));
  } catch {
    // A relative URL with no baseURL: fetch will refuse it; the call is still described.
  }
  const params: Record<string, string> = {};
  if (url) {
    // Like ofetch, `query` applies to string URLs only.
    if (!isRequest) for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, typeof value === "string" ? value : JSON.stringify(value));
    for (const [key, value] of url.searchParams) params[key] = value;
  } else {
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  const call: HttpCall = {
    url: url ? `${url.origin}${url.pathname}` : target.split("?")[0]!,
    host: url?.hostname,
    path: url?.pathname ?? target.split("?")[0]!,
    query: params,
    method,
  };
  if (url?.port) call.port = Number(url.port);
  const body = describeBody(options.body ?? defaults.body);
  if (body !== undefined) call.body = body;
  return call;
}

/** ofetch's `withBase`: a relative path is appended to the base; an absolute URL stands alone. */
function withBase(input: string, base: string | undefined): string {
  if (!base || base === "/" || /^[a-z][a-z\d+.-]*:/i.test(input)) return input;
  const root = base.endsWith("/") ? base.slice(0, -1) : base;
  if (input.startsWith(root) && [undefined, "/", "?"].includes(input[root.length])) return input;
  return `${root}/${input.replace(/^\/+/, "")}`;
}

function describeBody(body: unknown): unknown {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") {
    const trimmed = body.trimStart();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        return JSON.parse(body);
      } catch {
        return body;
      }
    }
    return body;
  }
  if (body instanceof URLSearchParams) return Object.fromEntries(body);
  if (body instanceof FormData) {
    const fields: Record<string, string> = {};
    for (const [key, value] of body) fields[key] = typeof value === "string" ? value : `[file ${value.name}]`;
    return fields;
  }
  if (body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return "[binary]";
  if (typeof body === "object" && (typeof (body as { pipe?: unknown }).pipe === "function" || typeof (body as { getReader?: unknown }).getReader === "function")) return "[stream]";
  return body;
}
