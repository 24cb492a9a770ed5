import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LedgerIntegrityError, Warden, WardenError, type LedgerEntry } from "agent-warden";
import { canonicalJson } from "../src/internal/canonical.js";
import { checkpointMessage, GENESIS_HASH, hashEntry } from "../src/ledger/chain.js";
import { keyIdOf } from "../src/ledger/keys.js";
import { Ledger } from "../src/ledger/ledger.js";
import { SqliteStore, type LedgerRow } from "../src/store/sqlite-store.js";
import { decode, renderVectors, VECTORS_PATH, type VectorFile } from "./fixtures/make-ledger-vectors.js";
import { hexOf, insertEntry, setHash, tamperedCopy as tamperedCopyOf } from "./fixtures/ledger-rows.js";
import { tempDir } from "./fixtures/proc.js";

const vectors = JSON.parse(readFileSync(VECTORS_PATH, "utf8")) as VectorFile;

describe("ledger hash vectors", () => {
  it("are reproducible from their generator", () => {
    expect(renderVectors()).toBe(readFileSync(VECTORS_PATH, "utf8"));
    expect(vectors.genesis).toBe(GENESIS_HASH);
    expect(vectors.canonical.length).toBeGreaterThanOrEqual(20);
    expect(vectors.entries.length).toBeGreaterThanOrEqual(8);
  });

  it.each(vectors.canonical.map((c) => [c.name, c] as const))("canonicalJson: %s", (_name, c) => {
    expect(canonicalJson(decode(c.input))).toBe(c.expected);
  });

  it("canonicalJson does not depend on insertion order", () => {
    expect(canonicalJson({ a: 1, b: { c: 2, d: 3 } })).toBe(canonicalJson({ b: { d: 3, c: 2 }, a: 1 }));
  });

  it.each(vectors.entries.map((e) => [e.seq, e] as const))("entry %i hashes to its pinned hash and chains to the one before", (seq, e) => {
    const data = decode(e.data);
    expect(canonicalJson(data)).toBe(e.dataJson);
    const { hash, dataJson, data: _data, ...rest } = e;
    expect(hashEntry(rest, dataJson)).toBe(hash);
    expect(e.prevHash).toBe(seq === 1 ? GENESIS_HASH : vectors.entries[seq - 2]!.hash);
  });

  it("every field is covered by the hash", () => {
    const e = vectors.entries[3]!;
    const { hash, dataJson, data: _data, ...base } = e;
    const changes: Array<Partial<typeof base>> = [
      { seq: e.seq + 1 },
      { id: "evt_other" },
      { ts: e.ts + 1 },
      { type: "tool.blocked" },
      { org: "other-org" },
      { agentId: "other-agent" },
      { agentId: null },
      { runId: "run_other" },
      { stepId: null },
      { toolCallId: "tc_other" },
      { actor: "mallory" },
      { prevHash: "f".repeat(64) },
    ];
    for (const change of changes) expect(hashEntry({ ...base, ...change }, dataJson), JSON.stringify(change)).not.toBe(hash);
    expect(hashEntry(base, canonicalJson({ ...(decode(e.data) as object), durationMs: 12.6 }))).not.toBe(hash);
    expect(hashEntry(base, dataJson)).toBe(hash);
  });

  it("pins the checkpoint message and its Ed25519 signature", () => {
    const cp = vectors.checkpoint;
    const privateKey = createPrivateKey({ key: Buffer.from(cp.key.pkcs8, "base64"), format: "der", type: "pkcs8" });
    const publicKey = createPublicKey({ key: Buffer.from(cp.key.spki, "base64"), format: "der", type: "spki" });
    expect(checkpointMessage(cp.seq, cp.hash).toString()).toBe(cp.message);
    expect(keyIdOf(publicKey)).toBe(cp.key.keyId);
    expect(sign(null, checkpointMessage(cp.seq, cp.hash), privateKey).toString("base64url")).toBe(cp.signature);
    expect(verify(null, checkpointMessage(cp.seq, cp.hash), publicKey, Buffer.from(cp.signature, "base64url"))).toBe(true);
    expect(verify(null, checkpointMessage(cp.seq - 1, cp.hash), publicKey, Buffer.from(cp.signature, "base64url"))).toBe(false);
  });

  it("the store writes exactly the pinned chain and checkpoint", () => {
    const cp = vectors.checkpoint;
    const privateKey = createPrivateKey({ key: Buffer.from(cp.key.pkcs8, "base64"), format: "der", type: "pkcs8" });
    const publicKey = createPublicKey(privateKey);
    const errors: unknown[] = [];
    const store = new SqliteStore({ path: ":memory:", signer: { privateKey, publicKey, keyId: keyIdOf(publicKey) }, checkpointEvery: vectors.entries.length, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, onError: (e) => errors.push(e) });
    try {
      for (const e of vectors.entries) {
        store.append({ id: e.id, ts: e.ts, type: e.type, org: e.org, agentId: e.agentId, runId: e.runId, stepId: e.stepId, toolCallId: e.toolCallId, actor: e.actor, dataJson: canonicalJson(decode(e.data)) });
        // The vectors pin a call's start and end as two entries: an end queued right after its start would fold into it.
        if (e.type === "tool.called") store.flush();
      }
      store.flush();
      const rows = store.all<{ seq: number; hash: Uint8Array; data: string }>("SELECT seq, hash, data FROM ledger ORDER BY seq");
      // Each hash is stored as its 32 bytes; the link to the entry before is that entry's hash.
      expect(rows.map((r) => hexOf(r.hash))).toEqual(vectors.entries.map((e) => e.hash));
      expect(rows.map((r) => r.hash.byteLength)).toEqual(vectors.entries.map(() => 32));
      expect(ledger_links(rows)).toEqual(vectors.entries.map((e) => e.prevHash));
      expect(rows.map((r) => r.data)).toEqual(vectors.entries.map((e) => e.dataJson));
      const checkpoints = store.all<{ seq: number; hash: string; key_id: string; signature: string }>("SELECT seq, hash, key_id, signature FROM checkpoints ORDER BY seq");
      // No checkpoint is due before the head (every 8 entries, no interval): the head is signed once.
      expect(checkpoints).toEqual([{ seq: cp.seq, hash: cp.hash, key_id: cp.key.keyId, signature: cp.signature }]);
      const ledger = new Ledger(store, publicKey);
      expect(ledger.verify()).toEqual({ ok: true, entries: vectors.entries.length, checkpoints: 1, head: { seq: cp.seq, hash: cp.hash }, coverage: { coveredTo: cp.seq, uncovered: 0, interval: vectors.entries.length }, key: { keyId: cp.key.keyId, source: "store" } });
      const entries = ledger.entries();
      expect(entries.map((e) => e.data)).toEqual(vectors.entries.map((e) => decode(e.data)));
      expect(errors).toEqual([]);
    } finally {
      store.close();
    }
  });
});

