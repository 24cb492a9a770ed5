import { createHash } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";

/** One ledger entry. Every field is covered by `hash`, which chains to the previous entry's. */
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
    `{"actor":${canonicalJson(entry.actor)},"agentId":${canonicalJson(entry.agentId)},"data":${dataJson},` +
    `"id":${canonicalJson(entry.id)},"org":${canonicalJson(entry.org)},"prevHash":${canonicalJson(entry.prevHash)},` +
    `"runId":${canonicalJson(entry.runId)},"seq":${entry.seq},"stepId":${canonicalJson(entry.stepId)},` +
    `"toolCallId":${canonicalJson(entry.toolCallId)},"ts":${entry.ts},"type":${canonicalJson(entry.type)}}`;
  return createHash("sha256").update(text).digest("hex");
}

/** What a checkpoint signs: the head it vouches for. */
export function checkpointMessage(seq: number, hash: string): Buffer {
  return Buffer.from(`agent-warden ledger checkpoint ${seq} ${hash}`);
}
