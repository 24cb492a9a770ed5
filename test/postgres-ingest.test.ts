// Ingest on PostgreSQL writes a batch with a few statements; on SQLite, one event at a time. Both
// must come to the same thing: the same answer (accepted, duplicates, each refusal), the same rows
// (runs, steps, tool calls with their merged decisions, approvals) and the same ledger chain, hash for
// hash, for batches that name one row many times, arrive out of order, repeat ids, mix an agent's
// telemetry with approval requests and outcomes, and touch rows of another agent or organization.
// Two replicas writing the same batch at once (a client resending what it got no answer for) store
// each event once.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WardenEvent } from "agent-warden";
import { PostgresControlPlaneStore, SqliteControlPlaneStore, type ControlPlaneStore, type Principal } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { tempDir } from "./fixtures/proc.js";

const T0 = 1_760_000_000_000;
let clock = 0;
function event(type: string, fields: Partial<WardenEvent> & { id: string }, data: Record<string, unknown> = {}): WardenEvent {
  return { type, ts: T0 + ++clock, org: "default", agentId: "agent-a", runId: null, stepId: null, toolCallId: null, actor: null, data, ...fields } as WardenEvent;
}

/** Batches that exercise every rule of ingest, in the order they are sent. */
function batches(): { key: "agentA" | "agentB" | "admin" | "other"; events: WardenEvent[] }[] {
  clock = 0;
  const one = [
    event("run.started", { id: "e1", runId: "r1" }, { traceId: "t1", metadata: { task: "refund" }, agentContext: { goal: "help" } }),
    event("step.started", { id: "e2", runId: "r1", stepId: "s1" }, { name: "plan", metadata: { n: 1 } }),
    event("tool.called", { id: "e3", runId: "r1", stepId: "s1", toolCallId: "c1" }, { toolName: "read_order", actionType: "read", input: { id: 7 }, decision: "allow" }),
    event("policy.matched", { id: "e4", runId: "r1", toolCallId: "c1" }, { decision: "allow", policyId: "p-read", matches: [{ policyId: "p-read" }] }),
    event("tool.completed", { id: "e5", runId: "r1", toolCallId: "c1" }, { toolName: "read_order", status: "completed", output: { total: 3 }, durationMs: 1.5 }),
    // Blocked, then a completion that contradicts it: refused as a conflict, in the same batch.
    event("tool.called", { id: "e6", runId: "r1", toolCallId: "c2" }, { toolName: "delete_db", actionType: "destructive", decision: "block" }),
    event("tool.blocked", { id: "e7", runId: "r1", toolCallId: "c2" }, { toolName: "delete_db", reason: "no deletes", policyId: "p-del" }),
    event("tool.completed", { id: "e8", runId: "r1", toolCallId: "c2" }, { toolName: "delete_db", status: "completed" }),
    // Out of order: the completion before the call.
    event("tool.completed", { id: "e9", runId: "r1", toolCallId: "c3" }, { toolName: "send_mail", status: "failed", error: { message: "smtp" }, durationMs: 4 }),
    event("tool.called", { id: "e10", runId: "r1", toolCallId: "c3" }, { toolName: "send_mail", actionType: "external", decision: "allow" }),
    // The same id twice in one batch.
    event("risk.detected", { id: "e11", runId: "r1" }, { risk: "pii" }),
    event("risk.detected", { id: "e11", runId: "r1" }, { risk: "pii" }),
    // An approval request in the middle of telemetry, then more telemetry about that call.
    event("tool.called", { id: "e12", runId: "r1", toolCallId: "c4" }, { toolName: "refund", actionType: "write", decision: "require_approval" }),
    event("approval.requested", { id: "e13", runId: "r1", toolCallId: "c4" }, { approvalId: "apr_1", toolName: "refund", payload: { amount: 5 }, expiresAt: T0 + 3_600_000 }),
    event("policy.matched", { id: "e14", runId: "r1", toolCallId: "c4" }, { decision: "require_approval", policyId: "p-refund" }),
    event("approval.rejected", { id: "e15", runId: "r1", toolCallId: "c4" }, { approvalId: "apr_1", status: "cancelled", reason: "gave up" }),
    event("step.completed", { id: "e16", runId: "r1", stepId: "s1" }, { status: "completed" }),
    event("run.failed", { id: "e17", runId: "r1" }, { error: { message: "boom" } }),
    // Reports as someone else: refused.
    event("tool.called", { id: "e18", runId: "r1", toolCallId: "c5", actor: "mallory" }, { toolName: "x" }),
    // A decision only reviewers make.
    event("agent.halted", { id: "e19" }, { reason: "no" }),
  ];
  const two = [
    // Agent B touches agent A's run and call: refused; its own run goes in.
    event("tool.called", { id: "f1", agentId: "agent-b", runId: "r1", toolCallId: "c9" }, { toolName: "steal" }),
    event("tool.completed", { id: "f2", agentId: "agent-b", runId: "r2", toolCallId: "c1" }, { toolName: "read_order" }),
    event("run.completed", { id: "f3", agentId: "agent-b", runId: "r2" }),
    event("run.started", { id: "f4", agentId: "agent-b", runId: "r2" }, { traceId: "t2" }),
    event("step.started", { id: "f5", agentId: "agent-b", runId: "r2", stepId: "s2" }, { name: "go" }),
  ];
  const three = [
    // A resend, overlapping what is stored, with new events after it.
    ...one.slice(14, 18),
    event("tool.called", { id: "g1", runId: "r3", toolCallId: "c6" }, { toolName: "read_order", decision: "allow", actionType: "read" }),
    event("run.started", { id: "g2", runId: "r3" }, { traceId: "t3" }),
    event("tool.completed", { id: "g3", runId: "r3", toolCallId: "c6" }, { toolName: "read_order", status: "completed", output: [1, 2] }),
    event("run.completed", { id: "g4", runId: "r3" }),
  ];
  // An admin key reports for several agents, and for a run another organization holds.
  const four = [
    event("run.started", { id: "h1", agentId: "agent-c", runId: "r4" }),
    event("run.started", { id: "h2", agentId: "agent-d", runId: "r4" }),
    event("tool.called", { id: "h3", agentId: null, runId: "r5", toolCallId: "c7" }, { toolName: "t", kind: "llm", model: "m1" }),
    event("token.revoked", { id: "h4", agentId: null }, { tokenId: "tok_1", reason: "leaked" }),
  ];
  const other = [event("run.started", { id: "o1", agentId: "agent-a", runId: "r6" }), event("step.started", { id: "o2", runId: "r6", stepId: "s6" }, { name: "theirs" })];
  const five = [event("step.started", { id: "h5", agentId: "agent-a", runId: "r6", stepId: "s7" }, { name: "mine" }), event("run.completed", { id: "h6", agentId: "agent-a", runId: "r6" })];
  return [
    { key: "other", events: other },
    { key: "agentA", events: one },
    { key: "agentB", events: two },
    { key: "agentA", events: three },
    { key: "admin", events: four },
    { key: "agentA", events: five },
    { key: "agentA", events: one },
  ];
}

