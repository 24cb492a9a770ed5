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
