// A fast call allowed with nothing matched and without a framework id writes no row (store schema 8): its
// folded ledger entry is its record. Every read of the embedded store and of the control plane answers
// for it as it did when each call had a row: the same scenario is run twice, once as it comes (fast calls
// fold, no row) and once with a commit between each call's start and end (no fold: every call has its row).
import { hostname } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { InvalidStateError, Warden, type ToolCallRecord } from "agent-warden";
import { SqliteControlPlaneStore } from "agent-warden/server";
import { tempDir } from "./fixtures/proc.js";

const temp = tempDir("warden-folded-");
afterAll(() => temp.cleanup());
let stores = 0;
const freshStore = () => join(temp.dir, `s${++stores}`, "warden.db");

const policies = {
  version: 1 as const,
  default: "allow" as const,
  policies: [
    { id: "no-delete", when: { tool: "db.delete" }, action: "block" as const, reason: "deletes are off" },
    { id: "approve-refund", when: { tool: "refund" }, action: "require_approval" as const },
    { id: "flag-writes", when: { tool: "write_*" }, action: "warn" as const },
  ],
};

/** A process that is not running (the next client judges its runs abandoned). */
const DEAD_OWNER = `${hostname()}:2147483646`;

interface Scenario {
  file: string;
  runId: string;
  abandonedRunId: string;
  ids: Record<string, string>;
}

/**
 * The calls every read must answer for: fast completed and failed calls (with an agent context and a
 * stated reason), a slow one, a warned one, a blocked one, one awaiting approval, one with a framework
 * id, an LLM call; and a run left by a dead process with a finished call and an unfinished one.
 * `between` runs between each call's start and end (`flush` keeps every row, as before schema 8).
 */
async function scenario(between: (warden: Warden) => void): Promise<Scenario> {
  const file = freshStore();
  const warden = new Warden({ agentId: "billing-agent", store: file, policies });
  const ids: Record<string, string> = {};
  const { runId } = warden.beginRun({ task: "mixed" });
  const call = (key: string, tool: string, args: unknown, end: (handle: ReturnType<Warden["beginToolCall"]>) => void, extra: Record<string, unknown> = {}) => {
    const handle = warden.beginToolCall({ tool, args, runId, ...extra });
    ids[key] = handle.toolCallId;
    between(warden);
    end(handle);
  };
  call("fast", "read_order", { b: 2, a: { y: 1, x: [1, 2] }, note: "naïve" }, (h) => h.complete({ total: 28000, items: [1, 2] }), { agentContext: { goal: "refund", reasoning: "the order is late" }, reason: "customer asked" });
  call("failed", "lookup", { id: 9 }, (h) => h.fail(new Error("upstream down")));
  call("string", "echo", "plain text", (h) => h.complete("said"));
  const slow = warden.beginToolCall({ tool: "slow_report", args: { id: 8 }, runId });
  ids.slow = slow.toolCallId;
  await new Promise((resolve) => setTimeout(resolve, 20));
  slow.complete("done");
  call("warned", "write_note", { text: "hi" }, (h) => h.complete(true));
  ids.blocked = warden.beginToolCall({ tool: "db.delete", args: { table: "orders" }, runId }).toolCallId;
  ids.awaiting = warden.beginToolCall({ tool: "refund", args: { amount: 5 }, runId }).toolCallId;
  call("external", "search", { q: "x" }, (h) => h.complete({ hits: 1 }), { externalId: "call_ext_1" });
  const llm = warden.beginLlmCall({ runId, model: "m-1", input: "hello" });
  llm.complete({ inputTokens: 3, outputTokens: 4 }, "hi");
  warden.completeRun(runId);

  // A run whose process died: one call finished (fast), one still pending.
  const abandoned = warden.beginRun({ task: "cut" });
  const done = warden.beginToolCall({ tool: "read_order", args: { id: 1 }, runId: abandoned.runId });
  between(warden);
  done.complete({ ok: true });
  ids.cutDone = done.toolCallId;
  ids.cutPending = warden.beginToolCall({ tool: "read_order", args: { id: 2 }, runId: abandoned.runId }).toolCallId;
  warden.flush();
  const db = new DatabaseSync(file);
  db.prepare("UPDATE runs SET owner = ? WHERE id = ?").run(DEAD_OWNER, abandoned.runId);
  db.close();
  warden.close();
  return { file, runId, abandonedRunId: abandoned.runId, ids };
}

