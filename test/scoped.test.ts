import { afterEach, describe, expect, it } from "vitest";
import {
  ApprovalRejectedError,
  ApprovalTimeoutError,
  HaltedError,
  ToolBlockedError,
  Warden,
  WardenError,
  type ApprovalRecord,
  type PolicySetInput,
  type WardenEvent,
  type WardenOptions,
} from "agent-warden";

const policies: PolicySetInput = {
  policies: [
    { id: "no-rm", when: { tool: "rm" }, action: "block", reason: "never delete" },
    { id: "approve-prod-deploy", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval" },
    { id: "fast-approval", when: { tool: "hotfix" }, action: "require_approval", approval: { timeout: "50ms" } },
  ],
};

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "ops-agent", store: ":memory:", policies, ...options });
  clients.push(client);
  return client;
}

async function onlyRun(warden: Warden) {
  const runs = warden.listRuns();
  expect(runs).toHaveLength(1);
  return warden.getRun(runs[0]!.runId);
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** A tool that runs until its signal aborts; `started` resolves once it is running. */
function hangingTool() {
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const seen: { signal?: AbortSignal } = {};
  const fn = ({ signal }: { signal: AbortSignal }) =>
    new Promise<never>((_, reject) => {
      seen.signal = signal;
      markStarted();
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  return { fn, started, seen };
}

/** Resolves with the next approval request the client makes. */
function nextApproval(warden: Warden): Promise<string> {
  return new Promise((resolve) => {
    const off = warden.on("approval.requested", (event) => {
      off();
      resolve(event.data.approvalId as string);
    });
  });
}

describe("warden.run", () => {
  it("completes the run and returns what the function returns", async () => {
    const warden = open();
    const result = await warden.run({ task: "read" }, async (run) => {
      expect(run.runId).toMatch(/^run_/);
      expect(run.traceId).toMatch(/^trace_/);
      return run.tool("read_file", { path: "a.ts" }, () => "contents");
    });
    expect(result).toBe("contents");
    const run = await onlyRun(warden);
    expect(run).toMatchObject({ status: "completed", metadata: { task: "read" }, parentRunId: undefined });
    expect(run.toolCalls).toEqual([expect.objectContaining({ toolName: "read_file", status: "completed", output: "contents" })]);
    expect(run.events.map((e) => e.type)).toEqual(["run.started", "tool.called", "tool.completed", "run.completed"]);
  });

  it("fails the run when the function throws, and rethrows", async () => {
    const warden = open();
    const boom = new Error("model went off the rails");
    expect(await caught(warden.run({}, () => Promise.reject(boom)))).toBe(boom);
    const run = await onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.error).toMatchObject({ name: "Error", message: "model went off the rails" });
    expect(run.events.at(-1)!.type).toBe("run.failed");
  });

  it("run.step groups the calls made inside it, nested calls included", async () => {
    const warden = open();
    const readDeep = warden.guard("read_file", async (path: string) => `read ${path}`, { args: (path) => ({ path }) });
    await warden.run({}, async (run) => {
      await run.step("analysis", async () => {
        await run.tool("read_file", { path: "a.ts" }, () => "a");
        await Promise.all([readDeep("b.ts"), readDeep("c.ts")]);
      });
      await run.step("fix", () => run.tool("write_file", { path: "a.ts" }, () => true), { phase: "fix" });
      await run.tool("notify", {}, () => true);
    });
    const run = await onlyRun(warden);
    const [analysis, fix] = run.steps;
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([
      ["analysis", "completed"],
      ["fix", "completed"],
    ]);
    expect(fix!.metadata).toEqual({ phase: "fix" });
    expect(run.toolCalls.map((t) => [t.toolName, t.stepId])).toEqual([
      ["read_file", analysis!.stepId],
      ["read_file", analysis!.stepId],
      ["read_file", analysis!.stepId],
      ["write_file", fix!.stepId],
      ["notify", undefined],
    ]);
    expect(run.toolCalls.map((t) => t.input).slice(1, 3)).toEqual(expect.arrayContaining([{ path: "b.ts" }, { path: "c.ts" }]));
  });

  it("a step that throws is failed and the error goes on", async () => {
    const warden = open();
    await expect(warden.run({}, (run) => run.step("broken", () => Promise.reject(new Error("nope"))))).rejects.toThrow("nope");
    const run = await onlyRun(warden);
    expect(run.steps[0]!.status).toBe("failed");
    expect(run.status).toBe("failed");
  });
});

describe("run.tool decisions", () => {
  it("a block throws ToolBlockedError and the tool never runs", async () => {
    const warden = open();
    let ran = false;
    const error = await caught(
      warden.run({}, (run) =>
        run.tool("rm", { path: "/" }, () => {
          ran = true;
        }),
      ),
    );
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(ToolBlockedError);
    expect(error).toMatchObject({ code: "tool_blocked", toolName: "rm", policyId: "no-rm", reason: "never delete" });
    const run = await onlyRun(warden);
    expect(run.status).toBe("failed");
    expect(run.toolCalls[0]).toMatchObject({ status: "blocked", blockedReason: "never delete", toolCallId: (error as ToolBlockedError).toolCallId });
  });

  it("waits for approval through onApprovalRequest; approved, the tool runs", async () => {
    const requests: ApprovalRecord[] = [];
    const warden = open({
      onApprovalRequest: (request, decide) => {
        requests.push(request);
        decide.approve({ reviewer: "alice", reason: "change window" });
      },
    });
    const result = await warden.run({}, (run) => run.tool("deploy", { environment: "production" }, () => "deployed", { agentContext: { goal: "ship the fix" } }));
    expect(result).toBe("deployed");
    expect(requests[0]).toMatchObject({ toolName: "deploy", policyId: "approve-prod-deploy", status: "pending", agentContext: { goal: "ship the fix" }, payload: { environment: "production" } });
    const run = await onlyRun(warden);
    expect(run.toolCalls[0]).toMatchObject({ status: "completed", output: "deployed" });
    expect(run.toolCalls[0]!.approval).toMatchObject({ status: "approved", reviewer: "alice", decisionReason: "change window" });
    expect(run.events.map((e) => e.type)).toEqual(["run.started", "tool.called", "policy.matched", "approval.requested", "approval.approved", "tool.completed", "run.completed"]);
  });

  it("rejected, the call throws ApprovalRejectedError and the tool never runs", async () => {
    const warden = open({ onApprovalRequest: (_request, decide) => decide.reject({ reviewer: "bob", reason: "not today" }) });
    let ran = false;
    const error = await caught(
      warden.run({}, (run) =>
        run.tool("deploy", { environment: "production" }, () => {
          ran = true;
        }),
      ),
    );
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(ApprovalRejectedError);
    expect(error).toMatchObject({ code: "approval_rejected", reviewer: "bob", toolName: "deploy" });
    const run = await onlyRun(warden);
    expect(run.toolCalls[0]).toMatchObject({ status: "rejected", blockedReason: "not today" });
    expect(run.toolCalls[0]!.approval).toMatchObject({ status: "rejected", reviewer: "bob" });
  });

  it("a reviewer answering later through warden.approvals releases the waiting call", async () => {
    const warden = open();
    const requested = nextApproval(warden);
    const result = warden.run({}, (run) => run.tool("deploy", { environment: "production" }, () => "deployed"));
    const approvalId = await requested;
    expect(warden.approvals.list({ status: "pending" }).map((a) => a.approvalId)).toEqual([approvalId]);
    warden.approvals.approve(approvalId, { reviewer: "carol" });
    await expect(result).resolves.toBe("deployed");
  });

  it("nobody answering in time is an ApprovalTimeoutError, the approval expired and the tool never run", async () => {
    const warden = open();
    let ran = false;
    const error = await caught(
      warden.run({}, (run) =>
        run.tool("hotfix", {}, () => {
          ran = true;
        }),
      ),
    );
    expect(ran).toBe(false);
    expect(error).toBeInstanceOf(ApprovalTimeoutError);
    expect((error as WardenError).code).toBe("approval_timeout");
    const run = await onlyRun(warden);
    expect(run.toolCalls[0]!.status).toBe("rejected");
    expect(run.toolCalls[0]!.approval!.status).toBe("expired");
    expect(warden.approvals.get((error as ApprovalTimeoutError).approvalId).status).toBe("expired");
  });
});

describe("warden.guard", () => {
  it("wraps a function as a governed tool, in the current run or in one of its own", async () => {
    const warden = open();
    const deploy = warden.guard("deploy", async (environment: string, service: string) => `${service} → ${environment}`, { args: (environment, service) => ({ environment, service }) });
    const rm = warden.guard("rm", async (input: { path: string }) => input.path);
    expect(deploy.name).toBe("governed deploy");

    await expect(deploy("staging", "auth-api")).resolves.toBe("auth-api → staging");
    await expect(rm({ path: "/tmp/x" })).rejects.toBeInstanceOf(ToolBlockedError);
    const runs = warden.listRuns();
    expect(runs).toHaveLength(2);
    const [rmRun, deployRun] = await Promise.all(runs.map((r) => warden.getRun(r.runId)));
    expect(deployRun!.toolCalls[0]).toMatchObject({ toolName: "deploy", status: "completed", input: { environment: "staging", service: "auth-api" } });
    expect(deployRun!.status).toBe("completed");
    expect(rmRun!.toolCalls[0]).toMatchObject({ toolName: "rm", status: "blocked", input: { path: "/tmp/x" } });

    const inRun = await warden.run({}, async (run) => {
      await deploy("staging", "billing");
      return run.runId;
    });
    expect((await warden.getRun(inRun)).toolCalls.map((t) => t.toolName)).toEqual(["deploy"]);
  });
});

describe("runs form a tree", () => {
  it("a run started inside a run is its child, with the same trace", async () => {
    const warden = open();
    const ids = await warden.run({ task: "plan trip" }, async (parent) => {
      const child = await warden.run({ task: "book flight" }, async (run) => {
        await run.tool("read_file", {}, () => 1);
        return run.runId;
      }, { agentId: "booking-agent" });
      const grandchild = await warden.run({}, (run) => warden.run({}, (inner) => inner.runId).then((id) => [run.runId, id] as const));
      return { parent: parent.runId, trace: parent.traceId, child, grandchild };
    });
    const parent = await warden.getRun(ids.parent);
    const child = await warden.getRun(ids.child);
    expect(parent.childRunIds).toEqual([ids.child, ids.grandchild[0]]);
    expect(child).toMatchObject({ parentRunId: ids.parent, traceId: ids.trace, agentId: "booking-agent", status: "completed" });
    const [middle, leaf] = await Promise.all(ids.grandchild.map((id) => warden.getRun(id)));
    expect(middle!.childRunIds).toEqual([leaf!.runId]);
    expect(leaf).toMatchObject({ parentRunId: middle!.runId, traceId: ids.trace });
    expect(warden.listRuns({ traceId: ids.trace })).toHaveLength(4);
  });
});

describe("halt", () => {
  it("aborts the in-flight call through its signal, refuses new runs, cancels approvals; resume lifts it", async () => {
    const warden = open();
    const halted: WardenEvent[] = [];
    warden.on("agent.halted", (e) => halted.push(e));
    const tool = hangingTool();
    const requested = nextApproval(warden);
    let deployed = false;

    const busy = warden.run({}, (run) => run.tool("long_job", {}, tool.fn));
    const waiting = warden.run({}, (run) =>
      run.tool("deploy", { environment: "production" }, () => {
        deployed = true;
      }),
    );
    await tool.started;
    const approvalId = await requested;

    warden.halt({ reason: "runaway agent", actor: "oncall" });

    const busyError = await caught(busy);
    expect(busyError).toBeInstanceOf(HaltedError);
    expect(busyError).toMatchObject({ code: "halted", reason: "runaway agent" });
    expect(tool.seen.signal!.aborted).toBe(true);
    expect(await caught(waiting)).toBeInstanceOf(HaltedError);
    expect(deployed).toBe(false);
    expect(warden.approvals.get(approvalId).status).toBe("cancelled");
    expect(warden.signal.aborted).toBe(true);

    await expect(warden.run({}, () => "never")).rejects.toBeInstanceOf(HaltedError);
    await expect(warden.startRun()).rejects.toBeInstanceOf(HaltedError);
    expect(warden.check({ tool: "read_file" })).toMatchObject({ action: "block", halted: true });
    await expect(warden.guard("read_file", async () => 1)()).rejects.toBeInstanceOf(HaltedError);
    expect(halted).toHaveLength(1);
    expect(halted[0]!.data).toMatchObject({ scope: "organization", reason: "runaway agent" });
    expect(warden.activeHalts).toHaveLength(1);

    const lifted = warden.resume({ actor: "oncall" });
    expect(lifted).toHaveLength(1);
    expect(warden.activeHalts).toHaveLength(0);
    expect(warden.signal.aborted).toBe(false);
    await expect(warden.run({}, (run) => run.tool("read_file", {}, () => "back"))).resolves.toBe("back");

    const records = await Promise.all(warden.listRuns().map((r) => warden.getRun(r.runId)));
    const calls = records.flatMap((r) => r.toolCalls);
    expect(calls.find((t) => t.toolName === "long_job")!.status).toBe("failed");
    expect(calls.find((t) => t.toolName === "deploy")).toMatchObject({ status: "rejected", approval: { status: "cancelled" } });
    const types = warden.ledger.entries().map((e) => e.type);
    expect(types).toContain("agent.halted");
    expect(types).toContain("agent.resumed");
    expect(warden.ledger.verify()).toMatchObject({ ok: true });
  });

  it("cancels an approval a tracked call left pending, so it can never run after resume", async () => {
    const warden = open();
    const runId = await warden.startRun();
    const tc = await warden.trackToolCall(runId, "deploy", { environment: "production" });
    const approval = (await warden.getRun(runId)).toolCalls[0]!.approval!;
    expect(approval.status).toBe("pending");
    warden.halt({ reason: "stop everything" });
    expect(warden.approvals.get(approval.approvalId).status).toBe("cancelled");
    const call = (await warden.getRun(runId)).toolCalls[0]!;
    expect(call.status).toBe("rejected");
    expect(call.blockedReason).toContain("stop everything");
    warden.resume();
    expect(() => warden.approvals.approve(approval.approvalId)).toThrow(/cancelled/);
    await expect(warden.waitForApproval(tc)).rejects.toBeInstanceOf(WardenError);
    await expect(warden.completeToolCall(runId, tc, {})).rejects.toMatchObject({ code: "invalid_state" });
  });

  it("a halt of another agent does not touch this one", async () => {
    const warden = open();
    warden.halt({ reason: "other misbehaves", agentId: "other-agent" });
    await expect(warden.run({}, (run) => run.tool("read_file", {}, () => "fine"))).resolves.toBe("fine");
    expect(warden.signal.aborted).toBe(false);
    expect(warden.check({ tool: "read_file", agentId: "other-agent" })).toMatchObject({ action: "block", halted: true });
    await expect(warden.run({}, () => 1, { agentId: "other-agent" })).rejects.toBeInstanceOf(HaltedError);
    expect(warden.haltedFor({ agentId: "other-agent" })).toMatchObject({ scope: "agent", target: "other-agent" });
    expect(warden.haltedFor()).toBeUndefined();
    warden.resume({ agentId: "other-agent" });
    await expect(warden.run({}, () => 1, { agentId: "other-agent" })).resolves.toBe(1);
  });

  it("a group halt stops the agents of the group only", async () => {
    const warden = open({ group: "payments" });
    warden.halt({ reason: "fraud suspected", group: "payments" });
    const error = await caught(warden.run({}, () => 1));
    expect(error).toBeInstanceOf(HaltedError);
    expect((error as HaltedError).scope).toBe("group payments");
    // the halted client acting as an agent outside the group is still the halted party acting
    await expect(warden.run({}, (run) => run.tool("read_file", {}, () => "ok"), { agentId: "reporting-agent" })).rejects.toBeInstanceOf(HaltedError);
    // an agent outside the group, with a client of its own, is not halted
    const reporting = open({ agentId: "reporting-agent" });
    reporting.halt({ reason: "fraud suspected", group: "payments" });
    await expect(reporting.run({}, (run) => run.tool("read_file", {}, () => "ok"))).resolves.toBe("ok");
    warden.resume({ group: "payments" });
    await expect(warden.run({}, () => 1)).resolves.toBe(1);
  });

  it("a run halt stops that run only", async () => {
    const warden = open();
    const tool = hangingTool();
    let runId = "";
    const halting = warden.run({}, (run) => {
      runId = run.runId;
      return run.tool("long_job", {}, tool.fn);
    });
    await tool.started;
    warden.halt({ reason: "this run loops", runId });
    expect(await caught(halting)).toBeInstanceOf(HaltedError);
    await expect(warden.run({}, () => "other run")).resolves.toBe("other run");
  });
});

describe("warden.check", () => {
  it("decides without recording anything", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:", policies: { ...policies, limits: [{ id: "one-read", tool: "read_file", max: 1, per: "1h" }] } });
    clients.push(warden);
    const seen: WardenEvent[] = [];
    warden.on("*", (e) => seen.push(e));
    const before = warden.ledger.head();
    for (let i = 0; i < 3; i++) {
      expect(warden.check({ tool: "read_file" }).action).toBe("allow");
      expect(warden.check({ tool: "rm" }).action).toBe("block");
      expect(warden.check({ tool: "deploy", args: { environment: "production" } }).action).toBe("require_approval");
    }
    expect(seen).toEqual([]);
    expect(warden.ledger.head()).toEqual(before);
    expect(warden.listRuns()).toEqual([]);
    expect(warden.approvals.list()).toEqual([]);
    // the limit was not used up by the checks
    await expect(warden.run({}, (run) => run.tool("read_file", {}, () => 1))).resolves.toBe(1);
  });
});

describe("event listeners", () => {
  it("a listener that throws does not break the run and is reported to onError", async () => {
    const errors: unknown[] = [];
    const warden = open({ onError: (error) => errors.push(error) });
    const delivered: string[] = [];
    warden.on("tool.called", () => {
      throw new Error("listener bug");
    });
    warden.on("*", (e) => delivered.push(e.type));
    warden.on("run.completed", async () => {
      throw new Error("async listener bug");
    });
    const result = await warden.run({}, (run) => run.tool("read_file", {}, () => "still works"));
    expect(result).toBe("still works");
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors.map((e) => (e as Error).message)).toEqual(["listener bug", "async listener bug"]);
    expect(delivered).toEqual(["run.started", "tool.called", "tool.completed", "run.completed"]);
    expect((await onlyRun(warden)).status).toBe("completed");
  });

  it("unsubscribes", async () => {
    const warden = open();
    const seen: string[] = [];
    const off = warden.on("run.started", (e) => seen.push(e.runId!));
    await warden.run({}, () => 1);
    off();
    await warden.run({}, () => 1);
    expect(seen).toHaveLength(1);
  });
});

describe("agent context", () => {
  it("tool calls and approval requests inherit the run's goal, and the call's own reasoning is added", async () => {
    const requests: ApprovalRecord[] = [];
    const warden = new Warden({
      agentId: "ctx-agent",
      store: ":memory:",
      policies: { policies: [{ id: "approve", when: { tool: "deploy" }, action: "require_approval" }] },
      onApprovalRequest: (request, decide) => {
        requests.push(request);
        decide.approve({ reviewer: "r" });
      },
    });
    const runId = await warden.run(
      {},
      async (run) => {
        await run.tool("deploy", {}, () => "ok", { agentContext: { reasoning: "tests pass; token sk-live_0123456789abcdefXYZ" } });
        return run.runId;
      },
      { agentContext: { goal: "ship the fix" } },
    );
    expect(requests[0]!.agentContext).toEqual({ goal: "ship the fix", reasoning: "tests pass; token [REDACTED]" });
    expect((await warden.getRun(runId)).toolCalls[0]!.agentContext).toEqual({ goal: "ship the fix", reasoning: "tests pass; token [REDACTED]" });
    warden.close();
  });
});
