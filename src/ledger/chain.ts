import { hash } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";
import { entryHashText, type HashedFields } from "../verify/entry.js";

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

/** What a checkpoint signs: the head it vouches for. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`agent-warden ledger checkpoint ${seq} ${hash}`);
}

/** The stored columns of one ledger row, as SQLite returns them. */
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
  prev_hash: unknown;
  hash: unknown;
}

/**
 * Checks one stored row on its own: every column of the type the format gives it, `data` stored in its
 * canonical form, and `hash` over exactly the stored bytes. A problem, or undefined.
 *
 * The stored data text itself is hashed: a text that SQLite's json functions and `JSON.parse` read
 * differently (a duplicate key, a number beyond double precision) is not canonical and is refused.
 */
export function storedRowProblem(row: StoredLedgerRow): string | undefined {
  const { seq, ts } = row;
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(ts)) return "has a seq or ts that is not an integer (modified)";
  for (const [name, value] of [["id", row.id], ["type", row.type], ["org", row.org], ["data", row.data], ["prev_hash", row.prev_hash], ["hash", row.hash]] as const) {
    if (typeof value !== "string") return `has a ${name} that is not text (modified)`;
  }
  for (const [name, value] of [["agent_id", row.agent_id], ["run_id", row.run_id], ["step_id", row.step_id], ["tool_call_id", row.tool_call_id], ["actor", row.actor]] as const) {
    if (value !== null && typeof value !== "string") return `has a ${name} that is neither text nor null (modified)`;
  }
  const data = row.data as string;
  let canonical: string;
  try {
    canonical = canonicalJson(JSON.parse(data));
  } catch {
    return "data is not valid JSON (modified)";
  }
  const entry = { seq: seq as number, id: row.id as string, ts: ts as number, type: row.type as string, org: row.org as string, agentId: row.agent_id as string | null, runId: row.run_id as string | null, stepId: row.step_id as string | null, toolCallId: row.tool_call_id as string | null, actor: row.actor as string | null, prevHash: row.prev_hash as string };
  if (hashEntry(entry, data) !== row.hash) return "content does not match its hash (modified)";
  // Hashed as stored, but only one stored form is valid: a reader must not see other data than the hash covers.
  if (canonical !== data) return "data is not stored in canonical JSON (modified: duplicate keys, spacing or number forms can read differently)";
  return undefined;
}
