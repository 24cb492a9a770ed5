// The OpenAI Agents adapter against the real SDK (@openai/agents 0.20), driven offline by its ScriptedModel.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, RunState, run, setTraceProcessors, setTracingDisabled, tool, Usage } from "@openai/agents";
import { assistantMessage, functionCall, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { HaltedError, isHalt, ToolBlockedError, Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { governAgent, governedRun, resolveInterruptions, tool as namedTool, WardenTraceProcessor } from "agent-warden/openai-agents";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";

const POLICIES: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-secrets", when: { tool: "get_secret" }, action: "block" },
    { id: "flag-writes", when: { tool: "write_*" }, action: "warn", severity: "low" },
    { id: "approve-prod-deploy", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval", approval: { timeout: "10m" } },
  ],
};

const wardens: Warden[] = [];
const dirs: string[] = [];

function makeWarden(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "support-agent", store: ":memory:", policies: POLICIES, ...options } as WardenOptions);
  wardens.push(warden);
  return warden;
}

function usage(input = 10, output = 5): Usage {
  return new Usage({ requests: 1, inputTokens: input, outputTokens: output, totalTokens: input + output });
}

/** One model turn asking for tool calls, as `[name, args, callId]`. */
function calls(...list: Array<[string, Record<string, unknown>, string]>) {
  return modelResponse({ output: list.map(([name, args, callId]) => functionCall(name, args, { callId })), usage: usage() });
}

function answer(text: string) {
  return modelResponse({ output: [assistantMessage(text)], usage: usage() });
}

/** The tool result the model was sent for `callId`, as text. */
function seenByModel(model: ScriptedModel, callId: string): string | undefined {
  for (const call of model.calls) {
    const input = call.request.input;
    if (!Array.isArray(input)) continue;
    for (const item of input as Array<Record<string, any>>) {
      if (item.type === "function_call_result" && item.callId === callId) return typeof item.output === "string" ? item.output : item.output?.text;
    }
  }
  return undefined;
}

/** The Warden error the SDK wrapped (a tool call error around a guardrail tripwire). */
function haltBehind(error: unknown, depth = 0): unknown {
  if (depth > 6 || error === null || typeof error !== "object") return undefined;
  if (isHalt(error)) return error;
  const value = error as { error?: unknown; cause?: unknown; result?: { output?: { outputInfo?: { error?: unknown } } } };
  return haltBehind(value.result?.output?.outputInfo?.error, depth + 1) ?? haltBehind(value.error, depth + 1) ?? haltBehind(value.cause, depth + 1);
}

/** Every recorded tool call (and LLM call) across all runs, oldest first. */
async function recorded(warden: Warden, kind: "tool" | "llm" = "tool"): Promise<ToolCallRecord[]> {
  const out: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 1000 }).reverse()) out.push(...(await warden.getRun(run.runId)).toolCalls.filter((c) => c.kind === kind));
  return out;
}

function tools() {
  const executed: Record<string, unknown[]> = {};
  const track = (name: string, args: unknown) => (executed[name] ??= []).push(args);
  return {
    executed,
    add: tool({ name: "add", description: "Adds two numbers", parameters: z.object({ a: z.number(), b: z.number() }), execute: async (args) => (track("add", args), args.a + args.b) }),
    getSecret: tool({ name: "get_secret", description: "Reads a secret", parameters: z.object({ name: z.string() }), execute: async (args) => (track("get_secret", args), "s3cr3t") }),
    writeFile: tool({ name: "write_file", description: "Writes a file", parameters: z.object({ path: z.string() }), execute: async (args) => (track("write_file", args), "written") }),
    deploy: tool({ name: "deploy", description: "Deploys", parameters: z.object({ environment: z.string() }), execute: async (args) => (track("deploy", args), `deployed to ${args.environment}`) }),
  };
}

/** Records SDK traces into `warden` (tracing is off otherwise: NODE_ENV=test). */
function trace(warden: Warden, options: ConstructorParameters<typeof WardenTraceProcessor>[1] = {}): void {
  setTraceProcessors([new WardenTraceProcessor(warden, options)]);
  setTracingDisabled(false);
}

const network = vi.fn(async () => {
  throw new Error("no test may reach the network");
});

beforeAll(() => {
  delete process.env.OPENAI_API_KEY;
  vi.stubGlobal("fetch", network);
  // Importing @openai/agents registers OpenAI's exporter; no test may export anything.
  setTraceProcessors([]);
  setTracingDisabled(true);
});

afterEach(() => {
  vi.useRealTimers();
  setTraceProcessors([]);
  setTracingDisabled(true);
  while (wardens.length > 0) wardens.pop()!.close();
  while (dirs.length > 0) rmSync(dirs.pop()!, { recursive: true, force: true });
});

afterAll(() => {
  setTraceProcessors([]);
  vi.unstubAllGlobals();
});

