import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { McpError, type CallToolResult, type ServerNotification, type ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { inspectToken, isHalt, WardenError, type Admission, type CallRisk, type RefusalCause, type ToolCallHandle, type Warden } from "agent-warden";

/**
 * The `_meta` key under which a caller may send its Warden delegation token with a `tools/call`.
 * @example
 * import { TOKEN_META_KEY } from "agent-warden/mcp";
 * await client.callTool({ name: "files.read", arguments: { path: "a.txt" }, _meta: { [TOKEN_META_KEY]: token } });
 */
export const TOKEN_META_KEY = "agent-warden/token";

/** The `_meta` keys that carry W3C trace context with an MCP request, as the MCP community's OpenTelemetry convention names them. */
const TRACE_META_KEYS = ["traceparent", "tracestate", "baggage"] as const;

/**
 * A request whose `params._meta` carries the call's trace context (`traceparent`, `tracestate`) from
 * the tracing integration (`warden.useTracing`, set by `agent-warden/otel`), so the server continues
 * the call's trace. Without one, the request goes as it is (a gateway passes its caller's context on).
 */
export function withTraceMeta<R extends { params?: Record<string, unknown> | undefined }>(request: R, handle: ToolCallHandle): R {
  const headers = handle.traceHeaders();
  if (Object.keys(headers).length === 0) return request;
  const meta = (request.params?._meta ?? {}) as Record<string, unknown>;
  return { ...request, params: { ...request.params, _meta: { ...meta, ...headers } } };
}

/** The trace context a request's `_meta` carries, for `warden.continueTrace`. */
function traceMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (meta === undefined) return undefined;
  return Object.fromEntries(TRACE_META_KEYS.filter((key) => typeof meta[key] === "string").map((key) => [key, meta[key]]));
}

/**
 * The JSON-RPC error code of a call refused because the agent (or its organization) is halted. It lies
 * in the range JSON-RPC leaves to servers; `error.data` carries `{ warden: "halted", reason }`.
 * @example
 * import { HALTED_ERROR_CODE } from "agent-warden/mcp";
 * if (error instanceof McpError && error.code === HALTED_ERROR_CODE) stopTheAgent();
 */
export const HALTED_ERROR_CODE = -32050;

/**
 * What a server-side request handler receives besides the request.
 * @example
 * import { identifyCaller, type McpRequestExtra } from "agent-warden/mcp";
 * const identify = (extra: McpRequestExtra) => ({ ...identifyCaller(extra), agentId: extra.authInfo?.clientId });
 */
export type McpRequestExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/**
 * Who is calling a tool: an agent id, or a Warden delegation token (verified before the call).
 * @example
 * import { governMcpServer, type McpCaller } from "agent-warden/mcp";
 * governMcpServer(server, warden, { identify: (extra): McpCaller => ({ agentId: extra.authInfo?.clientId }) });
 */
export interface McpCaller {
  agentId?: string | undefined;
  token?: string | undefined;
}

/**
 * Options shared by `governMcpServer` and `createMcpGateway`.
 * @example
 * import { governMcpServer } from "agent-warden/mcp";
 * governMcpServer(server, warden, { permission: (tool) => `files:${tool}`, approvalProgressInterval: 5_000 });
 */
export interface McpGovernOptions {
  /**
   * Who the caller is. Default: a Warden token in `authInfo.token` or in `_meta["agent-warden/token"]`
   * (verified, then the call runs under it), else `authInfo.clientId`, else the Warden client's agent.
   */
  identify?: ((extra: McpRequestExtra) => McpCaller | undefined) | undefined;
  /** The permission a delegation token must grant to call a tool. Default: the tool name with dots read as colons. */
  permission?: ((toolName: string) => string | undefined) | undefined;
  /** While a call waits for approval and the client asked for progress, a progress notification is sent this often (ms). Default 10 000. */
  approvalProgressInterval?: number | undefined;
}

/**
 * The default caller identity: a Warden token first (verified before the call), then the OAuth client id.
 * @example
 * import { governMcpServer, identifyCaller } from "agent-warden/mcp";
 * governMcpServer(server, warden, { identify: (extra) => ({ ...identifyCaller(extra), agentId: extra.authInfo?.extra?.agent as string }) });
 */
export function identifyCaller(extra: McpRequestExtra): McpCaller {
  const fromMeta = extra._meta?.[TOKEN_META_KEY];
  if (typeof fromMeta === "string" && fromMeta.length > 0) return { token: fromMeta };
  const bearer = extra.authInfo?.token;
  if (bearer !== undefined && isWardenToken(bearer)) return { token: bearer };
  return { agentId: extra.authInfo?.clientId || undefined };
}

