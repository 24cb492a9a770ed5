// A store opened on a ledger it did not write (a new process, or the writer thread) resumes the Merkle
// tree from the frontier kept with the newest checkpoint its key signed, rather than re-reading every
// entry hash; a frontier that does not fold to the signed root is not used.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { loadOrCreateKey, type SigningKey } from "../src/ledger/keys.js";
import { createHash } from "node:crypto";
import { extendFrontier } from "../src/ledger/frontier-hex.js";
import { encodeFrontier, MerkleFrontier, MerkleTree } from "../src/ledger/merkle.js";
import { ledgerOrigin, openCheckpoint } from "../src/ledger/note.js";
import { SqliteStore } from "../src/store/sqlite-store.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function open(path: string, signer: SigningKey): SqliteStore {
  return new SqliteStore({ path, signer, checkpointEvery: 7, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, maxBatch: 1 << 30, onError: (error) => { throw error; } });
}

function append(store: SqliteStore, from: number, count: number): void {
  for (let i = from; i < from + count; i++) store.append({ id: `evt_${i}`, ts: 1_700_000_000_000 + i, type: "tool.called", org: "default", agentId: "a", runId: "r", stepId: null, toolCallId: null, actor: null, dataJson: `{"i":${i}}` });
  store.flush();
}

const hashes = (path: string): Buffer[] => {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare("SELECT hash FROM ledger ORDER BY seq").all() as Array<{ hash: Uint8Array }>).map((row) => Buffer.from(row.hash));
  } finally {
    db.close();
  }
};

/** The root the newest checkpoint's note signs, at its size. */
function signedRoot(path: string, signer: SigningKey): { size: number; root: string } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const row = db.prepare("SELECT note FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as { note: string };
    const opened = openCheckpoint(row.note, { name: ledgerOrigin(signer.publicKey), publicKey: signer.publicKey });
    if ("problem" in opened) throw new Error(opened.problem);
    return { size: opened.head.size, root: Buffer.from(opened.head.root).toString("hex") };
  } finally {
    db.close();
  }
}

function setUp(): { path: string; signer: SigningKey; before: Buffer[] } {
  const dir = mkdtempSync(join(tmpdir(), "warden-frontier-"));
  dirs.push(dir);
  const path = join(dir, "warden.db");
  const signer = loadOrCreateKey(join(dir, "keys", "ledger.pem"));
  const first = open(path, signer);
  append(first, 0, 30);
  first.checkpointNow();
  first.close();
  const before = hashes(path);
  expect(signedRoot(path, signer)).toEqual({ size: 30, root: Buffer.from(new MerkleTree(before).root()).toString("hex") });
  return { path, signer, before };
}

/** Changes a stored value behind the store's back. */
function tamper(path: string, sql: string): void {
  const db = new DatabaseSync(path);
  try {
    db.exec(sql);
  } finally {
    db.close();
  }
}

describe("the Merkle tree of a ledger opened again", () => {
  it("resumes from the frontier kept with the newest signed checkpoint: hashes before it are not read again", () => {
    const { path, signer, before } = setUp();
    // An entry hash before that checkpoint, changed: a store that re-read every hash would fold it into the tree.
    tamper(path, "UPDATE ledger SET hash = zeroblob(32) WHERE seq = 3");
    const second = open(path, signer);
    append(second, 30, 5);
    second.checkpointNow();
    second.close();
    const after = hashes(path);
    expect(after.slice(30)).toHaveLength(5);
    const expected = new MerkleTree([...before, ...after.slice(30)]).root();
    expect(signedRoot(path, signer)).toEqual({ size: 35, root: Buffer.from(expected).toString("hex") });
  });

  it("rebuilds from the entries when the kept frontier does not fold to the signed root", () => {
    const { path, signer } = setUp();
    tamper(path, "UPDATE checkpoints SET frontier = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='");
    const second = open(path, signer);
    append(second, 30, 5);
    second.checkpointNow();
    second.close();
    expect(signedRoot(path, signer)).toEqual({ size: 35, root: Buffer.from(new MerkleTree(hashes(path)).root()).toString("hex") });
  });
});

describe("the writer's frontier over hex digests", () => {
  it("is the frontier `push` builds, whatever the size it starts from and the leaves appended at once", () => {
    const leaves = Array.from({ length: 140 }, (_, i) => createHash("sha256").update(`entry ${i}`).digest());
    const tree = new MerkleTree(leaves);
    for (let start = 0; start <= 70; start++) {
      const pushed = new MerkleFrontier();
      for (const leaf of leaves.slice(0, start)) pushed.push(leaf);
      let extended = pushed.clone();
      for (let at = start; at < leaves.length; ) {
        const take = 1 + ((at * 7) % 13);
        extended = extendFrontier(extended, leaves.slice(at, at + take).map((leaf) => leaf.toString("hex")));
        for (const leaf of leaves.slice(at, at + take)) pushed.push(leaf);
        at += take;
        expect(extended.size).toBe(Math.min(at, leaves.length));
        expect(encodeFrontier(extended), `from ${start} to ${at}`).toBe(encodeFrontier(pushed));
      }
      expect(Buffer.from(extended.root()).toString("hex")).toBe(Buffer.from(tree.root()).toString("hex"));
    }
  });
});