describe("governAgent: decisions on tool calls", () => {
  it("runs an allowed tool and records its input and output under the call id", async () => {
    const warden = makeWarden();
    const t = tools();
    const model = new ScriptedModel([calls(["add", { a: 2, b: 3 }, "call_add"]), answer("5")]);
    const agent = governAgent(new Agent({ name: "calc", model, tools: [t.add] }), warden);

    const result = await run(agent, "2 + 3?");

    expect(result.finalOutput).toBe("5");
    expect(t.executed.add).toEqual([{ a: 2, b: 3 }]);
    expect(seenByModel(model, "call_add")).toBe("5");
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ externalId: "call_add", toolName: "add", status: "completed", input: { a: 2, b: 3 }, output: 5 });
    expect(call!.decision?.action).toBe("allow");
  });

  it("never executes a blocked tool and the model sees why", async () => {
    const warden = makeWarden();
    const t = tools();
    const model = new ScriptedModel([calls(["get_secret", { name: "db" }, "call_secret"]), answer("I cannot read that secret.")]);
    const agent = governAgent(new Agent({ name: "ops", model, tools: [t.getSecret] }), warden);

    const result = await run(agent, "read the db secret");

    expect(t.executed.get_secret).toBeUndefined();
    expect(result.finalOutput).toBe("I cannot read that secret.");
    expect(seenByModel(model, "call_secret")).toContain('blocked by policy "no-secrets"');
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ externalId: "call_secret", status: "blocked" });
    expect(call!.decision).toMatchObject({ action: "block", policyId: "no-secrets" });
  });

  it("lets a warned tool run and flags it", async () => {
    const warden = makeWarden();
    const t = tools();
    const model = new ScriptedModel([calls(["write_file", { path: "notes.txt" }, "call_write"]), answer("saved")]);
    const agent = governAgent(new Agent({ name: "writer", model, tools: [t.writeFile] }), warden);

    await governedRun(agent, "save my notes", warden);

    expect(t.executed.write_file).toEqual([{ path: "notes.txt" }]);
    const [run] = warden.listRuns();
    const record = await warden.getRun(run!.runId);
    expect(record.status).toBe("completed");
    expect(record.toolCalls).toHaveLength(1);
    expect(record.toolCalls[0]).toMatchObject({ status: "completed", output: "written" });
    expect(record.toolCalls[0]!.decision).toMatchObject({ action: "warn", policyId: "flag-writes" });
    expect(record.events.filter((e) => e.type === "risk.detected")).toHaveLength(1);
  });

  it("governs the tools of agents reached through handoffs, once per tool", async () => {
    const warden = makeWarden();
    const t = tools();
    const billing = new Agent({ name: "billing", tools: [t.getSecret] });
    const triage = new Agent({ name: "triage", tools: [t.add], handoffs: [billing] });
    governAgent(triage, warden);
    governAgent(triage, warden);

    expect(t.getSecret.inputGuardrails?.map((g) => g.name)).toEqual(["warden"]);
    expect(t.add.inputGuardrails?.map((g) => g.name)).toEqual(["warden"]);
    expect(() => governAgent(new Agent({ name: "other", tools: [t.add] }), makeWarden())).toThrow(/already governed/);
  });
});

