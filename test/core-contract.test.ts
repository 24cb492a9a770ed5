// The admission contract: one decision per call, told in a closed set of outcomes, with the
// primitives adapters share (the call by its framework id, raceAbort, one error sink).
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isHalt, raceAbort, Warden, type Admission, type PolicySetInput, type WardenOptions } from "agent-warden";
import { tempDir } from "./fixtures/proc.js";

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-delete", when: { tool: "db.delete" }, action: "block", reason: "deletes are off" },
    { id: "flag-write", when: { tool: "db.write" }, action: "warn" },
    { id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" },
  ],
  limits: [{ id: "one-search", tool: "search", max: 1, per: "1h", scope: "agent" }],
  budgets: [{ id: "spend", tool: "pay", spend: { max: { amount: 1000, currency: "EUR" } } }],
};

const clients: Warden[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({ agentId: "agent", store: ":memory:", policies, onError: () => {}, ...options });
  clients.push(client);
  return client;
}

function strip(admission: Admission) {
  return admission.ok ? { outcome: admission.outcome } : { outcome: admission.outcome, cause: admission.cause, halted: admission.halted, code: admission.error.code };
}

describe("one admission contract", () => {
  it("decides a call known by several names once, under the strictest, and counts it once", async () => {
    const warden = open({ policies: { ...policies, limits: [{ id: "one-search", tool: "search.*", max: 1, per: "1h", scope: "agent" }] } });
    const { runId } = warden.beginRun();
    const blocked = warden.beginToolCall({ tool: "db_delete", aliases: ["db.delete"], runId });
    expect(blocked.decision).toMatchObject({ action: "block", policyId: "no-delete" });
    expect(blocked.toolName).toBe("db.delete");
    // Counted once per call, under the name it is recorded under (`tool` when the decisions tie).
    expect((await warden.beginToolCall({ tool: "search.web", aliases: ["search_web"], runId }).admit()).outcome).toBe("allowed");
    expect(strip(await warden.beginToolCall({ tool: "search.web", aliases: ["search_web"], runId }).admit())).toMatchObject({ outcome: "refused", cause: "limit" });
    const run = await warden.getRun(runId);
    expect(run.toolCalls.map((call) => [call.toolName, call.status])).toEqual([
      ["db.delete", "blocked"],
      ["search.web", "pending"],
      ["search.web", "blocked"],
    ]);
  });

  it("gates a model call before it is made: nothing recorded when it may go, a refusal recorded when the token budget is spent or a halt stops it", () => {
    const warden = open({ policies: { ...policies, budgets: [{ id: "tokens", tokens: 100 }] } });
    const { runId } = warden.beginRun();
    warden.admitLlmCall({ runId, model: "m" });
    expect(warden.ledger.entries({ limit: 100 }).filter((entry) => entry.runId === runId).map((entry) => entry.type)).toEqual(["run.started"]);
    warden.beginLlmCall({ runId, model: "m" }).complete({ inputTokens: 80, outputTokens: 20 });
    expect(() => warden.admitLlmCall({ runId, model: "m" })).toThrow(/token budget "tokens": 101 exceeds 100/);
    warden.halt({ reason: "stop" });
    expect(() => warden.admitLlmCall({ model: "m" })).toThrow(expect.objectContaining({ code: "halted" }));
    const refusals = warden.ledger.entries({ limit: 100 }).filter((entry) => entry.type === "tool.blocked");
    expect(refusals.map((entry) => [entry.runId, (entry.data as { kind?: string }).kind, (entry.data as { halted?: boolean }).halted ?? false])).toEqual([
      [runId, "llm", false],
      [null, "llm", true],
    ]);
  });

  it("answers every decision in the closed set of outcomes, with what caused a refusal", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const admit = (tool: string, args: unknown = {}) => warden.beginToolCall({ tool, args, runId }).admit().then(strip);
    expect(await admit("read")).toEqual({ outcome: "allowed" });
    expect(await admit("db.write")).toEqual({ outcome: "warned" });
    expect(await admit("db.delete")).toEqual({ outcome: "refused", cause: "policy", halted: false, code: "tool_blocked" });
    expect(await admit("search")).toEqual({ outcome: "allowed" });
    expect(await admit("search")).toEqual({ outcome: "refused", cause: "limit", halted: false, code: "tool_blocked" });
    expect(await admit("pay", { amount: 900, currency: "EUR" })).toEqual({ outcome: "allowed" });
    expect(await admit("pay", { amount: 200, currency: "EUR" })).toEqual({ outcome: "refused", cause: "budget", halted: false, code: "tool_blocked" });
    warden.halt({ reason: "stop", agentId: "agent" });
    expect(await admit("read")).toEqual({ outcome: "halted", cause: "halt", halted: true, code: "halted" });
  });

  it("says needs_approval at once, and how the wait ended once admitted: approved, rejected, expired", async () => {
    let answer: "approve" | "reject" | "none" = "approve";
    const warden = open({
      onApprovalRequest: (_request, decide) => {
        if (answer === "approve") setTimeout(() => decide.approve({ reviewer: "alice" }), 5);
        if (answer === "reject") setTimeout(() => decide.reject({ reviewer: "bob", reason: "not today" }), 5);
      },
    });
    const { runId } = warden.beginRun();
    const approved = warden.beginToolCall({ tool: "deploy", runId });
    expect(approved.outcome).toMatchObject({ ok: false, outcome: "needs_approval", approval: { approvalId: approved.approval!.approvalId } });
    expect(await approved.admit()).toMatchObject({ ok: true, outcome: "allowed", reason: "approved by alice" });
    answer = "reject";
    expect(strip(await warden.beginToolCall({ tool: "deploy", runId }).admit())).toEqual({ outcome: "refused", cause: "rejected", halted: false, code: "approval_rejected" });
    answer = "none";
    warden.setPolicies({ ...policies, policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: 20 } }] });
    expect(strip(await warden.beginToolCall({ tool: "deploy", runId }).admit())).toEqual({ outcome: "refused", cause: "expired", halted: false, code: "approval_timeout" });
  });

  it("a token invalidated by a halt of the agent that delegated it is a halt at call time, as when a run opens", async () => {
    // The client (the planner) hands a token to "parent", which delegates to "child"; "parent" is halted.
    const warden = open({ agentId: "planner", policies: { version: 1, default: "allow", policies: [] } });
    const token = warden.tokens.mint({ agentId: "parent", scopes: ["flights:*"], ttl: "1h" });
    const task = warden.beginDelegatedTask(warden.tokens.attenuate(token, { audience: "parent/child", scopes: ["flights:book"] }));
    let admission: Admission | undefined;
    let ran = false;
    await task
      .run({}, async (run) => {
        warden.halt({ reason: "parent compromised", agentId: "parent" });
        admission = await warden.beginToolCall({ tool: "flights.book", runId: run.runId }).admit();
        await run.tool("flights.book", {}, () => (ran = true));
      })
      .catch(() => {});
    expect(admission).toMatchObject({ ok: false, outcome: "halted", cause: "token", halted: true });
    expect(isHalt(admission!.ok ? undefined : admission!.error)).toBe(true);
    expect(ran).toBe(false);
    // Opening a run under it says the same.
    await expect(task.run({}, () => "never")).rejects.toSatisfy(isHalt);
  });

  it("a token's scope refusal is a refusal caused by the token", async () => {
    const temp = tempDir("warden-contract-");
    try {
      const store = join(temp.dir, "warden.db");
      const warden = open({ store, policies: { version: 1, default: "allow", policies: [] } });
      const token = warden.tokens.mint({ agentId: "agent", scopes: ["search:*"], ttl: "1h" });
      const scoped = open({ store, token, policies: { version: 1, default: "allow", policies: [] } });
      expect(strip(await scoped.beginToolCall({ tool: "payments.refund" }).admit())).toEqual({ outcome: "refused", cause: "token", halted: false, code: "tool_blocked" });
      scoped.close();
      warden.close();
    } finally {
      temp.cleanup();
    }
  });

  it("a halt that lands between the decision and admit wins, and the call is recorded as stopped", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const handle = warden.beginToolCall({ tool: "read", runId });
    expect(handle.outcome.outcome).toBe("allowed");
    warden.halt({ reason: "stop now" });
    expect(handle.outcome).toMatchObject({ outcome: "halted", cause: "halt" });
    expect(await handle.admit()).toMatchObject({ ok: false, outcome: "halted", cause: "halt" });
    const record = warden.runRecord(runId).toolCalls[0]!;
    expect(record.status).toBe("failed");
  });
});

