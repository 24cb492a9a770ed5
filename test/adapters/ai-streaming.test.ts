// streamText / ToolLoopAgent.stream under Warden: every model call lands in the enclosing run.
import { stepCountIs, streamText, tool, ToolLoopAgent } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type WardenOptions } from "agent-warden";
import { governTools, wardenCallOptions } from "agent-warden/ai";

const open: Warden[] = [];
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
});

function client(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "ai-agent", store: ":memory:", policies: { version: 1, default: "allow", policies: [], budgets: [{ id: "tokens-per-run", tokens: 20 }] }, ...options } as WardenOptions);
  open.push(warden);
  return warden;
}

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 5, text: 5, reasoning: undefined } };
const stream = (...parts: unknown[]) => ({ stream: new ReadableStream({ start: (c) => (parts.forEach((p) => c.enqueue(p)), c.close()) }) });
const finish = (unified: "tool-calls" | "stop") => ({ type: "finish", finishReason: { unified, raw: undefined }, usage });
const callSearch = (id: string) => stream({ type: "tool-call", toolCallId: id, toolName: "search", input: "{}" }, finish("tool-calls"));

function chattyModel() {
  return new MockLanguageModelV4({ doStream: [callSearch("call-1"), callSearch("call-2"), callSearch("call-3"), callSearch("call-4"), stream({ type: "text-start", id: "t" }, { type: "text-delta", id: "t", delta: "done" }, { type: "text-end", id: "t" }, finish("stop"))] as never });
}

const searches: unknown[] = [];
const search = tool({ inputSchema: z.object({}), execute: async () => (searches.push(1), "found") });

describe("streaming inside warden.run", () => {
  it.each([
    ["streamText", (warden: Warden, model: MockLanguageModelV4) => streamText({ model, tools: governTools({ search }, warden), prompt: "go", stopWhen: stepCountIs(10), ...wardenCallOptions(warden) })],
    ["ToolLoopAgent.stream", (warden: Warden, model: MockLanguageModelV4) => new ToolLoopAgent({ model, tools: governTools({ search }, warden), stopWhen: stepCountIs(10) }).stream({ prompt: "go", ...wardenCallOptions(warden) })],
  ])("%s: the first model call is recorded in the run, so a per-run token budget stops at the same call as generateText", async (_label, start) => {
    const warden = client();
    const model = chattyModel();
    let runId = "";

    const consumed = warden.run({ task: "chatty" }, async (run) => {
      runId = run.runId;
      const result = await start(warden, model);
      for await (const _part of result.fullStream) {
        // drain
      }
    });
    await consumed.catch(() => {});

    const record = warden.runRecord(runId);
    // As with generateText: 15 tokens, then 30; the third model call is the one recorded over budget, and the last.
    expect(warden.listRuns()).toHaveLength(1);
    expect(record.toolCalls.filter((c) => c.kind === "llm").map((c) => c.status)).toEqual(["completed", "completed", "blocked"]);
    expect(model.doStreamCalls).toHaveLength(3);
    // Each model call is opened before the tools it asked for run.
    expect(record.toolCalls.map((c) => c.kind)).toEqual(["llm", "tool", "llm", "tool", "llm"]);
  });

  it("a run whose token budget is already spent refuses the first model call: the loop stops before any tool runs", async () => {
    const warden = client();
    const model = chattyModel();
    let runId = "";
    const before = searches.length;
    let seenSignal: AbortSignal | undefined;
    const options = wardenCallOptions(warden, { onLanguageModelCallStart: () => void (seenSignal = options.abortSignal) });

    const consumed = warden.run({ task: "over budget" }, async (run) => {
      runId = run.runId;
      warden.beginLlmCall({ runId, model: "earlier" }).complete({ inputTokens: 20, outputTokens: 5 });
      const result = streamText({ model, tools: governTools({ search }, warden), prompt: "go", stopWhen: stepCountIs(10), ...options });
      for await (const _part of result.fullStream) {
        // drain
      }
    });
    await consumed.catch(() => {});

    expect(searches.length).toBe(before);
    // The provider call is made with an aborted signal: a real provider never sends it.
    expect(seenSignal?.aborted).toBe(true);
    const llm = warden.runRecord(runId).toolCalls.filter((c) => c.kind === "llm");
    expect(llm.map((c) => [c.toolName, c.status])).toEqual([
      ["earlier", "completed"],
      ["mock-model-id", "blocked"],
    ]);
  });
});
