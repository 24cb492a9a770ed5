// A tool call that ends within the commit window it started in is one ledger entry (`tool.call`) for its
// two events: hashed, chained and proven like any other entry, and read back as the two events.
import { createHash, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expandLedgerEntry, openLedger, verifyEvidence, Warden, type EvidenceBundle, type LedgerEntry, type RunScope, type WardenEvent } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { eventEntries } from "../src/ledger/fold.js";
import { tempDir } from "./fixtures/proc.js";
import { tamperedCopy as tamperedCopyOf } from "./fixtures/ledger-rows.js";

const temp = tempDir("warden-fold-");
afterAll(() => temp.cleanup());
let stores = 0;
const freshStore = () => join(temp.dir, `s${++stores}`, "warden.db");
const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the bus saw, as run.events gives it back (the bus keeps members whose value is undefined; the ledger drops them). */
const asRecorded = (event: WardenEvent) => ({ ...event, data: JSON.parse(canonicalJson(event.data)) as unknown });

async function recordedRun(warden: Warden, body: (run: RunScope) => Promise<unknown>): Promise<{ runId: string; seen: WardenEvent[] }> {
  const seen: WardenEvent[] = [];
  const off = warden.on("*", (event) => seen.push(event));
  let runId = "";
  try {
    await warden.run({ task: "refunds" }, async (run) => {
      runId = run.runId;
      await body(run);
    });
  } finally {
    off();
  }
  return { runId, seen: seen.filter((e) => e.runId === runId) };
}

