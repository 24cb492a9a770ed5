import { randomBytes } from "node:crypto";
import { readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { expandLedgerEntry, openLedger, StoreError, verifyEvidence, Warden, WardenError } from "agent-warden";
import { runCli, startAgent, tempDir } from "./fixtures/proc.js";
import { ledgerCallMatch, ledgerRunMatch, SCHEMA_VERSION } from "../src/store/schema.js";

const temp = tempDir("warden-store-");
afterAll(() => temp.cleanup());
let stores = 0;
const freshStore = () => join(temp.dir, `store-${++stores}`, "warden.db");

/** Policy set entries: each client writes the set in force before its first entry, unless the store's newest already is it. */
const policySets = (warden: Warden): number => warden.ledger.entries().filter((entry) => entry.type === "policy.set").length;
/** The events the ledger records: a call that ended within its commit window is one entry for two events. */
const recordedEvents = (warden: Warden): number => warden.ledger.entries().flatMap(expandLedgerEntry).length;

function count(file: string, table: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Records `n` runs of one tool call each through the seed lifecycle, without yielding to the event loop. */
async function recordRuns(warden: Warden, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const runId = await warden.startRun(undefined, { tag, i });
    const toolCallId = await warden.trackToolCall(runId, "read_record", { tag, i });
    await warden.completeToolCall(runId, toolCallId, { ok: i });
    await warden.completeRun(runId);
    ids.push(runId);
  }
  return ids;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("group commit", () => {
  it("queues writes, commits them on flush(), on any read and on the next tick, and keeps them across reopening", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "writer", store: file });
    let events = 0;
    warden.on("*", () => events++);
    warden.flush();

    // Awaiting the seed methods only runs microtasks, so nothing has been committed yet.
    const first = await recordRuns(warden, 300, "first");
    expect(count(file, "runs")).toBe(0);
    expect(count(file, "ledger")).toBe(0);
    warden.flush();
    expect(count(file, "runs")).toBe(300);
    // Three entries a run (the call, ended within its commit window, is one), and the policy set in force once, before the first.
    expect(count(file, "ledger")).toBe(901);

    // A read commits what is queued first, so it sees this process's own writes.
    const second = await recordRuns(warden, 200, "second");
    expect(count(file, "runs")).toBe(300);
    expect(warden.listRuns({ limit: 1000 })).toHaveLength(500);
    expect(count(file, "runs")).toBe(500);

    // Left alone, the queue is handed to the writer thread when the commit window closes, and commits there.
    const third = await recordRuns(warden, 100, "third");
    expect(count(file, "runs")).toBe(500);
    for (let waited = 0; count(file, "runs") < 600 && waited < 10_000; waited += 5) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(count(file, "runs")).toBe(600);
    warden.close();

    const reopened = new Warden({ agentId: "reader", store: file });
    try {
      const runs = reopened.listRuns({ limit: 1000 });
      expect(new Set(runs.map((r) => r.runId))).toEqual(new Set([...first, ...second, ...third]));
      expect(runs.every((r) => r.status === "completed")).toBe(true);
      const record = reopened.runRecord(second[17]!);
      expect(record.metadata).toEqual({ tag: "second", i: 17 });
      expect(record.toolCalls).toMatchObject([{ toolName: "read_record", status: "completed", output: { ok: 17 } }]);
      expect(record.events.map((e) => e.type)).toEqual(["run.started", "tool.called", "tool.completed", "run.completed"]);
      expect(reopened.ledger.verify()).toMatchObject({ ok: true, entries: 1801 });
      expect(recordedEvents(reopened)).toBe(events + policySets(reopened));
      expect(events).toBe(2400);
    } finally {
      reopened.close();
    }
  });

  it("commits the writes still queued when the process exits without close()", async () => {
    const natural = freshStore();
    const exiting = freshStore();
    const agents = [startAgent({ mode: "record", store: natural, agentId: "natural-exit", exit: "natural" }), startAgent({ mode: "record", store: exiting, agentId: "process-exit", exit: "process.exit" })];
    try {
      const recorded = await Promise.all(agents.map((a) => a.expect("recorded")));
      const exits = await Promise.all(agents.map((a) => a.exited));
      expect(exits.map((e) => e.code)).toEqual([0, 0]);
      for (const [i, file] of [natural, exiting].entries()) {
        const message = recorded[i]!;
        // The child saw nothing committed before it ended...
        expect(message.committedRuns).toBe(0);
        // ...and everything is there after.
        const warden = new Warden({ agentId: "reader", store: file });
        try {
          const run = warden.runRecord(message.runId as string);
          expect(run.status).toBe("completed");
          expect(run.toolCalls).toMatchObject([{ toolCallId: message.toolCallId, status: "completed", output: { total: 100 } }]);
          expect(warden.ledger.verify()).toMatchObject({ ok: true });
          expect(recordedEvents(warden)).toBe(4 + policySets(warden));
        } finally {
          warden.close();
        }
      }
    } finally {
      for (const a of agents) a.kill();
    }
  });
});

