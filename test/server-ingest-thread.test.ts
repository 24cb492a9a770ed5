// Ingest on SQLite with its writer thread (`ingestThread`, what `createWardenServer` runs): the batch is
// written on a second connection, in a worker. It must come to what ingest.ts writes event by event on
// the store's own connection (answers, rows, the ledger hash for hash); a close, or a kill -9 of the
// server, while batches are in flight loses none that was answered, and a writer too far behind is a
// 503 the client retries.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { WardenEvent } from "agent-warden";
import { SqliteControlPlaneStore } from "agent-warden/server";
import { batches, event, eventByEvent, expectKillMidIngestLosesNothing, ingestInto, principals, randomBatches, snapshot, type IngestAnswer } from "./fixtures/ingest-batches.js";
import { tempDir } from "./fixtures/proc.js";
import { WIRE_GROWTH } from "../src/wire/event.js";
import { MAX_EVENT_BYTES } from "../src/wire/limits.js";

const { dir, cleanup } = tempDir("warden-ingest-thread-");
afterAll(cleanup);

async function compare(name: string, sent: ReturnType<typeof batches>) {
  const threaded = new SqliteControlPlaneStore({ path: join(dir, `${name}-thread.db`), ingestThread: true });
  const path = join(dir, `${name}-reference.db`);
  const store = new SqliteControlPlaneStore({ path });
  const reference = eventByEvent(store, path);
  try {
    const answers: { threaded: IngestAnswer[]; reference: IngestAnswer[] } = { threaded: [], reference: [] };
    for (const { key, events } of sent) {
      answers.reference.push(reference(principals[key], events));
      answers.threaded.push(await ingestInto(threaded, principals[key], events));
    }
    expect(answers.threaded).toEqual(answers.reference);
    for (const org of ["acme", "globex"]) {
      const [expected, actual] = [await snapshot(store, org), await snapshot(threaded, org)];
      expect(actual).toEqual(expected);
      expect(actual.ledger.length).toBeGreaterThan(0);
      expect(expected.verified).not.toBe(false);
    }
    return answers.reference;
  } finally {
    await threaded.close();
    await store.close();
  }
}

/** Batch `b` of `count` runs of four events (run.started, tool.called, tool.completed, run.completed). */
function runs(b: number, count: number): WardenEvent[] {
  const events: WardenEvent[] = [];
  for (let n = 0; n < count; n++) {
    const [runId, toolCallId] = [`run_${b}_${n}`, `tc_${b}_${n}`];
    events.push(
      event("run.started", { id: `e_${b}_${n}_0`, runId }, { traceId: `t_${runId}` }),
      event("tool.called", { id: `e_${b}_${n}_1`, runId, toolCallId }, { toolName: "read_order", actionType: "read", input: { n }, decision: "allow" }),
      event("tool.completed", { id: `e_${b}_${n}_2`, runId, toolCallId }, { toolName: "read_order", status: "completed", output: { n }, durationMs: 1.5 }),
      event("run.completed", { id: `e_${b}_${n}_3`, runId }),
    );
  }
  return events;
}

describe("ingest on SQLite, on its writer thread", () => {
  it("comes to what ingest.ts writes event by event: answers, rows and ledger chain, hash for hash", async () => {
    const answers = await compare("rules", batches());
    expect(answers[1]!.rejected.map((r) => [r.id, r.code])).toEqual([
      ["e8", "conflict"],
      ["e18", "insufficient_scope"],
      ["e19", "insufficient_scope"],
    ]);
    await compare("random", randomBatches(7, 20, 40));
  });

  it("the stream's live updates show each run and tool call the batch changed as the batch left it, whole rows and upserts alike", async () => {
    for (const ingestThread of [false, true]) {
      const store = new SqliteControlPlaneStore({ path: join(dir, `live-${ingestThread}.db`), ingestThread });
      try {
        // Whole runs and calls (started and finished in the batch), then a batch that finishes one begun before it.
        const first = runs(200, 3);
        const open = [event("run.started", { id: "o_1", runId: "run_open" }, { traceId: "t_open" }), event("tool.called", { id: "o_2", runId: "run_open", toolCallId: "tc_open" }, { toolName: "send", actionType: "write", decision: "allow" })];
        const later = [event("tool.completed", { id: "o_3", runId: "run_open", toolCallId: "tc_open" }, { toolName: "send", status: "failed", error: { message: "x" } }), event("run.failed", { id: "o_4", runId: "run_open" }, { error: { message: "x" } })];
        for (const batch of [[...first, ...open], later]) {
          const { changes } = await store.ingest(principals.agentA, batch);
          const shown = changes.messages.filter((m) => m.type === "run.updated").map((m) => m.data as { runId: string });
          const calls = changes.messages.filter((m) => m.type === "tool_call.updated").map((m) => m.data as { toolCallId: string; status: string; toolName: string; runId: string; agentId: string });
          const runIds = [...new Set(batch.map((e) => e.runId))];
          expect(shown.map((r) => r.runId)).toEqual(runIds);
          const stored = (await store.listRuns("acme", {}, { limit: 100, offset: 0 })).items;
          for (const run of shown) expect(run).toEqual(stored.find((r) => r.runId === run.runId));
          for (const call of calls) {
            const record = await store.getToolCall("acme", call.toolCallId);
            expect(call).toEqual({ toolCallId: record!.toolCallId, runId: record!.runId, agentId: "agent-a", toolName: record!.toolName, status: record!.status });
          }
          expect(calls.length).toBe(new Set(batch.map((e) => e.toolCallId).filter((id) => id !== null)).size);
        }
      } finally {
        await store.close();
      }
    }
  });

  it("a close while batches are in flight loses none that was answered, and a resend is not doubled", async () => {
    const path = join(dir, "close.db");
    const store = new SqliteControlPlaneStore({ path, ingestThread: true });
    const sent = Array.from({ length: 12 }, (_, b) => runs(b, 25));
    const outcomes = sent.map((events) => store.ingest(principals.agentA, events).then((answer) => answer.accepted, () => undefined));
    // Closing waits for what was handed over: every batch is answered (here all of them commit).
    await store.close();
    const accepted = await Promise.all(outcomes);
    expect(accepted.every((n) => n === undefined || n === 100)).toBe(true);
    const answered = accepted.filter((n) => n !== undefined).length;
    expect(answered).toBe(sent.length);

    const reopened = new SqliteControlPlaneStore({ path, ingestThread: true });
    try {
      const report = await reopened.verifyLedger("acme");
      expect(report).toMatchObject({ ok: true, entries: answered * 100 });
      // The client resends what it is unsure of: nothing is written twice.
      const again = await reopened.ingest(principals.agentA, sent[3]!);
      expect([again.accepted, again.duplicates]).toEqual([0, 100]);
      const run = await reopened.getRun("acme", "run_3_7", 1);
      expect(run).toMatchObject({ status: "completed" });
      expect(await reopened.getToolCall("acme", "tc_3_7")).toMatchObject({ status: "completed", output: { n: 7 } });
    } finally {
      await reopened.close();
    }
  });

  it("more batches behind than it may hold is a 503 the client retries, and the rest is written", async () => {
    const store = new SqliteControlPlaneStore({ path: join(dir, "behind.db"), ingestThread: true, maxPendingBatches: 2 });
    try {
      const outcomes = await Promise.allSettled([0, 1, 2, 3].map((b) => store.ingest(principals.agentA, runs(100 + b, 5))));
      const refused = outcomes.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason as { status: number; code: string });
      expect(refused.length).toBe(2);
      expect(refused.every((error) => error.status === 503 && error.code === "unavailable")).toBe(true);
      expect((await store.verifyLedger("acme")).entries).toBe(2 * 20);
    } finally {
      await store.close();
    }
  });
});

