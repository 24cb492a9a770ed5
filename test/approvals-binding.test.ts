// An approval admits the call the reviewer saw, once: bound to the arguments' digest, the tool, agent
// and run, the policy version and an expiry, across clients on one store (a restart is a new client).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ApprovalInvalidError, argsDigest, ReviewerNotAllowedError, Warden, type PolicySetInput, type WardenOptions } from "agent-warden";

const deployNeedsApproval: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "30m" } }] };
const dirs: string[] = [];
const open: Warden[] = [];
afterEach(() => {
  for (const warden of open.splice(0)) warden.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function storePath(): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-binding-"));
  dirs.push(dir);
  return join(dir, "warden.db");
}

function client(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "deployer", store: ":memory:", policies: deployNeedsApproval, onError: () => {}, ...options });
  open.push(warden);
  return warden;
}

function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** Ledger entries of a type, with their data. */
function entries(warden: Warden, type: string): Array<Record<string, unknown>> {
  return warden.ledger.entries().filter((entry) => entry.type === type).map((entry) => entry.data as Record<string, unknown>);
}

describe("an approval is bound to the call the reviewer saw", () => {
  it("records the arguments' digest, never the arguments in clear, with the policy version", async () => {
    const warden = client();
    const runId = await warden.startRun();
    const handle = warden.beginToolCall({ tool: "deploy", args: { version: "1.4.2", token: "sk_live_abcdefghijklmnop1234" }, runId, externalId: "c1" });
    const record = warden.approvals.get(handle.approval!.approvalId);
    expect(record.argsDigest).toBe(argsDigest(record.approvalId, { version: "1.4.2", token: "sk_live_abcdefghijklmnop1234" }));
    expect(record.policyVersion).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.stringify(warden.ledger.entries())).not.toContain("sk_live_abcdefghijklmnop1234");
  });

  it("approve, then resume with changed arguments: refused, recorded, the tool never runs", async () => {
    const warden = client();
    const runId = await warden.startRun();
    const paused = warden.beginToolCall({ tool: "deploy", args: { version: "1.4.2" }, runId, externalId: "c1" });
    warden.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });

    const resumed = warden.resumeToolCall("c1", { args: { version: "6.6.6" } });
    let ran = false;
    const admission = await resumed.admit();
    if (admission.ok) ran = true;
    expect(ran).toBe(false);
    expect(admission).toMatchObject({ ok: false, outcome: "refused" });
    const error = (admission as { error: unknown }).error;
    expect(error).toBeInstanceOf(ApprovalInvalidError);
    expect(error).toMatchObject({ code: "approval_invalid", reason: "args_changed" });
    expect(warden.runRecord(runId).toolCalls[0]).toMatchObject({ status: "rejected", blockedReason: expect.stringContaining("arguments differ") });
    expect(entries(warden, "risk.detected")).toContainEqual(expect.objectContaining({ approvalId: paused.approval!.approvalId, refused: "args_changed" }));
    // The call is over: nothing resumes it again with the right arguments either.
    expect(() => warden.resumeToolCall("c1", { args: { version: "1.4.2" } })).toThrow(/rejected/);
  });

  it("the same arguments in another key order are the same call", async () => {
    const warden = client();
    const runId = await warden.startRun();
    const paused = warden.beginToolCall({ tool: "deploy", args: { version: "1.4.2", env: "prod" }, runId, externalId: "c1" });
    warden.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });
    const admission = await warden.resumeToolCall("c1", { args: { env: "prod", version: "1.4.2" } }).admit();
    expect(admission).toMatchObject({ ok: true, outcome: "allowed", reason: "approved by alice" });
  });

  it("a policy set changed to block the call refuses the approval given under the old one", async () => {
    const warden = client();
    const runId = await warden.startRun();
    const paused = warden.beginToolCall({ tool: "deploy", args: { version: "1.4.2" }, runId, externalId: "c1" });
    warden.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });
    warden.setPolicies({ version: 1, default: "allow", policies: [{ id: "freeze", when: { tool: "deploy" }, action: "block" }] });

    const admission = await warden.resumeToolCall("c1", { args: { version: "1.4.2" } }).admit();
    expect(admission).toMatchObject({ ok: false, outcome: "refused", error: { code: "approval_invalid", reason: "policy_blocks" } });
  });

  it("a policy set that no longer asks for this approval refuses it; one that still does keeps it", async () => {
    const warden = client();
    const runId = await warden.startRun();
    const a = warden.beginToolCall({ tool: "deploy", args: { version: "1" }, runId, externalId: "a" });
    const b = warden.beginToolCall({ tool: "deploy", args: { version: "2" }, runId, externalId: "b" });
    warden.approvals.approve(a.approval!.approvalId, { reviewer: "alice" });
    warden.approvals.approve(b.approval!.approvalId, { reviewer: "alice" });

    // Same deciding policy, another policy added: the approval still holds.
    warden.setPolicies({ ...deployNeedsApproval, policies: [...deployNeedsApproval.policies!, { id: "flag-reads", when: { tool: "read_*" }, action: "warn" }] });
    expect(await warden.resumeToolCall("a", { args: { version: "1" } }).admit()).toMatchObject({ ok: true });

    // Now another policy decides (or none does): the approval was given under a rule that is gone.
    warden.setPolicies({ version: 1, default: "allow", policies: [{ id: "other-approval", when: { tool: "deploy" }, action: "require_approval" }] });
    expect(await warden.resumeToolCall("b", { args: { version: "2" } }).admit()).toMatchObject({ ok: false, error: { reason: "policy_changed" } });
  });

  it("an approval used after its expiry is refused", async () => {
    const clock = fakeClock();
    const warden = client({ clock: clock.now });
    const runId = await warden.startRun();
    const paused = warden.beginToolCall({ tool: "deploy", args: { version: "1.4.2" }, runId, externalId: "c1" });
    warden.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });
    clock.advance(31 * 60_000);
    const admission = await warden.resumeToolCall("c1", { args: { version: "1.4.2" } }).admit();
    expect(admission).toMatchObject({ ok: false, error: { code: "approval_invalid", reason: "expired" } });
  });

  it("a used approval presented again by another client is refused: one admission", async () => {
    const path = storePath();
    const first = client({ store: path });
    const runId = await first.startRun();
    const paused = first.beginToolCall({ tool: "deploy", args: { version: "1.4.2" }, runId, externalId: "c1" });
    first.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });

    // Two clients resume the approved call before either finishes it: only the first runs it.
    const a = client({ store: path });
    const b = client({ store: path });
    const handleA = a.resumeToolCall("c1", { args: { version: "1.4.2" } });
    const handleB = b.resumeToolCall("c1", { args: { version: "1.4.2" } });
    expect(await handleA.admit()).toMatchObject({ ok: true });
    expect(await handleB.admit()).toMatchObject({ ok: false, error: { code: "approval_invalid", reason: "used" } });
    // The same client asking again for the same call (a later hook) is not a second use.
    expect(await a.resumeToolCall("c1", { args: { version: "1.4.2" } }).admit()).toMatchObject({ ok: true });
    expect(a.approvals.get(paused.approval!.approvalId).consumedAt).toBeTypeOf("number");
  });

  it("a restart between request and decision still admits the call once", async () => {
    const path = storePath();
    const before = new Warden({ agentId: "deployer", store: path, policies: deployNeedsApproval, onError: () => {} });
    const runId = await before.startRun();
    const paused = before.beginToolCall({ tool: "deploy", args: { version: "1.4.2" }, runId, externalId: "c1" });
    before.close();

    const reviewer = client({ store: path, agentId: "console" });
    reviewer.approvals.approve(paused.approval!.approvalId, { reviewer: "alice" });

    const after = client({ store: path });
    const again = client({ store: path });
    const handle = after.resumeToolCall("c1", { args: { version: "1.4.2" } });
    const replay = again.resumeToolCall("c1", { args: { version: "1.4.2" } });
    const runs: string[] = [];
    await handle.run(() => runs.push("deployed 1.4.2"));
    // Another client presenting the same approval is refused: it was used once.
    expect(await replay.admit()).toMatchObject({ ok: false, error: { code: "approval_invalid", reason: "used" } });
    await after.flush();
    await again.flush();
    expect(runs).toEqual(["deployed 1.4.2"]);
    expect((await after.getRun(runId)).toolCalls[0]).toMatchObject({ status: "completed", approval: { status: "approved", consumedAt: expect.any(Number) } });
    expect(after.ledger.verify().ok).toBe(true);
  });
});

