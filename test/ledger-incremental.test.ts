import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLedger, Warden, type LedgerVerification } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { hashEntry } from "../src/ledger/chain.js";
import { MerkleTree } from "../src/ledger/merkle.js";
import { parseCheckpointText, parseNote } from "../src/ledger/note.js";
import type { LedgerRow } from "../src/store/sqlite-store.js";
import { runCli, tempDir } from "./fixtures/proc.js";
import { hexOf, setHash } from "./fixtures/ledger-rows.js";

// Verification resumes from the signed checkpoint where the last one ended (kept in `<store>-verified`),
// and falls back to a full re-hash whenever anything up to that checkpoint no longer matches.

const temp = tempDir("warden-incremental-");
const base = join(temp.dir, "base");
let copies = 0;

async function writeCalls(file: string, calls: number): Promise<void> {
  const warden = new Warden({ agentId: "billing-agent", store: file, ledger: { checkpointEvery: 10, checkpointInterval: "1h" } });
  try {
    await warden.run({ task: "refunds" }, async (run) => {
      for (let i = 0; i < calls; i++) await run.tool("refund", { order: i, amount: 100 + i }, () => ({ ok: true }));
    });
  } finally {
    warden.close();
  }
}

/** A copy of the base store with its keys and its saved position. */
function copy(): string {
  const dir = join(temp.dir, `copy-${++copies}`);
  cpSync(base, dir, { recursive: true });
  return join(dir, "warden.db");
}

function verify(file: string, full = false): LedgerVerification {
  const { ledger, close } = openLedger(file);
  try {
    return ledger.verify({ full, checkpointEvery: 10 });
  } finally {
    close();
  }
}

