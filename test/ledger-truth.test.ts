// The ledger tells the truth about itself: attacks by someone with write access to the store file (and
// without the signing key) that verification must refuse, and a verifier that never signs.
import { createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openLedger, Warden, type LedgerVerification } from "agent-warden";
import { main } from "../src/cli/main.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { checkpointMessage, GENESIS_HASH, hashEntry } from "../src/ledger/chain.js";
import { keyIdOf } from "../src/ledger/keys.js";
import { MerkleFrontier } from "../src/ledger/merkle.js";
import { checkpointText, ledgerOrigin, signNote } from "../src/ledger/note.js";
import type { LedgerRow } from "../src/store/sqlite-store.js";
import { hexOf, insertEntry, setHash, tamperedCopy as tamperedCopyOf } from "./fixtures/ledger-rows.js";
import { tempDir } from "./fixtures/proc.js";

const EVERY = 10;
const temp = tempDir("warden-ledger-truth-");
const pristine = join(temp.dir, "pristine");
let entries = 0;
let checkpoints: number[] = [];
/** The checkpoint key's public half, kept apart from the store as an auditor would. */
let publicPem = "";
let publicFile = "";

beforeAll(async () => {
  const warden = new Warden({ agentId: "billing-agent", store: join(pristine, "warden.db"), ledger: { checkpointEvery: EVERY, checkpointInterval: "1h" } });
  // Each call is one entry (it ends within its commit window): enough runs for more than three checkpoints.
  for (let i = 0; i < 8; i++) {
    await warden.run({ task: `refund ${i}` }, async (run) => {
      await run.tool("read_order", { id: i }, () => ({ id: i, total: 1000 * i }));
      await run.tool("payments.refund", { id: i, amount: 100 * i, currency: "EUR" }, () => "refunded");
    });
    warden.flush();
  }
  warden.close();
  publicPem = createPublicKey(readFileSync(join(pristine, "keys", "ledger.pem"), "utf8")).export({ type: "spki", format: "pem" }).toString();
  publicFile = join(temp.dir, "ledger-public.pem");
  writeFileSync(publicFile, publicPem);
  const db = new DatabaseSync(join(pristine, "warden.db"), { readOnly: true });
  entries = (db.prepare("SELECT COUNT(*) AS n FROM ledger").get() as { n: number }).n;
  checkpoints = (db.prepare("SELECT seq FROM checkpoints ORDER BY seq").all() as Array<{ seq: number }>).map((r) => r.seq);
  db.close();
});

afterAll(() => temp.cleanup());

const tamperedCopy = (tamper: (db: DatabaseSync) => void): string => tamperedCopyOf(pristine, temp.dir, tamper);

const row = (db: DatabaseSync, seq: number) => db.prepare("SELECT * FROM ledger WHERE seq = ?").get(seq) as unknown as LedgerRow;
const checkpointRows = (file: string) => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT seq, hash, key_id, signature FROM checkpoints ORDER BY seq").all() as Array<{ seq: number; hash: string; key_id: string; signature: string }>;
  } finally {
    db.close();
  }
};

/** Recomputes hashes (each over the one before) from `from` on, over `dataOf(row)`: an attacker who knows the format. */
function rehashFrom(db: DatabaseSync, from: number, dataOf: (r: LedgerRow) => string = (r) => r.data): void {
  let prev = from === 1 ? GENESIS_HASH : hexOf(row(db, from - 1).hash);
  for (const r of db.prepare("SELECT * FROM ledger WHERE seq >= ? ORDER BY seq").all(from) as unknown as LedgerRow[]) {
    const hash = hashEntry({ seq: r.seq, id: r.id, ts: r.ts, type: r.type, org: r.org, agentId: r.agent_id, runId: r.run_id, stepId: r.step_id, toolCallId: r.tool_call_id, actor: r.actor, prevHash: prev }, dataOf(r));
    setHash(db, r.seq, hash);
    prev = hash;
  }
}

