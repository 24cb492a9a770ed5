import { AIMessage, HumanMessage, ToolMessage, type BaseMessage, type UsageMetadata } from "@langchain/core/messages";
import { RunnableLambda } from "@langchain/core/runnables";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { Command, MemorySaver } from "@langchain/langgraph";
import { createAgent, createMiddleware } from "langchain";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { HaltedError, ToolBlockedError, Warden, WardenError, type PolicySetInput, type RunRecord, type WardenOptions } from "agent-warden";
import { approvalInterrupts, WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-db-drop", when: { tool: "drop_database" }, action: "block" },
    { id: "flag-writes", when: { tool: "write_*" }, action: "warn", severity: "low" },
    { id: "prod-deploys", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval", approval: { timeout: "10m" } },
    { id: "quick-approvals", when: { tool: "restart" }, action: "require_approval", approval: { timeout: "50ms" } },
  ],
};

const open: Warden[] = [];
let errors: unknown[] = [];

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  errors = [];
  const warden = new Warden({ agentId: "lc-agent", store: ":memory:", policies, onError: (error) => errors.push(error), ...options });
  open.push(warden);
  return warden;
}

afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
  vi.restoreAllMocks();
});

/** A tool that counts its executions and records its inputs. */
function countingTool(name: string, run: (input: Record<string, unknown>) => unknown = (input) => `${name} ok ${JSON.stringify(input)}`) {
  const calls: Record<string, unknown>[] = [];
  const instance = tool(
    async (input: Record<string, unknown>) => {
      calls.push(input);
      return run(input);
    },
    { name, description: `the ${name} tool`, schema: z.object({}).passthrough() },
  );
  return { tool: instance, calls };
}

function onlyRun(warden: Warden): RunRecord {
  const runs = warden.listRuns();
  expect(runs).toHaveLength(1);
  return warden.runRecord(runs[0]!.runId);
}

/** The tool messages the model received on its last call. */
function toolMessagesSeen(model: ReturnType<typeof fakeModel>): ToolMessage[] {
  const last = model.calls.at(-1)!.messages as BaseMessage[];
  return last.filter((m): m is ToolMessage => ToolMessage.isInstance(m));
}

const ask = (text: string) => ({ messages: [new HumanMessage(text)] });

/** A model reply carrying token usage (the field's declared type does not resolve under TypeScript 6, hence the cast). */
const replyWithUsage = (content: string, usage_metadata: UsageMetadata, response_metadata: Record<string, unknown> = {}) =>
  new AIMessage({ content, usage_metadata, response_metadata } as ConstructorParameters<typeof AIMessage>[0]);

