// Shared by the MCP surfaces: a real McpServer serves the scenario's tool; the agent is the SDK's own Client.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { CallToolResultSchema, ErrorCode, McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { createMcpGateway, governMcpClient, governMcpServer, HALTED_ERROR_CODE, REFUSAL_META_KEY, TOKEN_META_KEY } from "agent-warden/mcp";
import { classify, type Call, type Driven, type ScenarioId } from "../harness.js";

export type McpMode = "server gate" | "client gate" | "gateway";

/** The server every mode calls: one tool, the scenario's, whose handler is the body given the request's signal. */
function toolServer(call: Call): McpServer {
  const server = new McpServer({ name: "orders", version: "1.0.0" });
  server.registerTool(call.tool, { description: `the ${call.tool} tool`, inputSchema: z.looseObject({}) }, async (_args, extra) => {
    const output = await call.body(extra.signal);
    return { content: [{ type: "text", text: JSON.stringify(output ?? null) }] };
  });
  return server;
}

async function linked(server: { connect(transport: InMemoryTransport): Promise<void> }): Promise<InMemoryTransport> {
  const [clientEnd, serverEnd] = InMemoryTransport.createLinkedPair();
  await server.connect(serverEnd);
  return clientEnd;
}

/**
 * One `tools/call` of the scenario's tool by an SDK `Client`, through the surface `mode` names:
 * - `server gate`: the client calls an `McpServer` governed by `governMcpServer`;
 * - `client gate`: a client governed by `governMcpClient` calls a plain `McpServer`;
 * - `gateway`: the client calls `createMcpGateway` in front of a plain `McpServer` (the upstream).
 * A token the scenario gives travels in `_meta["agent-warden/token"]`. The client's `signal` is the caller's.
 */
export async function driveMcp(call: Call, mode: McpMode): Promise<Driven> {
  const server = toolServer(call);
  if (mode === "server gate") governMcpServer(server, call.warden);
  let agentEnd: InMemoryTransport;
  if (mode === "gateway") {
    const upstream = await linked(server);
    agentEnd = await linked(createMcpGateway({ warden: call.warden, upstream }));
  } else {
    agentEnd = await linked(server);
  }
  const client = new Client({ name: "agent", version: "1.0.0" });
  if (mode === "client gate") governMcpClient(client, call.warden, { token: call.token });
  await client.connect(agentEnd);
  try {
    const meta = call.token !== undefined && mode !== "client gate" ? { _meta: { [TOKEN_META_KEY]: call.token } } : {};
    const result = await client.callTool({ name: call.tool, arguments: call.args, ...meta }, CallToolResultSchema, { signal: call.signal });
    return outcomeOf(result as CallToolResult);
  } catch (error) {
    if (error instanceof McpError) {
      const received = `McpError ${error.code}`;
      if (error.code === HALTED_ERROR_CODE) return { outcome: "halted", received: `${received} (halted)` };
      if (error.code === ErrorCode.RequestTimeout && call.signal.aborted) return { outcome: "aborted", received: `${received} (RequestTimeout)` };
      return { outcome: "failed", received };
    }
    return classify(error, call.signal);
  } finally {
    // Ends the session (a gateway completes its session's run).
    await client.close();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** An `isError` result is a refusal when Warden marked it so, else the tool's own error. */
function outcomeOf(result: CallToolResult): Driven {
  const text = result.content.map((part) => (part.type === "text" ? part.text : "")).join(" ");
  if (result.isError !== true) return { outcome: "result", received: "the tool's output" };
  const refusal = result._meta?.[REFUSAL_META_KEY] as { cause?: string } | undefined;
  if (refusal !== undefined) return { outcome: "refused", received: `isError result, refusal cause ${refusal.cause}` };
  return { outcome: "failed", received: `isError result: ${text.slice(0, 40)}` };
}

/** What no MCP surface can express. */
export function mcpCannot(scenario: ScenarioId): string | undefined {
  if (scenario === "llm-token-budget") return "makes no model calls";
  return undefined;
}
