import { hash } from "node:crypto";

/**
 * One ledger entry, as exported and verified. Every field is covered by `hash`, which chains to the
 * previous entry's, so no entry can change or go missing unnoticed.
 * @example
 * import type { LedgerEntry } from "agent-warden";
 * const trail: LedgerEntry[] = warden.ledger.entries({ runId });
 */
export interface LedgerEntry {
  seq: number;
  id: string;
  ts: number;
  type: string;
  org: string;
  agentId: string | null;
  runId: string | null;
  stepId: string | null;
  toolCallId: string | null;
  actor: string | null;
  data: unknown;
  prevHash: string;
  hash: string;
}

/** The hash of the (absent) entry before the first one. */
export const GENESIS_HASH = "0".repeat(64);

/** SHA-256 over the canonical JSON of every field but `hash`. `dataJson` is `canonicalJson(entry.data)`. */
export function hashEntry(entry: Omit<LedgerEntry, "hash" | "data">, dataJson: string): string {
  // Keys in sorted order, so this string is the canonical JSON of the entry without its hash.
  const text =
    `{"actor":${str(entry.actor)},"agentId":${str(entry.agentId)},"data":${dataJson},` +
    `"id":${str(entry.id)},"org":${str(entry.org)},"prevHash":${str(entry.prevHash)},` +
    `"runId":${str(entry.runId)},"seq":${entry.seq},"stepId":${str(entry.stepId)},` +
    `"toolCallId":${str(entry.toolCallId)},"ts":${entry.ts},"type":${str(entry.type)}}`;
  return hash("sha256", text, "hex");
}

// Canonical JSON of a string or null: what canonicalJson gives, without its type dispatch.
const str = (value: string | null): string => (value === null ? "null" : JSON.stringify(value));

/** What a checkpoint signs: the head it vouches for. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`agent-warden ledger checkpoint ${seq} ${hash}`);
}
