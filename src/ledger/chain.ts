import { hash } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";
import { entryHashText, placedEntryHashText, type HashedFields } from "../verify/entry.js";

/**
 * One ledger entry, as exported and verified. Every field is covered by `hash`, which chains to the
 * previous entry's, so no entry can change or go missing unnoticed.
 * @example
 * import type { LedgerEntry } from "agent-warden";
 * const trail: LedgerEntry[] = warden.ledger.entries({ runId });
 */
export interface LedgerEntry extends HashedFields {
  data: unknown;
  hash: string;
}

/** The hash of the (absent) entry before the first one. */
export { GENESIS_HASH } from "../verify/entry.js";

/** SHA-256 over the canonical JSON of every field but `hash`. `dataJson` is `canonicalJson(entry.data)`. */
export function hashEntry(entry: Omit<LedgerEntry, "hash" | "data">, dataJson: string): string {
  return hash("sha256", entryHashText(entry, dataJson), "hex");
}

/** `hashEntry` as the 32 bytes a store keeps. */
export function hashEntryBytes(entry: Omit<LedgerEntry, "hash" | "data">, dataJson: string): Buffer {
  return Buffer.from(hashEntry(entry, dataJson), "hex");
}

/**
 * The hash (hex) of an entry given as its fields, its place in the chain and its data: what the store's
 * writer computes for each draft. A hex digest and its decoding cost half a "buffer" digest (which
 * allocates a backing store of its own), and the chain needs the hex for the next entry anyway.
 */
export function hashPlacedEntry(fields: Omit<HashedFields, "seq" | "prevHash">, seq: number, prevHash: string, dataJson: string): string {
  return hash("sha256", placedEntryHashText(fields, seq, prevHash, dataJson), "hex");
}

/**
 * A stored entry hash as its 32 bytes: a BLOB (schema 6 on) or 64 hex digits (stores from before, read
 * without migrating). Undefined for anything else, which is a modified row.
 */
export function storedHash(value: unknown): Buffer | undefined {
  if (value instanceof Uint8Array) return value.byteLength === 32 ? Buffer.from(value.buffer, value.byteOffset, 32) : undefined;
  return typeof value === "string" && /^[0-9a-f]{64}$/.test(value) ? Buffer.from(value, "hex") : undefined;
}

/** A stored entry hash as hex (what checkpoints, exports and bundles carry); an unreadable one as it reads. */
export function storedHashHex(value: unknown): string {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
  return String(value);
}

/** What a checkpoint signs: the head it vouches for. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`agent-warden ledger checkpoint ${seq} ${hash}`);
}

/** The stored columns of one ledger row, as SQLite returns them (the chain link is the previous row's hash, not stored). */
export interface StoredLedgerRow {
  seq: unknown;
  id: unknown;
  ts: unknown;
  type: unknown;
  org: unknown;
  agent_id: unknown;
  run_id: unknown;
  step_id: unknown;
  tool_call_id: unknown;
  actor: unknown;
  data: unknown;
  hash: unknown;
}

/**
 * Checks one stored row chained to `prevHash` (the hash of the row before it, hex): every column of the
 * type the format gives it, `data` stored in its canonical form, and `hash` over exactly the stored bytes.
 * The row's hash (bytes and hex, the next row's link), or the problem.
 *
 * The stored data text itself is hashed: a text that SQLite's json functions and `JSON.parse` read
 * differently (a duplicate key, a number beyond double precision) is not canonical and is refused.
 */
export function checkStoredRow(row: StoredLedgerRow, prevHash: string): { hash: Buffer; hex: string } | { problem: string } {
  const { seq, ts } = row;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(ts)) return { problem: "has a seq or ts that is not an integer (modified)" };
  for (const [name, value] of [["id", row.id], ["type", row.type], ["org", row.org], ["data", row.data]] as const) {
    if (typeof value !== "string") return { problem: `has a ${name} that is not text (modified)` };
  }
  for (const [name, value] of [["agent_id", row.agent_id], ["run_id", row.run_id], ["step_id", row.step_id], ["tool_call_id", row.tool_call_id], ["actor", row.actor]] as const) {
    if (value !== null && typeof value !== "string") return { problem: `has a ${name} that is neither text nor null (modified)` };
  }
  const stored = storedHash(row.hash);
  if (stored === undefined) return { problem: "has a hash that is not 32 bytes (modified)" };
  const data = row.data as string;
  let canonical: string;
  try {
    canonical = canonicalJson(JSON.parse(data));
  } catch {
    return { problem: "data is not valid JSON (modified)" };
  }
  if (!hashEntryBytes(entryOf(row, prevHash), data).equals(stored)) return { problem: "content does not match its hash (modified)" };
  // Hashed as stored, but only one stored form is valid: a reader must not see other data than the hash covers.
  if (canonical !== data) return { problem: "data is not stored in canonical JSON (modified: duplicate keys, spacing or number forms can read differently)" };
  return { hash: stored, hex: stored.toString("hex") };
}

/**
 * Whether a row that does not match its hash was written at `seq` after an entry whose hash is `prevHash`:
 * how a row moved up by entries put in before it still reads. Only for explaining a failure.
 */
export function rowWasAt(row: StoredLedgerRow, seq: number, prevHash: string): boolean {
  const stored = storedHash(row.hash);
  return stored !== undefined && typeof row.data === "string" && hashEntryBytes(entryOf({ ...row, seq }, prevHash), row.data).equals(stored);
}

function entryOf(row: StoredLedgerRow, prevHash: string): Omit<LedgerEntry, "hash" | "data"> {
  return { seq: row.seq as number, id: row.id as string, ts: row.ts as number, type: row.type as string, org: row.org as string, agentId: row.agent_id as string | null, runId: row.run_id as string | null, stepId: row.step_id as string | null, toolCallId: row.tool_call_id as string | null, actor: row.actor as string | null, prevHash };
}
