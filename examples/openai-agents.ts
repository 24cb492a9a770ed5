// Warden with the OpenAI Agents SDK, offline: a scripted model plays the LLM.
//   npx tsx examples/openai-agents.ts
import { Agent, setTraceProcessors, Usage } from "@openai/agents";
import { assistantMessage, functionCall, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { Warden } from "agent-warden";
// `tool` is the SDK's, keeping the name you give: policies match "payments.refund", not the SDK's "payments_refund".
import { governAgent, governedRun, tool, WardenTraceProcessor } from "agent-warden/openai-agents";
import { z } from "zod";

const warden = new Warden({
  agentId: "support-agent",
  store: ":memory:",
  policies: {
    version: 1,
    default: "allow",
    policies: [
      { id: "no-secret-access", when: { tool: "read_secret" }, action: "block" },
      { id: "large-refunds", when: { tool: "payments.*", "args.amount": { gt: 500 } }, action: "require_approval", approval: { timeout: "15m" } },
    ],
  },
});

// Traces go to Warden only (this replaces the SDK's exporter to OpenAI): runs, agents, token usage.
setTraceProcessors([new WardenTraceProcessor(warden)]);

const lookupOrder = tool({ name: "lookup_order", description: "Reads an order", parameters: z.object({ id: z.number() }), execute: async ({ id }) => ({ id, total: 800, currency: "EUR" }) });
const readSecret = tool({ name: "read_secret", description: "Reads a secret", parameters: z.object({ name: z.string() }), execute: async () => "s3cr3t" });
const refund = tool({ name: "payments.refund", description: "Refunds an order", parameters: z.object({ id: z.number(), amount: z.number() }), execute: async ({ id, amount }) => `refunded ${amount} EUR on order ${id}` });

const usage = (input: number, output: number) => new Usage({ requests: 1, inputTokens: input, outputTokens: output, totalTokens: input + output });
// An agent used as a tool: governing billing reaches its tools too, and its run is a child of the call that asked it.
const auditor = new Agent({
  name: "auditor",
  instructions: "Check orders.",
  tools: [lookupOrder, readSecret],
  model: new ScriptedModel([
    modelResponse({ output: [functionCall("lookup_order", { id: 1042 }, { callId: "call_lookup" }), functionCall("read_secret", { name: "stripe_key" }, { callId: "call_secret" })], usage: usage(220, 40) }),
    modelResponse({ output: [assistantMessage("Order 1042: 800 EUR, refundable.")], usage: usage(260, 12) }),
  ]),
});
const billing = new Agent({
  name: "billing",
  instructions: "Handle refunds.",
  tools: [auditor.asTool({ toolName: "audit_order", toolDescription: "Checks an order" }), refund],
  model: new ScriptedModel([
    modelResponse({ output: [functionCall("audit_order", { input: "order 1042" }, { callId: "call_audit" })], usage: usage(220, 40) }),
    modelResponse({ output: [functionCall(refund.name, { id: 1042, amount: 800 }, { callId: "call_refund" })], usage: usage(310, 25) }),
    modelResponse({ output: [assistantMessage("Order 1042 has been refunded (800 EUR).")], usage: usage(360, 15) }),
  ]),
});
const triage = new Agent({
  name: "triage",
  instructions: "Route the customer.",
  handoffs: [billing],
  model: new ScriptedModel([modelResponse({ output: [functionCall("transfer_to_billing", {}, { callId: "call_handoff" })], usage: usage(120, 10) })]),
});

// The one line that adds governance: every tool of triage and of the agents it hands off to.
governAgent(triage, warden);

let result = await governedRun(triage, "Please refund order 1042", warden, { metadata: { task: "refund order 1042" } });
for (const item of result.interruptions) console.log(`paused: ${item.name} ${item.arguments} needs a human`);

// A reviewer approves in Warden (console, CLI, API); here, in code.
for (const request of warden.approvals.list({ status: "pending" })) {
  console.log(`approval ${request.approvalId}: ${request.toolName} ${JSON.stringify(request.payload)} (${request.reason})`);
  warden.approvals.approve(request.approvalId, { reviewer: "alice", reason: "customer is right" });
}
result = await governedRun(triage, result.state, warden);
console.log(`\nfinal output: ${result.finalOutput}\n`);

for (const summary of warden.listRuns().reverse()) {
  const run = await warden.getRun(summary.runId);
  const metadata = run.metadata as { kind?: string; agent?: string };
  let depth = 0;
  for (let parent = run.parentRunId; parent !== undefined; depth++) parent = (await warden.getRun(parent)).parentRunId;
  const metadataTool = (run.metadata as { tool?: string }).tool;
  console.log(`${"  ".repeat(depth)}run ${metadata.kind}${metadata.agent ? ` "${metadata.agent}"` : ""}${metadataTool ? ` (inside ${metadataTool})` : ""}: ${run.status}`);
  for (const call of run.toolCalls) {
    const detail = call.kind === "llm" ? `${call.usage?.inputTokens} in / ${call.usage?.outputTokens} out tokens` : `${call.decision?.action ?? "observed"} → ${call.status}${call.approval ? ` (approved by ${call.approval.reviewer})` : ""}`;
    console.log(`${"  ".repeat(depth + 1)}${call.kind === "llm" ? "model call" : call.toolName}: ${detail}`);
  }
}
console.log(`\nledger: ${warden.ledger.verify().ok ? "intact" : "BROKEN"}`);
warden.close();
