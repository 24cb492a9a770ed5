// The seed client's lifecycle, run as the seed documents it: only the import and the constructor differ.
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ActionType,
  ApprovalStatus,
  ConfigError,
  EventType,
  InvalidStateError,
  NotFoundError,
  PolicyAction,
  RiskSeverity,
  ToolCallStatus,
  Warden,
  WardenError,
  type PolicySetInput,
} from "agent-warden";

const approveProdDeploy: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    {
      id: "approve-prod-deploy",
      description: "Production deploys need a human",
      when: { tool: "deploy", "args.environment": "production" },
      action: "require_approval",
      severity: "high",
    },
  ],
};

const blockProdDeploy: PolicySetInput = {
  policies: [{ id: "no-prod-deploy", reason: "deploys are frozen", when: { tool: "deploy", "args.environment": "production" }, action: "block" }],
};

/**
 * The TypeScript example of "Instrument Your First Agent", with the stubs it calls. Between the
 * markers the text is the seed's own, except for the import (agent-warden) and the constructor.
 */
function seedExample(policies: PolicySetInput) {
  const done: string[] = [];
  async function readFile(path: string): Promise<string> {
    done.push(`read ${path}`);
    return "export const ttl = 60;\n";
  }
  async function writeFile(path: string, content: string): Promise<void> {
    done.push(`write ${path} (${content.length} chars)`);
  }
  async function deployToProduction(): Promise<void> {
    done.push("deploy");
  }
  const updatedContent = "export const ttl = 3600;\n";

  // ── seed example (import and constructor changed) ──
  const client = new Warden({ agentId: 'my-agent', store: ':memory:', policies });

  async function myAgentWorkflow() {
    // 1. Start a run (with optional agent context for observability)
    const runId = await client.startRun(
      undefined,
      { task: 'Review and fix authentication module' },
      undefined,
      {
        goal: 'Fix the session expiry bug',
        reasoning: 'User reported that sessions expire prematurely after re-login',
      },
    );

    try {
      // 2. Track a read operation
      const readTcId = await client.trackToolCall(runId, 'read_file', {
        path: 'src/auth/session.ts',
      });
      const fileContent = await readFile('src/auth/session.ts');
      await client.completeToolCall(runId, readTcId, { lines: fileContent.length });

      // 3. Track a write operation
      const writeTcId = await client.trackToolCall(runId, 'write_file', {
        path: 'src/auth/session.ts',
        changes: 'Fix token expiry logic',
      });
      await writeFile('src/auth/session.ts', updatedContent);
      await client.completeToolCall(runId, writeTcId, { success: true });

      // 4. Track a potentially risky operation
      const deployTcId = await client.trackToolCall(runId, 'deploy', {
        environment: 'production',
        service: 'auth-api',
      });

      // Check the policy decision
      const run = await client.getRun(runId);
      const tc = run.toolCalls?.find((t: any) => t.toolCallId === deployTcId);

      if (tc?.status === 'blocked') {
        console.log('Deploy blocked by policy:', tc.blockedReason);
      } else if (tc?.status === 'awaiting_approval') {
        console.log('Deploy requires human approval. Check the dashboard.');
      } else {
        await deployToProduction();
        await client.completeToolCall(runId, deployTcId, { deployed: true });
      }

      // 5. Complete the run
      await client.completeRun(runId);
    } catch (error) {
      await client.failRun(runId, { error: String(error) });
      throw error;
    }
  }
  // ── end of seed example ──

  return { client, myAgentWorkflow, done };
}

const clients: Warden[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const client of clients.splice(0)) client.close();
});

function track<T extends { client: Warden }>(value: T): T {
  clients.push(value.client);
  return value;
}

function onlyRun(client: Warden) {
  const runs = client.listRuns();
  expect(runs).toHaveLength(1);
  return client.getRun(runs[0]!.runId);
}

