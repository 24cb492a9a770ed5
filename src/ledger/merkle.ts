// RFC 9162 (Certificate Transparency 2.0) Merkle tree over the ledger: each leaf is an entry's hash, so
// the tree is built over the existing hash chain, and any entry has an O(log n) inclusion proof and any
// two tree sizes a consistency proof. The hash function can be passed in.
import { hash } from "node:crypto";

/** SHA-256 over the concatenation of `parts`. */
export type Sha256 = (...parts: Uint8Array[]) => Uint8Array;

// One-shot over one buffer: a third of the cost of a streaming hash for the 33- and 65-byte inputs of the
// tree. The parts are laid side by side in a scratch buffer (hashing is synchronous, so one is enough), and
// the digest comes back as hex: a "buffer" digest allocates its own backing store, four times the cost.
const scratch = Buffer.allocUnsafe(65);
export const nodeSha256: Sha256 = (...parts) => {
  let data: Uint8Array;
  if (parts.length === 1) data = parts[0]!;
  else {
    let size = 0;
    for (const part of parts) size += part.length;
    const joined = size <= scratch.length ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    data = joined;
  }
  return Buffer.from(hash("sha256", data, "hex"), "hex");
};

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

/** RFC 9162 §2.1.1: the hash of a leaf whose data is the entry hash (32 bytes). */
export function leafHash(entryHash: Uint8Array, sha: Sha256 = nodeSha256): Uint8Array {
  return sha(LEAF, entryHash);
}

export function nodeHash(left: Uint8Array, right: Uint8Array, sha: Sha256 = nodeSha256): Uint8Array {
  return sha(NODE, left, right);
}

/** The root of the empty tree: SHA-256 of nothing. */
export function emptyRoot(sha: Sha256 = nodeSha256): Uint8Array {
  return sha();
}

/**
 * The right edge of a tree built leaf by leaf: the roots of its perfect subtrees, largest first. Appending
 * costs two hashes amortized, and the root at the current size is one fold.
 */
export class MerkleFrontier {
  readonly #sha: Sha256;
  /** Perfect subtree roots, largest first; their sizes are the set bits of `size`. */
  #nodes: Uint8Array[] = [];
  size = 0;

  constructor(sha: Sha256 = nodeSha256) {
    this.#sha = sha;
  }