describe("wardenMiddleware", () => {
  it("runs an allowed tool and records it with input, output and the framework's id, in one run per invocation", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel()
      .respondWithTools([{ name: "search", args: { query: "warden" }, id: "call_search" }])
      .respond(new AIMessage("found it"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("look it up"));

    expect(search.calls).toEqual([{ query: "warden" }]);
    expect(result.messages.at(-1)!.content).toBe("found it");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.metadata).toMatchObject({ framework: "langchain" });
    expect(run.toolCalls).toHaveLength(1);
    expect(run.toolCalls[0]).toMatchObject({ toolName: "search", externalId: "call_search", status: "completed", input: { query: "warden" }, output: 'search ok {"query":"warden"}' });
    expect(run.toolCalls[0]!.decision?.action).toBe("allow");
  });

  it("never runs a blocked tool and shows the model the refusal as an error tool message", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const model = fakeModel()
      .respondWithTools([{ name: "drop_database", args: { name: "prod" }, id: "call_drop" }])
      .respond(new AIMessage("I was not allowed to"));
    const agent = createAgent({ model, tools: [drop.tool], middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("drop it"));

    expect(drop.calls).toHaveLength(0);
    const [refusal] = toolMessagesSeen(model);
    expect(refusal).toMatchObject({ status: "error", tool_call_id: "call_drop", name: "drop_database" });
    expect(String(refusal!.content)).toContain('blocked by policy "no-db-drop"');
    expect(result.messages.at(-1)!.content).toBe("I was not allowed to");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls[0]).toMatchObject({ toolName: "drop_database", status: "blocked" });
    expect(run.events.map((e) => e.type)).toContain("tool.blocked");
  });

  it("lets a warned tool run and flags it", async () => {
    const warden = newWarden();
    const write = countingTool("write_file");
    const model = fakeModel()
      .respondWithTools([{ name: "write_file", args: { path: "notes.txt" } }])
      .respond(new AIMessage("written"));
    const agent = createAgent({ model, tools: [write.tool], middleware: [wardenMiddleware(warden)] });

    await agent.invoke(ask("write it"));

    expect(write.calls).toHaveLength(1);
    const run = onlyRun(warden);
    expect(run.toolCalls[0]).toMatchObject({ status: "completed" });
    expect(run.toolCalls[0]!.decision).toMatchObject({ action: "warn", policyId: "flag-writes" });
    const risk = run.events.find((e) => e.type === "risk.detected");
    expect(risk?.data).toMatchObject({ toolName: "write_file", decision: "warn" });
  });

  describe("approval: wait", () => {
    function deployAgent(warden: Warden, toolName = "deploy", args: Record<string, unknown> = { environment: "production" }) {
      const deploy = countingTool(toolName);
      const model = fakeModel()
        .respondWithTools([{ name: toolName, args, id: "call_deploy" }])
        .respond(new AIMessage("finished"));
      const agent = createAgent({ model, tools: [deploy.tool], middleware: [wardenMiddleware(warden)] });
      return { agent, model, deploy };
    }

    it("runs the tool once a reviewer approves", async () => {
      const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "alice", reason: "change window" }), 10) });
      const { agent, deploy } = deployAgent(warden);

      await agent.invoke(ask("ship it"));

      expect(deploy.calls).toEqual([{ environment: "production" }]);
      const call = onlyRun(warden).toolCalls[0]!;
      expect(call.status).toBe("completed");
      expect(call.approval).toMatchObject({ status: "approved", reviewer: "alice" });
    });

    it("does not run the tool when the reviewer rejects, and tells the model why", async () => {
      const warden = newWarden({ onApprovalRequest: (_request, decide) => decide.reject({ reviewer: "bob", reason: "freeze week" }) });
      const { agent, model, deploy } = deployAgent(warden);

      await agent.invoke(ask("ship it"));

      expect(deploy.calls).toHaveLength(0);
      const [refusal] = toolMessagesSeen(model);
      expect(refusal!.status).toBe("error");
      expect(String(refusal!.content)).toContain("rejected by bob: freeze week");
      const run = onlyRun(warden);
      expect(run.status).toBe("completed");
      expect(run.toolCalls[0]).toMatchObject({ status: "rejected" });
      expect(run.toolCalls[0]!.approval?.status).toBe("rejected");
    });

    it("stops the run when the agent is halted while it waits", async () => {
      const warden = newWarden({ onApprovalRequest: () => setTimeout(() => warden.halt({ reason: "incident" }), 10) });
      const { agent, deploy } = deployAgent(warden);

      const error = await agent.invoke(ask("ship it")).then(() => undefined, (e: unknown) => e);

      expect((error as Error).cause).toBeInstanceOf(HaltedError);
      expect(deploy.calls).toHaveLength(0);
      const run = onlyRun(warden);
      expect(run.status).toBe("failed");
      expect(run.toolCalls[0]!.approval?.status).toBe("cancelled");
    });

    it("does not run the tool when nobody answers in time", async () => {
      const warden = newWarden();
      const { agent, model, deploy } = deployAgent(warden, "restart", { service: "api" });

      await agent.invoke(ask("restart the api"));

      expect(deploy.calls).toHaveLength(0);
      expect(String(toolMessagesSeen(model)[0]!.content)).toContain("not approved within 50 ms");
      const call = onlyRun(warden).toolCalls[0]!;
      expect(call.status).toBe("rejected");
      expect(call.approval?.status).toBe("expired");
    });
  });

  describe("approval: interrupt", () => {
    function interruptingAgent(warden: Warden) {
      const deploy = countingTool("deploy");
      const model = fakeModel()
        .respondWithTools([{ name: "deploy", args: { environment: "production" }, id: "call_prod" }])
        .respond(new AIMessage("finished"));
      const agent = createAgent({ model, tools: [deploy.tool], middleware: [wardenMiddleware(warden, { approval: "interrupt" })], checkpointer: new MemorySaver() });
      return { agent, model, deploy };
    }

    it("pauses the agent with __interrupt__, and runs the tool on resume once approved in Warden", async () => {
      const warden = newWarden();
      const { agent, deploy } = interruptingAgent(warden);
      const config = { configurable: { thread_id: "thread-approve" } };

      const paused = await agent.invoke(ask("ship it"), config);

      expect(deploy.calls).toHaveLength(0);
      const [request] = approvalInterrupts(paused);
      expect(request).toMatchObject({ type: "warden.approval_required", toolName: "deploy", externalId: "call_prod", args: { environment: "production" }, policyId: "prod-deploys" });
      const pausedRun = onlyRun(warden);
      expect(pausedRun.status).toBe("running");
      expect(pausedRun.toolCalls[0]).toMatchObject({ status: "awaiting_approval" });

      warden.approvals.approve(request!.approvalId!, { reviewer: "alice" });
      const done = await agent.invoke(new Command({ resume: { approvalId: request!.approvalId } }), config);

      expect(deploy.calls).toEqual([{ environment: "production" }]);
      expect(done.messages.at(-1)!.content).toBe("finished");
      const run = onlyRun(warden);
      expect(run.status).toBe("completed");
      expect(run.toolCalls).toHaveLength(1);
      expect(run.toolCalls[0]).toMatchObject({ status: "completed", externalId: "call_prod" });
      expect(run.toolCalls[0]!.approval).toMatchObject({ status: "approved", reviewer: "alice" });
    });

    it("does not run the tool on resume when the approval was rejected in Warden", async () => {
      const warden = newWarden();
      const { agent, model, deploy } = interruptingAgent(warden);
      const config = { configurable: { thread_id: "thread-reject" } };

      const [request] = approvalInterrupts(await agent.invoke(ask("ship it"), config));
      warden.approvals.reject(request!.approvalId!, { reviewer: "bob", reason: "not today" });
      // The resume value does not decide: Warden's approval status does.
      await agent.invoke(new Command({ resume: { approved: true } }), config);

      expect(deploy.calls).toHaveLength(0);
      const [refusal] = toolMessagesSeen(model);
      expect(refusal!.status).toBe("error");
      expect(String(refusal!.content)).toContain("approval rejected: not today");
      const run = onlyRun(warden);
      expect(run.status).toBe("completed");
      expect(run.toolCalls[0]).toMatchObject({ status: "rejected" });
    });

    it("interrupts again when resumed before the reviewer has answered", async () => {
      const warden = newWarden();
      const { agent, deploy } = interruptingAgent(warden);
      const config = { configurable: { thread_id: "thread-early" } };

      const [first] = approvalInterrupts(await agent.invoke(ask("ship it"), config));
      const [again] = approvalInterrupts(await agent.invoke(new Command({ resume: {} }), config));

      expect(deploy.calls).toHaveLength(0);
      expect(again?.approvalId).toBe(first?.approvalId);
      expect(warden.approvals.list()).toHaveLength(1);

      warden.approvals.approve(first!.approvalId!, { reviewer: "alice" });
      await agent.invoke(new Command({ resume: {} }), config);
      expect(deploy.calls).toHaveLength(1);
      expect(onlyRun(warden).toolCalls).toHaveLength(1);
    });

    it("does not pause when the reviewer has already answered", async () => {
      const warden = newWarden({ onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "auto" }) });
      const { agent, deploy } = interruptingAgent(warden);

      const result = await agent.invoke(ask("ship it"), { configurable: { thread_id: "thread-auto" } });

      expect(approvalInterrupts(result)).toEqual([]);
      expect(deploy.calls).toHaveLength(1);
      expect(onlyRun(warden).toolCalls[0]!.approval).toMatchObject({ status: "approved", reviewer: "auto" });
    });

    it("pauses parallel calls together and runs only the approved one", async () => {
      const warden = newWarden();
      const deploy = countingTool("deploy");
      const model = fakeModel()
        .respondWithTools([
          { name: "deploy", args: { environment: "production", service: "api" }, id: "call_api" },
          { name: "deploy", args: { environment: "production", service: "web" }, id: "call_web" },
        ])
        .respond(new AIMessage("finished"));
      const agent = createAgent({ model, tools: [deploy.tool], middleware: [wardenMiddleware(warden, { approval: "interrupt" })], checkpointer: new MemorySaver() });
      const config = { configurable: { thread_id: "thread-parallel" } };

      const requests = approvalInterrupts(await agent.invoke(ask("ship both"), config));
      expect(requests.map((r) => r.externalId).sort()).toEqual(["call_api", "call_web"]);
      const byCall = new Map(requests.map((r) => [r.externalId, r.approvalId!]));
      warden.approvals.approve(byCall.get("call_api")!, { reviewer: "alice" });
      warden.approvals.reject(byCall.get("call_web")!, { reviewer: "alice", reason: "web is frozen" });
      await agent.invoke(new Command({ resume: {} }), config);

      expect(deploy.calls).toEqual([{ environment: "production", service: "api" }]);
      const statuses = Object.fromEntries(onlyRun(warden).toolCalls.map((c) => [c.externalId, c.status]));
      expect(statuses).toEqual({ call_api: "completed", call_web: "rejected" });
    });

    it("stops the run on resume when the agent was halted while paused", async () => {
      const warden = newWarden();
      const { agent, deploy } = interruptingAgent(warden);
      const config = { configurable: { thread_id: "thread-halt" } };

      const [request] = approvalInterrupts(await agent.invoke(ask("ship it"), config));
      warden.approvals.approve(request!.approvalId!, { reviewer: "alice" });
      warden.halt({ reason: "incident" });

      const error = await agent.invoke(new Command({ resume: {} }), config).then(() => undefined, (e: unknown) => e);
      expect((error as Error).cause).toBeInstanceOf(HaltedError);
      expect(deploy.calls).toHaveLength(0);
      expect(onlyRun(warden).status).toBe("failed");
    });

    it("continues the paused run when another process resumes the thread", async () => {
      const dir = mkdtempSync(join(tmpdir(), "warden-lc-resume-"));
      try {
        const store = join(dir, "warden.db");
        const checkpointer = new MemorySaver();
        const deploy = countingTool("deploy");
        const model = fakeModel()
          .respondWithTools([{ name: "deploy", args: { environment: "production" }, id: "call_prod" }])
          .respond(new AIMessage("finished"));
        // Two clients on one store, as two processes would be: only the thread's checkpoint and Warden's store are shared.
        const agentOf = (warden: Warden) => createAgent({ model, tools: [deploy.tool], middleware: [wardenMiddleware(warden, { approval: "interrupt" })], checkpointer });
        const config = { configurable: { thread_id: "thread-elsewhere" } };

        const first = newWarden({ store });
        const [request] = approvalInterrupts(await agentOf(first).invoke(ask("ship it"), config));
        first.approvals.approve(request!.approvalId!, { reviewer: "alice" });
        await first.flush();
        first.close();

        const second = newWarden({ store });
        await agentOf(second).invoke(new Command({ resume: {} }), config);

        expect(deploy.calls).toHaveLength(1);
        const run = onlyRun(second);
        expect(run.status).toBe("completed");
        expect(run.toolCalls).toHaveLength(1);
        expect(run.toolCalls[0]).toMatchObject({ status: "completed", externalId: "call_prod" });
      } finally {
        for (const warden of open.splice(0)) warden.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("opens one run per invocation of a thread, each closed when its invocation ends", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel()
      .respondWithTools([{ name: "search", args: { query: "a" }, id: "call_a" }])
      .respond(new AIMessage("first"))
      .respondWithTools([{ name: "search", args: { query: "b" }, id: "call_b" }])
      .respond(new AIMessage("second"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)], checkpointer: new MemorySaver() });
    const config = { configurable: { thread_id: "thread-two-turns" } };

    await agent.invoke(ask("one"), config);
    await agent.invoke(ask("two"), config);

    const runs = warden.listRuns().map((r) => warden.runRecord(r.runId));
    expect(runs).toHaveLength(2);
    expect(runs.map((r) => r.status)).toEqual(["completed", "completed"]);
    expect(runs.map((r) => r.toolCalls.map((c) => c.externalId)).sort()).toEqual([["call_a"], ["call_b"]]);
    expect(runs.every((r) => r.metadata && (r.metadata as Record<string, unknown>).threadId === "thread-two-turns")).toBe(true);
  });

  it("keeps one run when another middleware retries a failed model call", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    // The first and the third model calls fail once each; the retry succeeds.
    const model = fakeModel()
      .respond(new Error("rate limited"))
      .respondWithTools([{ name: "search", args: {}, id: "call_search" }])
      .respond(new Error("rate limited"))
      .respond(new AIMessage("done"));
    const retrying = createMiddleware({
      name: "RetryOnce",
      wrapModelCall: async (request, handler) => {
        try {
          return await handler(request);
        } catch {
          return handler(request);
        }
      },
    });
    const agent = createAgent({ model, tools: [search.tool], middleware: [retrying, wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("go"));

    expect(result.messages.at(-1)!.content).toBe("done");
    expect(model.callCount).toBe(4);
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.map((c) => c.toolName)).toEqual(["search"]);
  });

  it("refuses the model call after a halt that landed between two model calls, and fails the run", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: {} }]).respond(new AIMessage("never asked"));
    // Another middleware's hook, run after the tool and before the next model call, is where the halt lands.
    let modelCalls = 0;
    const halting = createMiddleware({
      name: "HaltBeforeSecondCall",
      beforeModel: () => {
        if (++modelCalls === 2) warden.halt({ reason: "incident" });
        return undefined;
      },
    });
    const agent = createAgent({ model, tools: [search.tool], middleware: [halting, wardenMiddleware(warden)] });

    const error = await agent.invoke(ask("go")).then(() => undefined, (e: unknown) => e);

    expect((error as Error).cause).toBeInstanceOf(HaltedError);
    expect(search.calls).toHaveLength(1);
    expect(model.callCount).toBe(1);
    expect(onlyRun(warden).status).toBe("failed");
  });

  it("completes its run when a returnDirect tool ends the invocation", async () => {
    const warden = newWarden();
    const answer = tool(async () => "the answer", { name: "answer", description: "answers directly", schema: z.object({}), returnDirect: true });
    const model = fakeModel().respondWithTools([{ name: "answer", args: {}, id: "call_answer" }]);
    const agent = createAgent({ model, tools: [answer], middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("go"));

    expect(result.messages.at(-1)!.content).toBe("the answer");
    expect(model.callCount).toBe(1);
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls[0]).toMatchObject({ toolName: "answer", status: "completed" });
  });

  it("completes its run when the model gives its structured response", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const answer = z.object({ city: z.string() }).meta({ title: "CityAnswer" });
    const model = fakeModel()
      .respondWithTools([{ name: "search", args: { query: "capital" }, id: "call_search" }])
      .respondWithTools([{ name: "CityAnswer", args: { city: "Paris" }, id: "call_answer" }]);
    const agent = createAgent({ model, tools: [search.tool], responseFormat: answer, middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("what is the capital?"));

    expect(result.structuredResponse).toEqual({ city: "Paris" });
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.map((c) => c.toolName)).toEqual(["search"]);
  });

  it("aborts a tool in flight on a halt and rejects the invocation", async () => {
    const warden = newWarden();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const slow = countingTool("slow_report", async () => {
      started();
      await new Promise<void>((resolve) => (release = resolve));
      return "late";
    });
    const after = countingTool("after_halt");
    const model = fakeModel()
      .respondWithTools([{ name: "slow_report", args: {} }])
      .respondWithTools([{ name: "after_halt", args: {} }])
      .respond(new AIMessage("never"));
    const agent = createAgent({ model, tools: [slow.tool, after.tool], middleware: [wardenMiddleware(warden)] });

    const invocation = agent.invoke(ask("report"));
    await running;
    warden.halt({ reason: "runaway agent" });

    const error = await invocation.then(() => undefined, (e: unknown) => e);
    release();
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).cause).toBeInstanceOf(HaltedError);
    expect(after.calls).toHaveLength(0);
    expect(model.callCount).toBe(1);
    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.toolCalls[0]).toMatchObject({ toolName: "slow_report", status: "failed" });
  });

  it("hands the tool a signal that aborts with the HaltedError when the agent is halted mid-call", async () => {
    const warden = newWarden();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const watcher = tool(
      async (_input: Record<string, unknown>, config) => {
        const signal = config.signal!;
        started();
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        seen = { aborted: signal.aborted, reason: signal.reason };
        return "stopped";
      },
      { name: "watch_logs", description: "watches logs until aborted", schema: z.object({}).passthrough() },
    );
    const model = fakeModel()
      .respondWithTools([{ name: "watch_logs", args: {} }])
      .respond(new AIMessage("never"));
    const agent = createAgent({ model, tools: [watcher], middleware: [wardenMiddleware(warden)] });

    const invocation = agent.invoke(ask("watch"));
    await running;
    warden.halt({ reason: "runaway agent" });

    const error = await invocation.then(() => undefined, (e: unknown) => e);
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toBeInstanceOf(HaltedError);
    expect((error as Error).cause).toBe(seen?.reason);
    expect(onlyRun(warden).status).toBe("failed");
  });

  it("refuses new invocations while halted", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: {} }]).respond(new AIMessage("done"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });
    warden.halt({ reason: "incident" });

    await expect(agent.invoke(ask("go"))).rejects.toThrow(/halted/);
    expect(search.calls).toHaveLength(0);
    expect(model.callCount).toBe(0);
  });

  it("returns a tool's error to the model instead of failing the run", async () => {
    const warden = newWarden();
    const flaky = countingTool("flaky", () => {
      throw new Error("upstream 503");
    });
    const model = fakeModel()
      .respondWithTools([{ name: "flaky", args: { attempt: 1 } }])
      .respond(new AIMessage("it failed, sorry"));
    const agent = createAgent({ model, tools: [flaky.tool], middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("try"));

    expect(flaky.calls).toHaveLength(1);
    const [message] = toolMessagesSeen(model);
    expect(message!.status).toBe("error");
    expect(String(message!.content)).toBe("Error: upstream 503\n Please fix your mistakes.");
    expect(result.messages.at(-1)!.content).toBe("it failed, sorry");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls[0]).toMatchObject({ status: "failed", error: { message: "upstream 503" } });
  });

  it("records into the enclosing warden.run instead of opening a run", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: { query: "a" } }]).respond(new AIMessage("ok"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    const runId = await warden.run({ task: "research" }, async (run) => {
      await agent.invoke(ask("go"));
      return run.runId;
    });

    const run = onlyRun(warden);
    expect(run.runId).toBe(runId);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.map((c) => c.toolName)).toEqual(["search"]);
  });

  it("keeps the agent working when an event listener throws", async () => {
    const warden = newWarden();
    warden.on("*", () => {
      throw new Error("telemetry sink down");
    });
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: { query: "x" } }]).respond(new AIMessage("done"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    const result = await agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] });

    expect(result.messages.at(-1)!.content).toBe("done");
    expect(search.calls).toHaveLength(1);
    expect(onlyRun(warden).toolCalls.find((c) => c.kind === "tool")).toMatchObject({ status: "completed" });
    expect(errors.some((e) => e instanceof Error && e.message.includes("telemetry sink down"))).toBe(true);
  });

  it("records secrets in arguments redacted while the tool gets the real value", async () => {
    const warden = newWarden();
    const login = countingTool("login", () => "logged in");
    const model = fakeModel()
      .respondWithTools([{ name: "login", args: { user: "ada", password: "hunter2-hunter2" } }])
      .respond(new AIMessage("in"));
    const agent = createAgent({ model, tools: [login.tool], middleware: [wardenMiddleware(warden)] });

    await agent.invoke(ask("log in"));

    expect(login.calls).toEqual([{ user: "ada", password: "hunter2-hunter2" }]);
    expect(onlyRun(warden).toolCalls[0]!.input).toEqual({ user: "ada", password: "[REDACTED]" });
  });

  it("refuses the next model call once the run's token budget is spent, before the model is called", async () => {
    const warden = newWarden({ policies: { ...policies, budgets: [{ id: "run-tokens", tokens: 100 }] } });
    let runId = "";
    // The tool spends the run's tokens on a model call of its own.
    const summarize = countingTool("summarize", () => {
      warden.beginLlmCall({ runId, model: "fake-small" }).complete({ inputTokens: 90, outputTokens: 30 });
      return "summary";
    });
    const model = fakeModel().respondWithTools([{ name: "summarize", args: {} }]).respond(new AIMessage("never asked"));
    const agent = createAgent({ model, tools: [summarize.tool], middleware: [wardenMiddleware(warden)] });

    const error = await warden
      .run({ task: "summarize" }, async (run) => {
        runId = run.runId;
        await agent.invoke(ask("go"));
      })
      .then(() => undefined, (e: unknown) => e);

    expect((error as Error).cause).toBeInstanceOf(ToolBlockedError);
    expect(summarize.calls).toHaveLength(1);
    expect(model.callCount).toBe(1);
    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.toolCalls.map((c) => [c.kind, c.status])).toEqual([["tool", "completed"], ["llm", "completed"], ["llm", "blocked"]]);
  });

  it("beside WardenCallbackHandler, records each model call once: its usage once, a refusal once", async () => {
    const warden = newWarden({ policies: { ...policies, budgets: [{ id: "run-tokens", tokens: 100 }] } });
    const search = countingTool("search");
    const model = fakeModel()
      .respond(new AIMessage({ content: "", tool_calls: [{ name: "search", args: {}, id: "call_1" }], usage_metadata: { input_tokens: 90, output_tokens: 30, total_tokens: 120 } } as ConstructorParameters<typeof AIMessage>[0]))
      .respond(new AIMessage("never asked"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    const error = await agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] }).then(() => undefined, (e: unknown) => e);

    expect((error as Error).cause).toBeInstanceOf(ToolBlockedError);
    expect(model.callCount).toBe(1);
    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    const llms = run.toolCalls.filter((c) => c.kind === "llm");
    expect(llms.map((c) => c.status)).toEqual(["completed", "blocked"]);
    expect(llms[0]!.usage).toMatchObject({ inputTokens: 90, outputTokens: 30, totalTokens: 120 });
  });

  it("is the middleware langchain's createMiddleware would build, though built without loading langchain", () => {
    const warden = newWarden();
    const ours = wardenMiddleware(warden) as unknown as Record<PropertyKey, unknown>;
    const theirs = createMiddleware({ name: "WardenMiddleware", wrapModelCall: (request, handler) => handler(request), wrapToolCall: (request, handler) => handler(request) }) as unknown as Record<PropertyKey, unknown>;
    expect(Object.getOwnPropertySymbols(ours)).toEqual(Object.getOwnPropertySymbols(theirs));
    for (const key of Object.keys(theirs)) if (theirs[key] !== undefined) expect(typeof ours[key], key).toBe(typeof theirs[key]);
  });
});

