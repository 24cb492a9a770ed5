import { generateText, stepCountIs, streamText, tool, ToolLoopAgent, type ModelMessage, type ToolSet } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { HaltedError, ToolBlockedError, Warden, type PolicySetInput, type RunRecord, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { approvalResponses, governed, governTools, wardenCallOptions } from "agent-warden/ai";

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-db-drop", reason: "dropping databases is not allowed", when: { tool: "drop_database" }, action: "block" },
    { id: "flag-writes", when: { tool: "write_*" }, action: "warn", severity: "low" },
    { id: "prod-deploys", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval", approval: { timeout: "10m" } },
    { id: "quick-approvals", when: { tool: "restart" }, action: "require_approval", approval: { timeout: "50ms" } },
  ],
};

const open: Warden[] = [];
let errors: unknown[] = [];

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  errors = [];
  const warden = new Warden({ agentId: "ai-agent", store: ":memory:", policies, onError: (error) => errors.push(error), ...options });
  open.push(warden);
  return warden;
}

afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
});

// ── scripted model ────────────────────────────────────────────────────────────────────────────

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: output, text: output, reasoning: undefined },
});

/** One model step that calls tools: `[toolCallId, toolName, input]`. */
function callTools(...calls: Array<[string, string, Record<string, unknown>]>) {
  return {
    content: calls.map(([toolCallId, toolName, input]) => ({ type: "tool-call" as const, toolCallId, toolName, input: JSON.stringify(input) })),
    finishReason: { unified: "tool-calls" as const, raw: undefined },
    usage: usage(10, 5),
    warnings: [],
  };
}

function say(text: string) {
  return { content: [{ type: "text" as const, text }], finishReason: { unified: "stop" as const, raw: undefined }, usage: usage(20, 8), warnings: [] };
}

function script(...steps: Array<ReturnType<typeof callTools> | ReturnType<typeof say>>) {
  return new MockLanguageModelV4({ doGenerate: steps });
}

/** A tool that counts its executions. */
function countingTool(name: string, run: (input: Record<string, unknown>) => unknown = (input) => `${name} ok ${JSON.stringify(input)}`) {
  const calls: Record<string, unknown>[] = [];
  const instance = tool({
    description: `the ${name} tool`,
    inputSchema: z.object({}).passthrough(),
    execute: async (input: Record<string, unknown>) => {
      calls.push(input);
      return run(input);
    },
  });
  return { tool: instance, calls };
}

/** The tool results the model received on its last call, by tool call id. */
function toolResultsSeen(model: MockLanguageModelV4): Record<string, unknown> {
  const prompt = model.doGenerateCalls.at(-1)!.prompt;
  const seen: Record<string, unknown> = {};
  for (const message of prompt) {
    if (message.role !== "tool") continue;
    for (const part of message.content) if (part.type === "tool-result") seen[part.toolCallId] = part.output;
  }
  return seen;
}

function toolCalls(run: RunRecord, kind: "tool" | "llm" = "tool"): ToolCallRecord[] {
  return run.toolCalls.filter((call) => call.kind === kind);
}

/** Runs `fn` in one Warden run and returns the run as recorded. */
async function inRun<T>(warden: Warden, fn: () => Promise<T>): Promise<{ value: T; run: RunRecord }> {
  let runId = "";
  const value = await warden.run({ task: "test" }, async (run) => {
    runId = run.runId;
    return fn();
  });
  return { value, run: await warden.getRun(runId) };
}

const prompt = "do the thing";

// ── tests ─────────────────────────────────────────────────────────────────────────────────────

