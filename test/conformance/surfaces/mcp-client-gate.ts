import type { Surface } from "../harness.js";
import { driveMcp, mcpCannot } from "../drivers/mcp.js";

/** MCP: a `Client` governed by `governMcpClient` calling a plain `McpServer`; a refusal throws its `WardenError`, a cancellation `McpError` -32001. */
export const surface: Surface = {
  name: "mcp: governMcpClient",
  drive: (call) => driveMcp(call, "client gate"),
  cannot: mcpCannot,
};
