import type { Surface } from "../harness.js";
import { driveMcp, mcpCannot } from "../drivers/mcp.js";

/** MCP: `governMcpServer` on an `McpServer`, called by a plain SDK `Client`; a refusal is an `isError` result, a halt `McpError` -32050. */
export const surface: Surface = {
  name: "mcp: governMcpServer",
  drive: (call) => driveMcp(call, "server gate"),
  cannot: mcpCannot,
};