describe("approvals through SDK interruptions", () => {
  async function pausedDeploy(warden: Warden) {
    const t = tools();
    const model = new ScriptedModel([calls(["deploy", { environment: "production" }, "call_deploy"]), answer("deployed")]);
    const agent = governAgent(new Agent({ name: "deployer", model, tools: [t.deploy] }), warden);
    const result = await run(agent, "ship it");
    return { t, model, agent, result };
  }

  it("pauses the run, and runs the tool once a reviewer approves in Warden", async () => {
    const warden = makeWarden();
    const { t, model, agent, result } = await pausedDeploy(warden);

    expect(result.interruptions.map((i) => i.name)).toEqual(["deploy"]);
    expect(t.executed.deploy).toBeUndefined();
    const [request] = warden.approvals.list({ status: "pending" });
    expect(request).toMatchObject({ toolName: "deploy", payload: { environment: "production" }, policyId: "approve-prod-deploy" });
    expect((await recorded(warden))[0]).toMatchObject({ externalId: "call_deploy", status: "awaiting_approval" });

    // Nothing decided yet: the interruption stays.
    expect(resolveInterruptions(result, warden).pending).toHaveLength(1);

    warden.approvals.approve(request!.approvalId, { reviewer: "alice", reason: "change window" });
    const resolution = resolveInterruptions(result, warden);
    expect(resolution.approved).toHaveLength(1);
    const resumed = await run(agent, result.state);

    expect(resumed.finalOutput).toBe("deployed");
    expect(t.executed.deploy).toEqual([{ environment: "production" }]);
    expect(seenByModel(model, "call_deploy")).toBe("deployed to production");
    const calls = await recorded(warden);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ status: "completed", output: "deployed to production" });
    expect(calls[0]!.approval).toMatchObject({ status: "approved", reviewer: "alice" });
  });

  it("does not run the tool when the reviewer rejects", async () => {
    const warden = makeWarden();
    const { t, model, agent, result } = await pausedDeploy(warden);
    warden.approvals.reject(warden.approvals.list({ status: "pending" })[0]!.approvalId, { reviewer: "bob", reason: "freeze" });

    expect(resolveInterruptions(result, warden).rejected).toHaveLength(1);
    const resumed = await run(agent, result.state);

    expect(resumed.finalOutput).toBe("deployed");
    expect(t.executed.deploy).toBeUndefined();
    expect(seenByModel(model, "call_deploy")).toContain("was not approved");
    expect((await recorded(warden))[0]).toMatchObject({ status: "rejected" });
  });

  it("does not run the tool once the approval has expired", async () => {
    const warden = makeWarden();
    const { t, agent, result } = await pausedDeploy(warden);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 11 * 60_000);

    expect(resolveInterruptions(result, warden).rejected).toHaveLength(1);
    vi.useRealTimers();
    await run(agent, result.state);

    expect(t.executed.deploy).toBeUndefined();
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "rejected" });
    expect(call!.approval?.status).toBe("expired");
  });

  it.each([["without", false], ["with", true]])("resumes a serialized run in a new process after approval in Warden (%s the trace processor)", async (_label, traced) => {
    const dir = mkdtempSync(join(tmpdir(), "warden-oa-"));
    dirs.push(dir);
    const store = join(dir, "warden.db");

    // Process 1: the run pauses and is saved.
    const first = makeWarden({ store });
    if (traced) trace(first);
    const before = tools();
    const model1 = new ScriptedModel([calls(["deploy", { environment: "production" }, "call_deploy"])]);
    const paused = await governedRun(governAgent(new Agent({ name: "deployer", model: model1, tools: [before.deploy] }), first), "ship it", first);
    expect(paused.interruptions).toHaveLength(1);
    const saved = paused.state.toString();
    const [pausedRun] = first.listRuns({ status: "running" }).filter((r) => (r.metadata as { kind?: string }).kind === "workflow");
    first.close();

    // A reviewer approves, from anywhere that reaches the store.
    const reviewer = makeWarden({ store, agentId: "console" });
    const [request] = reviewer.approvals.list({ status: "pending" });
    reviewer.approvals.approve(request!.approvalId, { reviewer: "alice" });

    // Process 2: same agent definition, restored state.
    const second = makeWarden({ store });
    if (traced) trace(second);
    const after = tools();
    const model2 = new ScriptedModel([answer("deployed")]);
    const agent2 = governAgent(new Agent({ name: "deployer", model: model2, tools: [after.deploy] }), second);
    const state = await RunState.fromString(agent2, saved);
    const resumed = await governedRun(agent2, state, second);

    expect(resumed.finalOutput).toBe("deployed");
    expect(before.executed.deploy).toBeUndefined();
    expect(after.executed.deploy).toEqual([{ environment: "production" }]);
    expect((await second.getRun(pausedRun!.runId)).status).toBe("completed");
    expect(second.listRuns({ status: "running" })).toHaveLength(0);
    // One call, approved once, completed in the run where it paused (the agent's own run when traced).
    const deployCalls = await recorded(second);
    expect(deployCalls).toHaveLength(1);
    expect(deployCalls[0]).toMatchObject({ externalId: "call_deploy", status: "completed", output: "deployed to production" });
    expect(deployCalls[0]!.approval).toMatchObject({ status: "approved", reviewer: "alice" });
    expect(second.listRuns()).toHaveLength(traced ? 2 : 1);
  });

  it("does not pause when a reviewer callback answers at once", async () => {
    const warden = makeWarden({ onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "auto-approver" }) });
    const { t, result } = await pausedDeploy(warden);

    expect(result.interruptions).toHaveLength(0);
    expect(result.finalOutput).toBe("deployed");
    expect(t.executed.deploy).toHaveLength(1);
    expect((await recorded(warden))[0]!.approval).toMatchObject({ status: "approved", reviewer: "auto-approver" });
  });

  it("leaves interruptions Warden did not raise to the application", async () => {
    const warden = makeWarden();
    const executed: string[] = [];
    const wipe = tool({ name: "wipe", description: "Wipes", parameters: z.object({}), needsApproval: true, execute: async () => (executed.push("wipe"), "wiped") });
    const model = new ScriptedModel([calls(["wipe", {}, "call_wipe"]), answer("done")]);
    const agent = governAgent(new Agent({ name: "janitor", model, tools: [wipe] }), warden);

    const result = await run(agent, "wipe");
    const resolution = resolveInterruptions(result, warden);

    expect(resolution.unmanaged).toHaveLength(1);
    expect(warden.approvals.list()).toHaveLength(0);
    result.state.approve(resolution.unmanaged[0]!);
    await run(agent, result.state);
    expect(executed).toEqual(["wipe"]);
    expect((await recorded(warden))[0]).toMatchObject({ externalId: "call_wipe", status: "completed" });
  });
});

