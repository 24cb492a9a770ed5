// The writer's side of the Merkle tree: leaves appended as the hex digests the chain computes, hashed in two
// scratch buffers. `MerkleFrontier.push` takes and returns buffers, which cost the writer two allocations
// per entry; here nothing is allocated per entry but the digests' strings.
import { hash } from "node:crypto";
import { MerkleFrontier } from "./merkle.js";

// RFC 9162: a leaf hashes 0x00 and its data (the entry hash), a node 0x01 and its two children.
const leafInput = Buffer.alloc(33);
const nodeInput = Buffer.alloc(65, 1);

/** `frontier` with the entry hashes (hex) appended as leaves: the tree `push` builds, one leaf at a time. */
export function extendFrontier(frontier: MerkleFrontier, entryHashes: readonly string[]): MerkleFrontier {
  if (entryHashes.length === 0) return frontier;
  const nodes = frontier.nodes().map((node) => Buffer.from(node.buffer, node.byteOffset, node.byteLength).toString("hex"));
  let size = frontier.size;
  for (const entryHash of entryHashes) {
    leafInput.write(entryHash, 1, "hex");
    let node = hash("sha256", leafInput, "hex");
    // Merge equal-sized subtrees: as many as the trailing one bits of the old size.
    for (let rest = size; rest % 2 === 1; rest = (rest - 1) / 2) {
      nodeInput.write(nodes.pop()!, 1, "hex");
      nodeInput.write(node, 33, "hex");
      node = hash("sha256", nodeInput, "hex");
    }
    nodes.push(node);
    size++;
  }
  return MerkleFrontier.of(size, nodes.map((node) => new Uint8Array(Buffer.from(node, "hex"))))!;
}
