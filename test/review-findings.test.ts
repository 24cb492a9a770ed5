// Regression tests for correctness findings of the core review: each failed before its fix.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { createRedactor, HaltedError, isHalt, Warden, type PolicySetInput, type WardenOptions } from "agent-warden";
import { tempDir } from "./fixtures/proc.js";

const SECRET = "sk-live-0123456789abcdefghijklmnop";
const approvalPolicies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" }],
};

const clients: Warden[] = [];
const temps: Array<{ cleanup: () => void }> = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const temp of temps.splice(0)) temp.cleanup();
});

function open(options: Partial<WardenOptions> & { store: string }): Warden {
  const client = new Warden({ agentId: "agent", onError: () => {}, ...options });
  clients.push(client);
  return client;
}

function storePath(): string {
  const temp = tempDir("warden-review-");
  temps.push(temp);
  return join(temp.dir, "warden.db");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("approvals", () => {
  it("an expired request cannot be approved, and the call it guarded never runs", async () => {
    const store = storePath();
    const agent = open({ store, policies: { ...approvalPolicies, policies: [{ ...approvalPolicies.policies![0]!, approval: { timeout: 50 } }] } });
    const run = agent.beginRun();
    // An interrupt-style adapter: the call pauses without anyone waiting in-process.
    const handle = agent.beginToolCall({ tool: "deploy", runId: run.runId, externalId: "call-1" });
    expect(handle.decision.action).toBe("require_approval");
    agent.close();
    await sleep(80);
    const reviewer = open({ store });
    expect(() => reviewer.approvals.approve(handle.approval!.approvalId, { reviewer: "late" })).toThrow(/expired/);
    const resumed = open({ store }).resumeToolCall("call-1");
    expect(resumed.decision.action).toBe("block");
  });

  it("a halt cancels pending requests of calls no process is waiting on; approving after resume does not run them", async () => {
    const store = storePath();
    const agent = open({ store, policies: approvalPolicies });
    const run = agent.beginRun();
    const handle = agent.beginToolCall({ tool: "deploy", runId: run.runId, externalId: "call-2" });
    agent.close();
    const operator = open({ store, agentId: "operator" });
    operator.halt({ reason: "incident" });
    operator.resume();
    expect(operator.approvals.get(handle.approval!.approvalId).status).toBe("cancelled");
    expect(() => operator.approvals.approve(handle.approval!.approvalId)).toThrow();
    expect(open({ store, policies: approvalPolicies }).findToolCall("call-2")?.decision.action ?? "block").toBe("block");
  });
});

describe("tokens", () => {
  it("a client token is enforced for calls in a run adopted from the store", () => {
    const store = storePath();
    const issuer = open({ store, agentId: "issuer" });
    const token = issuer.tokens.mint({ agentId: "agent", scopes: ["search:*"], ttl: "1h" });
    const first = open({ store, token });
    const run = first.beginRun();
    expect(first.check({ tool: "payments.refund", runId: run.runId }).action).toBe("block");
    first.flush();
    // Another process of the same agent, with the same token, continues the run.
    const second = open({ store, token });
    const handle = second.beginToolCall({ tool: "payments.refund", runId: run.runId });
    expect(handle.decision.action).toBe("block");
    expect(second.check({ tool: "payments.refund", runId: "run-of-nobody" }).action).toBe("block");
  });

  it("halting the agent that delegated stops runs already acting under the delegated token", async () => {
    const warden = open({ store: ":memory:", agentId: "parent" });
    const token = warden.tokens.mint({ agentId: "parent", scopes: ["flights:*"], ttl: "1h" });
    const child = warden.tokens.attenuate(token, { audience: "parent/child", scopes: ["flights:book"] });
    const task = warden.beginDelegatedTask(child);
    let second: unknown;
    await task
      .run({}, async (run) => {
        await run.tool("flights.book", {}, () => "ok");
        warden.halt({ reason: "parent compromised", agentId: "parent" });
        second = await run.tool("flights.book", {}, () => "ran").catch((error: unknown) => error);
      })
      .catch(() => {});
    // A halt (here of the client's own agent, which the delegated run acts for): the run stops, not just this call.
    expect(isHalt(second)).toBe(true);
  });
});

describe("redaction", () => {
  it("a secret nested deeper than the walk limit is not recorded", () => {
    let payload: Record<string, unknown> = { password: SECRET, note: `Bearer ${SECRET}` };
    for (let i = 0; i < 80; i++) payload = { nested: payload };
    expect(JSON.stringify(createRedactor()(payload))).not.toContain(SECRET);
  });

  it("an LLM call's error is redacted before it is stored", () => {
    const store = storePath();
    const warden = open({ store });
    const run = warden.beginRun();
    warden.beginLlmCall({ runId: run.runId, model: "m" }).fail(new Error(`401 invalid key ${SECRET}`));
    warden.flush();
    const db = new DatabaseSync(store);
    const rows = db.prepare("SELECT error FROM tool_calls WHERE kind = 'llm'").all() as Array<{ error: string }>;
    db.close();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.error).not.toContain(SECRET);
  });
});