describe("approvals by waiting (approval: \"wait\")", () => {
  it("holds the call until the reviewer approves, in one run", async () => {
    const warden = makeWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "alice" }), 0) });
    const t = tools();
    const model = new ScriptedModel([calls(["deploy", { environment: "production" }, "call_deploy"]), answer("deployed")]);
    const agent = governAgent(new Agent({ name: "deployer", model, tools: [t.deploy] }), warden, { approval: "wait" });

    const result = await governedRun(agent, "ship it", warden);

    expect(result.interruptions).toHaveLength(0);
    expect(t.executed.deploy).toEqual([{ environment: "production" }]);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "completed" });
    expect(call!.approval).toMatchObject({ status: "approved", reviewer: "alice" });
  });

  it("gives the model the rejection and does not run the tool", async () => {
    const warden = makeWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.reject({ reviewer: "bob", reason: "freeze" }), 0) });
    const t = tools();
    const model = new ScriptedModel([calls(["deploy", { environment: "production" }, "call_deploy"]), answer("not deployed")]);
    const agent = governAgent(new Agent({ name: "deployer", model, tools: [t.deploy] }), warden, { approval: "wait" });

    await run(agent, "ship it");

    expect(t.executed.deploy).toBeUndefined();
    expect(seenByModel(model, "call_deploy")).toMatch(/rejected by bob/);
    expect((await recorded(warden))[0]).toMatchObject({ status: "rejected" });
  });

  it("does not run the tool when nobody answers in time", async () => {
    const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "approve-deploys", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "20ms" } }] };
    const warden = makeWarden({ policies });
    const t = tools();
    const model = new ScriptedModel([calls(["deploy", { environment: "staging" }, "call_deploy"]), answer("timed out")]);
    const agent = governAgent(new Agent({ name: "deployer", model, tools: [t.deploy] }), warden, { approval: "wait" });

    await run(agent, "ship it");

    expect(t.executed.deploy).toBeUndefined();
    expect(seenByModel(model, "call_deploy")).toMatch(/not approved within/);
    const [call] = await recorded(warden);
    expect(call!.approval?.status).toBe("expired");
  });
});

describe("halt", () => {
  it("aborts a running tool and stops the run with HaltedError", async () => {
    const warden = makeWarden();
    let toolSignal: AbortSignal | undefined;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    // A slow tool that ignores its signal: the run must not wait for it.
    const slow = tool({
      name: "slow_export",
      description: "Exports everything",
      parameters: z.object({}),
      execute: (_args, _context, details) => {
        toolSignal = details?.signal;
        started();
        return new Promise<string>(() => {});
      },
    });
    const model = new ScriptedModel([calls(["slow_export", {}, "call_slow"]), answer("never")]);
    const agent = governAgent(new Agent({ name: "exporter", model, tools: [slow] }), warden);

    const outcome = governedRun(agent, "export", warden);
    await running;
    warden.halt({ reason: "runaway export" });

    await expect(outcome).rejects.toBeInstanceOf(HaltedError);
    expect(toolSignal?.aborted).toBe(true);
    expect(model.calls).toHaveLength(1);
    const [haltedRun] = warden.listRuns();
    const record = await warden.getRun(haltedRun!.runId);
    expect(record.status).toBe("failed");
    expect(record.toolCalls[0]).toMatchObject({ externalId: "call_slow", status: "failed" });

    // While halted, nothing starts.
    const t = tools();
    const idle = new ScriptedModel([calls(["add", { a: 1, b: 1 }, "call_add"]), answer("2")]);
    await expect(governedRun(governAgent(new Agent({ name: "calc", model: idle, tools: [t.add] }), warden), "1 + 1", warden)).rejects.toBeInstanceOf(HaltedError);
    // The SDK's own run: the governed model refuses before the provider is called.
    const halted = new ScriptedModel([calls(["add", { a: 1, b: 1 }, "call_add2"])]);
    await expect(run(governAgent(new Agent({ name: "calc2", model: halted, tools: [t.add] }), warden), "1 + 1")).rejects.toBeInstanceOf(HaltedError);
    expect(halted.calls).toHaveLength(0);
    expect(idle.calls).toHaveLength(0);
    expect(t.executed.add).toBeUndefined();
  });
});