const principals: Record<string, Principal> = {
  agentA: { keyId: "key_a", org: "acme", role: "agent", name: "agent-a", agentId: "agent-a" },
  agentB: { keyId: "key_b", org: "acme", role: "agent", name: "agent-b", agentId: "agent-b" },
  admin: { keyId: "key_admin", org: "acme", role: "admin", name: "root", agentId: undefined },
  other: { keyId: "key_o", org: "globex", role: "agent", name: "agent-a", agentId: "agent-a" },
};

/** Everything ingest wrote that the API shows, for one organization. */
async function snapshot(store: ControlPlaneStore, org: string) {
  const page = { limit: 100, offset: 0 };
  const runs = await store.listRuns(org, {}, page);
  const trees = await Promise.all(runs.items.map((run) => store.getRun(org, run.runId, 5)));
  const ledger: unknown[] = [];
  for await (const entry of store.exportLedger(org, { afterSeq: 0, limit: 10_000 })) ledger.push(entry);
  const report = await store.verifyLedger(org);
  return {
    runs: runs.items,
    trees,
    toolCalls: (await store.listToolCalls(org, {}, page)).items,
    approvals: (await store.listApprovals(org, {}, page)).items,
    agents: await store.listAgents(org),
    revoked: await store.listRevokedTokens(org, { since: 0, limit: 100 }),
    ledger,
    verified: report.ok && { entries: report.entries, head: report.head },
  };
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`ingest on PostgreSQL, in bulk, comes to what SQLite writes event by event${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  const { dir, cleanup } = tempDir("warden-pg-ingest-");
  let cluster: PostgresCluster;

  beforeAll(async () => {
    cluster = await startPostgres();
  }, 120_000);

  afterAll(() => {
    cluster?.stop();
    cleanup();
  });

  it("the same answers, rows and ledger chain, hash for hash", async () => {
    const sqlite = new SqliteControlPlaneStore({ path: join(dir, "control.db") });
    const postgres = new PostgresControlPlaneStore({ url: cluster.createDatabase("warden_bulk") });
    await postgres.ready();
    try {
      const answers: Record<string, unknown[]> = { sqlite: [], postgres: [] };
      for (const { key, events } of batches()) {
        for (const [name, store] of [["sqlite", sqlite], ["postgres", postgres]] as const) {
          const { accepted, duplicates, rejected, changes } = await store.ingest(principals[key]!, events);
          answers[name]!.push({ accepted, duplicates, rejected, durable: changes.messages.filter((m) => m.seq !== undefined).map((m) => [m.type, m.data]) });
        }
      }
      expect(answers.postgres).toEqual(answers.sqlite);
      // The batches exercise what they are meant to.
      const first = answers.sqlite[1] as { accepted: number; duplicates: number; rejected: Array<{ id: string; code: string }> };
      expect(first.rejected.map((r) => [r.id, r.code])).toEqual([
        ["e8", "conflict"],
        ["e18", "insufficient_scope"],
        ["e19", "insufficient_scope"],
      ]);
      expect(first.duplicates).toBe(1);
      expect((answers.sqlite.at(-1) as { accepted: number }).accepted).toBe(0);

      for (const org of ["acme", "globex"]) {
        const [expected, actual] = [await snapshot(sqlite, org), await snapshot(postgres, org)];
        expect(actual).toEqual(expected);
        expect(expected.verified).not.toBe(false);
      }
      const calls = (await snapshot(postgres, "acme")).toolCalls;
      expect(calls.find((c) => c.toolCallId === "c2")).toMatchObject({ status: "blocked", decision: { action: "block", actionType: "destructive" } });
      expect(calls.find((c) => c.toolCallId === "c1")).toMatchObject({ status: "completed", decision: { action: "allow", policyId: "p-read" } });
    } finally {
      await sqlite.close();
      await postgres.close();
    }
  });

  it("two replicas writing the same batches at once store each event once, with one chain", async () => {
    const database = cluster.createDatabase("warden_resend");
    const replicas = [new PostgresControlPlaneStore({ url: database }), new PostgresControlPlaneStore({ url: database })];
    await Promise.all(replicas.map((store) => store.ready()));
    try {
      const agent = principals.agentA!;
      const sent: WardenEvent[][] = [];
      for (let b = 0; b < 20; b++) {
        sent.push(
          Array.from({ length: 40 }, (_, i) => {
            const n = b * 40 + i;
            const run = `run_${Math.floor(n / 4)}`;
            return event(["run.started", "tool.called", "tool.completed", "run.completed"][n % 4]!, { id: `evt_${n}`, runId: run, toolCallId: n % 4 === 1 || n % 4 === 2 ? `tc_${Math.floor(n / 4)}` : null }, { toolName: "read_order", decision: "allow" });
          }),
        );
      }
      // Each batch goes to both replicas at once, as a client that resends to the next URL would.
      const results = await Promise.all(sent.flatMap((events) => replicas.map((store) => store.ingest(agent, events))));
      const accepted = results.reduce((n, r) => n + r.accepted, 0);
      const duplicates = results.reduce((n, r) => n + r.duplicates, 0);
      expect(accepted).toBe(800);
      expect(duplicates).toBe(800);
      const ids: string[] = [];
      for await (const entry of replicas[1]!.exportLedger("acme", { afterSeq: 0, limit: 10_000 })) ids.push(entry.id);
      expect(ids.length).toBe(800);
      expect(new Set(ids).size).toBe(800);
      expect(await replicas[0]!.verifyLedger("acme")).toMatchObject({ ok: true, entries: 800 });
      expect((await replicas[0]!.listRuns("acme", {}, { limit: 1, offset: 0 })).total).toBe(200);
    } finally {
      for (const store of replicas) await store.close();
    }
  });

  it("a replica signs a checkpoint over what another replica appended after checking only the entries since the last one, and never over a forged entry", async () => {
    const database = cluster.createDatabase("warden_checkpoints");
    const errors: string[] = [];
    const onError = (error: unknown) => errors.push(String(error));
    const [a, b] = [new PostgresControlPlaneStore({ url: database, checkpointEvery: 16, checkpointIntervalMs: 3_600_000, onError }), new PostgresControlPlaneStore({ url: database, checkpointEvery: 16, checkpointIntervalMs: 3_600_000, onError })];
    await Promise.all([a.ready(), b.ready()]);
    const pg = (await import("pg")).default;
    const sql = new pg.Client({ connectionString: database });
    await sql.connect();
    try {
      const agent = principals.agentA!;
      const batch = (from: number) => Array.from({ length: 8 }, (_, i) => event("risk.detected", { id: `risk_${from + i}`, runId: "r1" }, { n: from + i }));
      for (let round = 0; round < 4; round++) await (round % 2 === 0 ? a : b).ingest(agent, batch(round * 8));
      expect(errors).toEqual([]);
      const signed = await sql.query<{ seq: string }>("SELECT seq FROM org_checkpoints WHERE org = 'acme' ORDER BY seq");
      // The first append signs at once (no checkpoint yet); then every 16 entries, by whichever replica reaches it.
      expect(signed.rows.map((row) => Number(row.seq))).toEqual([8, 24]);
      expect(await b.verifyLedger("acme")).toMatchObject({ ok: true, entries: 32, checkpoints: 2 });

      // An entry after the newest checkpoint rewritten behind the replicas' backs: the next checkpoint is refused.
      await sql.query("UPDATE org_ledger SET data = $1 WHERE org = 'acme' AND seq = 30", [JSON.stringify({ n: 999 })]);
      await b.ingest(agent, batch(32));
      expect(errors.join("\n")).toMatch(/checkpoint of organization "acme" not signed: entry 30 does not match its hash/);
      const after = await sql.query<{ seq: string }>("SELECT MAX(seq) AS seq FROM org_checkpoints WHERE org = 'acme'");
      expect(Number(after.rows[0]!.seq)).toBe(24);
      expect(await a.verifyLedger("acme")).toMatchObject({ ok: false, firstBadSeq: 30 });
    } finally {
      await sql.end();
      await a.close();
      await b.close();
    }
  });
});
