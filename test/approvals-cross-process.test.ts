// An agent process waits on a tool call that needs approval; a reviewer in another process (the
// `warden` CLI, or a Warden client) decides it through the shared store.
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warden, type ApprovalRecord, type PolicySetInput } from "agent-warden";
import { CliSession, startAgent, tempDir, type AgentProcess } from "./fixtures/proc.js";

const SECRET = "sk-live-0123456789abcdefghijklmnop";
const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    {
      id: "approve-prod-deploy",
      description: "Production deploys need a human",
      when: { tool: "deploy", "args.environment": "production" },
      action: "require_approval",
      severity: "high",
      approval: { timeout: "10m" },
    },
  ],
};

const temp = tempDir("warden-approvals-");
const store = join(temp.dir, "warden.db");
let agent: AgentProcess;
let reviewer: Warden;
let n = 0;
/** The `warden` CLI, a third process, running each command as the binary would. */
let session: CliSession;
const runCli = (file: string, args: string[]) => session.run(file, args);

/** Asks the agent to deploy; resolves with the approval it waits on. */
async function requestDeploy(version: string): Promise<{ n: number; approvalId: string }> {
  const current = ++n;
  agent.send({ cmd: "deploy", n: current, args: { environment: "production", version, api_key: SECRET }, goal: `ship release ${version}` });
  const requested = await agent.expect("approval-requested", { n: current });
  return { n: current, approvalId: requested.approvalId as string };
}

beforeAll(async () => {
  agent = startAgent({ mode: "approvals", store, agentId: "deploy-agent", policies });
  session = new CliSession();
  await agent.expect("ready");
  // The reviewer's own client, in this process: another process on the same store as the agent.
  reviewer = new Warden({ agentId: "review-console", store });
});

