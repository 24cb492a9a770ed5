import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import { McpError, type CallToolResult, type ServerNotification, type ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { inspectToken, isHalt, WardenError, type ToolCallHandle, type Warden } from "agent-warden";

/**
 * The `_meta` key under which a caller may send its Warden delegation token with a `tools/call`.
 * @example
 * import { TOKEN_META_KEY } from "agent-warden/mcp";
 * await client.callTool({ name: "files.read", arguments: { path: "a.txt" }, _meta: { [TOKEN_META_KEY]: token } });
 */
export const TOKEN_META_KEY = "agent-warden/token";

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

/** The tool result a blocked or refused call answers with: the model reads the reason. */
export function refusal(reason: string): CallToolResult {
  return { content: [{ type: "text", text: reason }], isError: true };
}

/** A halt as the MCP error that makes the client's `callTool` reject. */
function haltedError(error: unknown): McpError {
  const reason = error instanceof Error ? error.message : String(error);
  const mcp = new McpError(HALTED_ERROR_CODE, reason, { warden: "halted", reason });
  // McpError prefixes its code to the message; the client adds it again when it rebuilds the error.
  mcp.message = reason;
  return mcp;
}

/** The text of an error result, for the record. */
function resultText(result: { content?: unknown }): string {
  const content = Array.isArray(result.content) ? (result.content as Array<{ type?: unknown; text?: unknown }>) : [];
  return content.map((part) => (part.type === "text" && typeof part.text === "string" ? part.text : "")).filter(Boolean).join("\n") || "tool returned an error";
}

/**
 * Admits the call (at once if the caller already waited for its approval), sends it with the handle's
 * signal and records its result; an `isError` result is recorded as a failure. A refusal throws its
 * error; a call a halt aborted rejects with `onHalt(halt)` rather than the transport's error.
 */
export async function forwardRecorded<T>(handle: ToolCallHandle, send: (signal: AbortSignal) => Promise<T>, onHalt: (halt: unknown) => unknown): Promise<T> {
  let failed: { result: T; error: Error } | undefined;
  try {
    return await handle.run(async (signal) => {
      const result = await send(signal);
      if (typeof result !== "object" || result === null || (result as { isError?: unknown }).isError !== true) return result;
      // Still the answer, but `run` records it as a failure.
      failed = { result, error: new Error(resultText(result as { content?: unknown })) };
      throw failed.error;
    });
  } catch (error) {
    if (failed !== undefined && error === failed.error) return failed.result;
    const reason: unknown = handle.signal.aborted ? handle.signal.reason : undefined;
    throw isHalt(reason) ? onHalt(reason) : error;
  }
}

/**
 * One `tools/call` on the serving side: identify the caller (under its token if it sent one), decide,
 * wait for approval, run `forward` with the merged signal, record. A block answers with an `isError`
 * result; a halt throws `McpError`.
 */
export async function governToolCall(
  warden: Warden,
  options: McpGovernOptions,
  call: { name: string; args: unknown; extra: McpRequestExtra },
  forward: (signal: AbortSignal) => Promise<CallToolResult>,
): Promise<CallToolResult> {
  const caller = (options.identify ?? identifyCaller)(call.extra) ?? {};
  try {
    if (caller.token === undefined) return await decideAndRun(warden, options, call, caller.agentId, forward);
    const task = warden.beginDelegatedTask(caller.token);
    return await task.run({ mcp: { tool: call.name, sessionId: call.extra.sessionId } }, () => decideAndRun(warden, options, call, undefined, forward));
  } catch (error) {
    // A halt can also surface before any decision (opening the call's run, verifying the token).
    if (isHalt(error)) throw haltedError(error);
    // Enforcement fails closed: a token that does not verify calls nothing.
    if (WardenError.isInstance(error) && error.code === "token_invalid") return refusal(error.message);
    throw error;
  }
}

async function decideAndRun(
  warden: Warden,
  options: McpGovernOptions,
  call: { name: string; args: unknown; extra: McpRequestExtra },
  agentId: string | undefined,
  forward: (signal: AbortSignal) => Promise<CallToolResult>,
): Promise<CallToolResult> {
  const { extra } = call;
  const handle = warden.beginToolCall({
    tool: call.name,
    args: call.args ?? {},
    agentId,
    externalId: extra.sessionId ? `${extra.sessionId}:${String(extra.requestId)}` : String(extra.requestId),
    signal: extra.signal,
    permission: options.permission?.(call.name),
  });
  if (handle.decision.action === "block") {
    if (handle.decision.halted) throw haltedError(handle.error);
    return refusal(handle.error?.message ?? handle.decision.reason);
  }
  if (handle.decision.action === "require_approval") {
    const refused = await awaitApproval(handle, extra, options.approvalProgressInterval ?? 10_000);
    if (refused) return refused;
  }
  return forwardRecorded(handle, forward, haltedError);
}

/** Waits for the reviewer; returns the refusal to answer with, or undefined once approved. A halt throws. */
async function awaitApproval(handle: ToolCallHandle, extra: McpRequestExtra, interval: number): Promise<CallToolResult | undefined> {
  const progressToken = extra._meta?.progressToken;
  let progress = 0;
  const notify = () => {
    if (progressToken === undefined) return;
    progress += 1;
    const message = `waiting for approval ${handle.approval?.approvalId ?? ""}`.trim();
    extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress, message } }).catch(() => {
      // Progress is a courtesy to the client; the wait goes on without it.
    });
  };
  notify();
  const timer = progressToken === undefined ? undefined : setInterval(notify, interval);
  timer?.unref();
  try {
    await handle.waitForApproval();
    return undefined;
  } catch (error) {
    if (isHalt(error)) throw haltedError(error);
    return refusal(error instanceof Error ? error.message : String(error));
  } finally {
    if (timer) clearInterval(timer);
  }
}
