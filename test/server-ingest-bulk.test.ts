// Ingest on SQLite writes a batch with a few statements per event (one claim, one upsert, one ledger
// row) and reads admission's rows once per batch. It must come to what ingest.ts writes one event and
// one statement at a time: the same answers (accepted, duplicates, each refusal), the same rows (runs,
// steps, tool calls with their merged decisions, approvals, revocations) and the same ledger chain,
// hash for hash, for the batches every rule is written for and for seeded random ones over a few ids.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteControlPlaneStore } from "agent-warden/server";
import { batches, eventByEvent, ingestInto, principals, randomBatches, snapshot, type IngestAnswer } from "./fixtures/ingest-batches.js";
import { tempDir } from "./fixtures/proc.js";

const { dir, cleanup } = tempDir("warden-bulk-ingest-");
afterAll(cleanup);

async function compare(name: string, sent: ReturnType<typeof batches>) {
  const bulk = new SqliteControlPlaneStore({ path: join(dir, `${name}-bulk.db`) });
  const path = join(dir, `${name}-reference.db`);
  const store = new SqliteControlPlaneStore({ path });
  const reference = eventByEvent(store, path);
  try {
    const answers: { bulk: IngestAnswer[]; reference: IngestAnswer[] } = { bulk: [], reference: [] };
    for (const { key, events } of sent) {
      answers.reference.push(reference(principals[key], events));
      answers.bulk.push(await ingestInto(bulk, principals[key], events));
    }
    expect(answers.bulk).toEqual(answers.reference);
    for (const org of ["acme", "globex"]) {
      const [expected, actual] = [await snapshot(store, org), await snapshot(bulk, org)];
      expect(actual).toEqual(expected);
      expect(expected.verified).not.toBe(false);
    }
    return { answers: answers.reference, acme: await snapshot(bulk, "acme") };
  } finally {
    await bulk.close();
    await store.close();
  }
}

describe("ingest on SQLite, in bulk, comes to what ingest.ts writes event by event", () => {
  it("the same answers, rows and ledger chain, hash for hash, for the batches of every rule", async () => {
    const { answers, acme } = await compare("rules", batches());
    // The batches exercise what they are meant to.
    expect(answers[1]!.rejected.map((r) => [r.id, r.code])).toEqual([
      ["e8", "conflict"],
      ["e18", "insufficient_scope"],
      ["e19", "insufficient_scope"],
    ]);
    expect(answers[1]!.duplicates).toBe(1);
    expect(answers.at(-1)!.accepted).toBe(0);
    expect(acme.toolCalls.find((c) => c.toolCallId === "c2")).toMatchObject({ status: "blocked", decision: { action: "block", actionType: "destructive" } });
    expect(acme.toolCalls.find((c) => c.toolCallId === "c1")).toMatchObject({ status: "completed", decision: { action: "allow", policyId: "p-read" } });
  });

  it("the same for seeded random batches that name a few rows many times, repeat ids and cross agents and organizations", async () => {
    for (const seed of [1, 2, 3]) {
      const { answers, acme } = await compare(`random-${seed}`, randomBatches(seed, 30, 40));
      // Every kind of outcome occurs.
      const all = answers.flatMap((a) => a.rejected.map((r) => r.code));
      expect(answers.reduce((n, a) => n + a.accepted, 0)).toBeGreaterThan(300);
      expect(answers.reduce((n, a) => n + a.duplicates, 0)).toBeGreaterThan(20);
      expect(new Set(all)).toEqual(new Set(["insufficient_scope", "conflict"]));
      expect(acme.toolCalls.some((c) => c.decision?.policyId !== undefined)).toBe(true);
      expect(acme.approvals.length).toBeGreaterThan(0);
    }
  });
});