describe("tool names the SDK rewrites", () => {
  const refundPolicies: PolicySetInput = {
    version: 1,
    default: "allow",
    policies: [
      { id: "large-refunds", when: { tool: "payments.*", "args.amount": { gt: 10000 } }, action: "require_approval", approval: { timeout: "10m" } },
      { id: "no-wire", when: { tool: "payments.wire" }, action: "block" },
    ],
  };
  const refundTool = (make: typeof tool, refunds: unknown[]) =>
    make({ name: "payments.refund", description: "Refunds an order", parameters: z.object({ amount: z.number() }), execute: async (args) => (refunds.push(args), `refunded ${args.amount}`) });

  it.each([
    ["the SDK's tool()", tool],
    ["agent-warden's tool()", namedTool],
  ])("a payments.* policy matches payments.refund made with %s: a 68,000 refund waits for approval, recorded under the developer's name", async (_label, make) => {
    const warden = makeWarden({ policies: refundPolicies });
    const refunds: unknown[] = [];
    const refund = refundTool(make, refunds);
    expect(refund.name).toBe("payments_refund");
    const model = new ScriptedModel([calls(["payments_refund", { amount: 68000 }, "call_refund"]), answer("refunded")]);
    const agent = governAgent(new Agent({ name: "billing", model, tools: [refund] }), warden);

    const result = await run(agent, "refund 68,000");

    expect(result.interruptions.map((i) => i.name)).toEqual(["payments_refund"]);
    expect(refunds).toEqual([]);
    expect(warden.approvals.list({ status: "pending" })).toEqual([expect.objectContaining({ toolName: "payments.refund", policyId: "large-refunds" })]);
    expect((await recorded(warden))[0]).toMatchObject({ externalId: "call_refund", toolName: "payments.refund", status: "awaiting_approval" });

    warden.approvals.approve(warden.approvals.list({ status: "pending" })[0]!.approvalId, { reviewer: "alice" });
    resolveInterruptions(result, warden);
    await run(agent, result.state);
    expect(refunds).toEqual([{ amount: 68000 }]);
    expect((await recorded(warden))[0]).toMatchObject({ toolName: "payments.refund", status: "completed" });
  });

  it("a block written for the developer's name holds, and the model reads it", async () => {
    const warden = makeWarden({ policies: refundPolicies });
    const wires: unknown[] = [];
    const wire = tool({ name: "payments.wire", description: "Wires money", parameters: z.object({ amount: z.number() }), execute: async (args) => (wires.push(args), "sent") });
    const model = new ScriptedModel([calls(["payments_wire", { amount: 5 }, "call_wire"]), answer("not sent")]);

    await run(governAgent(new Agent({ name: "billing", model, tools: [wire] }), warden), "wire 5");

    expect(wires).toEqual([]);
    expect(seenByModel(model, "call_wire")).toContain('blocked by policy "no-wire"');
    expect((await recorded(warden))[0]).toMatchObject({ toolName: "payments.wire", status: "blocked" });
  });

  it("when policies for two names could mean the same SDK name, the strictest decides", async () => {
    const policies: PolicySetInput = {
      version: 1,
      default: "allow",
      policies: [
        { id: "dots", when: { tool: "ops.db-drop" }, action: "warn" },
        { id: "dashes", when: { tool: "ops-db.drop" }, action: "block" },
      ],
    };
    const warden = makeWarden({ policies });
    const dropped: unknown[] = [];
    const drop = tool({ name: "ops_db_drop", description: "Drops", parameters: z.object({}), execute: async () => (dropped.push(1), "dropped") });
    const model = new ScriptedModel([calls(["ops_db_drop", {}, "call_drop"]), answer("no")]);

    await run(governAgent(new Agent({ name: "ops", model, tools: [drop] }), warden), "drop it");

    expect(dropped).toEqual([]);
    expect((await recorded(warden))[0]).toMatchObject({ toolName: "ops-db.drop", status: "blocked" });
  });
});