describe("the seed example runs as written", () => {
  it("reads and writes, pauses the production deploy for approval, and completes the run", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const { client, myAgentWorkflow, done } = track(seedExample(approveProdDeploy));

    await myAgentWorkflow();

    expect(done).toEqual(["read src/auth/session.ts", "write src/auth/session.ts (25 chars)"]);
    expect(log).toHaveBeenCalledWith("Deploy requires human approval. Check the dashboard.");

    const run = await onlyRun(client);
    expect(run.status).toBe("completed");
    expect(run.agentId).toBe("my-agent");
    expect(run.metadata).toEqual({ task: "Review and fix authentication module" });
    expect(run.agentContext).toEqual({ goal: "Fix the session expiry bug", reasoning: "User reported that sessions expire prematurely after re-login" });

    const [read, write, deploy] = run.toolCalls;
    expect(run.toolCalls).toHaveLength(3);
    expect(read).toMatchObject({ toolName: "read_file", status: "completed", input: { path: "src/auth/session.ts" }, output: { lines: 23 }, blockedReason: undefined });
    expect(read!.decision).toMatchObject({ action: "allow", matches: [] });
    expect(read!.approval).toBeUndefined();
    expect(write).toMatchObject({ toolName: "write_file", status: "completed", output: { success: true } });
    expect(deploy).toMatchObject({ toolName: "deploy", status: "awaiting_approval", actionType: "deploy", input: { environment: "production", service: "auth-api" }, output: undefined, blockedReason: undefined });
    expect(deploy!.decision).toMatchObject({ action: "require_approval", policyId: "approve-prod-deploy", severity: "high", reason: "Production deploys need a human" });
    expect(deploy!.decision!.matches.map((m) => m.policyId)).toEqual(["approve-prod-deploy"]);
    expect(deploy!.approval).toMatchObject({
      toolCallId: deploy!.toolCallId,
      runId: run.runId,
      agentId: "my-agent",
      toolName: "deploy",
      status: "pending",
      policyId: "approve-prod-deploy",
      payload: { environment: "production", service: "auth-api" },
    });
    for (const tc of run.toolCalls) expect(tc.toolCallId).toMatch(/\S/);

    expect(run.events.map((e) => e.type)).toEqual([
      "run.started",
      "tool.called",
      "tool.completed",
      "tool.called",
      "tool.completed",
      "tool.called",
      "policy.matched",
      "risk.detected",
      "approval.requested",
      "run.completed",
    ]);
    const deployEvents = run.events.filter((e) => e.toolCallId === deploy!.toolCallId);
    expect(deployEvents.map((e) => e.type)).toEqual(["tool.called", "policy.matched", "risk.detected", "approval.requested"]);
    expect(deployEvents.find((e) => e.type === "risk.detected")!.data).toMatchObject({ severity: "high" });
    expect(client.approvals.list({ status: "pending" }).map((a) => a.toolCallId)).toEqual([deploy!.toolCallId]);
    expect(client.ledger.verify()).toMatchObject({ ok: true });
  });

  it("reports a blocked deploy with its reason and never deploys", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const { client, myAgentWorkflow, done } = track(seedExample(blockProdDeploy));

    await myAgentWorkflow();

    expect(done).not.toContain("deploy");
    expect(log).toHaveBeenCalledWith("Deploy blocked by policy:", "deploys are frozen");
    const run = await onlyRun(client);
    expect(run.status).toBe("completed");
    const tc = run.toolCalls.find((t) => t.toolName === "deploy")!;
    expect(tc.status).toBe("blocked");
    expect(tc.blockedReason).toBe("deploys are frozen");
    expect(tc.decision).toMatchObject({ action: "block", policyId: "no-prod-deploy" });
    expect(tc.approval).toBeUndefined();
    expect(run.events.filter((e) => e.toolCallId === tc.toolCallId).map((e) => e.type)).toEqual(["tool.called", "policy.matched", "tool.blocked"]);
  });

  it("deploys when no policy stops it", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const { client, myAgentWorkflow, done } = track(seedExample({ policies: [] }));
    await myAgentWorkflow();
    expect(done).toContain("deploy");
    expect(log).not.toHaveBeenCalled();
    const run = await onlyRun(client);
    expect(run.toolCalls.map((t) => [t.toolName, t.status])).toEqual([
      ["read_file", "completed"],
      ["write_file", "completed"],
      ["deploy", "completed"],
    ]);
    expect(run.toolCalls[2]!.output).toEqual({ deployed: true });
  });
});