describe("who may approve", () => {
  const twoLeads: PolicySetInput = {
    version: 1,
    default: "allow",
    policies: [{ id: "large-refunds", when: { tool: "refund" }, action: "require_approval", approval: { timeout: "30m", approvers: 2, from: ["group:payments-leads", "alice@example.com"] } }],
  };

  it("N distinct reviewers from the allowed set; outsiders and the agent itself are refused and recorded", async () => {
    const warden = client({ agentId: "billing-agent", policies: twoLeads });
    const runId = await warden.startRun();
    const handle = warden.beginToolCall({ tool: "refund", args: { amount: 90000 }, runId });
    const approvalId = handle.approval!.approvalId;
    expect(handle.approval!.rule).toEqual({ approvers: 2, from: ["group:payments-leads", "alice@example.com"] });

    expect(() => warden.approvals.approve(approvalId, { reviewer: "mallory@example.com", groups: ["support"] })).toThrow(ReviewerNotAllowedError);
    expect(() => warden.approvals.approve(approvalId, { reviewer: "billing-agent", groups: ["payments-leads"] })).toThrow(/requesting agent/);
    expect(() => warden.approvals.approve(approvalId)).toThrow(/named reviewer/);

    expect(warden.approvals.approve(approvalId, { reviewer: "alice@example.com" })).toMatchObject({ status: "pending", approvedBy: ["alice@example.com"] });
    expect(() => warden.approvals.approve(approvalId, { reviewer: "alice@example.com" })).toThrow(/already approved/);
    const decided = warden.approvals.approve(approvalId, { reviewer: "bob@example.com", groups: ["payments-leads"] });
    expect(decided).toMatchObject({ status: "approved", approvedBy: ["alice@example.com", "bob@example.com"], reviewer: "alice@example.com, bob@example.com" });
    expect(await handle.admit()).toMatchObject({ ok: true });

    // Every refused answer is recorded: the outsider, the agent itself, an anonymous one, a second vote.
    const refusals = entries(warden, "risk.detected").filter((data) => data.approvalId === approvalId);
    expect(refusals.map((data) => data.refusedReviewer ?? "(anonymous)")).toEqual(["mallory@example.com", "billing-agent", "(anonymous)", "alice@example.com"]);
    expect(entries(warden, "approval.approved")).toEqual([expect.objectContaining({ approvalId, approvedBy: ["alice@example.com", "bob@example.com"] })]);
  });

  it("one allowed reviewer's rejection refuses the call; an outsider cannot reject either", async () => {
    const warden = client({ agentId: "billing-agent", policies: twoLeads });
    const runId = await warden.startRun();
    const handle = warden.beginToolCall({ tool: "refund", args: { amount: 90000 }, runId });
    expect(() => warden.approvals.reject(handle.approval!.approvalId, { reviewer: "mallory@example.com" })).toThrow(ReviewerNotAllowedError);
    warden.approvals.reject(handle.approval!.approvalId, { reviewer: "alice@example.com", reason: "too large" });
    expect(await handle.admit()).toMatchObject({ ok: false, outcome: "refused", cause: "rejected" });
  });

  it("escalates to a second set once the first has not answered in time (fake clock)", async () => {
    const clock = fakeClock();
    const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "prod", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: "30m", from: ["alice@example.com"], escalate: { after: "10m", to: ["group:sre-oncall"] } } }] };
    const warden = client({ policies, clock: clock.now });
    const runId = await warden.startRun();
    const handle = warden.beginToolCall({ tool: "deploy", args: { version: "1" }, runId });
    const approvalId = handle.approval!.approvalId;

    expect(() => warden.approvals.approve(approvalId, { reviewer: "carol@example.com", groups: ["sre-oncall"] })).toThrow(ReviewerNotAllowedError);
    clock.advance(9 * 60_000);
    expect(warden.approvals.escalateDue()).toEqual([]);
    expect(warden.approvals.get(approvalId).escalatedAt).toBeUndefined();
    clock.advance(2 * 60_000);
    expect(warden.approvals.escalateDue().map((r) => r.approvalId)).toEqual([approvalId]);
    expect(warden.approvals.get(approvalId).escalatedAt).toBe(clock.now());
    // Recorded once, however often it is read.
    expect(warden.approvals.escalateDue()).toEqual([]);
    expect(entries(warden, "approval.requested").filter((data) => data.escalated === true)).toEqual([expect.objectContaining({ approvalId, to: ["group:sre-oncall"] })]);

    expect(warden.approvals.approve(approvalId, { reviewer: "carol@example.com", groups: ["sre-oncall"] })).toMatchObject({ status: "approved", reviewer: "carol@example.com" });
    expect(await handle.admit()).toMatchObject({ ok: true });
  });

  it("policy files validate the approval rule", () => {
    expect(() => client({ policies: { version: 1, policies: [{ id: "p", action: "require_approval", approval: { approvers: 0 } }] } as PolicySetInput })).toThrow(/approvers/);
    expect(() => client({ policies: { version: 1, policies: [{ id: "p", action: "require_approval", approval: { escalate: { after: "10m" } } }] } as PolicySetInput })).toThrow(/escalate/);
  });
});