/** The refund of run 3 turned into something else, canonical and re-hashed. */
function rewriteRefund(db: DatabaseSync): number {
  // A call that ended within its commit window is one `tool.call` entry: its start is `called`.
  const target = (db.prepare("SELECT seq, data FROM ledger WHERE type = 'tool.call' AND data LIKE '%payments.refund%' ORDER BY seq").all() as Array<{ seq: number; data: string }>)[3]!;
  const data = JSON.parse(target.data) as { called: Record<string, unknown> };
  db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(canonicalJson({ ...data, called: { ...data.called, input: { id: 3, amount: 1, currency: "EUR" } } }), target.seq);
  return target.seq;
}

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi.spyOn(console, "log").mockImplementation((...values: unknown[]) => void lines.push(values.join(" ")));
  const err = vi.spyOn(console, "error").mockImplementation((...values: unknown[]) => void lines.push(values.join(" ")));
  try {
    return { code: await main(args), out: lines.join("\n") };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

function verifyWith(file: string, options: { publicKey?: string } = {}): LedgerVerification {
  const { ledger, close } = openLedger(file, { checkpointEvery: EVERY, ...options });
  try {
    return ledger.verify();
  } finally {
    close();
  }
}

describe("rewriting the store without the key", () => {
  it("the untouched store verifies, fully covered, against the store's key and a key supplied out of band", () => {
    expect(entries).toBeGreaterThan(3 * EVERY);
    const file = tamperedCopy(() => {});
    expect(verifyWith(file)).toMatchObject({ ok: true, entries, coverage: { coveredTo: entries, uncovered: 0, interval: EVERY }, key: { source: "store" } });
    expect(verifyWith(file, { publicKey: publicPem })).toMatchObject({ ok: true, entries, key: { source: "supplied", keyId: keyIdOf(createPublicKey(publicPem)) } });
  });

  it("checkpoints deleted, an entry rewritten, the chain recomputed: not verified (uncovered), by verify() and by the CLI", async () => {
    let seq = 0;
    const file = tamperedCopy((db) => {
      db.exec("DELETE FROM checkpoints");
      seq = rewriteRefund(db);
      rehashFrom(db, seq);
    });
    expect(seq).toBeGreaterThan(1);
    const expected = { ok: false, reason: "uncovered", firstBadSeq: 1, entries, coverage: { coveredTo: 0, uncovered: entries } };
    expect(verifyWith(file)).toMatchObject(expected);
    expect(verifyWith(file, { publicKey: publicFile })).toMatchObject(expected);
    const warden = new Warden({ agentId: "auditor", store: file, ledger: { checkpointEvery: EVERY } });
    expect(warden.ledger.verify()).toMatchObject(expected);
    warden.close();
    const verified = await cli(["--store", file, "ledger", "verify", "--checkpoint-every", String(EVERY)]);
    expect(verified.code).toBe(1);
    expect(verified.out).toMatch(/^ledger NOT VERIFIED \(uncovered\): \d+ entries after the start are covered by no signed checkpoint/);
    const json = await cli(["--store", file, "--json", "ledger", "verify", "--checkpoint-every", String(EVERY)]);
    expect(JSON.parse(json.out)).toMatchObject(expected);
    // Neither the client nor the CLI signed anything over the forgery.
    expect(checkpointRows(file)).toEqual([]);
  });

  it("later checkpoints deleted and the entries after the last one kept rewritten: uncovered from that checkpoint", () => {
    const kept = checkpoints.find((seq) => entries - seq >= EVERY + 2)!;
    expect(kept).toBeDefined();
    const file = tamperedCopy((db) => {
      db.prepare("DELETE FROM checkpoints WHERE seq > ?").run(kept);
      db.prepare("UPDATE ledger SET actor = 'mallory' WHERE seq = ?").run(kept + 2);
      rehashFrom(db, kept + 2);
    });
    expect(verifyWith(file)).toMatchObject({ ok: false, reason: "uncovered", firstBadSeq: kept + 1, coverage: { coveredTo: kept, uncovered: entries - kept } });
  });

  it("a client that appends to a rewritten ledger refuses to sign over it, and says why", async () => {
    const file = tamperedCopy((db) => {
      db.exec("DELETE FROM checkpoints");
      rehashFrom(db, rewriteRefund(db));
    });
    const errors: unknown[] = [];
    const warden = new Warden({ agentId: "billing-agent", store: file, ledger: { checkpointEvery: EVERY, checkpointInterval: "1h" }, onError: (error) => errors.push(error) });
    for (let i = 0; i < 2 * EVERY; i++) await warden.run({ task: `more ${i}` }, async (run) => run.tool("read_order", { id: i }, () => "ok"));
    warden.close();
    expect(checkpointRows(file)).toEqual([]);
    expect(errors.map(String)).toEqual([expect.stringMatching(/checkpoint not signed: the newest checkpoint is not signed by this store's key|checkpoint not signed: \d+ entries after entry 0 are not covered/)]);
    expect(verifyWith(file)).toMatchObject({ ok: false, reason: "uncovered" });
  });

  it("`ledger verify` never signs: a forged entry appended after the last checkpoint stays unsigned (and is reported as uncovered)", async () => {
    const before = checkpointRows(tamperedCopy(() => {}));
    const file = tamperedCopy((db) => {
      const head = row(db, entries);
      const forged = { seq: entries + 1, id: "evt_forged", ts: head.ts + 1, type: "approval.approved", org: head.org, agentId: head.agent_id, runId: head.run_id, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(head.hash) };
      const dataJson = canonicalJson({ approvalId: "apr_forged", status: "approved", reviewer: "mallory" });
      insertEntry(db, forged, dataJson);
    });
    // Within the checkpoint interval, an unsigned tail is the normal state between checkpoints: reported, not hidden.
    const result = await cli(["--store", file, "ledger", "verify", "--checkpoint-every", String(EVERY)]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(new RegExp(`Signed up to entry ${entries}; 1 after it covered by no signature`));
    expect(result.out).toMatch(/read from beside the store/);
    // The old CLI signed a checkpoint over the forged entry when it closed the store; `status` opens a client.
    expect((await cli(["--store", file, "status"])).code).toBe(0);
    expect(checkpointRows(file)).toEqual(before);
    expect(verifyWith(file)).toMatchObject({ ok: true, coverage: { coveredTo: entries, uncovered: 1 } });
  });

  it("a key beside the store replaced and every checkpoint re-signed: only a key supplied out of band catches it", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    let dir = "";
    const file = tamperedCopy((db) => {
      rehashFrom(db, rewriteRefund(db));
      const update = db.prepare("UPDATE checkpoints SET hash = ?, key_id = ?, signature = ?, note = ? WHERE seq = ?");
      const origin = ledgerOrigin(publicKey);
      for (const cp of db.prepare("SELECT seq FROM checkpoints").all() as Array<{ seq: number }>) {
        const hash = hexOf(row(db, cp.seq).hash);
        const frontier = new MerkleFrontier();
        for (const r of db.prepare("SELECT hash FROM ledger WHERE seq <= ? ORDER BY seq").all(cp.seq) as Array<{ hash: Uint8Array }>) frontier.push(r.hash);
        const note = signNote(checkpointText({ origin, size: cp.seq, root: frontier.root() }), origin, privateKey);
        update.run(hash, keyIdOf(publicKey), sign(null, checkpointMessage(cp.seq, hash), privateKey).toString("base64url"), note, cp.seq);
      }
    });
    dir = join(file, "..");
    writeFileSync(join(dir, "keys", "ledger.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
    // Against the key the store itself holds, the forgery looks fine: the result says whose key that was.
    expect(verifyWith(file)).toMatchObject({ ok: true, key: { source: "store", keyId: keyIdOf(publicKey) } });
    expect(verifyWith(file, { publicKey: publicPem })).toMatchObject({ ok: false, reason: "tampered", problem: expect.stringMatching(/signed by an unknown key/), key: { source: "supplied" } });
    const cliResult = await cli(["--store", file, "ledger", "verify", "--public-key", publicFile]);
    expect(cliResult.code).toBe(1);
    expect(cliResult.out).toMatch(/^ledger BROKEN at entry \d+: checkpoint at entry \d+ was signed by an unknown key/);
  });
});

describe("the entry hash covers the stored bytes", () => {
  it("SQLite and JSON.parse read a duplicate key differently; such data is refused whichever way its hash was computed", () => {
    const text = '{"status":"rejected","status":"approved"}';
    const probe = new DatabaseSync(":memory:");
    expect((probe.prepare("SELECT json_extract(?, '$.status') AS s").get(text) as { s: string }).s).toBe("rejected");
    probe.close();
    expect((JSON.parse(text) as { status: string }).status).toBe("approved");
    const K = 5;
    // Hashed over the parsed value (the old definition): the stored bytes no longer match the hash.
    const parsed = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(text, K);
      rehashFrom(db, K, (r) => canonicalJson(JSON.parse(r.data)));
      db.exec("DELETE FROM checkpoints");
    });
    expect(verifyWith(parsed)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: K, problem: expect.stringMatching(/modified/) });
    // Hashed over the stored bytes: refused as non-canonical.
    const stored = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(text, K);
      rehashFrom(db, K);
      db.exec("DELETE FROM checkpoints");
    });
    expect(verifyWith(stored)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: K, problem: expect.stringMatching(/not stored in canonical JSON/) });
    // Spacing and number forms too.
    for (const variant of ['{ "a":1}', '{"a":1.0}', '{"a":1e0}', '{"a":"\\u0061"}']) {
      const file = tamperedCopy((db) => {
        db.prepare("UPDATE ledger SET data = ? WHERE seq = ?").run(variant, K);
        rehashFrom(db, K);
      });
      expect(verifyWith(file), variant).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/canonical/) });
    }
  });

  it("columns stored with another type (a text ts, a blob of data) are refused even with the hash recomputed", () => {
    const K = 4;
    const textTs = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET ts = ? WHERE seq = ?").run("soon", K);
      rehashFrom(db, K);
    });
    expect(verifyWith(textTs)).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/not an integer/) });
    const blob = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET data = CAST(data AS BLOB) WHERE seq = ?").run(K);
    });
    expect(verifyWith(blob)).toMatchObject({ ok: false, firstBadSeq: K, problem: expect.stringMatching(/not text/) });
  });
});