describe("governTools", () => {
  it("runs an allowed tool and records it with input, output and the SDK's tool call id", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = script(callTools(["call-1", "search", { query: "warden" }]), say("found it"));

    const { value: result, run } = await inRun(warden, () => generateText({ model, tools: governTools({ search: search.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

    expect(search.calls).toEqual([{ query: "warden" }]);
    expect(result.text).toBe("found it");
    expect(toolResultsSeen(model)["call-1"]).toEqual({ type: "text", value: 'search ok {"query":"warden"}' });
    const [call] = toolCalls(run);
    expect(call).toMatchObject({ toolName: "search", externalId: "call-1", status: "completed", input: { query: "warden" }, output: 'search ok {"query":"warden"}' });
    expect(call!.decision?.action).toBe("allow");
  });

  it("never executes a blocked tool; the model sees the refusal as a tool error", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const model = script(callTools(["call-1", "drop_database", { name: "prod" }]), say("could not"));

    const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ drop_database: drop.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

    expect(drop.calls).toEqual([]);
    const seen = toolResultsSeen(model)["call-1"] as { type: string; value: string };
    expect(seen.type).toBe("error-text");
    expect(seen.value).toContain('blocked by policy "no-db-drop"');
    expect(toolCalls(run)[0]).toMatchObject({ toolName: "drop_database", status: "blocked", blockedReason: "dropping databases is not allowed" });
  });

  it("lets a warned call proceed and flags it", async () => {
    const warden = newWarden();
    const write = countingTool("write_file");
    const model = script(callTools(["call-1", "write_file", { path: "a.txt" }]), say("written"));

    const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ write_file: write.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

    expect(write.calls).toHaveLength(1);
    const [call] = toolCalls(run);
    expect(call).toMatchObject({ status: "completed", decision: { action: "warn", policyId: "flag-writes" } });
    expect(run.events.filter((e) => e.type === "risk.detected").map((e) => e.data.toolName)).toEqual(["write_file"]);
  });

  describe("approval: wait", () => {
    it("waits for the reviewer and runs the call once approved", async () => {
      const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "bob", reason: "go" }), 5) });
      const deploy = countingTool("deploy");
      const model = script(callTools(["call-1", "deploy", { environment: "production" }]), say("deployed"));

      const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ deploy: deploy.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

      expect(deploy.calls).toEqual([{ environment: "production" }]);
      const [call] = toolCalls(run);
      expect(call).toMatchObject({ status: "completed", approval: { status: "approved", reviewer: "bob" } });
    });

    it("never runs a rejected call; the model sees the rejection", async () => {
      const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.reject({ reviewer: "bob", reason: "not today" }), 5) });
      const deploy = countingTool("deploy");
      const model = script(callTools(["call-1", "deploy", { environment: "production" }]), say("ok, not deployed"));

      const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ deploy: deploy.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

      expect(deploy.calls).toEqual([]);
      expect((toolResultsSeen(model)["call-1"] as { value: string }).value).toContain("rejected by bob: not today");
      expect(toolCalls(run)[0]).toMatchObject({ status: "rejected", approval: { status: "rejected" } });
    });

    it("never runs a call nobody approved in time", async () => {
      const warden = newWarden();
      const restart = countingTool("restart");
      const model = script(callTools(["call-1", "restart", { service: "api" }]), say("gave up"));

      const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ restart: restart.tool }, warden), prompt, stopWhen: stepCountIs(5) }));

      expect(restart.calls).toEqual([]);
      expect((toolResultsSeen(model)["call-1"] as { value: string }).value).toContain("not approved within");
      expect(toolCalls(run)[0]).toMatchObject({ status: "rejected", approval: { status: "expired" } });
    });
  });

  it("approval: user-approval surfaces the request through the SDK without the call-level options", async () => {
    const warden = newWarden();
    const deploy = countingTool("deploy");
    const model = script(callTools(["call-1", "deploy", { environment: "production" }]), say("deployed"));
    const tools = governTools({ deploy: deploy.tool }, warden, { approval: "user-approval" });

    const first = await generateText({ model, tools, prompt, stopWhen: stepCountIs(5) });
    expect(first.content.filter((part) => part.type === "tool-approval-request")).toHaveLength(1);
    expect(deploy.calls).toEqual([]);

    const [request] = warden.approvals.list({ status: "pending" });
    warden.approvals.approve(request!.approvalId, { reviewer: "alice" });
    const { message } = approvalResponses(warden, first);
    await generateText({ model, tools, messages: [{ role: "user", content: prompt }, ...first.response.messages, message!], stopWhen: stepCountIs(5) });

    expect(deploy.calls).toEqual([{ environment: "production" }]);
    expect(warden.runRecord(request!.runId).toolCalls[0]).toMatchObject({ status: "completed", externalId: "call-1" });
  });

  it("passes preliminary outputs of a streaming tool through and records the last", async () => {
    const warden = newWarden();
    const progress = tool({
      inputSchema: z.object({}),
      async *execute() {
        yield "25%";
        yield "100%";
      },
    });
    const model = script(callTools(["call-1", "progress", {}]), say("done"));

    const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ progress }, warden), prompt, stopWhen: stepCountIs(5) }));

    expect(toolResultsSeen(model)["call-1"]).toEqual({ type: "text", value: "100%" });
    expect(toolCalls(run)[0]).toMatchObject({ status: "completed", output: "100%" });
  });
});