/** A call's record without what differs between two runs of the scenario (ids, clock readings). */
function comparable(call: ToolCallRecord, ids: Record<string, string>) {
  const key = Object.entries(ids).find(([, id]) => id === call.toolCallId)?.[0] ?? (call.kind === "llm" ? "llm" : "?");
  const { toolCallId: _id, runId: _run, startedAt, endedAt, durationMs, approval, decision, ...rest } = call;
  return { key, ...rest, ended: endedAt !== undefined && endedAt >= startedAt, timed: durationMs !== undefined, approval: approval?.status, decision: decision && { ...decision, ...("approvalId" in decision && { approvalId: "…" }) } };
}

/** Everything the embedded store answers about the scenario's calls, from a new client on the file. */
function embeddedReads(s: Scenario) {
  const warden = new Warden({ agentId: "next", store: s.file, policies });
  try {
    const record = warden.runRecord(s.runId);
    const cut = warden.runRecord(s.abandonedRunId);
    const resumed = Object.fromEntries(
      Object.entries(s.ids).map(([key, id]) => {
        try {
          const handle = warden.resumeToolCall(id);
          return [key, { found: handle.toolName, decision: handle.decision.action }];
        } catch (error) {
          return [key, { error: (error as Error).constructor.name, message: (error as Error).message.replaceAll(id, "<id>") }];
        }
      }),
    );
    const byExternalId = warden.findToolCall("call_ext_1");
    return {
      calls: record.toolCalls.map((c) => comparable(c, s.ids)),
      cut: { status: cut.status, error: cut.error, calls: cut.toolCalls.map((c) => comparable(c, s.ids)) },
      resumed,
      byExternalId: byExternalId === undefined ? undefined : byExternalId.toolName,
      events: record.events.map((e) => e.type),
    };
  } finally {
    warden.close();
  }
}

/** What the control plane answers about the same file (`warden serve` on it). */
async function controlPlaneReads(s: Scenario) {
  const store = new SqliteControlPlaneStore({ path: s.file });
  try {
    const tree = await store.getRun("default", s.runId, 0);
    const listed = await store.listToolCalls("default", {}, { limit: 100, offset: 0 });
    const completed = await store.listToolCalls("default", { status: "completed", toolName: "read_order" }, { limit: 100, offset: 0 });
    const one = await store.getToolCall("default", s.ids.fast!);
    return {
      tree: tree!.toolCalls.map((c) => comparable(c, s.ids)),
      total: listed.total,
      listed: listed.items.map((c) => comparable(c, s.ids).key).sort(),
      completed: completed.items.map((c) => comparable(c, s.ids).key).sort(),
      one: one && comparable(one, s.ids),
    };
  } finally {
    await store.close();
  }
}