function isWardenToken(value: string): boolean {
  try {
    inspectToken(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The `_meta` key of the `isError` result a refused `tools/call` answers with: `{ reason, cause }`
 * (`cause`: policy, token, limit, budget, rejected, expired, aborted), so a client can tell Warden's
 * refusal from the tool's own error. The model reads the reason in the text content.
 * @example
 * import { REFUSAL_META_KEY } from "agent-warden/mcp";
 * const result = await client.callTool({ name: "delete_repo", arguments: { repo } });
 * if (result.isError && result._meta?.[REFUSAL_META_KEY]) console.warn("refused by policy");
 */
export const REFUSAL_META_KEY = "agent-warden/refusal";

/** Why Warden refused a call: what it says, the reason alone, and what refused it. */
interface Refusal {
  message: string;
  reason: string;
  cause: RefusalCause;
}

/** The tool result a blocked or refused call answers with: the model reads the message. */
export function refusal({ message, reason, cause }: Refusal): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true, _meta: { [REFUSAL_META_KEY]: { reason, cause } } };
}

/** A halt as the MCP error that makes the client's `callTool` reject. */
export function haltedError(error: unknown): McpError {
  const reason = error instanceof Error ? error.message : String(error);
  const mcp = new McpError(HALTED_ERROR_CODE, reason, { warden: "halted", reason });
  // McpError prefixes its code to the message; the client adds it again when it rebuilds the error.
  mcp.message = reason;
  // Kept on this side only (JSON-RPC carries code, message and data): the run it stopped records the halt itself.
  mcp.cause = error;
  return mcp;
}

/** The text of an error result, for the record. */
function resultText(result: { content?: unknown }): string {
  const content = Array.isArray(result.content) ? (result.content as Array<{ type?: unknown; text?: unknown }>) : [];
  return content.map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : "")).filter(Boolean).join("\n") || "tool returned an error";
}

/**
 * The JSON-RPC error code of a request other than `tools/call` (a `resources/read`, a `prompts/get`, a
 * server's sampling request) that policy refused; `error.data` carries `{ warden: "blocked", reason, cause }`
 * (the reason alone and what refused, as a refused tool call's `_meta`), the message the whole sentence.
 * A refused `tools/call` answers with an `isError` result instead, which the model reads.
 * @example
 * import { BLOCKED_ERROR_CODE } from "agent-warden/mcp";
 * if (error instanceof McpError && error.code === BLOCKED_ERROR_CODE) console.warn(error.data.reason);
 */
export const BLOCKED_ERROR_CODE = -32051;

/** A refusal of a request that has no error result of its own, as an MCP error. */
export function blockedError({ message, reason, cause }: Refusal): McpError {
  const mcp = new McpError(BLOCKED_ERROR_CODE, message, { warden: "blocked", reason, cause });
  mcp.message = message;
  return mcp;
}

/**
 * Sends an admitted call with the handle's signal and records its result; an `isError` result is
 * recorded as a failure. A call a halt aborted rejects with `onHalt(halt)` rather than the
 * transport's error; a call its caller cancelled rejects with the transport's own error (an SDK
 * client's `McpError` -32001), as it would without Warden.
 */
export async function sendRecorded<T>(warden: Warden, handle: ToolCallHandle, send: (signal: AbortSignal) => Promise<T>, onHalt: (halt: unknown) => unknown): Promise<T> {
  const report = (error: unknown) => warden.reportError(error, "mcp");
  let sent: Promise<T> | undefined;
  let result: T;
  try {
    result = await handle.race(() => (sent = send(handle.signal)));
  } catch (error) {
    const reason: unknown = handle.signal.aborted ? handle.signal.reason : undefined;
    if (isHalt(reason)) {
      finish(() => handle.fail(reason), onHalt, report);
      throw onHalt(reason);
    }
    // Cancelled by the caller: the race settled on the abort first; answer as the transport does.
    const answer = handle.signal.aborted && sent !== undefined ? await sent.then(() => error, (rejection: unknown) => rejection) : error;
    finish(() => handle.fail(answer), onHalt, report);
    throw answer;
  }
  const isError = typeof result === "object" && result !== null && (result as { isError?: unknown }).isError === true;
  // Still the answer when it is an error result, but recorded as a failure.
  finish(() => (isError ? handle.fail(new Error(resultText(result as { content?: unknown }))) : handle.complete(result)), onHalt, report);
  return result;
}

/** Records the end of a call; a halt that landed meanwhile surfaces as the halt's answer. Recording is telemetry otherwise: a failure goes to the client's error sink, the answer stands. */
function finish(record: () => void, onHalt: (halt: unknown) => unknown, report: (error: unknown) => void): void {
  try {
    record();
  } catch (error) {
    if (isHalt(error)) throw onHalt(error);
    report(error);
  }
}

/** How a governed request answers a refusal: `tools/call` with an `isError` result, other requests with `BLOCKED_ERROR_CODE`. */
type Refuse<T> = (refused: Refusal) => T;

