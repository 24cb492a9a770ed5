// One ledger entry's hash: SHA-256 over the canonical JSON of every field but `hash`. The text is built
// here once, for the ledger's own chain (node:crypto) and for the verifier (WebCrypto).
import { canonicalJson } from "../internal/canonical.js";
import { utf8 } from "./bytes.js";
import { sha256Hex } from "./crypto.js";
import type { EvidenceEntry } from "./schema.js";

/** The hashed fields of an entry, `data` aside (passed as its canonical JSON text). */
export interface HashedFields {
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
  prevHash: string;
}

/** The exact text an entry's hash covers. `dataJson` is the canonical JSON of its data. */
export function entryHashText(entry: HashedFields, dataJson: string): string {
  return placedEntryHashText(entry, entry.seq, entry.prevHash, dataJson);
}

/** `entryHashText` of fields given apart from their place in the chain (`seq`, `prevHash`): no entry object is built. */
export function placedEntryHashText(fields: Omit<HashedFields, "seq" | "prevHash">, seq: number, prevHash: string, dataJson: string): string {
  // Keys in sorted order, so this string is the canonical JSON of the entry without its hash.
  return (
    `{"actor":${repeated(ACTOR, fields.actor)},"agentId":${repeated(AGENT, fields.agentId)},"data":${dataJson},` +
    `"id":${str(fields.id)},"org":${repeated(ORG, fields.org)},"prevHash":${str(prevHash)},` +
    `"runId":${repeated(RUN, fields.runId)},"seq":${seq},"stepId":${repeated(STEP, fields.stepId)},` +
    `"toolCallId":${str(fields.toolCallId)},"ts":${fields.ts},"type":${repeated(TYPE, fields.type)}}`
  );
}

// Canonical JSON of a string or null: what canonicalJson gives, without its type dispatch.
const str = (value: string | null): string => (value === null ? "null" : JSON.stringify(value));

// The fields that mostly repeat from one entry to the next (a run's actor, agent, org, run, step and the
// entry type): each slot keeps its last value's JSON text, so a chain of entries escapes them once.
const ACTOR = 0;
const AGENT = 1;
const ORG = 2;
const RUN = 3;
const STEP = 4;
const TYPE = 5;
const lastValues: Array<string | null | undefined> = [undefined, undefined, undefined, undefined, undefined, undefined];
const lastTexts: string[] = ["", "", "", "", "", ""];
function repeated(slot: number, value: string | null): string {
  if (lastValues[slot] === value) return lastTexts[slot]!;
  lastValues[slot] = value;
  return (lastTexts[slot] = str(value));
}

/** The hash of the (absent) entry before the first one. */
export const GENESIS_HASH = "0".repeat(64);

export type EntryProblem = { code: "entry_malformed" | "entry_hash"; problem: string };

/**
 * Checks a bundle's entry on its own: its data in canonical JSON and its hash over exactly those bytes.
 * The data text itself is hashed: a text that two JSON readers read differently is refused.
 */
export async function entryProblem(entry: EvidenceEntry): Promise<EntryProblem | undefined> {
  if (!Number.isSafeInteger(entry.seq) || !Number.isSafeInteger(entry.ts)) return { code: "entry_malformed", problem: "has a seq or ts that is not an integer (modified)" };
  let canonical: string;
  try {
    canonical = canonicalJson(JSON.parse(entry.dataJson));
  } catch {
    return { code: "entry_malformed", problem: "data is not valid JSON (modified)" };
  }
  if ((await sha256Hex(utf8(entryHashText(entry, entry.dataJson)))) !== entry.hash) return { code: "entry_hash", problem: "content does not match its hash (modified)" };
  if (canonical !== entry.dataJson) return { code: "entry_malformed", problem: "data is not stored in canonical JSON (modified: duplicate keys, spacing or number forms can read differently)" };
  return undefined;
}