// ─────────────────────────────────────────────────────────────────────────────────────────────
// Tampering with a real store file

type Db = DatabaseSync;
type Row = LedgerRow;

const temp = tempDir("warden-ledger-");
const pristine = join(temp.dir, "pristine");
let pristineEntries = 0;
let pristineCheckpoints: number[] = [];

const tamperedCopy = (tamper: (db: DatabaseSync) => void): string => tamperedCopyOf(pristine, temp.dir, tamper);

function withWarden<T>(file: string, fn: (warden: Warden) => T): T {
  const warden = new Warden({ agentId: "auditor", store: file });
  try {
    return fn(warden);
  } finally {
    warden.close();
  }
}

function verifyFile(file: string) {
  return withWarden(file, (w) => w.ledger.verify());
}

function row(db: Db, seq: number): Row {
  return db.prepare("SELECT * FROM ledger WHERE seq = ?").get(seq) as unknown as Row;
}

/** Rewrites the hash of every entry from `from` on (each over the one before), as an attacker who knows the format would. */
function rehashFrom(db: Db, from: number): void {
  let prev = from === 1 ? GENESIS_HASH : hexOf(row(db, from - 1).hash);
  const rows = db.prepare("SELECT * FROM ledger WHERE seq >= ? ORDER BY seq").all(from) as unknown as Row[];
  for (const r of rows) {
    const hash = hashEntry({ seq: r.seq, id: r.id, ts: r.ts, type: r.type, org: r.org, agentId: r.agent_id, runId: r.run_id, stepId: r.step_id, toolCallId: r.tool_call_id, actor: r.actor, prevHash: prev }, canonicalJson(JSON.parse(r.data)));
    setHash(db, r.seq, hash);
    prev = hash;
  }
}