/** A governed request on the serving side (a gateway session or a governed server). */
export interface GovernedRequest {
  /** The action's name for policy: the tool's name, or `resource.read`, `prompt.get`… */
  name: string;
  args: unknown;
  extra: McpRequestExtra;
  /** The run to record the call in, for the caller's agent (the gateway's session run); undefined for a run of its own. */
  runFor?: ((agentId: string | undefined) => string | undefined) | undefined;
  /** Risks found in the call itself (a tool whose pinned definition changed), decided with the policies. */
  risks?: CallRisk[] | undefined;
  /** What policies see as `metadata.*` (the tool's pin). */
  metadata?: Record<string, unknown> | undefined;
}

/**
 * One `tools/call` on the serving side: identify the caller (under its token if it sent one), decide,
 * wait for approval, run `forward` with the merged signal, record. A block answers with an `isError`
 * result; a halt throws `McpError`.
 */
export function governToolCall(
  warden: Warden,
  options: McpGovernOptions,
  call: GovernedRequest,
  forward: (signal: AbortSignal, handle: ToolCallHandle) => Promise<CallToolResult>,
): Promise<CallToolResult> {
  return governRequest(warden, options, call, forward, refusal);
}

/**
 * Any governed request on the serving side: as `governToolCall`, but a refusal answers with `refuse`
 * (by default an `McpError` with `BLOCKED_ERROR_CODE`).
 */
export async function governRequest<T>(
  warden: Warden,
  options: McpGovernOptions,
  call: GovernedRequest,
  forward: (signal: AbortSignal, handle: ToolCallHandle) => Promise<T>,
  refuse: Refuse<T> = (refused) => {
    throw blockedError(refused);
  },
): Promise<T> {
  // A caller that sent its trace context in `_meta` sees this call in its own trace.
  return warden.continueTrace(traceMeta(call.extra._meta), () => governIdentified(warden, options, call, forward, refuse));
}

async function governIdentified<T>(warden: Warden, options: McpGovernOptions, call: GovernedRequest, forward: (signal: AbortSignal, handle: ToolCallHandle) => Promise<T>, refuse: Refuse<T>): Promise<T> {
  const caller = (options.identify ?? identifyCaller)(call.extra) ?? {};
  try {
    if (caller.token === undefined) return await decideAndRun(warden, options, call, caller.agentId, call.runFor?.(caller.agentId), forward, refuse);
    const task = warden.beginDelegatedTask(caller.token);
    return await task.run({ mcp: { tool: call.name, sessionId: call.extra.sessionId } }, () => decideAndRun(warden, options, call, undefined, undefined, forward, refuse));
  } catch (error) {
    // A halt can also surface before any decision (opening the call's run, verifying the token).
    if (isHalt(error)) throw haltedError(error);
    // Enforcement fails closed: a token that does not verify calls nothing.
    if (WardenError.isInstance(error) && error.code === "token_invalid") return refuse({ message: error.message, reason: error.message, cause: "token" });
    throw error;
  }
}

async function decideAndRun<T>(
  warden: Warden,
  options: McpGovernOptions,
  call: GovernedRequest,
  agentId: string | undefined,
  runId: string | undefined,
  forward: (signal: AbortSignal, handle: ToolCallHandle) => Promise<T>,
  refuse: Refuse<T>,
): Promise<T> {
  const { extra } = call;
  const handle = warden.beginToolCall({
    tool: call.name,
    args: call.args ?? {},
    agentId,
    runId,
    externalId: extra.sessionId ? `${extra.sessionId}:${String(extra.requestId)}` : String(extra.requestId),
    signal: extra.signal,
    permission: options.permission?.(call.name),
    ...(call.risks !== undefined && { risks: call.risks }),
    ...(call.metadata !== undefined && { metadata: call.metadata }),
  });
  const admission = await admit(handle, extra, options.approvalProgressInterval ?? 10_000);
  if (admission.outcome === "halted") throw haltedError(admission.error);
  if (!admission.ok) return refuse({ message: admission.error.message, reason: admission.reason, cause: admission.cause });
  return sendRecorded(warden, handle, (signal) => forward(signal, handle), haltedError);
}

/** The call's admission, waiting for the reviewer if needed, with progress notifications meanwhile when the client asked for progress. */
async function admit(handle: ToolCallHandle, extra: McpRequestExtra, interval: number): Promise<Admission> {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined || handle.outcome.outcome !== "needs_approval") return handle.admit();
  let progress = 0;
  const notify = () => {
    progress += 1;
    const message = `waiting for approval ${handle.approval?.approvalId ?? ""}`.trim();
    extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress, message } }).catch(() => {
      // Progress is a courtesy to the client; the wait goes on without it.
    });
  };
  notify();
  const timer = setInterval(notify, interval);
  timer.unref();
  try {
    return await handle.admit();
  } finally {
    clearInterval(timer);
  }
}
