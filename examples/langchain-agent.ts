// A LangChain agent governed by Warden, offline: a scripted model asks for three tools — one allowed,
// one blocked, one that needs a human — and the approval pauses the agent with LangGraph's interrupt().
// Run: npm run example:langchain
import { AIMessage, HumanMessage, type UsageMetadata } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { Command, MemorySaver } from "@langchain/langgraph";
import { createAgent } from "langchain";
import { z } from "zod";
import { Warden } from "agent-warden";
import { approvalInterrupts, WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";

const warden = new Warden({
  agentId: "ops-agent",
  store: ":memory:",
  policies: {
    version: 1,
    default: "allow",
    policies: [
      { id: "no-db-drop", when: { tool: "drop_database" }, action: "block" },
      { id: "approve-prod-deploy", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval" },
    ],
  },
});

const readLogs = tool(async ({ service }) => `${service}: 3 errors in the last hour`, { name: "read_logs", description: "Read a service's logs", schema: z.object({ service: z.string() }) });
const dropDatabase = tool(async () => "dropped", { name: "drop_database", description: "Drop a database", schema: z.object({ name: z.string() }) });
const deploy = tool(async ({ environment }) => `deployed to ${environment}`, { name: "deploy", description: "Deploy the service", schema: z.object({ environment: z.string() }) });

// The scripted model: it calls the three tools in one turn, then reports, with token usage.
const report = (content: string, usage_metadata: UsageMetadata) => new AIMessage({ content, usage_metadata } as ConstructorParameters<typeof AIMessage>[0]);
const model = fakeModel()
  .respondWithTools([
    { name: "read_logs", args: { service: "api" }, id: "call_logs" },
    { name: "drop_database", args: { name: "orders" }, id: "call_drop" },
    { name: "deploy", args: { environment: "production" }, id: "call_deploy" },
  ])
  .respond(report("Logs read, the drop was refused, the deploy went out.", { input_tokens: 412, output_tokens: 38, total_tokens: 450 }));

const agent = createAgent({
  model,
  tools: [readLogs, dropDatabase, deploy],
  middleware: [wardenMiddleware(warden, { approval: "interrupt" })],
  checkpointer: new MemorySaver(),
});
const config = { configurable: { thread_id: "incident-42" }, callbacks: [new WardenCallbackHandler(warden)] };

const paused = await agent.invoke({ messages: [new HumanMessage("Check the api logs, clean up, and ship the fix.")] }, config);
for (const request of approvalInterrupts(paused)) {
  console.log(`paused: "${request.toolName}" ${JSON.stringify(request.args)} needs approval (${request.reason})`);
  warden.approvals.approve(request.approvalId!, { reviewer: "alice", reason: "change window" });
  console.log(`approved in Warden by alice: ${request.approvalId}`);
}

const result = await agent.invoke(new Command({ resume: {} }), config);
console.log(`agent: ${String(result.messages.at(-1)?.content)}`);

const [summary] = warden.listRuns();
const run = await warden.getRun(summary!.runId);
console.log(`\nrun ${run.runId}: ${run.status}`);
for (const call of run.toolCalls) {
  if (call.kind === "llm") console.log(`  llm  ${call.toolName.padEnd(14)} ${call.status.padEnd(10)} tokens=${call.usage?.totalTokens ?? 0}`);
  else console.log(`  tool ${call.toolName.padEnd(14)} ${call.status.padEnd(10)} ${call.decision?.action}${call.approval ? ` → ${call.approval.status} by ${call.approval.reviewer}` : ""}${call.blockedReason ? ` — ${call.blockedReason}` : ""}`);
}
console.log(`ledger intact: ${warden.ledger.verify().ok}`);
warden.close();