describe("one decision per call across a framework's hooks", () => {
  it("a later hook with the same framework id gets the first hook's handle: one record, one decision, one slot counted", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const first = warden.beginToolCall({ tool: "search", args: { q: "a" }, runId, externalId: "call_1" });
    const second = warden.beginToolCall({ tool: "search", args: { q: "a" }, runId, externalId: "call_1" });
    expect(second.toolCallId).toBe(first.toolCallId);
    expect(warden.toolCall("call_1")?.toolCallId).toBe(first.toolCallId);
    second.complete({ hits: 1 });
    const record = warden.runRecord(runId);
    expect(record.toolCalls).toHaveLength(1);
    expect(record.events.filter((e) => e.type === "tool.called")).toHaveLength(1);
    // The limit of one search counted that call once: the next search (a new call) is the one refused.
    expect(warden.beginToolCall({ tool: "search", runId, externalId: "call_2" }).decision.action).toBe("block");
    // Finished calls are forgotten: the id starts a new call.
    expect(warden.toolCall("call_1")).toBeUndefined();
  });

  it("a refused call stays refused for the hooks that follow, and an approval wait by the framework id continues", async () => {
    const warden = open({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "alice" }), 5) });
    const { runId } = warden.beginRun();
    const blocked = warden.beginToolCall({ tool: "db.delete", runId, externalId: "call_b" });
    expect(blocked.outcome).toMatchObject({ outcome: "refused", cause: "policy" });
    const again = warden.beginToolCall({ tool: "db.delete", runId, externalId: "call_b" });
    expect(again.toolCallId).toBe(blocked.toolCallId);
    expect((await again.admit()).outcome).toBe("refused");
    const paused = warden.beginToolCall({ tool: "deploy", runId, externalId: "call_d" });
    expect(paused.outcome.outcome).toBe("needs_approval");
    const later = warden.beginToolCall({ tool: "deploy", runId, externalId: "call_d" });
    expect(later.toolCallId).toBe(paused.toolCallId);
    expect((await later.admit()).outcome).toBe("allowed");
    later.complete("deployed");
    expect(warden.runRecord(runId).toolCalls.map((c) => c.status)).toEqual(["blocked", "completed"]);
  });

  it("the same framework id for another tool or another run is a new call, decided on its own", async () => {
    const warden = open();
    const a = warden.beginRun();
    const b = warden.beginRun();
    const first = warden.beginToolCall({ tool: "read", runId: a.runId, externalId: "x" });
    expect(warden.beginToolCall({ tool: "db.delete", runId: a.runId, externalId: "x" }).toolCallId).not.toBe(first.toolCallId);
    expect(warden.beginToolCall({ tool: "read", runId: b.runId, externalId: "x" }).toolCallId).not.toBe(first.toolCallId);
  });
});

