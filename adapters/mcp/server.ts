import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Warden } from "agent-warden";
import { governToolCall, type McpGovernOptions, type McpRequestExtra } from "./shared.js";

type RequestHandler = (request: unknown, extra: McpRequestExtra) => Promise<unknown>;

const governed = new WeakMap<Server, Warden>();

/**
 * Governs every tool of an `McpServer`, registered before or after this call: each `tools/call` is
 * decided by Warden before the tool's handler runs. A block answers with an `isError` result naming
 * the reason, an approval holds the call until a reviewer decides, a halt rejects it with an
 * `McpError`, and the handler's `extra.signal` also aborts on a halt.
 * @example
 * import { governMcpServer } from "agent-warden/mcp";
 * const server = governMcpServer(new McpServer({ name: "ops", version: "1.0.0" }), warden);
 * server.registerTool("deploy", { inputSchema: { environment: z.string() } }, deploy);
 */
export function governMcpServer<S extends McpServer>(server: S, warden: Warden, options: McpGovernOptions = {}): S {
  const low = server.server;
  const previous = governed.get(low);
  if (previous === warden) return server;
  if (previous !== undefined) throw new Error("[warden] this McpServer is already governed by another Warden client");
  // McpServer installs its tools/call handler with the first tool; install it now so tools registered later are covered.
  if (handlerOf(low, "tools/call") === undefined) initToolHandlers(server);
  const original = handlerOf(low, "tools/call");
  if (original === undefined) throw unsupported();
  low.setRequestHandler(CallToolRequestSchema, (request, extra) =>
    governToolCall(warden, options, { name: request.params.name, args: request.params.arguments, extra }, (signal) => original(request, { ...extra, signal }) as Promise<CallToolResult>),
  );
  governed.set(low, warden);
  return server;
}

/** The handler the low-level server would run for `method`. */
function handlerOf(server: Server, method: string): RequestHandler | undefined {
  const handlers = (server as unknown as { _requestHandlers?: Map<string, RequestHandler> })._requestHandlers;
  if (!(handlers instanceof Map)) throw unsupported();
  return handlers.get(method);
}

function initToolHandlers(server: McpServer): void {
  const init = (server as unknown as { setToolRequestHandlers?: () => void }).setToolRequestHandlers;
  if (typeof init !== "function") throw unsupported();
  try {
    init.call(server);
  } catch (error) {
    throw new Error(`[warden] governMcpServer must be called before connect() or after the first tool is registered: ${(error as Error).message}`, { cause: error });
  }
}

function unsupported(): Error {
  return new Error("[warden] governMcpServer does not recognise this version of @modelcontextprotocol/sdk (expected 1.x)");
}