describe("POST /v1/events with the writer thread", () => {
  it("writes a batch handed over as its JSON text, and one with an event set aside as objects; an event over the size limit is still refused", async () => {
    const { createWardenServer } = await import("agent-warden/server");
    const server = createWardenServer({ db: join(dir, "route.db"), console: false, ingestBodyLimit: 12 * 1024 * 1024, onError: () => {} });
    try {
      const { url } = await server.listen(0);
      const { key } = await server.store.createKey({ org: "acme", role: "agent", name: "agent-a", agentId: "agent-a" });
      const post = async (events: unknown[]) => {
        const response = await fetch(`${url}/v1/events`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ events }) });
        return { status: response.status, body: (await response.json()) as { accepted: number; rejected?: Array<{ index: number; code: string }> } };
      };
      // Every event fits: the text goes on whole.
      expect(await post(runs(300, 5))).toEqual({ status: 200, body: { accepted: 20, duplicates: 0 } });
      // One event over the limit (its body is too large to skip measuring), one without an id: set aside; the rest written.
      const big = event("risk.detected", { id: "big", runId: "run_300_0" }, { blob: "x".repeat(MAX_EVENT_BYTES) });
      const answer = await post([...runs(301, 1), big, { ...event("risk.detected", { id: "x" }), id: undefined }]);
      expect(answer.status).toBe(200);
      expect(answer.body.accepted).toBe(4);
      expect(answer.body.rejected?.map((r) => [r.index, r.code])).toEqual([
        [4, "event_too_large"],
        [5, "invalid_event"],
      ]);
      expect((await server.store.verifyLedger("acme")).entries).toBe(1 + 24);
    } finally {
      await server.close();
    }
  });

  it("no number comes back from JSON.parse more than WIRE_GROWTH times longer, so a small body needs no event measured", () => {
    const tokens = ["1e20", "-1e20", "9E20", "1e+20", "1e21", "1e-6", "1e-7", "5e-324", "1e308", "0.1e1", "-0", "123456789012345678901234", "1.5e-5", "7e19"];
    for (let exponent = -10; exponent <= 25; exponent++) tokens.push(`1e${exponent}`, `9e${exponent}`);
    for (const token of tokens) expect(JSON.stringify(JSON.parse(token)).length).toBeLessThanOrEqual(WIRE_GROWTH * token.length);
    // Strings come back no longer in UTF-8 than they were sent.
    for (const text of ['"\\u00e9"', '"é"', '"\\/"', '"\\n"', '"\\ud800"', '"\\u2028"']) expect(Buffer.byteLength(JSON.stringify(JSON.parse(text)))).toBeLessThanOrEqual(Buffer.byteLength(text));
  });
});

describe("a control plane killed while its writer thread holds batches", () => {
  it("kill -9 mid-ingest: every batch it answered is stored, once, and the chain verifies", async () => {
    const path = join(dir, "killed.db");
    const sent = Array.from({ length: 40 }, (_, b) => runs(400 + b, 25).map((e) => ({ ...e, agentId: "agent-0" }) as WardenEvent));
    await expectKillMidIngestLosesNothing({ db: path }, sent, () => new SqliteControlPlaneStore({ path }));
  }, 120_000);
});