describe("a tool call folded into one ledger entry", () => {
  it("a call that ends within its commit window is one entry; run.events gives back tool.called and tool.completed as the bus saw them", async () => {
    const warden = new Warden({ agentId: "billing-agent", store: freshStore() });
    try {
      const { runId, seen } = await recordedRun(warden, (run) => run.tool("read_order", { id: 1042 }, () => ({ total: 28000 })));
      const entries = warden.ledger.entries({ runId });
      expect(entries.map((e) => e.type)).toEqual(["run.started", "tool.call", "run.completed"]);
      const folded = entries[1]!;
      const called = seen.find((e) => e.type === "tool.called")!;
      const completed = seen.find((e) => e.type === "tool.completed")!;
      // The entry keeps the start's id and time; its data holds both events, canonical as stored.
      expect(folded).toMatchObject({ id: called.id, ts: called.ts, toolCallId: called.toolCallId, stepId: called.stepId, agentId: "billing-agent" });
      expect(folded.data).toEqual({ called: JSON.parse(canonicalJson(called.data)), end: { data: JSON.parse(canonicalJson(completed.data)), id: completed.id, ts: completed.ts, type: "tool.completed" } });
      const record = warden.runRecord(runId);
      expect(record.events).toEqual(seen.map(asRecorded));
      expect(record.events.map((e) => e.type)).toEqual(["run.started", "tool.called", "tool.completed", "run.completed"]);
      expect(entries.flatMap(expandLedgerEntry).map((e) => e.id)).toEqual(seen.map((e) => e.id));
      expect(warden.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      warden.close();
    }
  });

  it("the folded data is the canonical JSON of what it holds, and its hash is SHA-256 over the entry's canonical JSON", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "billing-agent", store: file });
    await recordedRun(warden, (run) => run.tool("payments.refund", { amount: 28000, currency: "EUR", note: "naïve café ☕ \"quoted\"" }, () => ({ refunded: true })));
    warden.close();
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const row = db.prepare("SELECT * FROM ledger WHERE type = 'tool.call'").get() as Record<string, string | number | null | Uint8Array>;
      const previous = db.prepare("SELECT hash FROM ledger WHERE seq = ?").get(Number(row.seq) - 1) as { hash: Uint8Array };
      const data = row.data as string;
      expect(canonicalJson(JSON.parse(data))).toBe(data);
      // Written from the format, not from the code that writes it: every field but the hash, keys sorted.
      const text = canonicalJson({ seq: row.seq, id: row.id, ts: row.ts, type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash: Buffer.from(previous.hash).toString("hex"), data: JSON.parse(data) });
      expect(createHash("sha256").update(text).digest()).toEqual(Buffer.from(row.hash as unknown as Uint8Array));
    } finally {
      db.close();
    }
  });

  it("a call still running when its commit window closes is two entries", async () => {
    const warden = new Warden({ agentId: "billing-agent", store: freshStore() });
    try {
      const { runId, seen } = await recordedRun(warden, async (run) => {
        await run.tool("slow_report", { id: 1 }, async () => {
          // The window (2 ms) closes while the tool runs: its start is handed over without its end.
          await tick(30);
          return "done";
        });
        await run.tool("read_order", { id: 2 }, () => "fast");
        await run.tool("slow_flushed", { id: 3 }, async () => {
          warden.flush();
          return "done";
        });
      });
      expect(warden.ledger.entries({ runId }).map((e) => e.type)).toEqual(["run.started", "tool.called", "tool.completed", "tool.call", "tool.called", "tool.completed", "run.completed"]);
      expect(warden.runRecord(runId).events).toEqual(seen.map(asRecorded));
      expect(warden.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      warden.close();
    }
  });

  it("calls in parallel keep their order: only a call's end right after its own start folds", async () => {
    const warden = new Warden({ agentId: "billing-agent", store: freshStore(), storeWriter: "inline" });
    try {
      const { runId, seen } = await recordedRun(warden, async (run) => {
        const later = (value: string) => new Promise<string>((resolve) => setImmediate(() => resolve(value)));
        // a starts, b starts, b ends (b folds), a ends; then c starts, d starts, c ends, d ends (neither folds).
        await Promise.all([run.tool("a", {}, () => later("a")), run.tool("b", {}, () => "b")]);
        await Promise.all([run.tool("c", {}, () => Promise.resolve("c")), run.tool("d", {}, () => later("d"))]);
      });
      const entries = warden.ledger.entries({ runId });
      expect(entries.flatMap(expandLedgerEntry).map((e) => e.id)).toEqual(seen.map((e) => e.id));
      expect(warden.runRecord(runId).events).toEqual(seen.map(asRecorded));
      const types = entries.map((e) => `${e.type}:${(e.data as { toolName?: string; called?: { toolName: string } }).toolName ?? (e.data as { called?: { toolName: string } }).called?.toolName ?? ""}`);
      expect(types).toContain("tool.call:b");
      expect(types).toContain("tool.called:a");
      expect(seen.filter((e) => e.type.startsWith("tool.")).length).toBe(8);
      // Fewer entries than events, never a different order.
      expect(entries.length).toBeLessThan(seen.length);
      expect(warden.ledger.verify()).toMatchObject({ ok: true });
    } finally {
      warden.close();
    }
  });

  it("the remote watermark's reader sees a folded entry as two events, the first settling only the entry before it", async () => {
    const warden = new Warden({ agentId: "billing-agent", store: freshStore() });
    try {
      const { seen } = await recordedRun(warden, (run) => run.tool("read_order", { id: 1 }, () => "ok"));
      const reader = eventEntries(warden.ledger);
      const folded = warden.ledger.entries().find((e) => e.type === "tool.call")!;
      const events = reader.entries({ afterSeq: folded.seq - 1, limit: 1 });
      expect(events.map((e) => [e.type, e.seq])).toEqual([
        ["tool.called", folded.seq - 1],
        ["tool.completed", folded.seq],
      ]);
      expect(events.map((e) => e.id)).toEqual(seen.filter((e) => e.toolCallId !== null).map((e) => e.id));
      expect(reader.head()).toEqual(warden.ledger.head());
    } finally {
      warden.close();
    }
  });

  it("an entry that only looks folded (malformed data) stays one entry", () => {
    const entry = { seq: 3, id: "evt_1", ts: 1, type: "tool.call", org: "o", agentId: null, runId: null, stepId: null, toolCallId: "tc_1", actor: null, prevHash: "0".repeat(64), hash: "0".repeat(64), data: { called: {}, end: { data: {}, id: 7, ts: 2, type: "tool.completed" } } } satisfies LedgerEntry;
    expect(expandLedgerEntry(entry)).toEqual([entry]);
    expect(expandLedgerEntry({ ...entry, data: { called: {}, end: { data: {}, id: "evt_2", ts: 2, type: "run.completed" } } })).toHaveLength(1);
    expect(expandLedgerEntry({ ...entry, data: { called: {}, end: { data: {}, id: "evt_2", ts: 2, type: "tool.blocked" } } }).map((e) => [e.id, e.type])).toEqual([
      ["evt_1", "tool.called"],
      ["evt_2", "tool.blocked"],
    ]);
  });
});