describe("agents used as tools (agent.asTool)", () => {
  /** A lead agent that calls a researcher agent as a tool; the researcher tries a blocked tool and an allowed one. */
  function leadWithResearcher() {
    const t = tools();
    const researcherModel = new ScriptedModel([calls(["get_secret", { name: "db" }, "call_secret"], ["add", { a: 1, b: 2 }, "call_add"]), answer("research done: 3")]);
    const researcher = new Agent({ name: "researcher", model: researcherModel, tools: [t.getSecret, t.add] });
    const leadModel = new ScriptedModel([calls(["research", { input: "find the number" }, "call_research"]), answer("the answer is 3")]);
    const lead = new Agent({ name: "lead", model: leadModel, tools: [researcher.asTool({ toolName: "research", toolDescription: "Researches" })] });
    return { t, lead, researcherModel };
  }

  it.each([
    ["governedRun", false, true],
    ["governedRun with the trace processor", true, true],
    ["run() with the trace processor", true, false],
    ["run()", false, false],
  ])("governance of the caller reaches the inner agent's tools, and the inner run is a child of the caller's run (%s)", async (_label, traced, governed) => {
    const warden = makeWarden();
    if (traced) trace(warden);
    const { t, lead, researcherModel } = leadWithResearcher();

    const result = governed ? await governedRun(governAgent(lead, warden), "what is the number?", warden) : await run(governAgent(lead, warden), "what is the number?");

    expect(result.finalOutput).toBe("the answer is 3");
    expect(t.executed.get_secret).toBeUndefined();
    expect(t.executed.add).toEqual([{ a: 1, b: 2 }]);
    expect(seenByModel(researcherModel, "call_secret")).toContain('blocked by policy "no-secrets"');

    const calls = await recorded(warden);
    expect(calls).toHaveLength(3);
    const research = calls.find((c) => c.toolName === "research")!;
    const secret = calls.find((c) => c.toolName === "get_secret")!;
    const add = calls.find((c) => c.toolName === "add")!;
    expect(research).toMatchObject({ externalId: "call_research", status: "completed" });
    expect(secret).toMatchObject({ externalId: "call_secret", status: "blocked" });
    expect(add).toMatchObject({ externalId: "call_add", status: "completed" });
    // One tree: the inner agent's calls sit in a run below the run of the call that invoked it.
    const inner = await warden.getRun(secret.runId);
    expect(add.runId).toBe(inner.runId);
    const ancestors: string[] = [];
    for (let run = inner; run.parentRunId !== undefined; run = await warden.getRun(run.parentRunId)) ancestors.push(run.parentRunId);
    expect(ancestors).toContain(research.runId);
    expect(new Set(warden.listRuns({ limit: 20 }).map((r) => r.traceId)).size).toBe(1);
    expect(warden.listRuns({ status: "running" })).toHaveLength(0);
    // Each model call once, with its own usage: the caller's turn does not count the inner agent's tokens again.
    if (traced) expect((await recorded(warden, "llm")).map((c) => c.usage?.totalTokens)).toEqual([15, 15, 15, 15]);
  });

  it("a halt inside the inner agent stops the whole run", async () => {
    const warden = makeWarden();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const slow = tool({ name: "slow_export", description: "Exports", parameters: z.object({}), execute: () => (started(), new Promise<string>(() => {})) });
    const worker = new Agent({ name: "worker", model: new ScriptedModel([calls(["slow_export", {}, "call_slow"]), answer("never")]), tools: [slow] });
    const leadModel = new ScriptedModel([calls(["work", { input: "export" }, "call_work"]), answer("never")]);
    const lead = governAgent(new Agent({ name: "lead", model: leadModel, tools: [worker.asTool({ toolName: "work", toolDescription: "Works" })] }), warden);

    const outcome = governedRun(lead, "export everything", warden);
    await running;
    warden.halt({ reason: "runaway export" });

    await expect(outcome).rejects.toBeInstanceOf(HaltedError);
    expect(leadModel.calls).toHaveLength(1);
  });
});

describe("halt of a delegating agent", () => {
  it("stops the run when the token the client acts under was invalidated by a halt of the agent that delegated it", async () => {
    const signingKey = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const planner = makeWarden({ agentId: "planner", tokens: { signingKey } });
    const token = planner.tokens.attenuate(planner.tokens.mint({ agentId: "planner", scopes: ["*"], ttl: "1h" }), { audience: "planner/support-agent" });
    const warden = makeWarden({ agentId: "planner/support-agent", token, tokens: { signingKey } });
    warden.halt({ reason: "planner compromised", agentId: "planner" });
    const t = tools();
    const model = new ScriptedModel([calls(["add", { a: 1, b: 1 }, "call_add"]), answer("carried on"), answer("carried on")]);

    const outcome = await run(governAgent(new Agent({ name: "calc", model, tools: [t.add] }), warden), "1 + 1").then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(t.executed.add).toBeUndefined();
    expect(model.calls).toHaveLength(1);
    // The guardrail stopped the run (throwException) instead of handing the model a refusal to carry on from.
    expect(outcome).toBeInstanceOf(Error);
    expect(model.calls).toHaveLength(1);
    expect(isHalt(haltBehind(outcome))).toBe(true);
  });
});