describe("an approval wait the caller aborts", () => {
  it("records the call as rejected (aborted), cancels its request, and answers refused/aborted", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const controller = new AbortController();
    const handle = warden.beginToolCall({ tool: "deploy", runId, signal: controller.signal });
    const admitted = handle.admit();
    setTimeout(() => controller.abort(), 5);
    expect(strip(await admitted)).toEqual({ outcome: "refused", cause: "aborted", halted: false, code: "approval_rejected" });
    warden.completeRun(runId);
    const call = warden.runRecord(runId).toolCalls[0]!;
    expect(call).toMatchObject({ status: "rejected", blockedReason: "aborted", approval: { status: "cancelled" } });
  });
});

describe("primitives adapters share", () => {
  it("raceAbort settles on abort even when the work ignores the signal", async () => {
    const controller = new AbortController();
    const never = raceAbort(controller.signal, () => new Promise(() => {}));
    controller.abort(new Error("stop"));
    await expect(never).rejects.toThrow("stop");
  });

  it("handle.race settles when a halt aborts the call", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const handle = warden.beginToolCall({ tool: "read", runId });
    const raced = handle.race(() => new Promise(() => {}));
    warden.halt({ reason: "stop" });
    await expect(raced).rejects.toSatisfy(isHalt);
  });

  it("reportError goes to onError when set, else warns once per kind", async () => {
    const seen: unknown[] = [];
    const withHandler = open({ onError: (error) => seen.push(error) });
    withHandler.reportError(new Error("boom"), "ai");
    expect(seen).toHaveLength(1);
    const quiet = new Warden({ agentId: "agent", store: ":memory:" });
    clients.push(quiet);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on("warning", onWarning);
    try {
      quiet.reportError(new Error("same"), "langchain");
      quiet.reportError(new Error("same"), "langchain");
      quiet.reportError(new Error("same"), "mcp");
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).toEqual(["[warden] langchain: same", "[warden] mcp: same"]);
  });
});

describe("completion after a halt", () => {
  it("complete() on a call a halt landed on while it ran records it failed and throws the halt", async () => {
    const warden = open();
    const { runId } = warden.beginRun();
    const handle = warden.beginToolCall({ tool: "read", runId });
    expect((await handle.admit()).ok).toBe(true);
    warden.halt({ reason: "incident", agentId: "agent" });
    expect(() => handle.complete({ rows: 3 })).toThrow(expect.objectContaining({ code: "halted" }));
    const lifecycle = await warden.trackToolCall(runId, "read").catch((error: unknown) => error);
    expect(lifecycle).toMatchObject({ code: "halted" });
    warden.resume({ agentId: "agent" });
    const second = await warden.trackToolCall(runId, "read");
    warden.halt({ reason: "again" });
    warden.resume();
    // Lifted before completion, but it aborted the call while it ran: still not a success.
    await expect(warden.completeToolCall(runId, second, "out")).rejects.toMatchObject({ code: "halted" });
    const statuses = warden.runRecord(runId).toolCalls.map((c) => c.status);
    expect(statuses).toEqual(["failed", "blocked", "failed"]);
  });
});