describe("WardenCallbackHandler", () => {
  it("records model and token usage in the middleware's run, without a second run or a second tool record", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel()
      .respondWithTools([{ name: "search", args: { query: "q" } }])
      .respond(replyWithUsage("answer", { input_tokens: 120, output_tokens: 30, total_tokens: 150 }, { model_name: "fake-large" }));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    await agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] });

    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    const tools = run.toolCalls.filter((c) => c.kind === "tool");
    const llms = run.toolCalls.filter((c) => c.kind === "llm");
    expect(tools).toHaveLength(1);
    expect(llms).toHaveLength(2);
    expect(llms.every((c) => c.status === "completed")).toBe(true);
    expect(llms[1]!.usage).toEqual({ model: "fake-large", inputTokens: 120, outputTokens: 30, totalTokens: 150 });
    expect(run.steps.map((s) => s.name)).toEqual(["model_request", "tools", "model_request"]);
  });

  it("fails the middleware's run when the invocation fails for a reason the middleware cannot see", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: {} }]).respond(new Error("model provider down"));
    const agent = createAgent({ model, tools: [search.tool], middleware: [wardenMiddleware(warden)] });

    await expect(agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] })).rejects.toThrow("model provider down");

    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ message: "model provider down" });
    expect(run.toolCalls.filter((c) => c.kind === "llm").map((c) => c.status)).toEqual(["completed", "failed"]);
  });

  it("fails the middleware's run when another middleware fails the invocation after the model's last answer", async () => {
    const warden = newWarden();
    const model = fakeModel().respond(new AIMessage("done"));
    const failing = createMiddleware({
      name: "FailsAfterModel",
      afterModel: () => {
        throw new Error("guardrail tripped");
      },
    });
    const agent = createAgent({ model, tools: [], middleware: [failing, wardenMiddleware(warden)] });

    await expect(agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] })).rejects.toThrow("guardrail tripped");

    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ message: expect.stringContaining("guardrail tripped") });
    expect(run.steps.map((s) => s.name)).toEqual(["model_request"]);
  });

  it("completes the middleware's run when another middleware ends the invocation early", async () => {
    const warden = newWarden();
    const search = countingTool("search");
    const model = fakeModel().respondWithTools([{ name: "search", args: {}, id: "call_search" }]);
    const stopping = createMiddleware({ name: "StopsAfterModel", afterModel: { canJumpTo: ["end"], hook: () => ({ jumpTo: "end" as const }) } });
    const agent = createAgent({ model, tools: [search.tool], middleware: [stopping, wardenMiddleware(warden)] });

    await agent.invoke(ask("go"), { callbacks: [new WardenCallbackHandler(warden)] });

    expect(search.calls).toHaveLength(0);
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.filter((c) => c.kind === "llm").map((c) => c.status)).toEqual(["completed"]);
  });

  it("blocks a disallowed tool on a plain tool.invoke before it runs", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const handler = new WardenCallbackHandler(warden);
    vi.spyOn(console, "error").mockImplementation(() => {});

    const error = await drop.tool.invoke({ name: "prod" }, { callbacks: [handler] }).then(() => undefined, (e: unknown) => e);

    expect(error).toBeInstanceOf(ToolBlockedError);
    expect((error as ToolBlockedError).policyId).toBe("no-db-drop");
    expect(drop.calls).toHaveLength(0);
    const run = onlyRun(warden);
    expect(run.toolCalls[0]).toMatchObject({ toolName: "drop_database", status: "blocked", input: { name: "prod" } });
  });

  it("records an allowed tool.invoke with its input and output", async () => {
    const warden = newWarden();
    const search = countingTool("search", () => "three results");

    const output = await search.tool.invoke({ name: "search", args: { query: "x" }, id: "call_1", type: "tool_call" }, { callbacks: [new WardenCallbackHandler(warden)] });

    expect(ToolMessage.isInstance(output) && output.content).toBe("three results");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls[0]).toMatchObject({ toolName: "search", externalId: "call_1", status: "completed", input: { query: "x" }, output: "three results" });
  });

  it("records a plain tool.invoke whose tool throws as failed, and the caller gets the tool's own error", async () => {
    const warden = newWarden();
    const flaky = countingTool("search", () => {
      throw new Error("index offline");
    });

    const error = await flaky.tool.invoke({ query: "x" }, { callbacks: [new WardenCallbackHandler(warden)] }).then(() => undefined, (e: unknown) => e);

    expect((error as Error).message).toBe("index offline");
    const run = onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.toolCalls).toHaveLength(1);
    expect(run.toolCalls[0]).toMatchObject({ toolName: "search", status: "failed", input: { query: "x" }, error: { message: "index offline" } });
  });

  it("records tool calls made inside a chain into the chain's run, a failing one failed, the chain's run closed once", async () => {
    const warden = newWarden();
    const search = countingTool("search", (input) => {
      if (input.query === "bad") throw new Error("index offline");
      return "found";
    });
    const chain = RunnableLambda.from(async (query: string, config) => {
      const first = await search.tool.invoke({ query }, config);
      const second = await search.tool.invoke({ query: "bad" }, config).catch((e: Error) => e.message);
      return `${String(first)} / ${second}`;
    });

    const output = await chain.invoke("ok", { callbacks: [new WardenCallbackHandler(warden)] });

    expect(output).toBe("found / index offline");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.map((call) => [call.toolName, call.status, call.input])).toEqual([
      ["search", "completed", { query: "ok" }],
      ["search", "failed", { query: "bad" }],
    ]);
  });

  it("governs a createAgent agent without the middleware: the model sees the refusal", async () => {
    const warden = newWarden();
    const drop = countingTool("drop_database");
    const model = fakeModel().respondWithTools([{ name: "drop_database", args: {} }]).respond(new AIMessage("refused"));
    const agent = createAgent({ model, tools: [drop.tool] });
    vi.spyOn(console, "error").mockImplementation(() => {});

    await agent.invoke(ask("drop"), { callbacks: [new WardenCallbackHandler(warden)] });

    expect(drop.calls).toHaveLength(0);
    const [refusal] = toolMessagesSeen(model);
    expect(refusal!.status).toBe("error");
    expect(String(refusal!.content)).toContain('blocked by policy "no-db-drop"');
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.toolCalls.filter((c) => c.kind === "tool")).toMatchObject([{ status: "blocked" }]);
  });

  it("maps a custom chain to one run with steps, LLM usage and a failed run when it throws", async () => {
    const warden = newWarden();
    const model = fakeModel().respond(replyWithUsage("draft", { input_tokens: 5, output_tokens: 7, total_tokens: 12 }));
    const search = countingTool("search", () => "notes");
    const chain = RunnableLambda.from(async (question: string, config) => {
      const notes = await search.tool.invoke({ query: question }, config);
      const draft = await model.invoke([new HumanMessage(`${question}: ${notes}`)], config);
      return draft.content;
    }).withConfig({ runName: "research" });
    const outer = RunnableLambda.from(async (question: string, config) => chain.invoke(question, config)).withConfig({ runName: "pipeline" });

    const answer = await outer.invoke("warden", { callbacks: [new WardenCallbackHandler(warden)] });

    expect(answer).toBe("draft");
    const run = onlyRun(warden);
    expect(run.status).toBe("completed");
    expect(run.metadata).toMatchObject({ framework: "langchain", name: "pipeline" });
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([["research", "completed"]]);
    const [toolCall, llmCall] = run.toolCalls;
    expect(toolCall).toMatchObject({ kind: "tool", toolName: "search", status: "completed", stepId: run.steps[0]!.stepId });
    expect(llmCall).toMatchObject({ kind: "llm", status: "completed", usage: { inputTokens: 5, outputTokens: 7, totalTokens: 12 } });

    const second = fakeModel().respond(new AIMessage("half"));
    const failing = RunnableLambda.from(async (question: string, config) => {
      await second.invoke(question, config);
      throw new Error("chain broke");
    });
    await expect(failing.invoke("x", { callbacks: [new WardenCallbackHandler(warden)] })).rejects.toThrow("chain broke");
    const [latest] = warden.listRuns();
    expect(latest!.runId).not.toBe(run.runId);
    expect(latest).toMatchObject({ status: "failed", error: { message: "chain broke" } });

    // A chain that never reached a tool, a model or a step records nothing.
    await RunnableLambda.from((text: string) => text.toUpperCase()).invoke("x", { callbacks: [new WardenCallbackHandler(warden)] });
    expect(warden.listRuns()).toHaveLength(2);
  });

  it("never lets its own failures reach the chain", async () => {
    const warden = newWarden();
    const handler = new WardenCallbackHandler(warden, { onError: (error) => errors.push(error) });
    const model = fakeModel().respond(new AIMessage("fine"));
    const chain = RunnableLambda.from(async (text: string, config) => (await model.invoke(text, config)).content);
    warden.close();

    await expect(chain.invoke("hi", { callbacks: [handler] })).resolves.toBe("fine");
    expect(errors.some((e) => WardenError.isInstance(e) && e.code === "invalid_state")).toBe(true);
  });
});