describe("store files that cannot be used", () => {
  it("a file of random bytes is a StoreError and is left as it was", () => {
    const file = join(temp.dir, "random.db");
    const bytes = randomBytes(16_384);
    bytes.write("not sqlite", 0);
    writeFileSync(file, bytes);
    const error = catchError(() => new Warden({ agentId: "a", store: file }));
    expect(error).toBeInstanceOf(StoreError);
    expect(WardenError.isInstance(error) && error.code).toBe("store_error");
    expect((error as Error).message).toContain(file);
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it("a truncated store is a StoreError", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "a", store: file });
    await recordRuns(warden, 400, "bulk");
    warden.close();
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const error = catchError(() => new Warden({ agentId: "a", store: file }));
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: "store_error" });
  });

  it("a store of schema 4 migrates to 5 (and on): the framework-id index holds only calls that have one, and calls are still found by it", async () => {
    const file = freshStore();
    const first = new Warden({ agentId: "a", store: file });
    const handle = first.beginToolCall({ tool: "read_order", args: { id: 1 }, externalId: "call_ext_1" });
    handle.complete({ ok: true });
    await first.run({}, async (run) => run.tool("read_order", { id: 2 }, () => 2));
    first.close();
    // As schema 4 left it: an index over every call's framework id, null or not.
    const db = new DatabaseSync(file);
    db.exec("DROP INDEX tool_calls_by_external_id; CREATE INDEX tool_calls_by_external_id ON tool_calls (external_id); PRAGMA user_version = 4;");
    db.close();
    const again = new Warden({ agentId: "a", store: file });
    try {
      expect(again.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      again.close();
    }
    const check = new DatabaseSync(file, { readOnly: true });
    try {
      // On to the newest schema: 6's changes are there.
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
      expect((check.prepare("SELECT sql FROM sqlite_schema WHERE name = 'tool_calls_by_external_id'").get() as { sql: string }).sql).toMatch(/WHERE external_id IS NOT NULL/);
      // One entry: the call that has a framework id, not the one without.
      expect(check.prepare("SELECT count(*) AS n FROM tool_calls INDEXED BY tool_calls_by_external_id WHERE external_id IS NOT NULL").get()).toEqual({ n: 1 });
      // The call without one ended within its commit window: its folded ledger entry is its record, not a row.
      expect(check.prepare("SELECT count(*) AS n FROM tool_calls").get()).toEqual({ n: 1 });
      // The lookup by either id (how a framework's hook finds its call) still goes through the index.
      const lookup = "SELECT id FROM tool_calls WHERE (id = ?1 OR external_id = ?1) AND org = 'default' AND kind = 'tool' ORDER BY started_at DESC, rowid DESC LIMIT 1";
      expect(check.prepare(lookup).get("call_ext_1")).toEqual({ id: handle.toolCallId });
      expect(JSON.stringify(check.prepare(`EXPLAIN QUERY PLAN ${lookup}`).all("call_ext_1"))).toMatch(/USING INDEX tool_calls_by_external_id/);
    } finally {
      check.close();
    }
  });

  it("a store of schema 5 migrates to 6: hashes become 32 bytes, the stored prev_hash goes, and the chain, its checkpoints and bundles still verify", async () => {
    const file = freshStore();
    const first = new Warden({ agentId: "a", store: file, ledger: { checkpointEvery: 4 } });
    for (let i = 0; i < 5; i++) await first.run({ task: `refund ${i}` }, async (run) => run.tool("refund", { order: i }, () => ({ ok: i })));
    first.close();
    // As schema 5 left it: each row with the hash before it (prev_hash) and its own, both as hex text.
    const db = new DatabaseSync(file);
    const rows = db.prepare("SELECT * FROM ledger ORDER BY seq").all() as Array<Record<string, string | number | null> & { hash: Uint8Array }>;
    db.exec(`DROP TABLE ledger; CREATE TABLE ledger (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL, org TEXT NOT NULL,
      agent_id TEXT, run_id TEXT, step_id TEXT, tool_call_id TEXT, actor TEXT, data TEXT NOT NULL,
      prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    ); CREATE INDEX ledger_by_run ON ledger (run_id, seq); PRAGMA user_version = 5;`);
    const insert = db.prepare("INSERT INTO ledger (seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    let prev = "0".repeat(64);
    for (const r of rows) {
      const hash = Buffer.from(r.hash).toString("hex");
      insert.run(r.seq, r.id, r.ts, r.type, r.org, r.agent_id, r.run_id, r.step_id, r.tool_call_id, r.actor, r.data, prev, hash);
      prev = hash;
    }
    db.close();
    const hexes = rows.map((r) => Buffer.from(r.hash).toString("hex"));

    // An auditor reads a schema 5 file as it is (read-only: no migration), and it verifies.
    const before = openLedger(file, { checkpointEvery: 4 });
    let toolCallId: string;
    try {
      expect(before.ledger.verify({ full: true })).toMatchObject({ ok: true, entries: rows.length, head: { seq: rows.length, hash: hexes.at(-1) } });
      expect(before.ledger.entries().map((e) => e.hash)).toEqual(hexes);
      toolCallId = before.ledger.entries().find((e) => e.toolCallId !== null)!.toolCallId!;
      expect(await verifyEvidence(before.ledger.evidence(toolCallId))).toMatchObject({ ok: true });
    } finally {
      before.close();
    }

    const again = new Warden({ agentId: "a", store: file, ledger: { checkpointEvery: 4 } });
    try {
      expect(again.ledger.verify({ full: true })).toMatchObject({ ok: true, entries: rows.length });
      // Appending after the migration extends the same chain, and the client signs over it again.
      await again.run({ task: "after" }, async (run) => run.tool("refund", { order: 9 }, () => ({ ok: 9 })));
      again.flush();
      const entries = again.ledger.entries();
      expect(entries.slice(0, rows.length).map((e) => e.hash)).toEqual(hexes);
      expect(entries.map((e) => e.prevHash)).toEqual(entries.map((_, i) => (i === 0 ? "0".repeat(64) : entries[i - 1]!.hash)));
    } finally {
      again.close();
    }
    const check = new DatabaseSync(file, { readOnly: true });
    try {
      // On to the newest schema: 6's changes are there.
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
      const columns = (check.prepare("PRAGMA table_info(ledger)").all() as Array<{ name: string; type: string }>).map((c) => `${c.name} ${c.type}`);
      expect(columns).not.toContain("prev_hash TEXT");
      expect(columns).toContain("hash BLOB");
      expect(check.prepare("SELECT count(*) AS n FROM ledger WHERE typeof(hash) = 'blob' AND length(hash) = 32").get()).toEqual({ n: rows.length + 3 });
      expect(JSON.stringify(check.prepare(`EXPLAIN QUERY PLAN SELECT * FROM ledger WHERE ${ledgerRunMatch("")} ORDER BY seq`).all("r"))).toMatch(/USING INDEX ledger_by_run_tail/);
    } finally {
      check.close();
    }
    const after = openLedger(file, { checkpointEvery: 4 });
    try {
      expect(after.ledger.verify({ full: true })).toMatchObject({ ok: true, entries: rows.length + 3, coverage: { uncovered: 0 } });
      expect(await verifyEvidence(after.ledger.evidence(toolCallId))).toMatchObject({ ok: true });
    } finally {
      after.close();
    }
  });

  it("a store of schema 6 verifies read-only as it is, then migrates to 7 (the run index keys on the end of the run id) with every reader returning what it did", async () => {
    const file = freshStore();
    const policies = { version: 1 as const, default: "allow" as const, policies: [{ id: "no-delete", when: { tool: "db.delete" }, action: "block" as const, reason: "deletes are off" }] };
    const first = new Warden({ agentId: "a", store: file, policies, ledger: { checkpointEvery: 4 } });
    // Inputs with keys out of order (the ledger holds them sorted), an output, an error, a refusal.
    const given = { order: 7, amount: { value: 5, currency: "EUR" }, note: "z before a" };
    let runId = "";
    await first.run({ task: "mixed" }, async (run) => {
      runId = run.runId;
      await run.tool("refund", given, () => ({ ok: true, id: 7 }));
      await expect(run.tool("lookup", { b: 2, a: 1 }, () => Promise.reject(new Error("upstream down")))).rejects.toThrow("upstream down");
      await expect(run.tool("db.delete", { table: "orders" }, () => "never")).rejects.toThrow();
    });
    await first.run({ task: "other" }, async (run) => run.tool("refund", { order: 8 }, () => ({ ok: true, id: 8 })));
    const callsOf = (warden: Warden) => warden.runRecord(runId).toolCalls.map((c) => ({ id: c.toolCallId, tool: c.toolName, status: c.status, input: JSON.stringify(c.input), output: JSON.stringify(c.output), error: JSON.stringify(c.error) }));
    const calls = callsOf(first);
    const events = first.runRecord(runId).events;
    const entries = first.ledger.entries({ runId });
    first.close();
    // Inputs as given (a call recorded by its folded entry alone has them with keys sorted: same members).
    expect(calls.map(({ tool, status, input }) => [tool, status, JSON.parse(input)])).toEqual([
      ["refund", "completed", given],
      ["lookup", "failed", { b: 2, a: 1 }],
      ["db.delete", "blocked", { table: "orders" }],
    ]);
    expect(JSON.parse(calls[0]!.output)).toEqual({ ok: true, id: 7 });
    expect(calls[1]!.error).toMatch(/upstream down/);
    expect(entries.length).toBeGreaterThanOrEqual(5);

    // As schema 6 left it: the run index over the whole run id.
    const db = new DatabaseSync(file);
    db.exec("DROP INDEX ledger_by_run_tail; CREATE INDEX ledger_by_run ON ledger (run_id, seq); PRAGMA user_version = 6;");
    db.close();
    const before = openLedger(file, { checkpointEvery: 4 });
    try {
      expect(before.ledger.verify({ full: true })).toMatchObject({ ok: true, coverage: { uncovered: 0 } });
      expect(before.ledger.entries({ runId })).toEqual(entries);
      expect(await verifyEvidence(before.ledger.evidence(runId))).toMatchObject({ ok: true });
    } finally {
      before.close();
    }
    const check6 = new DatabaseSync(file, { readOnly: true });
    expect(check6.prepare("PRAGMA user_version").get()).toEqual({ user_version: 6 });
    // Read as it is, a run's entries still come through its index, not a scan.
    expect(JSON.stringify(check6.prepare(`EXPLAIN QUERY PLAN SELECT * FROM ledger WHERE ${ledgerRunMatch("")} ORDER BY seq`).all(runId))).toMatch(/USING INDEX ledger_by_run\b/);
    check6.close();

    const again = new Warden({ agentId: "a", store: file, policies, ledger: { checkpointEvery: 4 } });
    try {
      expect(callsOf(again)).toEqual(calls);
      expect(again.runRecord(runId).events).toEqual(events);
      expect(again.ledger.entries({ runId })).toEqual(entries);
      expect(again.ledger.verify({ full: true })).toMatchObject({ ok: true });
    } finally {
      again.close();
    }
    const check = new DatabaseSync(file, { readOnly: true });
    try {
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
      const indexes = (check.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'ledger'").all() as Array<{ name: string }>).map((i) => i.name);
      expect(indexes).toContain("ledger_by_run_tail");
      expect(indexes).not.toContain("ledger_by_run");
      expect(JSON.stringify(check.prepare(`EXPLAIN QUERY PLAN SELECT * FROM ledger WHERE ${ledgerRunMatch("")} AND seq > ?2 ORDER BY seq`).all(runId, 0))).toMatch(/USING INDEX ledger_by_run_tail/);
    } finally {
      check.close();
    }
  });

  it("a store of schema 7 verifies read-only as it is, then migrates to 8 (a call's entries indexed by the clock part of its id): its calls read as before, and new fast calls write no row", async () => {
    const file = freshStore();
    const first = new Warden({ agentId: "a", store: file, ledger: { checkpointEvery: 4 } });
    // As schema 7 wrote every call: each with its row (a commit between each call's start and its end).
    const { runId } = first.beginRun({ task: "before" });
    const ids: string[] = [];
    for (const [tool, args] of [["refund", { order: 7, amount: 5 }], ["lookup", { b: 2, a: 1 }]] as const) {
      const handle = first.beginToolCall({ tool, args, runId });
      first.flush();
      handle.complete({ ok: tool });
      ids.push(handle.toolCallId);
    }
    first.completeRun(runId);
    const calls = first.runRecord(runId).toolCalls;
    first.close();
    expect(count(file, "tool_calls")).toBe(2);
    const db = new DatabaseSync(file);
    db.exec("DROP INDEX ledger_by_call_time; PRAGMA user_version = 7;");
    db.close();

    const before = openLedger(file, { checkpointEvery: 4 });
    try {
      expect(before.ledger.verify({ full: true })).toMatchObject({ ok: true, coverage: { uncovered: 0 } });
      expect(await verifyEvidence(before.ledger.evidence(ids[1]!))).toMatchObject({ ok: true });
    } finally {
      before.close();
    }

    const again = new Warden({ agentId: "a", store: file, ledger: { checkpointEvery: 4 } });
    let later = "";
    try {
      expect(again.runRecord(runId).toolCalls).toEqual(calls);
      expect(again.findToolCall(ids[0]!)).toBeUndefined();
      expect(() => again.resumeToolCall(ids[0]!)).toThrow(/is completed/);
      later = await again.run({ task: "after" }, async (run) => {
        await run.tool("refund", { order: 8, amount: 6 }, () => ({ ok: 8 }));
        return run.runId;
      });
      expect(again.runRecord(later).toolCalls).toMatchObject([{ toolName: "refund", status: "completed", input: { order: 8, amount: 6 }, output: { ok: 8 } }]);
      expect(again.ledger.verify({ full: true })).toMatchObject({ ok: true });
    } finally {
      again.close();
    }
    const check = new DatabaseSync(file, { readOnly: true });
    try {
      expect(check.prepare("PRAGMA user_version").get()).toEqual({ user_version: SCHEMA_VERSION });
      // The rows schema 7 wrote stay; the fast call made after the migration has none.
      expect(check.prepare("SELECT count(*) AS n FROM tool_calls").get()).toEqual({ n: 2 });
      expect(JSON.stringify(check.prepare(`EXPLAIN QUERY PLAN SELECT * FROM ledger WHERE ${ledgerCallMatch("")} ORDER BY seq`).all(ids[0]!))).toMatch(/USING INDEX ledger_by_call_time/);
    } finally {
      check.close();
    }
    const after = openLedger(file, { checkpointEvery: 4 });
    try {
      expect(after.ledger.verify({ full: true })).toMatchObject({ ok: true, coverage: { uncovered: 0 } });
      expect(await verifyEvidence(after.ledger.evidence(ids[0]!))).toMatchObject({ ok: true });
    } finally {
      after.close();
    }
  });

  it("a store written by a newer schema version is a StoreError that names the versions", () => {
    const file = freshStore();
    new Warden({ agentId: "a", store: file }).close();
    const db = new DatabaseSync(file);
    db.exec("PRAGMA user_version = 99");
    db.close();
    const error = catchError(() => new Warden({ agentId: "a", store: file }));
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: "store_error", message: expect.stringMatching(/schema 99/) });
  });

  it("the CLI reports an unusable store with exit code 2", async () => {
    const file = join(temp.dir, "garbage.db");
    writeFileSync(file, randomBytes(4096));
    const result = await runCli(file, ["runs"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/cannot open store/);
  });
});

