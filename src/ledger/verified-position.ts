import { readFileSync, renameSync, writeFileSync } from "node:fs";
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

const HEX_HASH = /^[0-9a-f]{64}$/;

/**
 * The saved file's fields, or undefined when it is not one. Checked by hand, not with zod: the store's
 * writer thread loads this module, and importing zod there would add a good part to the thread's start.
 */
function positionFile(value: unknown): { keyId: string; seq: number; hash: string; frontier: string[] } | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const { format, keyId, seq, hash, frontier } = value as Record<string, unknown>;
  if (format !== "agent-warden.verified/1" || typeof keyId !== "string" || typeof seq !== "number" || !Number.isSafeInteger(seq) || seq <= 0) return undefined;
  if (typeof hash !== "string" || !HEX_HASH.test(hash) || !Array.isArray(frontier) || !frontier.every((node) => typeof node === "string" && HEX_HASH.test(node))) return undefined;
  return { keyId, seq, hash, frontier: frontier as string[] };
}

/** The sidecar file of a store file; none for an in-memory store. */
export function verifiedPositionPath(storePath: string): string | undefined {
  return storePath === ":memory:" ? undefined : `${storePath}-verified`;
}

/** The position last saved for this key, or undefined (none, unreadable, another key's, malformed). */
export function readVerifiedPosition(path: string | undefined, keyId: string): VerifiedPosition | undefined {
  if (path === undefined) return undefined;
  try {
    const parsed = positionFile(JSON.parse(readFileSync(path, "utf8")));
    if (parsed === undefined || parsed.keyId !== keyId) return undefined;
    const frontier = MerkleFrontier.of(parsed.seq, parsed.frontier.map((n) => Buffer.from(n, "hex")));
    return frontier === undefined ? undefined : { keyId, seq: parsed.seq, hash: parsed.hash, frontier };
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
