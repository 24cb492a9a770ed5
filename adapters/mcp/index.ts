export { governMcpServer } from "./server.js";
export { governMcpClient } from "./client.js";
export type { GovernMcpClientOptions } from "./client.js";
export { createMcpGateway } from "./gateway.js";
export type { McpGatewayOptions } from "./gateway.js";
export { TOKEN_META_KEY, HALTED_ERROR_CODE, BLOCKED_ERROR_CODE, identifyCaller } from "./shared.js";
export type { McpCaller, McpGovernOptions, McpRequestExtra } from "./shared.js";
export { createMcpGatewayHttpHandler } from "./http.js";
export type { McpGatewayHttpOptions, McpGatewayHttpHandler } from "./http.js";