describe("WardenTraceProcessor", () => {
  it("records token usage of each model call", async () => {
    const warden = makeWarden();
    trace(warden);
    const t = tools();
    const model = new ScriptedModel([
      modelResponse({ output: [functionCall("add", { a: 1, b: 2 }, { callId: "call_add" })], usage: usage(120, 30) }),
      modelResponse({ output: [assistantMessage("3")], usage: usage(200, 8) }),
    ]);
    await governedRun(governAgent(new Agent({ name: "calc", model, tools: [t.add] }), warden), "1 + 2", warden);

    const llm = await recorded(warden, "llm");
    expect(llm.map((c) => c.usage)).toEqual([
      { model: "unknown", inputTokens: 120, outputTokens: 30, totalTokens: 150 },
      { model: "unknown", inputTokens: 200, outputTokens: 8, totalTokens: 208 },
    ]);
    expect(llm.every((c) => c.status === "completed")).toBe(true);
  });

  it("refuses a model call once the run's LLM-token budget is spent, before the model is called", async () => {
    const warden = makeWarden({ policies: { version: 1, default: "allow", policies: [], budgets: [{ id: "run-tokens", tokens: 100 }] } });
    const t = tools();
    const model = new ScriptedModel([calls(["add", { a: 1, b: 2 }, "call_add"]), answer("3")]);
    const agent = governAgent(new Agent({ name: "calc", model, tools: [t.add] }), warden);
    const outcome = await warden.run({ task: "add" }, async () => {
      // Earlier model calls of this run spent the budget.
      warden.beginLlmCall({ model: "earlier" }).complete({ inputTokens: 90, outputTokens: 30 });
      return run(agent, "1 + 2").catch((error: unknown) => error);
    });
    expect(outcome).toBeInstanceOf(ToolBlockedError);
    expect((outcome as ToolBlockedError).message).toContain('token budget "run-tokens"');
    expect(model.calls).toHaveLength(0);
    expect(t.executed.add).toBeUndefined();
    const refused = (await recorded(warden, "llm")).filter((c) => c.status === "blocked");
    expect(refused).toEqual([expect.objectContaining({ kind: "llm", blockedReason: expect.stringContaining("run-tokens") })]);
  });

  it("governedRun gates every model call of the run, a model it did not wrap included", async () => {
    const warden = makeWarden({ policies: { version: 1, default: "allow", policies: [], budgets: [{ id: "run-tokens", tokens: 100 }] } });
    trace(warden);
    const t = tools();
    const model = new ScriptedModel([
      modelResponse({ output: [functionCall("add", { a: 1, b: 2 }, { callId: "call_add" })], usage: usage(120, 30) }),
      modelResponse({ output: [assistantMessage("3")], usage: usage(20, 5) }),
    ]);
    // Not passed through governAgent: only the run's callModelInputFilter stands between the run and the model.
    const outcome = await governedRun(new Agent({ name: "calc", model, tools: [t.add] }), "1 + 2", warden).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ToolBlockedError);
    expect(model.calls).toHaveLength(1);
  });

  it("makes a handed-off agent a child run in the same trace, each tool call recorded once", async () => {
    const warden = makeWarden();
    trace(warden);
    const refunds: unknown[] = [];
    const refund = tool({ name: "refund", description: "Refunds", parameters: z.object({ amount: z.number() }), execute: async (args) => (refunds.push(args), `refunded ${args.amount}`) });
    const billing = new Agent({ name: "billing", model: new ScriptedModel([calls(["refund", { amount: 28 }, "call_refund"]), answer("refunded")]), tools: [refund] });
    const triage = new Agent({ name: "triage", model: new ScriptedModel([calls(["transfer_to_billing", {}, "call_handoff"])]), handoffs: [billing] });

    const result = await governedRun(governAgent(triage, warden), "refund order 1042", warden, { metadata: { task: "refund order 1042" } });

    expect(result.finalOutput).toBe("refunded");
    expect(refunds).toEqual([{ amount: 28 }]);
    const runs = warden.listRuns({ limit: 10 });
    const workflow = runs.find((r) => (r.metadata as { kind?: string }).kind === "workflow")!;
    const triageRun = runs.find((r) => (r.metadata as { agent?: string; kind?: string }).kind === "agent" && (r.metadata as { agent?: string }).agent === "triage")!;
    const billingRun = runs.find((r) => (r.metadata as { agent?: string }).agent === "billing" && (r.metadata as { kind?: string }).kind === "agent")!;
    expect(runs).toHaveLength(3);
    expect(workflow.metadata).toMatchObject({ task: "refund order 1042" });
    expect(triageRun.parentRunId).toBe(workflow.runId);
    expect(billingRun.parentRunId).toBe(triageRun.runId);
    expect(new Set(runs.map((r) => r.traceId)).size).toBe(1);
    expect(runs.every((r) => r.status === "completed")).toBe(true);
    expect((await warden.getRun(triageRun.runId)).childRunIds).toEqual([billingRun.runId]);
    const billingCalls = (await warden.getRun(billingRun.runId)).toolCalls;
    expect(billingCalls.filter((c) => c.kind === "tool")).toEqual([expect.objectContaining({ externalId: "call_refund", status: "completed", output: "refunded 28" })]);
    expect(await recorded(warden)).toHaveLength(1);
  });

  it("records tool calls of ungoverned agents as observed, without a decision", async () => {
    const warden = makeWarden();
    trace(warden);
    const t = tools();
    const model = new ScriptedModel([calls(["get_secret", { name: "db" }, "call_secret"]), answer("done")]);

    await run(new Agent({ name: "auditor", model, tools: [t.getSecret] }), "read it");

    expect(t.executed.get_secret).toHaveLength(1);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "get_secret", status: "completed", input: { name: "db" }, output: "s3cr3t", decision: undefined });
    const [workflow] = warden.listRuns({ status: "completed" }).filter((r) => (r.metadata as { kind?: string }).kind === "workflow");
    expect(workflow).toBeDefined();
  });

  it("keeps a run paused for approval open and continues it on resume", async () => {
    const warden = makeWarden();
    trace(warden);
    const t = tools();
    const model = new ScriptedModel([calls(["deploy", { environment: "production" }, "call_deploy"]), answer("deployed")]);
    const agent = governAgent(new Agent({ name: "deployer", model, tools: [t.deploy] }), warden);

    const paused = await run(agent, "ship it");
    expect(warden.listRuns({ status: "running" })).toHaveLength(2);
    warden.approvals.approve(warden.approvals.list({ status: "pending" })[0]!.approvalId, { reviewer: "alice" });
    resolveInterruptions(paused, warden);
    await run(agent, paused.state);

    expect(t.executed.deploy).toHaveLength(1);
    const runs = warden.listRuns();
    expect(runs).toHaveLength(2);
    expect(runs.every((r) => r.status === "completed")).toBe(true);
    expect(await recorded(warden)).toEqual([expect.objectContaining({ externalId: "call_deploy", status: "completed" })]);
  });

  it("records a tool that failed as failed, though the SDK hands the model an error text", async () => {
    const warden = makeWarden();
    trace(warden);
    const flaky = tool({ name: "flaky", description: "Fails", parameters: z.object({}), execute: async () => {
      throw new Error("upstream 503");
    } });
    const model = new ScriptedModel([calls(["flaky", {}, "call_flaky"]), answer("it failed")]);

    await governedRun(governAgent(new Agent({ name: "caller", model, tools: [flaky] }), warden), "try", warden);

    expect(seenByModel(model, "call_flaky")).toMatch(/error occurred/i);
    expect(await recorded(warden)).toEqual([expect.objectContaining({ externalId: "call_flaky", status: "failed" })]);
  });

  it("never breaks the agent when recording fails", async () => {
    const warden = makeWarden();
    const errors: unknown[] = [];
    trace(warden, { onError: (error) => errors.push(error) });
    warden.close();
    const t = tools();
    const model = new ScriptedModel([calls(["add", { a: 1, b: 1 }, "call_add"]), answer("2")]);

    const result = await run(new Agent({ name: "calc", model, tools: [t.add] }), "1 + 1");

    expect(result.finalOutput).toBe("2");
    expect(t.executed.add).toHaveLength(1);
    expect(errors.length).toBeGreaterThan(0);
  });
});

