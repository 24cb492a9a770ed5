// An AI SDK agent governed by Warden, offline: a scripted model asks for three tools — one allowed,
// one blocked, one that needs a human. The approval surfaces as the SDK's tool-approval-request; a
// reviewer approves it in Warden and the app's next generateText call carries on.
// Run: npm run example:ai
import { generateText, stepCountIs, tool, type ModelMessage } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { z } from "zod";
import { Warden } from "agent-warden";
import { approvalResponses, governTools, wardenCallOptions } from "agent-warden/ai";

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

const tools = governTools(
  {
    read_logs: tool({ description: "Read a service's logs", inputSchema: z.object({ service: z.string() }), execute: async ({ service }) => `${service}: 3 errors in the last hour` }),
    drop_database: tool({ description: "Drop a database", inputSchema: z.object({ name: z.string() }), execute: async () => "dropped" }),
    deploy: tool({ description: "Deploy the service", inputSchema: z.object({ environment: z.string() }), execute: async ({ environment }) => `deployed to ${environment}` }),
  },
  warden,
);

// The scripted model: three tool calls in one step, then a report once the results are in.
const usage = (input: number, output: number) => ({ inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: output, text: output, reasoning: undefined } });
const call = (toolCallId: string, toolName: string, input: object) => ({ type: "tool-call" as const, toolCallId, toolName, input: JSON.stringify(input) });
const model = new MockLanguageModelV4({
  doGenerate: [
    {
      content: [call("call_logs", "read_logs", { service: "api" }), call("call_drop", "drop_database", { name: "orders" }), call("call_deploy", "deploy", { environment: "production" })],
      finishReason: { unified: "tool-calls", raw: undefined },
      usage: usage(380, 42),
      warnings: [],
    },
    { content: [{ type: "text", text: "Logs read, the drop was refused, the deploy went out." }], finishReason: { unified: "stop", raw: undefined }, usage: usage(512, 18), warnings: [] },
  ],
});

const runId = await warden.run({ task: "incident 42" }, async (run) => {
  const messages: ModelMessage[] = [{ role: "user", content: "Check the api logs, clean up, and ship the fix." }];
  const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
  messages.push(...first.response.messages);

  // The deploy waits for a human: a reviewer approves it in Warden (console, CLI or API).
  for (const request of approvalResponses(warden, messages).pending) {
    console.log(`paused: "${request.toolName}" needs approval (Warden approval ${request.wardenApprovalId})`);
    warden.approvals.approve(request.wardenApprovalId!, { reviewer: "alice", reason: "change window" });
    console.log("approved in Warden by alice");
  }
  const { message } = approvalResponses(warden, messages);
  messages.push(message!);

  const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
  console.log(`agent: ${second.text}`);
  return run.runId;
});

const run = await warden.getRun(runId);
console.log(`\nrun ${run.runId}: ${run.status}`);
for (const entry of run.toolCalls) {
  if (entry.kind === "llm") console.log(`  llm  ${entry.toolName.padEnd(14)} ${entry.status.padEnd(10)} tokens=${entry.usage?.totalTokens ?? 0}`);
  else console.log(`  tool ${entry.toolName.padEnd(14)} ${entry.status.padEnd(10)} ${entry.decision?.action}${entry.approval ? ` → ${entry.approval.status} by ${entry.approval.reviewer}` : ""}${entry.blockedReason ? ` — ${entry.blockedReason}` : ""}`);
}
console.log(`ledger intact: ${warden.ledger.verify().ok}`);
warden.close();