describe("a tool call's row and its ledger entries", () => {
  it("the row keeps no copy of the output and error its entries hold; the run record reads them back, folded or not", async () => {
    const file = freshStore();
    const warden = new Warden({ agentId: "billing-agent", store: file });
    try {
      const { runId } = await recordedRun(warden, async (run) => {
        await run.tool("read_order", { id: 7, note: "naïve" }, () => ({ total: 28000, items: [1, 2] }));
        await run.tool("slow_report", { id: 8 }, async () => {
          await tick(30);
          return "done";
        });
        await run.tool("failing", { id: 9 }, () => {
          throw new Error("upstream down");
        }).catch(() => undefined);
      });
      const observed = warden.beginToolCall({ tool: "observed_lookup", args: { q: "x" }, externalId: "ext_1" });
      observed.complete({ found: 1 });
      warden.flush();
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        expect(db.prepare("SELECT count(*) AS n FROM tool_calls WHERE kind = 'tool' AND (output IS NOT NULL OR error IS NOT NULL)").get()).toEqual({ n: 0 });
        // A call that ended within its commit window, allowed with nothing matched and without a framework id,
        // has no row: its folded entry is its record. The slow call and the one with a framework id have rows.
        expect(db.prepare("SELECT tool_name, input FROM tool_calls WHERE kind = 'tool' ORDER BY rowid").all()).toEqual([
          { tool_name: "slow_report", input: '{"id":8}' },
          { tool_name: "observed_lookup", input: '{"q":"x"}' },
        ]);
        expect(db.prepare("SELECT count(*) AS n FROM ledger WHERE type = 'tool.call'").get()).toEqual({ n: 3 });
      } finally {
        db.close();
      }
      const calls = warden.runRecord(runId).toolCalls;
      expect(calls.map((c) => [c.toolName, c.input, c.output, c.error])).toEqual([
        ["read_order", { id: 7, note: "naïve" }, { total: 28000, items: [1, 2] }, undefined],
        ["slow_report", { id: 8 }, "done", undefined],
        ["failing", { id: 9 }, undefined, { name: "Error", message: "upstream down" }],
      ]);
      const record = warden.runRecord(warden.listRuns({ limit: 10 }).find((r) => r.runId !== runId)!.runId);
      expect(record.toolCalls).toMatchObject([{ toolName: "observed_lookup", input: { q: "x" }, output: { found: 1 } }]);
    } finally {
      warden.close();
    }
  });
});