function tamper(file: string, fn: (db: DatabaseSync) => void): void {
  const db = new DatabaseSync(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

function savedSeq(file: string): number {
  return (JSON.parse(readFileSync(`${file}-verified`, "utf8")) as { seq: number }).seq;
}

beforeAll(async () => {
  await writeCalls(join(base, "warden.db"), 20);
  expect(verify(join(base, "warden.db"))).toMatchObject({ ok: true });
});

afterAll(() => temp.cleanup());

describe("incremental ledger verification", () => {
  it("saves the newest verified checkpoint beside the store, and resumes from it after more entries", async () => {
    const file = copy();
    const first = savedSeq(file);
    const head = verify(file, true);
    expect(head).toMatchObject({ ok: true });
    expect(first).toBe((head as { coverage: { coveredTo: number } }).coverage.coveredTo);
    await writeCalls(file, 15);
    const resumed = verify(file);
    // The same answer as a full verification, and the saved position moves on.
    expect(resumed).toEqual(verify(file, true));
    expect(resumed).toMatchObject({ ok: true, entries: (head as { entries: number }).entries + 2 + 15 });
    expect(savedSeq(file)).toBeGreaterThan(first);
  });

  it("an entry edited in place before the verified checkpoint is found by a full verification", () => {
    const file = copy();
    tamper(file, (db) => db.exec(`UPDATE ledger SET data = '{"status":"approved","toolName":"refund"}' WHERE seq = 5`));
    // Resuming re-hashes only what follows the verified checkpoint: that is what `full` is for.
    expect(verify(file)).toMatchObject({ ok: true });
    expect(verify(file, true)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: 5, problem: expect.stringMatching(/does not match its hash/) });
  });

  it("an earlier entry rewritten and the chain re-hashed after it is found without --full", () => {
    const file = copy();
    tamper(file, (db) => {
      db.exec(`UPDATE ledger SET data = '{"status":"approved","toolName":"refund"}' WHERE seq = 5`);
      let prev = hexOf((db.prepare("SELECT hash FROM ledger WHERE seq = 4").get() as { hash: Uint8Array }).hash);
      for (const r of db.prepare("SELECT * FROM ledger WHERE seq >= 5 ORDER BY seq").all() as unknown as LedgerRow[]) {
        const hash = hashEntry({ seq: r.seq, id: r.id, ts: r.ts, type: r.type, org: r.org, agentId: r.agent_id, runId: r.run_id, stepId: r.step_id, toolCallId: r.tool_call_id, actor: r.actor, prevHash: prev }, canonicalJson(JSON.parse(r.data)));
        setHash(db, r.seq, hash);
        prev = hash;
      }
    });
    // What the resumed verification finds is what the full one finds: the first checkpoint the rewrite broke.
    const full = verify(file, true);
    expect(full).toMatchObject({ ok: false, reason: "tampered", problem: expect.stringMatching(/does not match the signed checkpoint at entry \d+/) });
    expect(verify(file)).toEqual(full);
  });

  it("an earlier entry deleted is found without --full", () => {
    const file = copy();
    tamper(file, (db) => db.exec("DELETE FROM ledger WHERE seq = 3"));
    expect(verify(file)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: 3 });
  });

  it("an entry after the verified checkpoint is re-hashed", async () => {
    const file = copy();
    await writeCalls(file, 3);
    const last = savedSeq(file) + 2;
    tamper(file, (db) => db.prepare(`UPDATE ledger SET data = '{}' WHERE seq = ?`).run(last));
    expect(verify(file)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: last });
  });

  it("a client reopening the store signs its first tree head from the verified position, not from every hash again; a forged position is not used", async () => {
    /** The root the newest checkpoint signed, and the root over `hashes` at that size. */
    const roots = (file: string, hashes: string[]) => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        const newest = db.prepare("SELECT seq, note FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as { seq: number; note: string };
        const all = [...hashes, ...(db.prepare("SELECT hash FROM ledger WHERE seq > ? ORDER BY seq").all(hashes.length) as Array<{ hash: Uint8Array }>).map((r) => hexOf(r.hash))];
        const signed = Buffer.from(parseCheckpointText(parseNote(newest.note)!.text)!.root).toString("hex");
        return { signed, expected: Buffer.from(new MerkleTree(all.slice(0, newest.seq).map((h) => Buffer.from(h, "hex"))).root()).toString("hex") };
      } finally {
        db.close();
      }
    };
    const hashesOf = (file: string) => {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return (db.prepare("SELECT hash FROM ledger ORDER BY seq").all() as Array<{ hash: Uint8Array }>).map((r) => hexOf(r.hash));
      } finally {
        db.close();
      }
    };
    // An early entry's stored hash changed behind the client's back: a client that re-read every hash
    // would sign a tree over it; one that starts from the verified position signs the tree it verified.
    const seeded = copy();
    const original = hashesOf(seeded);
    tamper(seeded, (db) => db.prepare("UPDATE ledger SET hash = ? WHERE seq = 2").run("ab".repeat(32)));
    await writeCalls(seeded, 10);
    const fromPosition = roots(seeded, original);
    expect(fromPosition.signed).toBe(fromPosition.expected);
    // A position whose frontier was forged does not match the tree head signed there: the client builds the tree from the entries.
    const forged = copy();
    const saved = JSON.parse(readFileSync(`${forged}-verified`, "utf8")) as Record<string, unknown>;
    writeFileSync(`${forged}-verified`, JSON.stringify({ ...saved, frontier: (saved.frontier as string[]).map(() => "cd".repeat(32)) }));
    const before = hashesOf(forged);
    await writeCalls(forged, 10);
    const rebuilt = roots(forged, before);
    expect(rebuilt.signed).toBe(rebuilt.expected);
    expect(verify(forged, true)).toMatchObject({ ok: true });
  });

  it("a saved position that does not hold is ignored: forged, another key's, or not JSON", () => {
    for (const forge of [
      (saved: Record<string, unknown>) => ({ ...saved, hash: "0".repeat(64) }),
      (saved: Record<string, unknown>) => ({ ...saved, seq: 3 }),
      (saved: Record<string, unknown>) => ({ ...saved, frontier: (saved.frontier as string[]).map(() => "ab".repeat(32)) }),
      (saved: Record<string, unknown>) => ({ ...saved, keyId: "someone-else" }),
    ]) {
      const file = copy();
      tamper(file, (db) => db.exec(`UPDATE ledger SET data = '{"status":"approved","toolName":"refund"}' WHERE seq = 5`));
      const saved = JSON.parse(readFileSync(`${file}-verified`, "utf8")) as Record<string, unknown>;
      writeFileSync(`${file}-verified`, JSON.stringify(forge(saved)));
      // Not resumed: the full verification finds the edit.
      expect(verify(file)).toMatchObject({ ok: false, firstBadSeq: 5 });
    }
    const file = copy();
    writeFileSync(`${file}-verified`, "not json");
    expect(verify(file)).toMatchObject({ ok: true });
    expect(savedSeq(file)).toBeGreaterThan(0);
  });

  it("an in-memory store keeps its position in memory", async () => {
    const warden = new Warden({ agentId: "a", store: ":memory:", ledger: { checkpointEvery: 5, checkpointInterval: "1h" } });
    try {
      await warden.run({}, async (run) => {
        for (let i = 0; i < 6; i++) await run.tool("read", { i }, () => i);
      });
      const first = warden.ledger.verify();
      expect(first).toMatchObject({ ok: true });
      await warden.run({}, async (run) => {
        for (let i = 0; i < 6; i++) await run.tool("read", { i }, () => i);
      });
      expect(warden.ledger.verify()).toEqual(warden.ledger.verify({ full: true }));
      expect(existsSync(":memory:-verified")).toBe(false);
    } finally {
      warden.close();
    }
  });

  it("`warden ledger verify --full` re-hashes from the first entry (the binary)", async () => {
    const file = copy();
    tamper(file, (db) => db.exec(`UPDATE ledger SET data = '{"status":"approved","toolName":"refund"}' WHERE seq = 5`));
    const [resumed, full] = await Promise.all([runCli(file, ["ledger", "verify", "--checkpoint-every", "10"]), runCli(file, ["ledger", "verify", "--full", "--checkpoint-every", "10"])]);
    expect(resumed.code).toBe(0);
    expect(full.code).toBe(1);
    expect(full.stdout).toMatch(/^ledger BROKEN at entry 5: content does not match its hash/);
  });
});
