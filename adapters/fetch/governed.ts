import { ofetch, type $Fetch, type CreateFetchOptions, type FetchOptions, type FetchRequest, type FetchResponse } from "ofetch";
import { isHalt, type ToolCallHandle, type Warden } from "agent-warden";
import { describeRequest, type HttpCall } from "./describe.js";
import { outgoingRedactor, type OutboundRedaction, type OutgoingRedactor, type OutgoingRequest } from "./redact.js";

/**
 * Options of `createGovernedFetch` and `createTrackedFetch`.
 * @example
 * import { createGovernedFetch } from "agent-warden/fetch";
 * const http = createGovernedFetch(warden, { defaults: { baseURL: "https://api.stripe.com/v1" }, toolName: (call) => `stripe.${call.method.toLowerCase()}` });
 */
export interface GovernedFetchOptions {
  /** Default options of every request, as for `ofetch.create`: `baseURL`, `headers`, `retry`, `timeout`… */
  defaults?: FetchOptions | undefined;
  /** The ofetch instance to wrap. Default: `ofetch`. */
  fetch?: $Fetch | undefined;
  /** The agent the requests are made for. Default: the Warden client's (or the enclosing run's). */
  agentId?: string | undefined;
  /** The tool name a request is decided and recorded as. Default: `http.<method>` (`http.get`, `http.post`…). */
  toolName?: ((call: HttpCall) => string) | undefined;
  /** Also record the parsed response body (redacted) as the call's output. Default: status only. */
  recordResponseBody?: boolean | undefined;
  /**
   * Redaction applied to the request itself before it is decided and sent: the core's rules (JSON paths,
   * `mask` by default, `remove`, `hash`) and `keys`, on the JSON body, form fields and query parameters.
   * What policies see and the ledger records is what was sent. Default: the request is sent as given.
   */
  redactBeforeSend?: OutboundRedaction | undefined;
}

type Mode = "govern" | "track";

interface Settings extends Omit<GovernedFetchOptions, "defaults" | "fetch" | "redactBeforeSend"> {
  /** `track`: record every decision, enforce none but a halt. */
  mode: Mode;
  /** Rewrites each request into what may leave the process. */
  outgoing: OutgoingRedactor | undefined;
}

/**
 * An ofetch instance whose every request is a governed tool call `http.<method>` with arguments
 * `{ url, host, path, query, method, body }`, so egress rules by host, method and path apply. A
 * blocked request throws `ToolBlockedError` before anything is sent, an approval waits, a halt aborts
 * requests in flight (`HaltedError`); the status, duration and redacted body are recorded.
 * @example
 * import { createGovernedFetch } from "agent-warden/fetch";
 * const http = createGovernedFetch(warden, { defaults: { baseURL: "https://api.stripe.com/v1" } });
 * await http("/refunds", { method: "POST", body: { charge: "ch_1", amount: 2800 } });
 */
export function createGovernedFetch(warden: Warden, options: GovernedFetchOptions = {}): $Fetch {
  return createInstance(warden, options, "govern");
}

/**
 * Like `createGovernedFetch`, but records without gating: each request's decision is recorded as if
 * every policy were in shadow mode (a would-be block is a `warn` naming it) and the request is sent.
 * Only a halt still stops it.
 * @example
 * import { createTrackedFetch } from "agent-warden/fetch";
 * const http = createTrackedFetch(warden);
 * await http("https://api.github.com/repos/unjs/ofetch");
 */
export function createTrackedFetch(warden: Warden, options: GovernedFetchOptions = {}): $Fetch {
  return createInstance(warden, options, "track");
}

function createInstance(warden: Warden, options: GovernedFetchOptions, mode: Mode): $Fetch {
  const defaults = options.defaults ?? {};
  const outgoing = options.redactBeforeSend === undefined ? undefined : outgoingRedactor(options.redactBeforeSend);
  return governedInstance(warden, (options.fetch ?? ofetch).create(defaults), defaults, { ...options, mode, outgoing });
}