describe("tampering with a folded entry", () => {
  const pristine = join(temp.dir, "pristine");
  let toolCallId = "";
  let foldedSeq = 0;

  beforeAll(async () => {
    const warden = new Warden({ agentId: "billing-agent", store: join(pristine, "warden.db"), ledger: { checkpointEvery: 5, checkpointInterval: "1h" } });
    for (let i = 0; i < 4; i++) {
      await warden.run({ task: `refund ${i}` }, async (run) => {
        await run.tool("payments.refund", { order: i, amount: 100 * i }, () => ({ refunded: 100 * i, status: "sent" }));
      });
      warden.flush();
    }
    warden.close();
    const { ledger, close } = openLedger(join(pristine, "warden.db"));
    try {
      const folded = ledger.entries().filter((e) => e.type === "tool.call");
      expect(folded).toHaveLength(4);
      foldedSeq = folded[1]!.seq;
      toolCallId = folded[1]!.toolCallId!;
    } finally {
      close();
    }
  });

  const tamperedCopy = (tamper: (db: DatabaseSync) => void): string => tamperedCopyOf(pristine, temp.dir, tamper);

  const verifyFile = (file: string) => {
    const { ledger, close } = openLedger(file);
    try {
      // In full: an entry edited in place before the last verified checkpoint is found by a full re-hash.
      return ledger.verify({ checkpointEvery: 5, full: true });
    } finally {
      close();
    }
  };

  /** The completion part of the folded entry rewritten, as canonical JSON, by someone editing the row. */
  const rewriteEnd = (db: DatabaseSync) => {
    const { data } = db.prepare("SELECT data FROM ledger WHERE seq = ?").get(foldedSeq) as { data: string };
    const parsed = JSON.parse(data) as { end: { data: Record<string, unknown> } };
    const forged = canonicalJson({ ...parsed, end: { ...parsed.end, data: { ...parsed.end.data, output: { refunded: 999_999, status: "sent" } } } });
    expect(canonicalJson(JSON.parse(forged))).toBe(forged);
    db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(forged, foldedSeq);
  };

  it("the untouched store verifies", () => {
    expect(verifyFile(join(pristine, "warden.db"))).toMatchObject({ ok: true });
  });

  it("the completion's output changed in place is named", () => {
    expect(verifyFile(tamperedCopy(rewriteEnd))).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: foldedSeq, problem: expect.stringMatching(/does not match its hash/) });
  });

  it("the completion turned into a refusal is named", () => {
    const file = tamperedCopy((db) => db.prepare("UPDATE ledger SET data = replace(data, '\"type\":\"tool.completed\"', '\"type\":\"tool.blocked\"') WHERE seq = ?").run(foldedSeq));
    expect(verifyFile(file)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: foldedSeq });
  });

  it("the completion cut off (the entry made a bare tool.called) is named", () => {
    const file = tamperedCopy((db) => {
      const { data } = db.prepare("SELECT data FROM ledger WHERE seq = ?").get(foldedSeq) as { data: string };
      db.prepare("UPDATE ledger SET type = 'tool.called', data = ? WHERE seq = ?").run(canonicalJson((JSON.parse(data) as { called: unknown }).called), foldedSeq);
    });
    expect(verifyFile(file)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: foldedSeq });
  });

  it("an evidence bundle of a folded call verifies with the standalone verifier, and fails once its completion part is changed", async () => {
    const pem = createPublicKey(readFileSync(join(pristine, "keys", "ledger.pem"), "utf8")).export({ type: "spki", format: "pem" }).toString();
    const { ledger, close } = openLedger(join(pristine, "warden.db"), { publicKey: pem, checkpointEvery: 5 });
    let bundle: EvidenceBundle;
    try {
      bundle = JSON.parse(JSON.stringify(ledger.evidence(toolCallId))) as EvidenceBundle;
    } finally {
      close();
    }
    expect(bundle.entries.filter((e) => e.toolCallId === toolCallId).map((e) => e.type)).toEqual(["tool.call"]);
    expect(await verifyEvidence(bundle, { publicKey: pem })).toMatchObject({ ok: true });
    const entry = bundle.entries.find((e) => e.type === "tool.call")!;
    entry.dataJson = entry.dataJson.replace('"status":"completed"', '"status":"failed"');
    expect(entry.dataJson).toContain('"status":"failed"');
    expect(await verifyEvidence(bundle, { publicKey: pem })).toMatchObject({ ok: false, code: "entry_hash" });
  });
});
