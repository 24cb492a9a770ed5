// Governing an MCP server you cannot change: a gateway sits between the agent and the server,
// relays the whole protocol (tools, resources, prompts, completion, logging, sampling…), and decides every tool call, resource read and prompt first. Offline, the "third-party"
// server here runs in-process; in real use the CLI starts it as a child and speaks stdio:
//
//   warden mcp-gateway --policies ./warden.yaml --agent claude -- npx -y @modelcontextprotocol/server-filesystem ./docs
//
// and the agent's MCP settings point at that command instead of the server's own. For Streamable
// HTTP: `warden mcp-gateway --http 127.0.0.1:8080 -- <command>`, or `createMcpGatewayHttpHandler(...)` in your own server.
// Run: npx tsx examples/mcp-gateway.ts
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { Warden } from "agent-warden";
import { createMcpGateway } from "agent-warden/mcp";

// A server that knows nothing of Warden, and counts what it is asked to do.
const executed: string[] = [];
const thirdParty = new McpServer({ name: "files", version: "1.0.0" });
thirdParty.registerTool("read_file", { inputSchema: { path: z.string() } }, ({ path }) => {
  executed.push(`read_file ${path}`);
  return { content: [{ type: "text", text: `contents of ${path}` }] };
});
thirdParty.registerTool("write_file", { inputSchema: { path: z.string(), content: z.string() } }, ({ path }) => {
  executed.push(`write_file ${path}`);
  return { content: [{ type: "text", text: `wrote ${path}` }] };
});
const [upstreamClientSide, upstreamServerSide] = InMemoryTransport.createLinkedPair();
await thirdParty.connect(upstreamServerSide);

const warden = new Warden({
  agentId: "claude",
  store: ":memory:",
  policies: {
    version: 1,
    default: "allow",
    policies: [{ id: "read-only-secrets", reason: "nothing is written under /etc", when: { tool: "write_file", "args.path": { matches: "^/etc/" } }, action: "block" }],
  },
});

// The gateway: upstream is a transport (or a connected Client); it is an ordinary MCP Server.
const gateway = createMcpGateway({ warden, upstream: upstreamClientSide });
const [agentSide, gatewaySide] = InMemoryTransport.createLinkedPair();
await gateway.connect(gatewaySide);
const agent = new Client({ name: "agent", version: "1.0.0" });
await agent.connect(agentSide);

console.log(`tools through the gateway: ${(await agent.listTools()).tools.map((t) => t.name).join(", ")}`);
for (const [name, args] of [
  ["read_file", { path: "/docs/readme.md" }],
  ["write_file", { path: "/etc/hosts", content: "0.0.0.0 example.com" }],
  ["write_file", { path: "/docs/notes.md", content: "hello" }],
] as const) {
  const result = (await agent.callTool({ name, arguments: args })) as CallToolResult;
  console.log(`${name} ${args.path} → ${result.isError ? "refused: " : ""}${(result.content[0] as { text: string }).text}`);
}

warden.halt({ reason: "suspicious activity", agentId: "claude" });
const halted = await agent.callTool({ name: "read_file", arguments: { path: "/docs/readme.md" } }).catch((error: unknown) => error);
console.log(`after the halt → ${halted instanceof McpError ? halted.message : "answered"}`);

console.log(`\nthe upstream server executed: ${executed.join("; ")}`);
await agent.close();
await gateway.close();
warden.close();
