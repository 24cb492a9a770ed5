// Ingest on PostgreSQL writes a batch with a few statements; the reference (ingest.ts on SQLite)
// one event at a time. Both must come to the same thing: the same answer (accepted, duplicates, each refusal), the same rows
// (runs, steps, tool calls with their merged decisions, approvals) and the same ledger chain, hash for
// hash, for batches that name one row many times, arrive out of order, repeat ids, mix an agent's
// telemetry with approval requests and outcomes, and touch rows of another agent or organization.
// Batches that wait for a transaction are written together and come to the same; more waiting than
// the store holds is a 503. Two replicas writing the same batch at once (a client resending what it got
// no answer for) store each event once, and a control plane killed mid-ingest loses no answered batch.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WardenEvent } from "agent-warden";
import { PostgresControlPlaneStore, SqliteControlPlaneStore } from "agent-warden/server";
import { batches, event, eventByEvent, expectKillMidIngestLosesNothing, ingestInto, principals, randomBatches, snapshot, type IngestAnswer } from "./fixtures/ingest-batches.js";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { tempDir } from "./fixtures/proc.js";

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
    // The reference writes through the SQLite store's connection, event by event.
    const sqlite = new SqliteControlPlaneStore({ path: join(dir, "control.db") });
    const reference = eventByEvent(sqlite, join(dir, "control.db"));
    const postgres = new PostgresControlPlaneStore({ url: cluster.createDatabase("warden_bulk") });
    await postgres.ready();
    try {
      const answers: Record<string, unknown[]> = { sqlite: [], postgres: [] };
      for (const { key, events } of batches()) {
        answers.sqlite!.push(reference(principals[key]!, events));
        answers.postgres!.push(await ingestInto(postgres, principals[key]!, events));
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

  it("the same for seeded random batches that name a few rows many times, repeat ids and cross agents and organizations", async () => {
    for (const seed of [1, 2, 3]) {
      const path = join(dir, `random-${seed}.db`);
      const sqlite = new SqliteControlPlaneStore({ path });
      const reference = eventByEvent(sqlite, path);
      const postgres = new PostgresControlPlaneStore({ url: cluster.createDatabase(`warden_random_${seed}`) });
      try {
        const answers: { sqlite: IngestAnswer[]; postgres: IngestAnswer[] } = { sqlite: [], postgres: [] };
        for (const { key, events } of randomBatches(seed, 30, 40)) {
          answers.sqlite.push(reference(principals[key], events));
          answers.postgres.push(await ingestInto(postgres, principals[key], events));
        }
        expect(answers.postgres).toEqual(answers.sqlite);
        for (const org of ["acme", "globex"]) {
          const [expected, actual] = [await snapshot(sqlite, org), await snapshot(postgres, org)];
          expect(actual).toEqual(expected);
          expect(expected.verified).not.toBe(false);
        }
        // Every kind of outcome occurs.
        expect(answers.sqlite.reduce((n, a) => n + a.accepted, 0)).toBeGreaterThan(300);
        expect(answers.sqlite.reduce((n, a) => n + a.duplicates, 0)).toBeGreaterThan(20);
        expect(new Set(answers.sqlite.flatMap((a) => a.rejected.map((r) => r.code)))).toEqual(new Set(["insufficient_scope", "conflict"]));
      } finally {
        await sqlite.close();
        await postgres.close();
      }
    }
  }, 120_000);

  it("batches that wait for a transaction go together, and come to what each alone writes: answers, rows and ledger hashes", async () => {
    const sent = randomBatches(4, 30, 40).filter(({ key }) => key !== "other");
    const path = join(dir, "grouped.db");
    const sqlite = new SqliteControlPlaneStore({ path });
    const reference = eventByEvent(sqlite, path);
    const database = cluster.createDatabase("warden_grouped");
    const postgres = new PostgresControlPlaneStore({ url: database });
    const pg = (await import("pg")).default;
    const holder = new pg.Client({ connectionString: database });
    try {
      // Both ingest transactions are held on another organization's ledger head, so every batch sent meanwhile waits, and the next transaction takes them all.
      const plug = { keyId: "key_p", org: "plug", role: "agent", name: "plug", agentId: "agent-p" } as const;
      const plugEvent = (id: string) => event("risk.detected", { id, agentId: "agent-p" }, {});
      await postgres.ingest(plug, [plugEvent("p0")]);
      await holder.connect();
      await holder.query("BEGIN");
      await holder.query("SELECT * FROM org_ledger_heads WHERE org = 'plug' FOR UPDATE");
      const plugs = [postgres.ingest(plug, [plugEvent("p1")]), postgres.ingest(plug, [plugEvent("p2")])];
      const grouped = sent.map(({ key, events }) => ingestInto(postgres, principals[key], events));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await holder.query("COMMIT");
      await Promise.all(plugs);
      const answers = await Promise.all(grouped);
      const expected = sent.map(({ key, events }) => reference(principals[key], events));
      const answerOf = ({ accepted, duplicates, rejected }: IngestAnswer) => ({ accepted, duplicates, rejected });
      expect(answers.map(answerOf)).toEqual(expected.map(answerOf));
      // The stream's messages of a group come with its first answer: all of them here, one transaction wrote every batch.
      expect(answers.flatMap((a) => a.durable)).toEqual(expected.flatMap((a) => a.durable));
      expect(expected.slice(1).some((a) => a.durable.length > 0)).toBe(true);
      expect(answers.slice(1).every((a) => a.durable.length === 0)).toBe(true);
      const [want, got] = [await snapshot(sqlite, "acme"), await snapshot(postgres, "acme")];
      expect(got).toEqual(want);
      expect(want.verified).not.toBe(false);
      expect(expected.reduce((n, a) => n + a.accepted, 0)).toBeGreaterThan(200);
    } finally {
      await holder.end().catch(() => {});
      await sqlite.close();
      await postgres.close();
    }
  }, 120_000);

  it("more batches waiting than it may hold is a 503 the client retries, and the rest is written", async () => {
    const postgres = new PostgresControlPlaneStore({ url: cluster.createDatabase("warden_behind") });
    try {
      const agent = principals.agentA!;
      const sent = Array.from({ length: 90 }, (_, b) => [event("risk.detected", { id: `behind_${b}`, runId: "r1" }, { b })]);
      const outcomes = await Promise.allSettled(sent.map((events) => postgres.ingest(agent, events)));
      const refused = outcomes.flatMap((outcome, b) => (outcome.status === "rejected" ? [b] : []));
      expect(refused.length).toBeGreaterThan(0);
      for (const b of refused) expect((outcomes[b] as PromiseRejectedResult).reason).toMatchObject({ status: 503, headers: { "Retry-After": "1" } });
      for (const b of refused) expect(await postgres.ingest(agent, sent[b]!)).toMatchObject({ accepted: 1 });
      expect(await postgres.verifyLedger("acme")).toMatchObject({ ok: true, entries: 90 });
    } finally {
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

  it("a control plane killed (kill -9) mid-ingest: every batch it answered is stored, once, and the chain verifies", async () => {
    const runs = (b: number): WardenEvent[] =>
      Array.from({ length: 100 }, (_, i) => {
        const n = Math.floor(i / 4);
        const [runId, toolCallId] = [`run_${b}_${n}`, `tc_${b}_${n}`];
        return event(["run.started", "tool.called", "tool.completed", "run.completed"][i % 4]!, { id: `e_${b}_${i}`, agentId: "agent-0", runId, toolCallId: i % 4 === 1 || i % 4 === 2 ? toolCallId : null }, { toolName: "read_order", input: { n } });
      });
    const database = cluster.createDatabase("warden_killed");
    await expectKillMidIngestLosesNothing({ database }, Array.from({ length: 40 }, (_, b) => runs(b)), () => new PostgresControlPlaneStore({ url: database }));
  }, 120_000);

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
