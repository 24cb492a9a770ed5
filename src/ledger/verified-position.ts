import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { z } from "zod";
import { once } from "../internal/once.js";
import { MerkleFrontier } from "./merkle.js";

/**
 * Where a verification ended: the newest signed checkpoint it checked, with the Merkle tree's right
 * edge there, so the next verification re-hashes only what follows. Kept beside the store file
 * (`<store>-verified`, like SQLite's own `-wal`) and in memory. Nothing in it is trusted as it stands:
 * the checkpoint's signature, the entry it names and the tree head are checked again before it is used.
 */
export interface VerifiedPosition {
  keyId: string;
  seq: number;
  hash: string;
  frontier: MerkleFrontier;
}

// Built on the first verification, not at import.
const positionFile = once(() =>
  z.object({
    format: z.literal("agent-warden.verified/1"),
    keyId: z.string(),
    seq: z.number().int().positive(),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    frontier: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
  }),
);

/** The sidecar file of a store file; none for an in-memory store. */
export function verifiedPositionPath(storePath: string): string | undefined {
  return storePath === ":memory:" ? undefined : `${storePath}-verified`;
}

/** The position last saved for this key, or undefined (none, unreadable, another key's, malformed). */
export function readVerifiedPosition(path: string | undefined, keyId: string): VerifiedPosition | undefined {
  if (path === undefined) return undefined;
  try {
    // Read once per verification: compiling zod's fast path for a single parse costs more than it saves.
    const parsed = positionFile().safeParse(JSON.parse(readFileSync(path, "utf8")), { jitless: true });
    if (!parsed.success || parsed.data.keyId !== keyId) return undefined;
    const frontier = MerkleFrontier.of(parsed.data.seq, parsed.data.frontier.map((n) => Buffer.from(n, "hex")));
    return frontier === undefined ? undefined : { keyId, seq: parsed.data.seq, hash: parsed.data.hash, frontier };
  } catch {
    return undefined;
  }
}

/** Saves the position (write then rename, so a reader never sees half a file); a place that cannot be written keeps nothing. */
export function writeVerifiedPosition(path: string | undefined, position: VerifiedPosition): void {
  if (path === undefined) return;
  const text = JSON.stringify({ format: "agent-warden.verified/1", keyId: position.keyId, seq: position.seq, hash: position.hash, frontier: position.frontier.nodes().map((n) => Buffer.from(n).toString("hex")) });
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch {
    // A read-only place: the next verification re-hashes from the start, which is only slower.
  }
}