describe("telemetry and redaction", () => {
  it("keeps running when an event listener throws", async () => {
    const errors: unknown[] = [];
    const warden = makeWarden({ onError: (error) => errors.push(error) });
    warden.on("*", () => {
      throw new Error("sink down");
    });
    const t = tools();
    const model = new ScriptedModel([calls(["add", { a: 4, b: 4 }, "call_add"]), answer("8")]);

    const result = await governedRun(governAgent(new Agent({ name: "calc", model, tools: [t.add] }), warden), "4 + 4", warden);

    expect(result.finalOutput).toBe("8");
    expect(t.executed.add).toHaveLength(1);
    expect(errors.some((e) => (e as Error).message === "sink down")).toBe(true);
    expect((await recorded(warden))[0]).toMatchObject({ status: "completed", output: 8 });
  });

  it("redacts what it records, not what the tool receives", async () => {
    const warden = makeWarden({ redaction: { keys: ["ssn"] } });
    const received: unknown[] = [];
    const login = tool({
      name: "login",
      description: "Logs in",
      parameters: z.object({ user: z.string(), password: z.string(), ssn: z.string() }),
      execute: async (args) => (received.push(args), { session: "ok", api_key: "sk-live-0123456789abcdefghij" }),
    });
    const model = new ScriptedModel([calls(["login", { user: "ana", password: "hunter2", ssn: "123-45-6789" }, "call_login"]), answer("in")]);

    await run(governAgent(new Agent({ name: "auth", model, tools: [login] }), warden), "log in");

    expect(received).toEqual([{ user: "ana", password: "hunter2", ssn: "123-45-6789" }]);
    const [call] = await recorded(warden);
    expect(call!.input).toEqual({ user: "ana", password: "[REDACTED]", ssn: "[REDACTED]" });
    expect(call!.output).toEqual({ session: "ok", api_key: "[REDACTED]" });
    expect(JSON.stringify(warden.ledger.entries())).not.toContain("hunter2");
  });
});

describe("offline", () => {
  it("sent nothing over the network", () => {
    expect(network).not.toHaveBeenCalled();
  });
});
