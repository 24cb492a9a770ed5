import type { FetchOptions, FetchRequest } from "ofetch";
import { ConfigError, createRedactor, type RedactionOptions, type Redactor } from "agent-warden";

/**
 * What to redact from a request before it leaves the process: the core's redaction rules, applied to
 * the JSON body (and form fields) and to the query string (as one object of parameters). Only these
 * rules apply: the secret-looking keys the recorder masks (`password`, `token`…) are sent as they are,
 * since the API needs them.
 * @example
 * import { createGovernedFetch, type OutboundRedaction } from "agent-warden/fetch";
 * const redactBeforeSend: OutboundRedaction = { rules: [{ path: "$.card.number" }, { path: "$..cvc", action: "remove" }], keys: ["ssn"] };
 * const http = createGovernedFetch(warden, { redactBeforeSend });
 */
export type OutboundRedaction = Pick<RedactionOptions, "rules" | "keys">;

/** A request as it will be sent: a redacted copy of what the caller passed. */
export interface OutgoingRequest {
  request: FetchRequest;
  options: FetchOptions<any>;
}

/** Rewrites a request so that what is sent is redacted; one redactor, built once, for every request. */
export type OutgoingRedactor = (request: FetchRequest, options: FetchOptions<any>, defaults: FetchOptions<any>) => Promise<OutgoingRequest>;

/** Builds the redactor of `redactBeforeSend`; bad rules are a `ConfigError` when the instance is made, not at the first request. */
export function outgoingRedactor(redaction: OutboundRedaction): OutgoingRedactor {
  let redact: Redactor;
  try {
    redact = createRedactor({ rules: redaction.rules ?? [], keys: redaction.keys ?? [], defaults: false });
  } catch (error) {
    const issues = (error as { issues?: Array<{ path: PropertyKey[]; message: string }> }).issues;
    const detail = issues?.map((issue) => `${issue.path.map(String).join(".") || "redactBeforeSend"}: ${issue.message}`).join("; ") ?? String(error);
    throw new ConfigError(`invalid redactBeforeSend: ${detail}`, { cause: error });
  }
  return async (request, options, defaults) => {
    const outgoing: OutgoingRequest = { request, options: { ...options } };
    const body = redactBody(options.body ?? defaults.body, redact);
    if (body !== undefined) outgoing.options.body = body.value as FetchOptions<any>["body"];
    if (request instanceof Request) outgoing.request = await redactRequestObject(request, redact);
    else redactQuery(outgoing, String(request), defaults, redact);
    return outgoing;
  };
}

/**
 * The query, wherever it was given, redacted as one object of parameters. The URL's own parameters are
 * rewritten in the URL (so `.native` sends them redacted too); those of `query` and `params`, here or in
 * the defaults, go in `options.query`, which ofetch merges last, so they override every other source. A
 * removed parameter is `undefined` there, which ofetch drops.
 */
function redactQuery(outgoing: OutgoingRequest, url: string, defaults: FetchOptions<any>, redact: Redactor): void {
  const { options } = outgoing;
  const [beforeHash, hash] = splitOnce(url, "#");
  const [path, search] = splitOnce(beforeHash, "?");
  const inUrl = search === undefined ? {} : Object.fromEntries(new URLSearchParams(search));
  const given = { ...defaults.params, ...defaults.query, ...options.params, ...options.query } as Record<string, unknown>;
  const redacted = redactParams({ ...inUrl, ...given }, redact);
  if (redacted === undefined) return;
  if (Object.keys(inUrl).some((key) => !(key in given) && redacted[key] !== inUrl[key])) {
    const kept = Object.fromEntries(Object.keys(inUrl).filter((key) => !(key in given)).map((key) => [key, redacted[key]]));
    const query = new URLSearchParams(defined(kept)).toString();
    outgoing.request = `${path}${query === "" ? "" : `?${query}`}${hash === undefined ? "" : `#${hash}`}`;
  }
  if (Object.keys(given).length > 0) {
    delete options.params;
    options.query = Object.fromEntries(Object.keys(given).map((key) => [key, redacted[key]]));
  }
}

/** A `Request` carries its URL and body itself: both are read and the request rebuilt when a rule changed either. */
async function redactRequestObject(request: Request, redact: Redactor): Promise<Request> {
  const url = new URL(request.url);
  const params = redactParams(Object.fromEntries(url.searchParams), redact);
  if (params !== undefined) url.search = new URLSearchParams(defined(params)).toString();
  const text = request.body === null ? undefined : await request.clone().text();
  const body = text === undefined ? undefined : redactText(text, redact);
  if (params === undefined && body === text) return request;
  return new Request(url, { method: request.method, headers: request.headers, body: body ?? null, signal: request.signal, redirect: request.redirect, credentials: request.credentials, cache: request.cache, mode: request.mode, referrerPolicy: request.referrerPolicy, integrity: request.integrity, keepalive: request.keepalive });
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at === -1 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** The parameters redacted, every key kept (`undefined` for a removed one), or undefined when no rule changed any. */
function redactParams(params: Record<string, unknown>, redact: Redactor): Record<string, unknown> | undefined {
  const redacted = redact(params) as Record<string, unknown>;
  const keys = Object.keys(params);
  if (keys.every((key) => redacted[key] === params[key])) return undefined;
  return Object.fromEntries(keys.map((key) => [key, redacted[key]]));
}

function defined(params: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) if (value !== undefined) out[key] = typeof value === "string" ? value : JSON.stringify(value);
  return out;
}

/**
 * The body redacted, or undefined when no rule changed it: objects as ofetch will serialize them, JSON
 * text, form fields. A body without fields (binary, a stream, text that is not JSON) has nothing a rule can name.
 */
function redactBody(body: unknown, redact: Redactor): { value: unknown } | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") {
    const redacted = redactText(body, redact);
    return redacted === body ? undefined : { value: redacted };
  }
  if (body instanceof URLSearchParams) {
    const redacted = redactParams(Object.fromEntries(body), redact);
    return redacted === undefined ? undefined : { value: new URLSearchParams(defined(redacted)) };
  }
  if (body instanceof FormData) {
    const fields: Record<string, string> = {};
    for (const [key, value] of body) if (typeof value === "string") fields[key] = value;
    const redacted = redactParams(fields, redact);
    if (redacted === undefined) return undefined;
    const form = new FormData();
    for (const [key, value] of body) {
      if (typeof value !== "string") form.append(key, value);
      else if (redacted[key] !== undefined) form.append(key, String(redacted[key]));
    }
    return { value: form };
  }
  if (typeof body !== "object" || body instanceof Blob || body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return undefined;
  if (typeof (body as { pipe?: unknown }).pipe === "function" || typeof (body as { getReader?: unknown }).getReader === "function") return undefined;
  const redacted = redact(body);
  return JSON.stringify(redacted) === JSON.stringify(body) ? undefined : { value: redacted };
}

/** JSON text redacted and serialized again; other text, or JSON no rule changed, as it is. */
function redactText(text: string, redact: Redactor): string {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith("{") && !trimmed.startsWith("[")) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return text;
  }
  const redacted = JSON.stringify(redact(parsed));
  return redacted === JSON.stringify(parsed) ? text : redacted;
}
