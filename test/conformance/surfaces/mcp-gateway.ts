import type { Surface } from "../harness.js";
import { driveMcp, mcpCannot } from "../drivers/mcp.js";

/** MCP: `createMcpGateway` in front of a plain `McpServer`, called by a plain SDK `Client`; one run per session. */
export const surface: Surface = {
  name: "mcp: gateway",
  drive: (call) => driveMcp(call, "gateway"),
  cannot: mcpCannot,
};
