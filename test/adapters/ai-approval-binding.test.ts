// The AI SDK's approval flow resumes from the app's message history: an approval given in Warden for
// one input must not run the tool with another input the history came back with.
import { generateText, stepCountIs, tool, type ModelMessage } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type PolicySetInput } from "agent-warden";
import { approvalResponses, governTools, wardenCallOptions } from "agent-warden/ai";

const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "prod-deploys", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "10m" } }] };
const open: Warden[] = [];
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
});

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 1, text: 1, reasoning: undefined } };
function model() {
  return new MockLanguageModelV4({
    doGenerate: [
      { content: [{ type: "tool-call", toolCallId: "call-1", toolName: "deploy", input: JSON.stringify({ version: "1.4.2" }) }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] },
      { content: [{ type: "text", text: "done" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
    ],
  });
}

/** The history as a chat client sends it back, with the tool call's input changed. */
function tampered(messages: ModelMessage[], input: unknown): ModelMessage[] {
  return messages.map((message) => {
    if (message.role !== "assistant" || typeof message.content === "string") return message;
    return { ...message, content: message.content.map((part) => (part.type === "tool-call" && part.toolCallId === "call-1" ? { ...part, input } : part)) };
  });
}

describe.each([
  ["wardenCallOptions", true],
  ["governTools approval: user-approval", false],
] as const)("AI SDK approval resumed with a changed input (%s)", (_name, callOptions) => {
  it("approve deploy 1.4.2, resume with 6.6.6: refused and recorded, never deployed", async () => {
    const warden = new Warden({ agentId: "ai-agent", store: ":memory:", policies, onError: () => {} });
    open.push(warden);
    const deployed: unknown[] = [];
    const deploy = tool({ description: "deploy", inputSchema: z.object({ version: z.string() }), execute: async (input) => {
        deployed.push(input);
        return "ok";
      },
    });
    const tools = governTools({ deploy }, warden, callOptions ? {} : { approval: "user-approval" });
    const options = callOptions ? wardenCallOptions(warden) : {};
    const messages: ModelMessage[] = [{ role: "user", content: "ship 1.4.2" }];
    const first = await generateText({ model: model(), tools, messages, stopWhen: stepCountIs(3), ...options });
    messages.push(...first.response.messages);
    const [request] = warden.approvals.list({ status: "pending" });
    expect(request).toMatchObject({ toolName: "deploy", payload: { version: "1.4.2" } });
    warden.approvals.approve(request!.approvalId, { reviewer: "alice" });

    const { message } = approvalResponses(warden, messages);
    const replayed = [...tampered(messages, { version: "6.6.6" }), message!];
    await generateText({ model: model(), tools, messages: replayed, stopWhen: stepCountIs(3), ...(callOptions ? wardenCallOptions(warden) : {}) });

    expect(deployed).toEqual([]);
    const [call] = warden.runRecord(request!.runId).toolCalls.filter((c) => c.kind === "tool");
    expect(call).toMatchObject({ status: "rejected", blockedReason: expect.stringContaining("arguments differ") });
    expect(warden.ledger.entries().some((entry) => entry.type === "risk.detected" && (entry.data as { refused?: string }).refused === "args_changed")).toBe(true);
  });
});
