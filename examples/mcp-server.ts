// An MCP server governed by Warden, offline: an agent (an MCP client over an in-memory transport)
// calls four tools. One is allowed, one blocked, one needs a human, and after a halt every call is
// refused with an McpError. The tools are ordinary McpServer tools: one line adds governance.
// Run: npx tsx examples/mcp-server.ts
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { Warden } from "agent-warden";
import { governMcpServer } from "agent-warden/mcp";

const warden = new Warden({
  agentId: "ops-server",
  store: ":memory:",
  policies: {
    version: 1,
    default: "allow",
    policies: [
      { id: "no-repo-deletes", reason: "deleting repositories is not allowed", when: { tool: "delete_repo" }, action: "block" },
      { id: "approve-prod-deploy", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval" },
    ],
  },
  // Stands in for a reviewer answering in the console or with `warden approve <id>`.
  onApprovalRequest: (request, decide) => {
    console.log(`  … "${request.toolName}" awaits approval ${request.approvalId}; alice approves it`);
    decide.approve({ reviewer: "alice", reason: "change window" });
  },
});

const server = governMcpServer(new McpServer({ name: "ops", version: "1.0.0" }), warden);
const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });
server.registerTool("read_logs", { inputSchema: { service: z.string() } }, ({ service }) => text(`${service}: 3 errors in the last hour`));
server.registerTool("delete_repo", { inputSchema: { repo: z.string() } }, ({ repo }) => text(`deleted ${repo}`));
server.registerTool("deploy", { inputSchema: { environment: z.string() } }, ({ environment }) => text(`deployed to ${environment}`));

const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
await server.connect(serverTransport);
const agent = new Client({ name: "agent", version: "1.0.0" });
await agent.connect(clientTransport);

async function call(name: string, args: Record<string, unknown>): Promise<void> {
  try {
    const result = (await agent.callTool({ name, arguments: args })) as CallToolResult;
    const answer = (result.content[0] as { text: string }).text;
    console.log(`${name}(${JSON.stringify(args)}) → ${result.isError ? "isError: " : ""}${answer}`);
  } catch (error) {
    console.log(`${name}(${JSON.stringify(args)}) → ${error instanceof McpError ? error.message : String(error)}`);
  }
}

await call("read_logs", { service: "api" });
await call("delete_repo", { repo: "core" });
await call("deploy", { environment: "production" });
warden.halt({ reason: "incident 42: stop all changes" });
await call("read_logs", { service: "api" });

console.log("\nrecorded:");
for (const run of warden.listRuns().reverse()) {
  for (const toolCall of (await warden.getRun(run.runId)).toolCalls) {
    console.log(`  ${toolCall.toolName.padEnd(12)} ${toolCall.decision?.action.padEnd(16)} ${toolCall.status}`);
  }
}
console.log(`ledger: ${warden.ledger.verify().ok ? "verified" : "BROKEN"}`);

await agent.close();
warden.close();