describe("seed enums", () => {
  it("keep the seed's exact string values", () => {
    expect(EventType).toEqual({
      RUN_STARTED: "run.started",
      RUN_COMPLETED: "run.completed",
      RUN_FAILED: "run.failed",
      STEP_STARTED: "step.started",
      STEP_COMPLETED: "step.completed",
      TOOL_CALLED: "tool.called",
      TOOL_COMPLETED: "tool.completed",
      TOOL_BLOCKED: "tool.blocked",
      RISK_DETECTED: "risk.detected",
      APPROVAL_REQUESTED: "approval.requested",
      APPROVAL_APPROVED: "approval.approved",
      APPROVAL_REJECTED: "approval.rejected",
      POLICY_MATCHED: "policy.matched",
      AGENT_HALTED: "agent.halted",
      AGENT_RESUMED: "agent.resumed",
      TOKEN_REVOKED: "token.revoked",
    });
    expect(PolicyAction).toEqual({ ALLOW: "allow", WARN: "warn", BLOCK: "block", REQUIRE_APPROVAL: "require_approval" });
    expect(ApprovalStatus).toEqual({ PENDING: "pending", APPROVED: "approved", REJECTED: "rejected", EXPIRED: "expired", CANCELLED: "cancelled" });
    expect(ToolCallStatus).toEqual({ PENDING: "pending", COMPLETED: "completed", BLOCKED: "blocked", AWAITING_APPROVAL: "awaiting_approval", FAILED: "failed", REJECTED: "rejected" });
    expect(RiskSeverity).toEqual({ LOW: "low", MEDIUM: "medium", HIGH: "high", CRITICAL: "critical" });
    expect(ActionType).toEqual({
      PR_CREATE: "pr_create",
      PR_MERGE: "pr_merge",
      PR_UPDATE: "pr_update",
      BRANCH_DELETE: "branch_delete",
      DEPLOY: "deploy",
      SCRIPT_EXECUTE: "script_execute",
      DB_MIGRATE: "db_migrate",
      CONFIG_CHANGE: "config_change",
      SECRET_ACCESS: "secret_access",
      API_WRITE: "api_write",
      UNKNOWN: "unknown",
    });
  });
});

describe("the rest of the seed lifecycle", () => {
  const open = (policies?: PolicySetInput) => {
    const client = new Warden({ agentId: "my-agent", store: ":memory:", ...(policies && { policies }) });
    clients.push(client);
    return client;
  };

  it("startStep/completeStep group tool calls under a step", async () => {
    const client = open();
    const runId = await client.startRun("run-steps");
    expect(runId).toBe("run-steps");
    const analysis = await client.startStep(runId, { phase: "analysis" });
    const tc = await client.trackToolCall(runId, "read_file", { path: "a.ts" }, { stepId: analysis });
    await client.completeToolCall(runId, tc, { lines: 3 });
    await client.completeStep(runId, analysis);
    const fix = await client.startStep(runId, "fix");
    const tc2 = await client.trackToolCall(runId, "write_file", { path: "a.ts" }, { stepId: fix });
    await client.completeToolCall(runId, tc2, { ok: true });
    await client.completeStep(runId, fix);
    await client.completeRun(runId);

    const run = await client.getRun(runId);
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([
      ["analysis", "completed"],
      ["fix", "completed"],
    ]);
    expect(run.steps[0]!.metadata).toEqual({ phase: "analysis" });
    expect(run.toolCalls.map((t) => t.stepId)).toEqual([analysis, fix]);
    expect(run.events.map((e) => e.type)).toEqual([
      "run.started",
      "step.started",
      "tool.called",
      "tool.completed",
      "step.completed",
      "step.started",
      "tool.called",
      "tool.completed",
      "step.completed",
      "run.completed",
    ]);
    await expect(client.completeStep(runId, analysis)).rejects.toBeInstanceOf(InvalidStateError);
  });

  it("failToolCall records the error and failRun records why the run failed", async () => {
    const client = open();
    const runId = await client.startRun();
    const tc = await client.trackToolCall(runId, "read_file", { path: "missing.ts" });
    await client.failToolCall(runId, tc, new Error("ENOENT: missing.ts"));
    await client.failRun(runId, { error: "Error: ENOENT: missing.ts" });

    const run = await client.getRun(runId);
    expect(run.status).toBe("failed");
    expect(run.error).toEqual({ error: "Error: ENOENT: missing.ts" });
    expect(run.endedAt).toBeTypeOf("number");
    expect(run.toolCalls[0]).toMatchObject({ status: "failed", error: { name: "Error", message: "ENOENT: missing.ts" } });
    expect(run.events.map((e) => e.type)).toEqual(["run.started", "tool.called", "tool.completed", "run.failed"]);
    expect(run.events[2]!.data).toMatchObject({ status: "failed" });
  });

  it("completing a blocked call is an InvalidStateError and changes nothing", async () => {
    const client = open(blockProdDeploy);
    const runId = await client.startRun();
    const tc = await client.trackToolCall(runId, "deploy", { environment: "production" });
    const error = await client.completeToolCall(runId, tc, { deployed: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidStateError);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe("invalid_state");
    await expect(client.failToolCall(runId, tc, new Error("x"))).rejects.toMatchObject({ code: "invalid_state" });

    const run = await client.getRun(runId);
    expect(run.toolCalls[0]).toMatchObject({ status: "blocked", output: undefined, blockedReason: "deploys are frozen" });
    expect(run.status).toBe("running");
  });

  it("completing a call that awaits approval is an InvalidStateError", async () => {
    const client = open(approveProdDeploy);
    const runId = await client.startRun();
    const tc = await client.trackToolCall(runId, "deploy", { environment: "production" });
    await expect(client.completeToolCall(runId, tc, {})).rejects.toMatchObject({ code: "invalid_state" });
    expect((await client.getRun(runId)).toolCalls[0]!.status).toBe("awaiting_approval");
  });

  it("an unknown run id is a NotFoundError and loses nothing already recorded", async () => {
    const client = open();
    const runId = await client.startRun();
    const tc = await client.trackToolCall(runId, "read_file", { path: "a.ts" });
    await client.completeToolCall(runId, tc, { lines: 1 });

    for (const attempt of [
      () => client.getRun("run_nope"),
      () => client.trackToolCall("run_nope", "read_file", {}),
      () => client.completeRun("run_nope"),
      () => client.failRun("run_nope", new Error("x")),
      () => client.startStep("run_nope", "s"),
      () => client.completeToolCall(runId, "tc_nope", {}),
    ]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as WardenError).code).toBe("not_found");
    }

    await client.completeRun(runId);
    const run = await client.getRun(runId);
    expect(run.status).toBe("completed");
    expect(run.toolCalls).toHaveLength(1);
    expect(run.toolCalls[0]).toMatchObject({ status: "completed", output: { lines: 1 } });
    expect(client.listRuns()).toHaveLength(1);
    expect(client.ledger.verify()).toMatchObject({ ok: true });
  });

  it("a tool call names the run it belongs to", async () => {
    const client = open();
    const a = await client.startRun();
    const b = await client.startRun();
    const tc = await client.trackToolCall(a, "read_file", {});
    await expect(client.completeToolCall(b, tc, {})).rejects.toMatchObject({ code: "invalid_input" });
    await client.completeToolCall(a, tc, {});
    expect((await client.getRun(a)).toolCalls[0]!.status).toBe("completed");
  });
});