function governedInstance(warden: Warden, inner: $Fetch, defaults: FetchOptions, settings: Settings): $Fetch {
  const raw = async function governedRaw(given: FetchRequest, givenOptions: FetchOptions<any> = {}): Promise<FetchResponse<any>> {
    const { request, options: requestOptions } = await outgoingOf(settings, given, givenOptions, defaults);
    const handle = await open(warden, settings, describeRequest(request, requestOptions, defaults), requestOptions.signal ?? defaults.signal ?? undefined, requestOptions.timeout ?? defaults.timeout);
    let response: FetchResponse<any>;
    try {
      response = await inner.raw(request, { ...requestOptions, ...traced(request, requestOptions.headers, handle), signal: handle.signal });
    } catch (error) {
      throw settle(handle, error);
    }
    handle.complete(outputOf(response, settings));
    return response;
  };

  const governedFetch = async function governedFetch(request: FetchRequest, requestOptions?: FetchOptions<any>) {
    return (await raw(request, requestOptions))._data;
  } as $Fetch;
  governedFetch.raw = raw as $Fetch["raw"];
  governedFetch.native = async function governedNative(input, givenInit = {}) {
    const outgoing = await outgoingOf(settings, input instanceof URL ? input.href : input, givenInit as FetchOptions<any>, {});
    const request = outgoing.request;
    const init = outgoing.options as RequestInit;
    const handle = await open(warden, settings, describeRequest(request, init as FetchOptions<any>, {}), init.signal ?? undefined);
    try {
      const response = await inner.native(request, { ...init, ...traced(request, init.headers, handle), signal: handle.signal });
      handle.complete({ status: response.status, statusText: response.statusText });
      return response;
    } catch (error) {
      throw settle(handle, error);
    }
  };
  governedFetch.create = (moreDefaults: FetchOptions, globalOptions?: CreateFetchOptions) => governedInstance(warden, inner.create(moreDefaults, globalOptions), { ...defaults, ...moreDefaults }, settings);
  return governedFetch;
}

/** The request as it may leave the process: redacted when `redactBeforeSend` says so, else as given. */
async function outgoingOf(settings: Settings, request: FetchRequest, options: FetchOptions<any>, defaults: FetchOptions<any>): Promise<OutgoingRequest> {
  return settings.outgoing === undefined ? { request, options } : settings.outgoing(request, options, defaults);
}

/**
 * Decides and records the request; throws when it may not be sent; waits for a reviewer when policy asks.
 * The call's signal aborts on a halt, with the caller's `signal` and once `timeout` ms have passed.
 */
async function open(warden: Warden, settings: Settings, call: HttpCall, signal: AbortSignal | undefined, timeout?: number): Promise<ToolCallHandle> {
  const handle = warden.beginToolCall({
    tool: settings.toolName?.(call) ?? `http.${call.method.toLowerCase()}`,
    args: call,
    agentId: settings.agentId,
    signal,
    shadow: settings.mode === "track",
  });
  // ofetch applies `timeout` only when no signal is given, and every request here is given one.
  if (timeout) handle.link(AbortSignal.timeout(timeout));
  const admitted = await handle.admit();
  if (!admitted.ok) throw admitted.error;
  return handle;
}

/**
 * The request's headers with the call's trace context (`traceparent`) added when a tracing integration
 * is set (`agent-warden/otel`), headers the caller set winning. A `Request` object keeps its own headers.
 */
function traced(request: FetchRequest, headers: ConstructorParameters<typeof Headers>[0], handle: ToolCallHandle): { headers?: Headers } {
  const trace = handle.traceHeaders();
  const keys = Object.keys(trace);
  if (keys.length === 0 || typeof request !== "string") return {};
  const merged = new Headers(headers);
  for (const key of keys) if (!merged.has(key)) merged.set(key, trace[key]!);
  return { headers: merged };
}

/**
 * Records how a request ended and returns the error to throw: the halt itself when a halt aborted it.
 * The call is recorded as the caller sees it: ofetch throws for an error status, so the call failed (its error names the status).
 */
function settle(handle: ToolCallHandle, error: unknown): unknown {
  const reason: unknown = handle.signal.aborted ? handle.signal.reason : undefined;
  handle.fail(isHalt(reason) ? reason : error);
  return isHalt(reason) ? reason : error;
}

function outputOf(response: FetchResponse<unknown>, settings: Settings): Record<string, unknown> {
  const output: Record<string, unknown> = { status: response.status, statusText: response.statusText };
  if (settings.recordResponseBody && response._data !== undefined) output.body = response._data;
  return output;
}
