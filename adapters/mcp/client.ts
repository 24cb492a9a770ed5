import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { RequestOptions } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Warden } from "agent-warden";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { sendRecorded, TOKEN_META_KEY, withTraceMeta } from "./shared.js";

/**
 * Options of `governMcpClient`.
 * @example
 * import { governMcpClient } from "agent-warden/mcp";
 * const client = governMcpClient(new Client({ name: "agent", version: "1.0.0" }), warden, { agentId: "files-agent", token });
 */
export interface GovernMcpClientOptions {
  /** The agent making the calls. Default: the Warden client's. */
  agentId?: string | undefined;
  /** A Warden delegation token sent with every call in `_meta["agent-warden/token"]`, for a governed server to act under. */
  token?: string | undefined;
}

type Request = (request: { method: string; params?: Record<string, unknown> }, schema: unknown, options?: RequestOptions) => Promise<unknown>;

const governed = new WeakMap<Client, Warden>();

/**
 * Governs the calling side: every `callTool` (and any raw `tools/call` request) is decided by Warden
 * before anything is sent. A block throws `ToolBlockedError`, a halt `HaltedError`; an approval
 * waits for the reviewer; a halt also cancels a call in flight. The result is recorded.
 * @example
 * import { governMcpClient } from "agent-warden/mcp";
 * const client = governMcpClient(new Client({ name: "agent", version: "1.0.0" }), warden);
 * await client.connect(transport);
 * await client.callTool({ name: "deploy", arguments: { environment: "staging" } });
 */
export function governMcpClient<C extends Client>(client: C, warden: Warden, options: GovernMcpClientOptions = {}): C {
  const previous = governed.get(client);
  if (previous === warden) return client;
  if (previous !== undefined) throw new Error("[warden] this MCP client is already governed by another Warden client");
  const send = (client.request as unknown as Request).bind(client);
  const governedRequest: Request = async function governedRequest(request, schema, requestOptions) {
    if (request.method !== "tools/call") return send(request, schema, requestOptions);
    // As the SDK does: a call its caller already cancelled is neither sent nor decided, and rejects with the signal's reason.
    requestOptions?.signal?.throwIfAborted();
    const params = request.params ?? {};
    const name = typeof params.name === "string" ? params.name : "";
    const handle = warden.beginToolCall({ tool: name, args: params.arguments ?? {}, agentId: options.agentId, signal: requestOptions?.signal });
    const outgoing = options.token === undefined ? request : { ...request, params: { ...params, _meta: { ...(params._meta as object | undefined), [TOKEN_META_KEY]: options.token } } };
    const admission = await handle.admit();
    if (!admission.ok) {
      // The caller's own signal ended the approval wait: it rejects as a cancelled SDK request does.
      if (admission.outcome === "refused" && admission.cause === "aborted") throw new McpError(ErrorCode.RequestTimeout, String(admission.error.cause));
      throw admission.error;
    }
    // The call's trace context goes with it, for the server (or gateway) to continue.
    return sendRecorded(warden, handle, (signal) => send(withTraceMeta(outgoing, handle), schema, { ...requestOptions, signal }), (halt) => halt);
  };
  (client as unknown as { request: Request }).request = governedRequest;
  governed.set(client, warden);
  return client;
}