describe("halts", () => {
  it("a resume records the lift in the ledger even when another process made the halt moments ago", () => {
    const store = storePath();
    const operator = open({ store, agentId: "operator", halt: { pollInterval: 60_000, staleAfter: 60_000 } });
    const other = open({ store, agentId: "other" });
    other.halt({ reason: "incident", agentId: "agent-x" });
    const lifted = operator.resume({ agentId: "agent-x" });
    expect(lifted).toHaveLength(1);
    expect(operator.ledger.entries().some((e) => e.type === "agent.resumed")).toBe(true);
  });
});

describe("more of the same family", () => {
  it("redacts an agent's free-text reason on tool calls and runs", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:" });
    const runId = await warden.startRun(undefined, {}, "use key sk-live_0123456789abcdefXYZ");
    await warden.trackToolCall(runId, "read", {}, { reason: "with Bearer abcdefgh12345678" });
    const run = await warden.getRun(runId);
    expect(run.reason).toBe("use key [REDACTED]");
    expect(run.toolCalls[0]!.reason).toBe("with [REDACTED]");
    expect(JSON.stringify(warden.ledger.entries())).not.toMatch(/sk-live_|abcdefgh12345678/);
    warden.close();
  });

  it("a closing client refuses the calls still waiting for a reviewer instead of leaving them hanging", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:", policies: { policies: [{ id: "approve", when: { tool: "deploy" }, action: "require_approval" }] }, onError: () => {} });
    let ran = false;
    const waiting = warden.run({}, (run) => run.tool("deploy", {}, () => (ran = true)));
    await new Promise((resolve) => setTimeout(resolve, 10));
    warden.close();
    await expect(waiting).rejects.toMatchObject({ code: "approval_rejected" });
    expect(ran).toBe(false);
  });

  it("refuses an LLM call while the agent is halted", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:" });
    const runId = await warden.startRun();
    warden.halt({ reason: "stop", agentId: "a" });
    expect(() => warden.beginLlmCall({ runId, model: "m" })).toThrow(HaltedError);
    warden.close();
  });
});

describe("runs taken over from the store", () => {
  it("refuses new calls in a run that acted under a delegation token this process does not hold", async () => {
    const path = storePath();
    const first = open({ agentId: "orchestrator", store: path });
    const token = first.tokens.mint({ agentId: "sub-agent", scopes: ["files:read"], ttl: "1h" });
    let runId = "";
    await first.beginDelegatedTask(token).run({}, async (run) => {
      runId = run.runId;
      await run.tool("files.read", {}, () => "ok");
      // The process goes away while the run is still open.
      first.flush();
      first.close();
    }).catch(() => undefined);
    const second = open({ agentId: "orchestrator", store: path });
    const handle = second.beginToolCall({ tool: "files.delete", runId });
    expect(handle.decision).toMatchObject({ action: "block", complete: false });
    expect(handle.decision.reason).toMatch(/delegation token .* this process does not hold/);
  });
});
