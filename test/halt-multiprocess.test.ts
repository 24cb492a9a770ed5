// Several agent processes on one store, each in the middle of a long tool call; `warden halt` from
// the CLI (yet another process) stops the ones it targets, and nothing any of them recorded is lost.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expandLedgerEntry, RunStatus, Warden, type HaltRecord } from "agent-warden";
import { CliSession, startAgent, tempDir, type AgentProcess, type CliResult } from "./fixtures/proc.js";

const temp = tempDir("warden-halt-");
const store = join(temp.dir, "warden.db");
const GROUPS: Record<string, string> = { w1: "billing", w2: "billing", w3: "support", w4: "support" };
const workers = new Map<string, AgentProcess>();
/** The round each worker is working on (its tool call in flight). */
const round: Record<string, number> = {};
let cliLedgerEntries = 0;
/** The `warden` CLI: one process apart from the agents, running each command as the binary would. */
let session: CliSession;

const w = (id: string) => workers.get(id)!;

async function cli(args: string[]): Promise<CliResult> {
  const result = await session.run(store, args);
  expect(result.code, `warden ${args.join(" ")}\n${result.stderr}`).toBe(0);
  return result;
}

/** `warden halt …`; each halt is one ledger entry. */
async function halt(args: string[]): Promise<CliResult> {
  const result = await cli(["halt", ...args]);
  cliLedgerEntries++;
  return result;
}

async function resume(args: string[]): Promise<CliResult> {
  const result = await cli(["resume", ...args]);
  if (!result.stdout.startsWith("nothing")) cliLedgerEntries++;
  return result;
}

/** Waits until the worker is stopped mid-call, then refused its next call, for a halt of `scope`. */
async function expectStopped(id: string, scope: string, reason: string): Promise<void> {
  const worker = w(id);
  const aborted = await worker.expect("tool-aborted", { round: round[id] });
  expect(aborted).toMatchObject({ name: "HaltedError", code: "halted", scope });
  expect(aborted.message).toContain(reason);
  const refused = await worker.expect("next-refused", { round: round[id] });
  expect(refused).toMatchObject({ name: "HaltedError", code: "halted" });
  expect(await worker.expect("run-ended", { round: round[id] })).toMatchObject({ status: "failed", code: "halted" });
}

/** Waits until the worker has started its next round's tool call. */
async function expectWorking(id: string): Promise<void> {
  round[id]!++;
  await w(id).expect("tool-started", { round: round[id] });
}

beforeAll(async () => {
  new Warden({ agentId: "setup", store }).close();
  session = new CliSession();
  for (const [id, group] of Object.entries(GROUPS)) workers.set(id, startAgent({ mode: "worker", store, agentId: id, group }));
  for (const id of workers.keys()) {
    round[id] = 0;
    await w(id).expect("ready");
  }
  await Promise.all([...workers.keys()].map(expectWorking));
});

afterAll(async () => {
  for (const worker of workers.values()) worker.kill();
  await session?.close();
  temp.cleanup();
});