describe("wardenCallOptions", () => {
  it("denies a blocked call: the tool never runs and the model gets execution-denied with the reason", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const search = countingTool("search");
    const model = script(callTools(["call-1", "drop_database", { name: "prod" }], ["call-2", "search", { query: "x" }]), say("could not drop"));

    const { run } = await inRun(warden, () =>
      generateText({ model, tools: governTools({ drop_database: drop.tool, search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }),
    );

    expect(drop.calls).toEqual([]);
    expect(search.calls).toHaveLength(1);
    const seen = toolResultsSeen(model);
    expect(seen["call-1"]).toMatchObject({ type: "execution-denied" });
    expect((seen["call-1"] as { reason: string }).reason).toContain('blocked by policy "no-db-drop"');
    const calls = toolCalls(run);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["drop_database", "blocked"],
      ["search", "completed"],
    ]);
    // One decision per call: the governed execute continued the call the approval hook began.
    expect(calls.filter((c) => c.toolName === "search")).toHaveLength(1);
  });

  describe("approval: user-approval", () => {
    async function firstTurn(warden: Warden, deploy: ReturnType<typeof countingTool>) {
      const model = script(callTools(["call-1", "deploy", { environment: "production" }]), say("deployed"));
      const tools = governTools({ deploy: deploy.tool }, warden);
      const messages: ModelMessage[] = [{ role: "user", content: "ship it" }];
      const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
      messages.push(...first.response.messages);
      return { model, tools, messages, first };
    }

    it("surfaces the request; approving it in Warden and answering the SDK runs the tool", async () => {
      const warden = newWarden();
      const deploy = countingTool("deploy");
      const { model, tools, messages, first } = await firstTurn(warden, deploy);

      const requests = first.content.filter((part) => part.type === "tool-approval-request");
      expect(requests).toHaveLength(1);
      expect(deploy.calls).toEqual([]);
      const [pendingApproval] = warden.approvals.list({ status: "pending" });
      expect(pendingApproval).toMatchObject({ toolName: "deploy", payload: { environment: "production" }, policyId: "prod-deploys" });

      // Nothing decided yet: nothing to answer.
      const before = approvalResponses(warden, messages);
      expect(before.message).toBeUndefined();
      expect(before.pending).toEqual([{ approvalId: requests[0]!.approvalId, toolCallId: "call-1", toolName: "deploy", wardenApprovalId: pendingApproval!.approvalId }]);

      warden.approvals.approve(pendingApproval!.approvalId, { reviewer: "alice", reason: "release window" });
      const { message, pending } = approvalResponses(warden, messages);
      expect(pending).toEqual([]);
      expect(message!.content).toEqual([{ type: "tool-approval-response", approvalId: requests[0]!.approvalId, approved: true, reason: "approved by alice" }]);

      const second = await generateText({ model, tools, messages: [...messages, message!], stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });

      expect(deploy.calls).toEqual([{ environment: "production" }]);
      expect(second.text).toBe("deployed");
      expect(toolResultsSeen(model)["call-1"]).toEqual({ type: "text", value: 'deploy ok {"environment":"production"}' });
      const record = warden.runRecord(pendingApproval!.runId).toolCalls.filter((c) => c.kind === "tool");
      expect(record).toHaveLength(1);
      expect(record[0]).toMatchObject({ status: "completed", externalId: "call-1", approval: { status: "approved", reviewer: "alice" } });
    });

    it("a rejection reaches the model as execution-denied and the tool never runs", async () => {
      const warden = newWarden();
      const deploy = countingTool("deploy");
      const { model, tools, messages } = await firstTurn(warden, deploy);
      const [pendingApproval] = warden.approvals.list({ status: "pending" });

      warden.approvals.reject(pendingApproval!.approvalId, { reviewer: "alice", reason: "freeze" });
      const { message } = approvalResponses(warden, messages);
      expect(message!.content[0]).toMatchObject({ approved: false });

      await generateText({ model, tools, messages: [...messages, message!], stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });

      expect(deploy.calls).toEqual([]);
      expect(toolResultsSeen(model)["call-1"]).toMatchObject({ type: "execution-denied" });
      expect(warden.runRecord(pendingApproval!.runId).toolCalls[0]).toMatchObject({ status: "rejected", approval: { status: "rejected" } });
    });

    it("an approval the app grants on its own is still refused while Warden has not approved", async () => {
      const warden = newWarden();
      const deploy = countingTool("deploy");
      const { model, tools, messages, first } = await firstTurn(warden, deploy);
      const request = first.content.find((part) => part.type === "tool-approval-request")!;
      const forged: ModelMessage = { role: "tool", content: [{ type: "tool-approval-response", approvalId: request.approvalId, approved: true }] };

      await generateText({ model, tools, messages: [...messages, forged], stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });

      expect(deploy.calls).toEqual([]);
      expect(toolResultsSeen(model)["call-1"]).toMatchObject({ type: "execution-denied" });
    });
  });

  it("approval: wait holds the call in-process, also for tools governTools did not wrap", async () => {
    const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "bob" }), 5) });
    const deploy = countingTool("deploy");
    const model = script(callTools(["call-1", "deploy", { environment: "production" }]), say("deployed"));

    const { run } = await inRun(warden, () => generateText({ model, tools: { deploy: deploy.tool }, prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden, { approval: "wait" }) }));

    expect(deploy.calls).toHaveLength(1);
    expect(toolCalls(run)[0]).toMatchObject({ status: "completed", output: 'deploy ok {"environment":"production"}', approval: { status: "approved" } });
  });

  it("records tools governTools did not wrap through the execution callbacks", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const fail = tool({
      inputSchema: z.object({}),
      execute: async (): Promise<string> => {
        throw new Error("upstream down");
      },
    });
    const model = script(callTools(["call-1", "search", { query: "x" }], ["call-2", "fail", {}]), say("done"));

    const { run } = await inRun(warden, () => generateText({ model, tools: { search: search.tool, fail }, prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }));

    expect(toolCalls(run).map((c) => [c.toolName, c.status])).toEqual([
      ["search", "completed"],
      ["fail", "failed"],
    ]);
    expect(toolCalls(run)[1]!.error).toMatchObject({ message: "upstream down" });
  });

  it("records each step's model and token usage", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = script(callTools(["call-1", "search", { query: "x" }]), say("done"));

    const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }));

    expect(toolCalls(run, "llm").map((c) => c.usage)).toEqual([
      { model: "mock-model-id", inputTokens: 10, outputTokens: 5, totalTokens: 15 },
      { model: "mock-model-id", inputTokens: 20, outputTokens: 8, totalTokens: 28 },
    ]);
  });

  it("a spent token budget stops the loop at the next step", async () => {
    const warden = newWarden({ policies: { ...policies, budgets: [{ id: "tokens-per-run", tokens: 20 }] } });
    const search = countingTool("search");
    const model = script(callTools(["call-1", "search", {}]), callTools(["call-2", "search", {}]), callTools(["call-3", "search", {}]), callTools(["call-4", "search", {}]), say("done"));

    const call = warden.run({ task: "chatty" }, () => generateText({ model, tools: governTools({ search: search.tool }, warden), prompt, stopWhen: stepCountIs(10), ...wardenCallOptions(warden) }));

    await expect(call).rejects.toBeInstanceOf(ToolBlockedError);
    // 15 tokens, then 30: the third model call is the one recorded over budget, and the last.
    expect(model.doGenerateCalls).toHaveLength(3);
    const [summary] = warden.listRuns();
    expect(toolCalls(warden.runRecord(summary!.runId), "llm").map((c) => c.status)).toEqual(["completed", "completed", "blocked"]);
  });

  it("keeps every call of one generateText in the enclosing run, under its step", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const write = countingTool("write_file");
    const model = script(callTools(["call-1", "search", { query: "x" }]), callTools(["call-2", "write_file", { path: "a" }]), say("done"));

    let runId = "";
    await warden.run({ task: "research" }, async (run) => {
      runId = run.runId;
      await run.step("agent", () => generateText({ model, tools: governTools({ search: search.tool, write_file: write.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }));
    });

    expect(warden.listRuns()).toHaveLength(1);
    const run = await warden.getRun(runId);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.map((c) => [c.kind, c.toolName])).toEqual([
      ["llm", "mock-model-id"],
      ["tool", "search"],
      ["llm", "mock-model-id"],
      ["tool", "write_file"],
      ["llm", "mock-model-id"],
    ]);
    expect(new Set(run.toolCalls.map((c) => c.stepId))).toEqual(new Set([run.steps[0]!.stepId]));
  });

  it("outside any run, records every call and leaves no run open", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = script(callTools(["call-1", "search", { query: "x" }]), say("done"));

    await generateText({ model, tools: governTools({ search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });

    const runs = warden.listRuns().map((summary) => warden.runRecord(summary.runId));
    expect(runs.every((run) => run.status === "completed")).toBe(true);
    const recorded = runs.flatMap((run) => run.toolCalls);
    expect(recorded.filter((c) => c.kind === "tool").map((c) => [c.toolName, c.status])).toEqual([["search", "completed"]]);
    expect(recorded.filter((c) => c.kind === "llm")).toHaveLength(2);
  });

  it("a halt while a tool runs aborts the tool and stops the generateText call", async () => {
    const warden = newWarden();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let sawAbort: unknown;
    const slow = tool({
      inputSchema: z.object({}),
      execute: (_input, { abortSignal }) =>
        new Promise((_resolve, reject) => {
          abortSignal!.addEventListener("abort", () => {
            sawAbort = abortSignal!.reason;
            reject(abortSignal!.reason);
          });
          started();
        }),
    });
    const model = script(callTools(["call-1", "slow", {}]), say("should not be reached"));

    let runId = "";
    const call = warden.run({ task: "slow" }, (run) => {
      runId = run.runId;
      return generateText({ model, tools: governTools({ slow }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
    });
    await running;
    warden.halt({ reason: "runaway agent" });

    await expect(call).rejects.toBeInstanceOf(HaltedError);
    expect(sawAbort).toBeInstanceOf(HaltedError);
    expect(model.doGenerateCalls).toHaveLength(1);
    const run = await warden.getRun(runId);
    expect(run.status).toBe("failed");
    expect(toolCalls(run)[0]).toMatchObject({ toolName: "slow", status: "failed" });
  });

  it("a halt of the run alone also stops the loop", async () => {
    const warden = newWarden();
    let runId = "";
    const stopper = tool({
      inputSchema: z.object({}),
      execute: async () => {
        warden.halt({ reason: "this run only", runId });
        return "halted myself";
      },
    });
    const search = countingTool("search");
    const model = script(callTools(["call-1", "stopper", {}]), callTools(["call-2", "search", {}]), say("unreachable"));

    const call = warden.run({ task: "self-halting" }, (run) => {
      runId = run.runId;
      return generateText({ model, tools: governTools({ stopper, search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
    });

    await expect(call).rejects.toBeInstanceOf(HaltedError);
    expect(search.calls).toEqual([]);
  });

  it("a listener that throws does not break the agent", async () => {
    const warden = newWarden();
    warden.on("*", () => {
      throw new Error("telemetry sink down");
    });
    const search = countingTool("search");
    const model = script(callTools(["call-1", "search", { query: "x" }]), say("done"));

    const { value: result, run } = await inRun(warden, () => generateText({ model, tools: governTools({ search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }));

    expect(result.text).toBe("done");
    expect(search.calls).toHaveLength(1);
    expect(toolCalls(run)[0]!.status).toBe("completed");
    expect(errors.length).toBeGreaterThan(0);
    expect((errors[0] as Error).message).toBe("telemetry sink down");
  });

  it("redacts secrets in what it records, not in what the tool receives", async () => {
    const warden = newWarden({ redaction: { keys: ["card"] } });
    const login = countingTool("login", () => ({ session: "s-1", api_key: "sk-live-abcdefghijklmnopqrstuvwxyz" }));
    const model = script(callTools(["call-1", "login", { user: "ann", password: "hunter2", card: "4111" }]), say("logged in"));

    const { run } = await inRun(warden, () => generateText({ model, tools: governTools({ login: login.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) }));

    expect(login.calls).toEqual([{ user: "ann", password: "hunter2", card: "4111" }]);
    expect(toolCalls(run)[0]).toMatchObject({ input: { user: "ann", password: "[REDACTED]", card: "[REDACTED]" }, output: { session: "s-1", api_key: "[REDACTED]" } });
  });

  it("works with streamText", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const search = countingTool("search");
    const chunks = (...parts: unknown[]) => ({ stream: new ReadableStream({ start: (c) => (parts.forEach((p) => c.enqueue(p)), c.close()) }) });
    const finish = (unified: "tool-calls" | "stop") => ({ type: "finish", finishReason: { unified, raw: undefined }, usage: usage(3, 2) });
    const model = new MockLanguageModelV4({
      doStream: [
        chunks(
          { type: "tool-call", toolCallId: "call-1", toolName: "drop_database", input: "{}" },
          { type: "tool-call", toolCallId: "call-2", toolName: "search", input: '{"query":"x"}' },
          finish("tool-calls"),
        ),
        chunks({ type: "text-start", id: "t" }, { type: "text-delta", id: "t", delta: "done" }, { type: "text-end", id: "t" }, finish("stop")),
      ] as never,
    });

    const { value: text, run } = await inRun(warden, async () => {
      const result = streamText({ model, tools: governTools({ drop_database: drop.tool, search: search.tool }, warden), prompt, stopWhen: stepCountIs(5), ...wardenCallOptions(warden) });
      return await result.text;
    });

    expect(text).toBe("done");
    expect(drop.calls).toEqual([]);
    expect(search.calls).toHaveLength(1);
    expect(toolCalls(run).map((c) => [c.toolName, c.status])).toEqual([
      ["drop_database", "blocked"],
      ["search", "completed"],
    ]);
    expect(toolCalls(run, "llm").map((c) => c.usage?.totalTokens)).toEqual([5, 5]);
  });

  it("works with ToolLoopAgent, settings at construction or per call", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const search = countingTool("search");
    const model = script(callTools(["call-1", "drop_database", {}], ["call-2", "search", {}]), say("done"), callTools(["call-3", "drop_database", {}]), say("again"));
    const agent = new ToolLoopAgent({ model, tools: governTools({ drop_database: drop.tool, search: search.tool } as ToolSet, warden), ...wardenCallOptions(warden) });

    const { value: result, run } = await inRun(warden, () => agent.generate({ prompt }));
    expect(result.text).toBe("done");
    expect(drop.calls).toEqual([]);
    expect(toolCalls(run).map((c) => c.status)).toEqual(["blocked", "completed"]);

    // Per call, the halt signal reaches the loop too.
    const { value: again } = await inRun(warden, () => agent.generate({ prompt, ...wardenCallOptions(warden) }));
    expect(again.text).toBe("again");
    expect(drop.calls).toEqual([]);
  });

  it("governed() spreads both halves at once", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const model = script(callTools(["call-1", "drop_database", {}]), say("no"));

    const { run } = await inRun(warden, () => generateText({ model, prompt, stopWhen: stepCountIs(5), ...governed(warden, { tools: { drop_database: drop.tool } }) }));

    expect(drop.calls).toEqual([]);
    expect(toolResultsSeen(model)["call-1"]).toMatchObject({ type: "execution-denied" });
    expect(toolCalls(run)[0]!.status).toBe("blocked");
    expect(toolCalls(run, "llm")).toHaveLength(2);
  });
});