describe("naming the right entry", () => {
  it.each([1, 2, 3])("%i entries inserted at position n (chain recomputed for them) are reported at n", (count) => {
    const K = 7;
    const file = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET seq = -(seq + ?) WHERE seq >= ?").run(count, K);
      db.exec("UPDATE ledger SET seq = -seq WHERE seq < 0");
      let prev = row(db, K - 1);
      for (let i = 0; i < count; i++) {
        const forged = { seq: K + i, id: `evt_forged_${i}`, ts: prev.ts, type: "approval.approved", org: prev.org, agentId: prev.agent_id, runId: prev.run_id, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(prev.hash) };
        insertEntry(db, forged, canonicalJson({ approvalId: `apr_${i}`, status: "approved" }));
        prev = row(db, K + i);
      }
    });
    const result = verifyWith(file);
    expect(result).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: K, entries: K - 1, problem: expect.stringMatching(/^inserted/) });
  });

  it("an insertion with the whole chain after it recomputed is pinned to the range between two signed checkpoints", () => {
    const K = 7;
    const after = checkpoints.find((seq) => seq >= K)!;
    const before = [...checkpoints].reverse().find((seq) => seq < K) ?? 0;
    const file = tamperedCopy((db) => {
      db.prepare("UPDATE ledger SET seq = -(seq + 1) WHERE seq >= ?").run(K);
      db.exec("UPDATE ledger SET seq = -seq WHERE seq < 0");
      const prev = row(db, K - 1);
      insertEntry(db, { seq: K, id: "evt_forged", ts: prev.ts, type: "approval.approved", org: prev.org, agentId: null, runId: null, stepId: null, toolCallId: null, actor: "mallory", prevHash: hexOf(prev.hash) }, "{}", "00".repeat(32));
      rehashFrom(db, K);
    });
    expect(verifyWith(file)).toMatchObject({ ok: false, reason: "tampered", firstBadSeq: after, entries: before, problem: expect.stringContaining(`an entry in ${before + 1}..${after} was changed, inserted or deleted`) });
  });
});