describe("several writers on one file", () => {
  it("two clients in one process interleaving their commits extend one chain", async () => {
    const file = freshStore();
    const a = new Warden({ agentId: "agent-a", store: file, ledger: { checkpointEvery: 5 } });
    const b = new Warden({ agentId: "agent-b", store: file, ledger: { checkpointEvery: 5 } });
    let events = 0;
    a.on("*", () => events++);
    b.on("*", () => events++);
    for (let i = 0; i < 10; i++) {
      await recordRuns(a, 1, "a");
      a.flush();
      await recordRuns(b, 1, "b");
      b.flush();
    }
    a.close();
    b.close();
    const reader = new Warden({ agentId: "reader", store: file });
    try {
      expect(reader.ledger.verify()).toMatchObject({ ok: true });
      expect(recordedEvents(reader)).toBe(events + policySets(reader));
      const agents = reader.ledger.entries().flatMap(expandLedgerEntry).filter((e) => e.type !== "policy.set").map((e) => e.agentId);
      expect(agents.slice(0, 8)).toEqual(["agent-a", "agent-a", "agent-a", "agent-a", "agent-b", "agent-b", "agent-b", "agent-b"]);
      expect(reader.listRuns({ limit: 100 })).toHaveLength(20);
    } finally {
      reader.close();
    }
  });

  it("two processes appending at once produce one valid chain, and the counts add up", async () => {
    const file = freshStore();
    new Warden({ agentId: "setup", store: file }).close();
    const agents = ["proc-a", "proc-b"].map((agentId) => startAgent({ mode: "append", store: file, agentId, runs: 25, toolsPerRun: 3 }));
    try {
      await Promise.all(agents.map((a) => a.expect("ready")));
      for (const a of agents) a.send({ cmd: "go" });
      const done = await Promise.all(agents.map((a) => a.expect("done", {}, 60_000)));
      const reader = new Warden({ agentId: "reader", store: file });
      try {
        const verification = reader.ledger.verify();
        const expected = done.reduce((sum, d) => sum + (d.events as number), 0);
        expect(verification).toMatchObject({ ok: true, entries: reader.ledger.entries().length });
        expect(recordedEvents(reader)).toBe(expected + policySets(reader));
        // Each run: run.started, 3 × (tool.called, tool.completed), run.completed.
        expect(expected).toBe(2 * 25 * 8);
        const runs = reader.listRuns({ limit: 1000 });
        expect(runs).toHaveLength(50);
        for (const d of done) {
          for (const runId of d.runs as string[]) {
            const run = reader.runRecord(runId);
            expect(run.status).toBe("completed");
            expect(run.toolCalls.map((c) => c.status)).toEqual(["completed", "completed", "completed"]);
          }
        }
        const seqs = reader.ledger.entries().map((e) => e.seq);
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      } finally {
        reader.close();
      }
    } finally {
      for (const a of agents) a.kill();
    }
  });

  it("processes opening a fresh store at the same moment all start and share one signing key", async () => {
    // They race to create the schema and the keys; every one must start, and sign with the same key.
    const file = freshStore();
    const agents = ["first", "second", "third", "fourth"].map((agentId) => startAgent({ mode: "append", store: file, agentId, runs: 2, toolsPerRun: 1 }));
    const cli = Promise.all(Array.from({ length: 3 }, () => runCli(file, ["status"])));
    try {
      await Promise.all(agents.map((a) => a.expect("ready")));
      for (const a of agents) a.send({ cmd: "go" });
      await Promise.all(agents.map((a) => a.expect("done")));
      for (const r of await cli) expect(r, r.stderr).toMatchObject({ code: 0 });
      const reader = new Warden({ agentId: "reader", store: file });
      try {
        expect(reader.ledger.verify()).toMatchObject({ ok: true });
        expect(recordedEvents(reader)).toBe(4 * 2 * 4 + policySets(reader));
        // Each closing process signs the head it leaves (two that close on the same head sign it once), all with one key.
        expect(count(file, "checkpoints")).toBeGreaterThanOrEqual(1);
        const db = new DatabaseSync(file, { readOnly: true });
        try {
          expect(db.prepare("SELECT COUNT(DISTINCT key_id) AS n FROM checkpoints").get()).toEqual({ n: 1 });
        } finally {
          db.close();
        }
      } finally {
        reader.close();
      }
    } finally {
      for (const a of agents) a.kill();
    }
  });
});