afterAll(async () => {
  reviewer?.close();
  await session?.close();
  if (agent) {
    agent.send({ cmd: "exit" });
    await Promise.race([agent.exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    agent.kill();
  }
  temp.cleanup();
});

describe("approvals across processes", () => {
  it("a call that needs no approval runs at once", async () => {
    const current = ++n;
    agent.send({ cmd: "deploy", n: current, args: { environment: "staging", version: "1.1.9" }, goal: "try on staging" });
    expect(await agent.expect("result", { n: current })).toMatchObject({ ok: true, ran: true, output: { deployed: true, n: current } });
    expect(agent.all("approval-requested").filter((m) => m.n === current)).toHaveLength(0);
  });

  it("`warden approvals` lists the pending request with its redacted payload and goal; `warden approve` lets the tool run", async () => {
    const { n: current, approvalId } = await requestDeploy("1.2.0");

    const listed = await runCli(store, ["approvals"]);
    expect(listed.code, listed.stderr).toBe(0);
    const line = listed.stdout.split("\n").find((l) => l.startsWith(approvalId));
    expect(line).toBeDefined();
    expect(line).toContain("pending");
    expect(line).toContain("deploy-agent → deploy(");
    expect(line).toContain('"api_key":"[REDACTED]"');
    expect(line).toContain('"version":"1.2.0"');
    expect(line).toContain("policy=approve-prod-deploy");
    expect(line).toContain('goal="ship release 1.2.0"');
    expect(listed.stdout).not.toContain(SECRET);

    const json = await runCli(store, ["--json", "approvals"]);
    const approvals = JSON.parse(json.stdout) as ApprovalRecord[];
    expect(approvals.find((a) => a.approvalId === approvalId)).toMatchObject({
      status: "pending",
      agentId: "deploy-agent",
      toolName: "deploy",
      payload: { environment: "production", version: "1.2.0", api_key: "[REDACTED]" },
      agentContext: { goal: "ship release 1.2.0", reasoning: "release train" },
      policyId: "approve-prod-deploy",
    });

    // Until a reviewer answers, the tool has not run.
    expect(agent.all("tool-ran").filter((m) => m.n === current)).toHaveLength(0);

    const approved = await runCli(store, ["approve", approvalId, "--reviewer", "alice", "--reason", "change window"]);
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout.trim()).toBe(`${approvalId} approved by alice`);

    expect(await agent.expect("result", { n: current })).toMatchObject({ ok: true, ran: true, output: { deployed: true, n: current } });
    const record = reviewer.approvals.get(approvalId);
    expect(record).toMatchObject({ status: "approved", reviewer: "alice", decisionReason: "change window" });
    const run = reviewer.runRecord(record.runId);
    expect(run.status).toBe("completed");
    expect(run.toolCalls).toMatchObject([{ toolName: "deploy", status: "completed", approval: { status: "approved" }, decision: { action: "require_approval", policyId: "approve-prod-deploy" } }]);
    // The secret reached neither the approval, nor the tool call record, nor the ledger.
    expect(JSON.stringify(run)).not.toContain(SECRET);
    expect(JSON.stringify(reviewer.ledger.entries())).not.toContain(SECRET);
    expect(run.events.map((e) => e.type)).toEqual(expect.arrayContaining(["approval.requested", "approval.approved", "tool.completed"]));
  });

  it("a rejection from another Warden client stops the tool from running", async () => {
    const { n: current, approvalId } = await requestDeploy("1.3.0");
    reviewer.approvals.reject(approvalId, { reviewer: "bob", reason: "release freeze" });
    const result = await agent.expect("result", { n: current });
    expect(result).toMatchObject({ ok: false, ran: false, name: "ApprovalRejectedError", code: "approval_rejected" });
    expect(result.message).toContain("release freeze");
    expect(agent.all("tool-ran").filter((m) => m.n === current)).toHaveLength(0);
    const record = reviewer.approvals.get(approvalId);
    expect(reviewer.runRecord(record.runId)).toMatchObject({ status: "failed", toolCalls: [{ status: "rejected", approval: { status: "rejected", reviewer: "bob" } }] });
  });

  it("`warden reject` stops it too, and a decided request cannot be decided again", async () => {
    const { n: current, approvalId } = await requestDeploy("1.4.0");
    const rejected = await runCli(store, ["reject", approvalId, "--reason", "not today"]);
    expect(rejected.code, rejected.stderr).toBe(0);
    expect(rejected.stdout.trim()).toBe(`${approvalId} rejected by tester`);
    expect(await agent.expect("result", { n: current })).toMatchObject({ ok: false, ran: false, code: "approval_rejected" });

    const again = await runCli(store, ["approve", approvalId]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`approval "${approvalId}" is already rejected`);
    expect(agent.all("tool-ran").filter((m) => m.n === current)).toHaveLength(0);
  });

  it("an approval from another Warden client lets the tool run", async () => {
    const { n: current, approvalId } = await requestDeploy("1.5.0");
    reviewer.approvals.approve(approvalId, { reviewer: "carol" });
    expect(await agent.expect("result", { n: current })).toMatchObject({ ok: true, ran: true });
  });

  it("a halt from the CLI cancels the request the agent waits on; the tool never runs", async () => {
    const { n: current, approvalId } = await requestDeploy("1.6.0");
    const halted = await runCli(store, ["halt", "--agent", "deploy-agent", "--reason", "incident 42"]);
    expect(halted.code, halted.stderr).toBe(0);
    const result = await agent.expect("result", { n: current });
    expect(result).toMatchObject({ ok: false, ran: false, name: "HaltedError", code: "halted" });
    expect(result.message).toContain("incident 42");
    expect(reviewer.approvals.get(approvalId)).toMatchObject({ status: "cancelled" });
    const pending = await runCli(store, ["approvals"]);
    expect(pending.stdout.trim()).toBe("no pending approvals");
    const resumed = await runCli(store, ["resume", "--agent", "deploy-agent"]);
    expect(resumed.stdout.trim()).toBe("resumed agent deploy-agent");
    expect(agent.all("tool-ran").filter((m) => m.n === current)).toHaveLength(0);
  });

  it("a request is committed before approval.requested is emitted, so a reviewer acting on the event finds it", async () => {
    const file = join(temp.dir, "event-order.db");
    const warden = new Warden({ agentId: "eager", store: file, policies });
    const seen: Array<{ approvalId: unknown; rows: number }> = [];
    warden.on("approval.requested", (event) => {
      const peer = new DatabaseSync(file, { readOnly: true });
      try {
        seen.push({ approvalId: event.data.approvalId, rows: (peer.prepare("SELECT COUNT(*) AS n FROM approvals WHERE id = ?").get(event.data.approvalId as string) as { n: number }).n });
      } finally {
        peer.close();
      }
    });
    try {
      const runId = await warden.startRun();
      await warden.trackToolCall(runId, "deploy", { environment: "production" });
      expect(seen).toEqual([{ approvalId: expect.stringMatching(/^apr_/), rows: 1 }]);
    } finally {
      warden.close();
    }
  });

  it("everything the agent recorded is in the ledger, which verifies", async () => {
    const all = await runCli(store, ["--json", "approvals", "--status", "all"]);
    const statuses = (JSON.parse(all.stdout) as ApprovalRecord[]).map((a) => a.status).sort();
    expect(statuses).toEqual(["approved", "approved", "cancelled", "rejected", "rejected"]);
    expect(reviewer.ledger.verify()).toMatchObject({ ok: true });
  });
});