describe("configuration", () => {
  it("Warden.fromEnv reads WARDEN_* variables from the given environment", async () => {
    const client = Warden.fromEnv({}, { WARDEN_AGENT_ID: "env-agent", WARDEN_STORE: ":memory:", WARDEN_ENVIRONMENT: "staging", WARDEN_GROUP: "ops" });
    clients.push(client);
    expect(client.agentId).toBe("env-agent");
    expect(client.environment).toBe("staging");
    expect(client.group).toBe("ops");
    const runId = await client.startRun();
    expect((await client.getRun(runId)).agentId).toBe("env-agent");
  });

  it("Warden.fromEnv loads the policy file the environment names", async () => {
    const client = Warden.fromEnv({}, { WARDEN_AGENT_ID: "env-agent", WARDEN_STORE: ":memory:", WARDEN_POLICY_FILE: new URL("./fixtures/warden.yaml", import.meta.url).pathname });
    clients.push(client);
    expect(client.policies.policies.map((p) => p.id)).toContain("approve-prod-deploy");
    expect(client.check({ tool: "get_secret" }).action).toBe("block");
  });

  it("Warden.fromEnv without WARDEN_AGENT_ID is a ConfigError", () => {
    const error = (() => {
      try {
        Warden.fromEnv({}, { WARDEN_STORE: ":memory:" });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("config_invalid");
    expect((error as Error).message).toContain("WARDEN_AGENT_ID");
  });

  it.each([
    ["agentId", { store: ":memory:" }],
    ["agentId", { agentId: "", store: ":memory:" }],
    ["store", { agentId: "a", store: 42 }],
    ["approvalTimeout", { agentId: "a", store: ":memory:", approvalTimeout: "soon" }],
    ["onApprovalRequest", { agentId: "a", store: ":memory:", onApprovalRequest: "yes" }],
    ["bogus", { agentId: "a", store: ":memory:", bogus: true }],
    ["halt.whenUnknown", { agentId: "a", store: ":memory:", halt: { whenUnknown: "maybe" } }],
  ])("invalid options are a ConfigError naming %s", (field, options) => {
    let error: unknown;
    try {
      clients.push(new Warden(options as never));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).code).toBe("config_invalid");
    expect((error as Error).message).toContain(field);
  });
});
