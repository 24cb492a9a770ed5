// Incremental witness rounds: a consistency proof from the tree's right edge kept with a checkpoint and the
// entries since equals RFC 9162's proof over the whole tree, for every pair of sizes; the embedded store's
// witness round proves from the frontier it kept, and a witness accepts it.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { consistencyProofFrom, decodeFrontier, encodeFrontier, MerkleFrontier, MerkleTree, verifyConsistency } from "../src/ledger/merkle.js";

const leaf = (i: number) => createHash("sha256").update(`entry ${i}`).digest();
const hex = (proof: Uint8Array[]) => proof.map((p) => Buffer.from(p).toString("hex"));

describe("consistency proofs from a frontier", () => {
  it("equal the whole tree's proofs for every m <= n up to 70, and verify", () => {
    const leaves = Array.from({ length: 70 }, (_, i) => leaf(i));
    const tree = new MerkleTree(leaves);
    let pairs = 0;
    for (let m = 1; m <= 70; m++) {
      const frontier = new MerkleFrontier();
      for (const l of leaves.slice(0, m)) frontier.push(l);
      for (let n = m; n <= 70; n++) {
        const proof = consistencyProofFrom(frontier, leaves.slice(m, n));
        expect(hex(proof), `${m}..${n}`).toEqual(hex(tree.consistencyProof(m, n)));
        expect(verifyConsistency(m, n, tree.root(m), tree.root(n), proof)).toBe(true);
        pairs++;
      }
    }
    expect(pairs).toBe((70 * 71) / 2);
  });

  it("at large sizes too (a frontier of 20,003 leaves, 17 more)", () => {
    const leaves = Array.from({ length: 20_020 }, (_, i) => leaf(i));
    const tree = new MerkleTree(leaves);
    const frontier = new MerkleFrontier();
    for (const l of leaves.slice(0, 20_003)) frontier.push(l);
    expect(hex(consistencyProofFrom(frontier, leaves.slice(20_003)))).toEqual(hex(tree.consistencyProof(20_003, 20_020)));
  });

  it("a stored frontier is taken back only when it folds to the signed root", () => {
    const frontier = new MerkleFrontier();
    for (let i = 0; i < 13; i++) frontier.push(leaf(i));
    const text = encodeFrontier(frontier);
    expect(decodeFrontier(13, text, frontier.root())?.root()).toEqual(frontier.root());
    const other = new MerkleFrontier();
    for (let i = 0; i < 13; i++) other.push(leaf(i + 1));
    expect(decodeFrontier(13, encodeFrontier(other), frontier.root())).toBeUndefined();
    expect(decodeFrontier(12, text, frontier.root())).toBeUndefined();
    expect(decodeFrontier(13, `${text} AAAA`, frontier.root())).toBeUndefined();
    expect(decodeFrontier(13, null, frontier.root())).toBeUndefined();
  });
});

describe("witness rounds prove from the kept frontier", () => {
  it("the embedded store: each checkpoint keeps its frontier, the round's proof equals the whole tree's, and a witness cosigns round after round", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { SqliteStore } = await import("../src/store/sqlite-store.js");
    const { loadOrCreateKey } = await import("../src/ledger/keys.js");
    const { storeWitnessedLog } = await import("../src/ledger/witnessing.js");
    const { Witness } = await import("../src/ledger/witness.js");
    const { ledgerVerifierKey } = await import("../src/ledger/evidence.js");
    const dir = mkdtempSync(join(tmpdir(), "warden-rounds-"));
    const signer = loadOrCreateKey(join(dir, "keys", "ledger.pem"));
    const store = new SqliteStore({ path: join(dir, "warden.db"), signer, checkpointEvery: 7, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, maxBatch: 1 << 30, onError: (error) => { throw error; } });
    const witness = new Witness({ name: "witness.test/rounds", logs: [ledgerVerifierKey(signer.publicKey)] });
    try {
      const log = storeWitnessedLog(store);
      let held = 0;
      for (let round = 0; round < 5; round++) {
        for (let i = 0; i < 11 + round * 3; i++) store.append({ id: `evt_${round}_${i}`, ts: 1, type: "tool.called", org: "default", agentId: "a", runId: "r", stepId: null, toolCallId: null, actor: null, dataJson: "{}" });
        store.flush();
        store.checkpointNow();
        const newest = (await log.newest())!;
        const frontier = store.peek<{ frontier: string | null }>("SELECT frontier FROM checkpoints WHERE seq = ?", newest.size)?.frontier;
        expect(frontier, "the frontier kept with the checkpoint").toMatch(/^[A-Za-z0-9+/=]+( [A-Za-z0-9+/=]+)*$/);
        const proof = held === 0 ? [] : await log.proof(held, newest.size);
        if (held > 0) {
          const whole = new MerkleTree(store.all<{ hash: Uint8Array }>("SELECT hash FROM ledger WHERE seq <= ? ORDER BY seq", newest.size).map((r) => r.hash));
          expect(hex(proof)).toEqual(hex(whole.consistencyProof(held, newest.size)));
        }
        expect(witness.addCheckpoint({ oldSize: held, proof, checkpoint: newest.note })).toMatchObject({ status: 200 });
        held = newest.size;
      }
    } finally {
      witness.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the control plane: an organization's checkpoints keep their frontiers, and its proofs equal the whole tree's", async () => {
    const { SqliteControlPlaneStore } = await import("agent-warden/server");
    const store = new SqliteControlPlaneStore({ path: ":memory:", checkpointEvery: 5 });
    try {
      const sizes: number[] = [];
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 6 + round; i++) await store.createKey({ org: "acme", role: "agent", name: `k${round}.${i}` });
        await store.checkpointLedger("acme");
        sizes.push((await store.orgWitnessedLog("acme").newest())!.size);
      }
      const hashes = [];
      for await (const entry of store.exportLedger("acme", { afterSeq: 0, limit: 10_000 })) hashes.push(Buffer.from(entry.hash, "hex"));
      const whole = new MerkleTree(hashes);
      const log = store.orgWitnessedLog("acme");
      for (let k = 1; k < sizes.length; k++) expect(hex(await log.proof(sizes[0]!, sizes[k]!))).toEqual(hex(whole.consistencyProof(sizes[0]!, sizes[k]!)));
      const { orgConsistencyProof } = await import("../src/server/org-witnessing.js");
      const { runSync } = await import("../src/server/sql.js");
      const db = store.store.db;
      expect((db.prepare("SELECT count(*) AS n FROM org_checkpoints WHERE org = 'acme' AND frontier IS NOT NULL AND note IS NOT NULL").get() as { n: number }).n).toBeGreaterThanOrEqual(sizes.length);
      // Without the frontier kept (a checkpoint from before schema 4), the whole tree answers the same.
      db.prepare("UPDATE org_checkpoints SET frontier = NULL").run();
      const query = (op: { kind: string; sql: string; params: unknown[] }) => (op.kind === "all" ? db.prepare(op.sql).all(...(op.params as never[])) : db.prepare(op.sql).get(...(op.params as never[])));
      expect(hex(runSync(orgConsistencyProof("acme", sizes[0]!, sizes[3]!), query))).toEqual(hex(whole.consistencyProof(sizes[0]!, sizes[3]!)));
    } finally {
      await store.close();
    }
  });
});
