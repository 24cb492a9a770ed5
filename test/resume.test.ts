// A call paused for approval is picked up later, by another client on the same store, after the run
// that made it has ended: how framework interrupts (LangGraph, AI SDK, OpenAI Agents) resume.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Warden } from "agent-warden";

const policies = { policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" as const }] };
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function store(): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-resume-"));
  dirs.push(dir);
  return join(dir, "warden.db");
}

describe("resumeToolCall", () => {
  it("finishes an approved call in another client after its run completed", async () => {
    const path = store();
    const first = new Warden({ agentId: "agent", store: path, policies });
    const runId = await first.startRun();
    const paused = first.beginToolCall({ tool: "deploy", args: { env: "prod" }, runId, externalId: "call_1" });
    expect(paused.decision.action).toBe("require_approval");
    await first.completeRun(runId);
    first.close();

    const second = new Warden({ agentId: "agent", store: path, policies });
    expect(second.resumeToolCall("call_1").decision.action).toBe("require_approval");
    second.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });
    const resumed = second.resumeToolCall("call_1");
    expect(resumed.decision).toMatchObject({ action: "allow", reason: "approved by alice" });
    resumed.complete({ deployed: true });

    const run = await second.getRun(runId);
    expect(run.status).toBe("completed");
    expect(run.toolCalls).toMatchObject([{ externalId: "call_1", status: "completed", output: { deployed: true }, approval: { status: "approved", reviewer: "alice" } }]);
    expect(second.ledger.verify().ok).toBe(true);
    second.close();
  });

  it("reports a rejected call as blocked and refuses to complete it", async () => {
    const warden = new Warden({ agentId: "agent", store: store(), policies });
    const runId = await warden.startRun();
    const paused = warden.beginToolCall({ tool: "deploy", runId, externalId: "call_2" });
    warden.approvals.reject(paused.approval!.approvalId, { reviewer: "bob", reason: "freeze" });
    const resumed = warden.resumeToolCall("call_2");
    expect(resumed.decision).toMatchObject({ action: "block", reason: "approval rejected: freeze" });
    expect(() => resumed.complete("x")).toThrow(/rejected/);
    expect((await warden.getRun(runId)).toolCalls[0]).toMatchObject({ status: "rejected" });
    warden.close();
  });
});

describe("resumeToolCall across processes", () => {
  it("runs a call that one client resumed as approved and another client finishes", async () => {
    const path = store();
    const a = new Warden({ agentId: "agent", store: path, policies });
    const runId = await a.startRun();
    const paused = a.beginToolCall({ tool: "deploy", runId, externalId: "call_3" });
    a.approvals.approve(paused.approval!.approvalId, { reviewer: "carol" });
    expect(a.resumeToolCall("call_3").decision.action).toBe("allow");
    a.close();

    const b = new Warden({ agentId: "agent", store: path, policies });
    const resumed = b.resumeToolCall("call_3");
    expect(resumed.decision.action).toBe("allow");
    resumed.complete("done");
    expect((await b.getRun(runId)).toolCalls[0]).toMatchObject({ status: "completed", output: "done" });
    b.close();
  });
});