  /** Adds one leaf: the entry hash (32 bytes). */
  push(entryHash: Uint8Array): void {
    let node = leafHash(entryHash, this.#sha);
    // Merge equal-sized subtrees: as many as the trailing one bits of the old size.
    for (let size = this.size; size & 1; size >>= 1) node = nodeHash(this.#nodes.pop()!, node, this.#sha);
    this.#nodes.push(node);
    this.size++;
  }

  /** The tree head at the current size. */
  root(): Uint8Array {
    if (this.#nodes.length === 0) return emptyRoot(this.#sha);
    let root = this.#nodes[this.#nodes.length - 1]!;
    for (let i = this.#nodes.length - 2; i >= 0; i--) root = nodeHash(this.#nodes[i]!, root, this.#sha);
    return root;
  }

  /** The perfect subtree roots, largest first: with `size`, all it takes to carry on from here (`MerkleFrontier.of`). */
  nodes(): Uint8Array[] {
    return [...this.#nodes];
  }

  /** A frontier resumed from `nodes()` at `size`; undefined when they cannot belong together. */
  static of(size: number, nodes: Uint8Array[], sha: Sha256 = nodeSha256): MerkleFrontier | undefined {
    let bits = 0;
    for (let rest = size; rest > 0; rest = Math.floor(rest / 2)) bits += rest % 2;
    if (!Number.isSafeInteger(size) || size < 0 || bits !== nodes.length || nodes.some((n) => n.length !== 32)) return undefined;
    const frontier = new MerkleFrontier(sha);
    frontier.#nodes = [...nodes];
    frontier.size = size;
    return frontier;
  }

  clone(): MerkleFrontier {
    const copy = new MerkleFrontier(this.#sha);
    copy.#nodes = [...this.#nodes];
    copy.size = this.size;
    return copy;
  }
}

/** A tree held whole in memory (level by level), for proofs: built from the entry hashes of leaves 0..n-1. */
export class MerkleTree {
  readonly #levels: Uint8Array[][];
  readonly #sha: Sha256;

  constructor(entryHashes: Uint8Array[], sha: Sha256 = nodeSha256) {
    this.#sha = sha;
    const leaves = entryHashes.map((h) => leafHash(h, sha));
    this.#levels = [leaves];
    for (let level = leaves; level.length > 1; ) {
      const next: Uint8Array[] = [];
      for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!, sha));
      this.#levels.push(next);
      level = next;
    }
  }

  get size(): number {
    return this.#levels[0]!.length;
  }

  /** The root of the first `n` leaves (RFC 9162 MTH), from the perfect subtrees held at each level. */
  root(n = this.size): Uint8Array {
    if (n === 0) return emptyRoot(this.#sha);
    return this.#subtree(0, n);
  }

  /** MTH(D[start:start+n]) for a range that the level arrays can answer by splitting. */
  #subtree(start: number, n: number): Uint8Array {
    if ((n & (n - 1)) === 0 && start % n === 0) return this.#levels[Math.log2(n)]![start / n]!;
    const k = largestPowerOfTwoBelow(n);
    return nodeHash(this.#subtree(start, k), this.#subtree(start + k, n - k), this.#sha);
  }

  /** RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of size `n`. */
  inclusionProof(index: number, n = this.size): Uint8Array[] {
    if (!(index >= 0 && index < n && n <= this.size)) throw new RangeError(`leaf ${index} is not in a tree of size ${n}`);
    const path: Uint8Array[] = [];
    const walk = (m: number, start: number, size: number): void => {
      if (size === 1) return;
      const k = largestPowerOfTwoBelow(size);
      if (m < k) {
        walk(m, start, k);
        path.push(this.#subtree(start + k, size - k));
      } else {
        walk(m - k, start + k, size - k);
        path.push(this.#subtree(start, k));
      }
    };
    walk(index, 0, n);
    return path;
  }

  /** MTH(D[start:start+n]): the root of any range of leaves (0 <= start, start + n <= size). */
  rangeRoot(start: number, n: number): Uint8Array {
    if (!(start >= 0 && n > 0 && start + n <= this.size)) throw new RangeError(`no range of ${n} leaves at ${start} in a tree of size ${this.size}`);
    return this.#subtree(start, n);
  }

  /** RFC 9162 §2.1.4.1: the consistency proof between the trees of sizes `m` and `n` (0 < m <= n). */
  consistencyProof(m: number, n = this.size): Uint8Array[] {
    if (!(m > 0 && m <= n && n <= this.size)) throw new RangeError(`no consistency proof from size ${m} to ${n}`);
    return consistencyPath(m, n, (start, size) => this.#subtree(start, size));
  }
}

/**
 * RFC 9162 §2.1.4.1 SUBPROOF, with the subtree roots asked of `subtree(start, size)`. Every range asked
 * either lies within the first `m` leaves as a run of whole perfect subtrees of the frontier at `m`, or
 * lies within leaves `m..n-1`: what `consistencyProofFrom` answers without the rest of the tree.
 */
function consistencyPath(m: number, n: number, subtree: (start: number, size: number) => Uint8Array): Uint8Array[] {
  const proof: Uint8Array[] = [];
  const sub = (m: number, start: number, size: number, complete: boolean): void => {
    if (m === size) {
      if (!complete) proof.push(subtree(start, size));
      return;
    }
    const k = largestPowerOfTwoBelow(size);
    if (m <= k) {
      sub(m, start, k, complete);
      proof.push(subtree(start + k, size - k));
    } else {
      sub(m - k, start + k, size - k, false);
      proof.push(subtree(start, k));
    }
  };
  sub(m, 0, n, true);
  return proof;
}

/**
 * The consistency proof from size `from.size` to `from.size + leaves.length`, from the frontier at the old
 * size and the entry hashes appended since: O(new entries + log n) hashes, whatever the log's length, so
 * a witness round costs what was written since the last one.
 */
export function consistencyProofFrom(from: MerkleFrontier, leaves: readonly Uint8Array[], sha: Sha256 = nodeSha256): Uint8Array[] {
  const m = from.size;
  const n = m + leaves.length;
  if (!(m > 0)) throw new RangeError("no consistency proof from the empty tree");
  if (m === n) return [];
  const nodes = from.nodes();
  // Where each perfect subtree of the frontier starts: its sizes are the set bits of m, largest first.
  const starts: number[] = [];
  const sizes: number[] = [];
  for (let rest = m, start = 0, bit = 2 ** Math.floor(Math.log2(m)); bit >= 1; bit /= 2) {
    if (rest >= bit) {
      starts.push(start);
      sizes.push(bit);
      start += bit;
      rest -= bit;
    }
  }
  const after = new MerkleTree([...leaves], sha);
  return consistencyPath(m, n, (start, size) => {
    if (start >= m) return after.rangeRoot(start - m, size);
    // A run of whole frontier subtrees, folded right to left.
    const first = starts.indexOf(start);
    let end = first;
    let covered = 0;
    while (end < nodes.length && covered < size) covered += sizes[end++]!;
    if (first < 0 || covered !== size) throw new RangeError(`leaves ${start}..${start + size - 1} are not whole subtrees of the frontier at ${m}`);
    let root = nodes[end - 1]!;
    for (let i = end - 2; i >= first; i--) root = nodeHash(nodes[i]!, root, sha);
    return root;
  });
}

/** A frontier's nodes as text (base64, space-separated) to store beside its checkpoint. */
export function encodeFrontier(frontier: MerkleFrontier): string {
  return frontier.nodes().map((node) => Buffer.from(node).toString("base64")).join(" ");
}

/**
 * A stored frontier of a tree of `size` leaves, accepted only when it folds to `root` (the root a signed
 * checkpoint of that size carries): nodes that fold to a signed root are the tree's own.
 */
export function decodeFrontier(size: number, text: string | null | undefined, root: Uint8Array, sha: Sha256 = nodeSha256): MerkleFrontier | undefined {
  if (text === null || text === undefined) return undefined;
  const nodes = text === "" ? [] : text.split(" ").map((part) => Buffer.from(part, "base64"));
  if (nodes.some((node, i) => node.length !== 32 || node.toString("base64") !== text.split(" ")[i])) return undefined;
  const frontier = MerkleFrontier.of(size, nodes.map((node) => new Uint8Array(node)), sha);
  return frontier !== undefined && equalBytes(frontier.root(), root) ? frontier : undefined;
}

/** The largest power of two strictly below `n` (n >= 2). */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 9162 §2.1.3.2: does `proof` take leaf `index` (its entry hash) to `root` in a tree of size `size`? */
export function verifyInclusion(entryHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array, sha: Sha256 = nodeSha256): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash(entryHash, sha);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      r = nodeHash(p, r, sha);
      if (!(fn & 1)) while (fn !== 0 && !(fn & 1)) {
        fn >>>= 1;
        sn >>>= 1;
      }
    } else r = nodeHash(r, p, sha);
    fn >>>= 1;
    sn >>>= 1;
  }
  return sn === 0 && equalBytes(r, root);
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree of size `m` (root `first`) is a prefix of the tree of size `n` (root `second`)? */
export function verifyConsistency(m: number, n: number, first: Uint8Array, second: Uint8Array, proof: readonly Uint8Array[], sha: Sha256 = nodeSha256): boolean {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && m > 0 && m <= n)) return false;
  if (m === n) return proof.length === 0 && equalBytes(first, second);
  if (proof.length === 0) return false;
  let path = [...proof];
  // If m is a power of two, the first subtree root is `first` itself.
  if ((m & (m - 1)) === 0) path = [first, ...path];
  let fn = m - 1;
  let sn = n - 1;
  while (fn & 1) {
    fn >>>= 1;
    sn >>>= 1;
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      fr = nodeHash(c, fr, sha);
      sr = nodeHash(c, sr, sha);
      if (!(fn & 1)) while (fn !== 0 && !(fn & 1)) {
        fn >>>= 1;
        sn >>>= 1;
      }
    } else sr = nodeHash(sr, c, sha);
    fn >>>= 1;
    sn >>>= 1;
  }
  return sn === 0 && equalBytes(fr, first) && equalBytes(sr, second);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