describe("a fast call recorded by its folded ledger entry alone", () => {
  it("writes no row, and every read of the embedded store and the control plane answers as when it had one", async () => {
    const folded = await scenario(() => {});
    const rows = await scenario((warden) => warden.flush());

    // The layouts differ: folded, the fast calls allowed with nothing matched have no row.
    const rowsOf = (s: Scenario) => {
      const db = new DatabaseSync(s.file, { readOnly: true });
      try {
        const present = new Set((db.prepare("SELECT id FROM tool_calls").all() as Array<{ id: string }>).map((r) => r.id));
        return Object.entries(s.ids).filter(([, id]) => present.has(id)).map(([key]) => key).sort();
      } finally {
        db.close();
      }
    };
    expect(rowsOf(folded)).toEqual(["awaiting", "blocked", "cutPending", "external", "slow", "warned"]);
    expect(rowsOf(rows)).toEqual(Object.keys(rows.ids).sort());

    const embedded = embeddedReads(folded);
    expect(embedded).toEqual(embeddedReads(rows));
    // And what those reads say, spelled out.
    expect(embedded.calls.map((c) => [c.key, c.status])).toEqual([
      ["fast", "completed"],
      ["failed", "failed"],
      ["string", "completed"],
      ["slow", "completed"],
      ["warned", "completed"],
      ["blocked", "blocked"],
      ["awaiting", "awaiting_approval"],
      ["external", "completed"],
      ["llm", "completed"],
    ]);
    expect(embedded.calls[0]).toMatchObject({
      toolName: "read_order",
      actionType: "unknown",
      input: { b: 2, a: { y: 1, x: [1, 2] }, note: "naïve" },
      output: { total: 28000, items: [1, 2] },
      agentContext: { goal: "refund", reasoning: "the order is late" },
      reason: "customer asked",
      decision: { action: "allow", reason: "allowed", matches: [] },
      ended: true,
      timed: true,
    });
    expect(embedded.calls[1]).toMatchObject({ error: { name: "Error", message: "upstream down" } });
    expect(embedded.calls[2]).toMatchObject({ input: "plain text", output: "said" });
    expect(embedded.cut).toMatchObject({ status: "failed", error: { message: "abandoned" } });
    expect(embedded.cut.calls.map((c) => [c.key, c.status])).toEqual([
      ["cutDone", "completed"],
      ["cutPending", "failed"],
    ]);
    expect(embedded.resumed).toMatchObject({
      fast: { error: "InvalidStateError", message: expect.stringMatching(/is completed/) },
      failed: { error: "InvalidStateError", message: expect.stringMatching(/is failed/) },
      awaiting: { found: "refund", decision: "require_approval" },
      cutDone: { error: "InvalidStateError" },
    });
    expect(embedded.byExternalId).toBeUndefined();

    const served = await controlPlaneReads(folded);
    expect(served).toEqual(await controlPlaneReads(rows));
    // The control plane moves the embedded chain into its organizations' chains when it first opens the file:
    // its rows (output and error stay in the entries, as before) cover every call.
    expect(served.tree).toEqual(embedded.calls.map((call) => (call.kind === "tool" ? { ...call, output: undefined, error: undefined } : call)));
    expect(served.total).toBe(11);
    expect(served.completed).toEqual(["cutDone", "fast"]);
    expect(served.one).toEqual(served.tree[0]);

    // Opened again, with an embedded client still writing to the file: its new fast calls are read from its ledger.
    const more = new Warden({ agentId: "billing-agent", store: folded.file, policies });
    const later = await more.run({ task: "later" }, async (run) => {
      await run.tool("read_order", { id: 3 }, () => ({ ok: 3 }));
      return run.runId;
    });
    more.close();
    const store = new SqliteControlPlaneStore({ path: folded.file });
    try {
      expect((await store.getRun("default", later, 0))!.toolCalls).toMatchObject([{ toolName: "read_order", status: "completed", input: { id: 3 }, output: { ok: 3 } }]);
      expect((await store.listToolCalls("default", {}, { limit: 100, offset: 0 })).total).toBe(12);
    } finally {
      await store.close();
    }
  });

  it("a call finished twice is refused with the state its entry records, from another client too", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "a", store: file });
    try {
      const handle = warden.beginToolCall({ tool: "read_order", args: { id: 1 } });
      handle.complete({ ok: true });
      warden.flush();
      const other = new Warden({ agentId: "a", store: file });
      try {
        expect(() => other.resumeToolCall(handle.toolCallId)).toThrow(InvalidStateError);
        expect(() => other.resumeToolCall(handle.toolCallId)).toThrow(/is completed/);
        expect(other.findToolCall("tc_unknown")).toBeUndefined();
      } finally {
        other.close();
      }
    } finally {
      warden.close();
    }
  });
});