/** Each row's link: the hash of the row before it. */
function ledger_links(rows: Array<{ hash: Uint8Array }>): string[] {
  return rows.map((_, i) => (i === 0 ? GENESIS_HASH : hexOf(rows[i - 1]!.hash)));
}

function shiftUp(db: Db, from: number): void {
  db.prepare("UPDATE ledger SET seq = -(seq + 1) WHERE seq >= ?").run(from);
  db.exec("UPDATE ledger SET seq = -seq WHERE seq < 0");
}


describe("tamper detection on a store file", () => {
  // A middle entry that a signed checkpoint (not the last one) covers.
  const K = 13;

  beforeAll(async () => {
    const warden = new Warden({
      agentId: "billing-agent",
      store: join(pristine, "warden.db"),
      ledger: { checkpointEvery: 10, checkpointInterval: "1h" },
      policies: { version: 1, default: "allow", policies: [{ id: "flag-writes", when: { tool: "write_*" }, action: "warn" }] },
    });
    // A call that ends within its commit window is one entry: eight runs give more than three checkpoints.
    for (let i = 0; i < 8; i++) {
      await warden.run({ task: `order ${i}` }, async (run) => {
        await run.step("lookup", () => run.tool("read_order", { id: i, note: "naïve café ☕" }, () => ({ id: i, total: 1000 * i })));
        await run.tool("write_note", { id: i, text: `refund ${i}` }, () => "ok");
      });
      await warden.flush();
    }
    warden.close();
    const db = new DatabaseSync(join(pristine, "warden.db"), { readOnly: true });
    pristineEntries = (db.prepare("SELECT COUNT(*) AS n FROM ledger").get() as { n: number }).n;
    pristineCheckpoints = (db.prepare("SELECT seq FROM checkpoints ORDER BY seq").all() as Array<{ seq: number }>).map((r) => r.seq);
    db.close();
  });

  afterAll(() => temp.cleanup());

  it("the untouched store verifies, with a signed checkpoint every 10 entries and one at close", () => {
    expect(pristineEntries).toBeGreaterThan(40);
    const result = verifyFile(tamperedCopy(() => {}));
    expect(result).toMatchObject({ ok: true, entries: pristineEntries, checkpoints: pristineCheckpoints.length, head: { seq: pristineEntries } });
    // The first group commit is signed, then one after every 10 entries (at the end of the group that
    // reaches them), and the head at close.
    expect(pristineCheckpoints.at(-1)).toBe(pristineEntries);
    const gaps = pristineCheckpoints.slice(1, -1).map((seq, i) => seq - pristineCheckpoints[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(10);
      expect(gap).toBeLessThan(20);
    }
    expect(pristineCheckpoints.filter((seq) => seq < K).length).toBeGreaterThan(0);
    expect(pristineCheckpoints.some((seq) => seq > K + 1 && seq < pristineEntries)).toBe(true);
  });

  it("creates the checkpoint signing key with mode 0600 under <store dir>/keys/", () => {
    for (const name of ["ledger.pem", "organization.pem"]) {
      const stat = statSync(join(pristine, "keys", name));
      expect(stat.mode & 0o777, name).toBe(0o600);
    }
    expect(readFileSync(join(pristine, "keys", "ledger.pem"), "utf8")).toContain("BEGIN PRIVATE KEY");
  });

  const fieldChanges: Array<[string, string, string | number | null]> = [
    ["data", "data", '{"tampered":true}'],
    ["data (one number)", "data", null],
    ["type", "type", "tool.blocked"],
    ["ts", "ts", 1],
    ["actor", "actor", "mallory"],
    ["run_id", "run_id", "run_forged"],
    ["agent_id", "agent_id", "someone-else"],
    ["org", "org", "other-org"],
    ["id", "id", "evt_forged"],
    ["tool_call_id", "tool_call_id", "tc_forged"],
    ["step_id", "step_id", "step_forged"],
    ["hash", "hash", "a".repeat(64)],
  ];

  it.each(fieldChanges)("a modified %s names that entry", (_label, column, value) => {
    const file = tamperedCopy((db) => {
      if (_label === "data (one number)") {
        const data = JSON.parse(row(db, K).data) as Record<string, unknown>;
        db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(JSON.stringify({ ...data, injected: 1 }), K);
      } else db.prepare(`UPDATE ledger SET ${column} = ? WHERE seq = ?`).run(value, K);
    });
    const result = verifyFile(file);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.firstBadSeq).toBe(K);
    expect(result.problem).toMatch(/modified/);
    expect(result.entries).toBe(K - 1);
  });

  it("an entry re-hashed over another previous hash (its link changed) names that entry", () => {
    const result = verifyFile(
      tamperedCopy((db) => {
        const r = row(db, K);
        setHash(db, K, hashEntry({ seq: r.seq, id: r.id, ts: r.ts, type: r.type, org: r.org, agentId: r.agent_id, runId: r.run_id, stepId: r.step_id, toolCallId: r.tool_call_id, actor: r.actor, prevHash: "b".repeat(64) }, r.data));
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/does not match its hash/) });
  });

  it("a hash stored as anything but 32 bytes names that entry", () => {
    const result = verifyFile(tamperedCopy((db) => db.prepare("UPDATE ledger SET hash = ? WHERE seq = ?").run(Buffer.alloc(31), K)));
    expect(result).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/not 32 bytes/) });
  });

  it("data that is no longer JSON names that entry", () => {
    const result = verifyFile(tamperedCopy((db) => db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run("{not json", K)));
    expect(result).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/JSON/) });
  });

  it("a deleted middle entry is named", () => {
    const result = verifyFile(tamperedCopy((db) => db.prepare("DELETE FROM ledger WHERE seq = ?").run(K)));
    expect(result).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/missing/) });
  });

  it("a deleted first entry is named", () => {
    const result = verifyFile(tamperedCopy((db) => db.prepare("DELETE FROM ledger WHERE seq = 1").run()));
    expect(result).toMatchObject({ ok: false, firstBadSeq: 1 });
  });

  it("a deleted tail covered by a signed checkpoint is detected", () => {
    const keep = pristineEntries - 3;
    const result = verifyFile(tamperedCopy((db) => db.prepare("DELETE FROM ledger WHERE seq > ?").run(keep)));
    expect(result).toMatchObject({ ok: false, firstBadSeq: keep + 1, entries: keep, problem: expect.stringMatching(/missing/) });
  });

  it("a truncated tail is caught by the last signed checkpoint left behind", () => {
    // The attacker drops the later checkpoints too, but one that covers a deleted entry remains.
    const cut = pristineCheckpoints.find((seq) => seq > K + 1 && seq < pristineEntries)!;
    const result = verifyFile(
      tamperedCopy((db) => {
        db.prepare("DELETE FROM ledger WHERE seq > ?").run(cut - 1);
        db.prepare("DELETE FROM checkpoints WHERE seq > ?").run(cut + 1);
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: cut, problem: expect.stringMatching(/missing/) });
  });

  it("a forged entry inserted in the middle (hash recomputed) is named, not the entry after it", () => {
    const result = verifyFile(
      tamperedCopy((db) => {
        const before = row(db, K - 1);
        shiftUp(db, K);
        const forged = { seq: K, id: "evt_forged", ts: before.ts, type: "approval.approved", org: before.org, agentId: before.agent_id, runId: before.run_id, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(before.hash) };
        insertEntry(db, forged, canonicalJson({ approvalId: "apr_forged", status: "approved" }));
      }),
    );
    expect(result).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: K, entries: K - 1, problem: expect.stringMatching(/inserted: entry \d+ chains to entry \d+, so entry \d+ was put in between/) });
  });

  it("a forged entry inserted in the middle (hash made up) is named", () => {
    const result = verifyFile(
      tamperedCopy((db) => {
        const before = row(db, K - 1);
        shiftUp(db, K);
        insertEntry(db, { seq: K, id: "evt_forged", ts: before.ts, type: "run.completed", org: before.org, agentId: null, runId: null, stepId: null, toolCallId: null, actor: null, prevHash: hexOf(before.hash) }, "{}", "c".repeat(64));
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/modified/) });
  });

  it("a forged entry appended past a signed checkpoint is named", () => {
    const result = verifyFile(
      tamperedCopy((db) => {
        const head = row(db, pristineEntries);
        insertEntry(db, { seq: pristineEntries + 1, id: "evt_forged", ts: head.ts, type: "run.completed", org: head.org, agentId: null, runId: null, stepId: null, toolCallId: null, actor: null, prevHash: hexOf(head.hash) }, "{}", "d".repeat(64));
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: pristineEntries + 1 });
  });

  it("two swapped entries (reordered) are named", () => {
    const result = verifyFile(
      tamperedCopy((db) => {
        db.prepare("UPDATE ledger SET seq = -1 WHERE seq = ?").run(K);
        db.prepare("UPDATE ledger SET seq = ? WHERE seq = ?").run(K, K + 1);
        db.prepare("UPDATE ledger SET seq = ? WHERE seq = -1").run(K + 1);
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: K });
  });

  it("a forged checkpoint signature is named", () => {
    const cp = pristineCheckpoints.find((seq) => seq > K)!;
    const result = verifyFile(
      tamperedCopy((db) => {
        const { signature } = db.prepare("SELECT signature FROM checkpoints WHERE seq = ?").get(cp) as { signature: string };
        const bytes = Buffer.from(signature, "base64url");
        bytes[5]! ^= 0x01;
        db.prepare("UPDATE checkpoints SET signature = ? WHERE seq = ?").run(bytes.toString("base64url"), cp);
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: cp, problem: expect.stringMatching(/signature .*invalid/) });
  });

  it("a checkpoint signed by another key is named", () => {
    const cp = pristineCheckpoints.find((seq) => seq > K)!;
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const result = verifyFile(
      tamperedCopy((db) => {
        const { hash } = db.prepare("SELECT hash FROM checkpoints WHERE seq = ?").get(cp) as { hash: string };
        db.prepare("UPDATE checkpoints SET key_id = ?, signature = ? WHERE seq = ?").run(keyIdOf(publicKey), sign(null, checkpointMessage(cp, hash), privateKey).toString("base64url"), cp);
      }),
    );
    expect(result).toMatchObject({ ok: false, firstBadSeq: cp, problem: expect.stringMatching(/unknown key/) });
  });

  it("a modified entry with the rest of the chain re-hashed is caught by the next signed checkpoint", () => {
    const cp = pristineCheckpoints.find((seq) => seq >= K)!;
    const previous = [...pristineCheckpoints].reverse().find((seq) => seq < K)!;
    const file = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET actor = 'mallory', data = ? WHERE seq = ?").run('{"approved":true}', K);
      rehashFrom(db, K);
    });
    const result = verifyFile(file);
    expect(result).toMatchObject({ ok: false, firstBadSeq: cp, problem: expect.stringMatching(/signed checkpoint/) });
    if (!result.ok) {
      expect(result.firstBadSeq).toBeGreaterThan(previous);
      expect(result.firstBadSeq).toBeGreaterThanOrEqual(K);
    }
    // ...and re-signing that checkpoint without the key does not help.
    const resigned = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET actor = 'mallory', data = ? WHERE seq = ?").run('{"approved":true}', K);
      rehashFrom(db, K);
      const head = row(db, cp);
      const { privateKey } = generateKeyPairSync("ed25519");
      db.prepare("UPDATE checkpoints SET hash = ?, signature = ? WHERE seq = ?").run(hexOf(head.hash), sign(null, checkpointMessage(cp, hexOf(head.hash)), privateKey).toString("base64url"), cp);
    });
    expect(verifyFile(resigned)).toMatchObject({ ok: false, firstBadSeq: cp, problem: expect.stringMatching(/signature .*invalid/) });
  });

  it("a client never signs a checkpoint over a tail that does not verify", async () => {
    const file = tamperedCopy((db) => {
      const head = row(db, pristineEntries);
      const forged = { seq: head.seq + 1, id: "evt_forged", ts: head.ts + 1, type: "approval.approved", org: head.org, agentId: "billing-agent", runId: head.run_id, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(head.hash) };
      insertEntry(db, forged, canonicalJson({ approvalId: "apr_x", status: "approved" }));
      // Then changed after hashing: the next client to sign a checkpoint must notice rather than vouch for it.
      db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(canonicalJson({ approvalId: "apr_y", status: "approved" }), forged.seq);
    });
    const errors: unknown[] = [];
    // A client that only opens and closes the store signs nothing at all; one that appends refuses to sign over the forged tail.
    new Warden({ agentId: "auditor", store: file, onError: (error) => errors.push(error) }).close();
    expect(errors).toEqual([]);
    const warden = new Warden({ agentId: "auditor", store: file, onError: (error) => errors.push(error) });
    await warden.run({ task: "after the forgery" }, async (run) => run.tool("read_order", { id: 1 }, () => "ok"));
    warden.close();
    const db = new DatabaseSync(file, { readOnly: true });
    const checkpoints = (db.prepare("SELECT seq FROM checkpoints ORDER BY seq").all() as Array<{ seq: number }>).map((r) => r.seq);
    db.close();
    expect(checkpoints).toEqual(pristineCheckpoints);
    expect(errors.map(String).join("\n")).toMatch(/checkpoint not signed: entry \d+ does not match its hash/);
  });

  it("assertIntact throws LedgerIntegrityError with the entry's seq", () => {
    const file = tamperedCopy((db) => db.prepare("UPDATE ledger SET type = 'tool.blocked' WHERE seq = ?").run(K));
    withWarden(file, (w) => {
      let caught: unknown;
      try {
        w.ledger.assertIntact();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(LedgerIntegrityError);
      expect(WardenError.isInstance(caught)).toBe(true);
      expect(caught).toMatchObject({ code: "ledger_integrity", seq: K, message: expect.stringContaining(`entry ${K}`) });
    });
    withWarden(tamperedCopy(() => {}), (w) => expect(() => w.ledger.assertIntact()).not.toThrow());
  });

  it("exports JSONL: one parseable line per entry, each one re-verifiable on its own", async () => {
    const file = tamperedCopy(() => {});
    const out = join(temp.dir, "export.jsonl");
    const warden = new Warden({ agentId: "auditor", store: file });
    let written: number;
    let verified: ReturnType<Warden["ledger"]["verify"]>;
    try {
      written = await warden.ledger.exportJsonl(out);
      verified = warden.ledger.verify();
    } finally {
      warden.close();
    }
    const lines = readFileSync(out, "utf8").split("\n");
    expect(lines.pop()).toBe("");
    expect(verified.entries).toBe(pristineEntries);
    expect(written).toBe(verified.entries);
    expect(lines).toHaveLength(verified.entries);
    let prev = GENESIS_HASH;
    lines.forEach((line, i) => {
      const entry = JSON.parse(line) as LedgerEntry;
      expect(entry.seq).toBe(i + 1);
      expect(entry.prevHash).toBe(prev);
      const { hash, data, ...rest } = entry;
      expect(hashEntry(rest, canonicalJson(data))).toBe(hash);
      prev = hash;
    });
  });
});