describe("halt across processes", () => {
  it("an agent-scoped halt stops only that agent", async () => {
    const result = await halt(["--agent", "w1", "--reason", "runaway refunds"]);
    expect(result.stdout).toMatch(/^HALTED agent w1: runaway refunds \(halt_\w+\)/);
    await expectStopped("w1", "agent w1", "runaway refunds");

    const status = await cli(["status"]);
    expect(status.stdout).toContain("HALTED agent w1: runaway refunds (since ");
    expect(status.stdout).toContain("by tester");
  });

  it("a group-scoped halt stops every agent of the group", async () => {
    await halt(["--group", "support", "--reason", "bad deploy"]);
    await Promise.all(["w3", "w4"].map((id) => expectStopped(id, "group support", "bad deploy")));

    const status = JSON.parse((await cli(["--json", "status"])).stdout) as { halts: HaltRecord[]; pendingApprovals: number; ledger: { seq: number } };
    expect(status.halts.map((h) => [h.scope, h.target, h.reason, h.actor])).toEqual([
      ["agent", "w1", "runaway refunds", "tester"],
      ["group", "support", "bad deploy", "tester"],
    ]);
    expect(status.pendingApprovals).toBe(0);
  });

  it("resume lifts exactly the halt named; the agents go back to work", async () => {
    const nothing = await resume(["--agent", "w3"]);
    expect(nothing.stdout.trim()).toBe("nothing to resume for that target");

    expect((await resume(["--agent", "w1", "--reason", "fixed"])).stdout.trim()).toBe("resumed agent w1");
    await expectWorking("w1");
    expect((await resume(["--group", "support"])).stdout.trim()).toBe("resumed group support");
    await Promise.all(["w3", "w4"].map(expectWorking));

    const status = await cli(["status"]);
    expect(status.stdout).toContain("running: no halts in force");
  });

  it("an organization-wide `warden halt` stops every agent process mid-call", async () => {
    await halt(["--reason", "stop everything"]);
    await Promise.all([...workers.keys()].map((id) => expectStopped(id, "organization", "stop everything")));
    const status = await cli(["status"]);
    expect(status.stdout).toContain("HALTED organization: stop everything");

    await resume([]);
    await Promise.all([...workers.keys()].map(expectWorking));
  });

  it("nothing recorded is lost: every run and tool call is in the store with a final status, and the ledger verifies", async () => {
    for (const worker of workers.values()) worker.send({ cmd: "exit" });
    const closed = new Map<string, Awaited<ReturnType<AgentProcess["expect"]>>>();
    for (const [id, worker] of workers) {
      await worker.expect("tool-finished", { round: round[id] });
      closed.set(id, await worker.expect("closed"));
      expect((await worker.exited).code).toBe(0);
    }

    const reader = new Warden({ agentId: "auditor", store });
    try {
      let events = 0;
      for (const [id, message] of closed) {
        events += message.events as number;
        const runs = message.runs as string[];
        expect(runs).toHaveLength(round[id]!);
        const calls = runs.flatMap((runId) => {
          const run = reader.runRecord(runId);
          expect(run.agentId).toBe(id);
          expect(["completed", "failed"]).toContain(run.status);
          return run.toolCalls;
        });
        expect(calls.map((c) => c.toolCallId).sort()).toEqual((message.toolCalls as Array<{ toolCallId: string }>).map((c) => c.toolCallId).sort());
        const halted = calls.filter((c) => c.toolName === "long_job" && c.status === "failed");
        const refused = calls.filter((c) => c.toolName === "next_job");
        const finished = calls.filter((c) => c.toolName === "long_job" && c.status === "completed");
        // w2 was stopped by the organization halt only; the others also by their agent or group halt.
        const stops = id === "w2" ? 1 : 2;
        expect(halted).toHaveLength(stops);
        for (const call of halted) expect(call.error).toMatchObject({ name: "HaltedError", code: "halted" });
        expect(refused).toHaveLength(stops);
        for (const call of refused) {
          expect(call.status).toBe("blocked");
          expect(call.blockedReason).toMatch(/^halted \(/);
          expect(call.decision).toMatchObject({ action: "block", halted: true });
        }
        expect(finished).toHaveLength(1);
        expect(calls).toHaveLength(halted.length + refused.length + finished.length);
      }

      const verification = reader.ledger.verify();
      // Each writer also records the policy set in force before its first entry.
      const policySets = reader.ledger.entries().filter((e) => e.type === "policy.set").length;
      expect(verification).toMatchObject({ ok: true });
      // A call that ended within its commit window is one entry for its two events.
      expect(reader.ledger.entries().flatMap(expandLedgerEntry).length).toBe(events + cliLedgerEntries + policySets);
      const haltEntries = reader.ledger.entries().filter((e) => e.type === "agent.halted" || e.type === "agent.resumed");
      expect(haltEntries.map((e) => [e.type, (e.data as { reason?: string }).reason, e.actor])).toEqual([
        ["agent.halted", "runaway refunds", "tester"],
        ["agent.halted", "bad deploy", "tester"],
        ["agent.resumed", "fixed", "tester"],
        ["agent.resumed", undefined, "tester"],
        ["agent.halted", "stop everything", "tester"],
        ["agent.resumed", undefined, "tester"],
      ]);
      expect(reader.activeHalts).toEqual([]);
      expect(reader.listRuns({ status: RunStatus.RUNNING, limit: 100 })).toEqual([]);
    } finally {
      reader.close();
    }
  });
});
