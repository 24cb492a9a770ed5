import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { CallToolRequestSchema, ListToolsRequestSchema, ToolListChangedNotificationSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import type { Warden } from "agent-warden";
import { governToolCall, TOKEN_META_KEY, type McpGovernOptions } from "./shared.js";

/**
 * Options of `createMcpGateway`.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * const gateway = createMcpGateway({ warden, upstream: new StdioClientTransport({ command: "npx", args: ["some-mcp-server"] }), upstreamTimeout: 120_000 });
 */
export interface McpGatewayOptions extends McpGovernOptions {
  warden: Warden;
  /**
   * The server being governed: a connected `Client`, or a transport to it (a `StdioClientTransport`,
   * a `StreamableHTTPClientTransport`…), which the gateway connects on first use and closes with itself.
   */
  upstream: Client | Transport;
  /** How the gateway introduces itself to the agent. Default `{ name: "warden-mcp-gateway", version: "1.0.0" }`. */
  name?: string | undefined;
  version?: string | undefined;
  /** Timeout of each forwarded request in ms (reset by progress). Default: the SDK's 60 s. */
  upstreamTimeout?: number | undefined;
}

/**
 * A governing proxy for any MCP server, without touching its code: a low-level `Server` that forwards
 * `tools/list` and `tools/call` to the upstream, deciding each call first (block → an `isError`
 * result, approval → wait, halt → `McpError`). Connect it to any server transport: stdio, Streamable HTTP.
 * @example
 * import { createMcpGateway } from "agent-warden/mcp";
 * const gateway = createMcpGateway({ warden, upstream: new StdioClientTransport({ command: "npx", args: ["some-mcp-server"] }) });
 * await gateway.connect(new StdioServerTransport());
 */
export function createMcpGateway(options: McpGatewayOptions): Server {
  const { warden, upstreamTimeout } = options;
  const server = new Server({ name: options.name ?? "warden-mcp-gateway", version: options.version ?? "1.0.0" }, { capabilities: { tools: { listChanged: true } } });
  const owned = !isClient(options.upstream);
  const client = isClient(options.upstream) ? options.upstream : new Client({ name: `${options.name ?? "warden-mcp-gateway"}-upstream`, version: options.version ?? "1.0.0" });
  let connecting: Promise<Client> | undefined;
  const upstream = (): Promise<Client> => {
    if (!owned) return Promise.resolve(client);
    connecting ??= client.connect(options.upstream as Transport).then(() => client);
    return connecting;
  };

  client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
    await server.sendToolListChanged().catch(() => {
      // No agent connected yet: it will list the tools when it connects.
    });
  });

  server.setRequestHandler(ListToolsRequestSchema, async (request, extra) => {
    const { _meta: meta, ...params } = request.params ?? {};
    // A delegation token carries a private key: it never goes past the gateway.
    const { [TOKEN_META_KEY]: _token, ...forwardedMeta } = meta ?? {};
    const forwarded = Object.keys(forwardedMeta).length > 0 ? { ...params, _meta: forwardedMeta } : params;
    return (await upstream()).listTools(forwarded, { signal: extra.signal, ...(upstreamTimeout !== undefined && { timeout: upstreamTimeout }) });
  });

  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args, _meta: meta } = request.params;
    const { [TOKEN_META_KEY]: _token, progressToken, ...forwardedMeta } = meta ?? {};
    return governToolCall(warden, options, { name, args, extra }, async (signal) => {
      const target = await upstream();
      const result = await target.callTool({ name, ...(args !== undefined && { arguments: args }), ...(Object.keys(forwardedMeta).length > 0 && { _meta: forwardedMeta }) }, undefined, {
        signal,
        ...(upstreamTimeout !== undefined && { timeout: upstreamTimeout, resetTimeoutOnProgress: true }),
        // The upstream's progress is relayed under the agent's own progress token.
        ...(progressToken !== undefined && { onprogress: (progress) => void extra.sendNotification({ method: "notifications/progress", params: { ...progress, progressToken } }).catch(() => {}) }),
      });
      return result as CallToolResult;
    });
  });

  if (owned) {
    server.onclose = () => {
      void client.close().catch(() => {
        // The upstream is gone already.
      });
    };
  }
  return server;
}

function isClient(value: Client | Transport): value is Client {
  return typeof (value as Client).callTool === "function";
}
