// A fast tool call in one ledger entry. A call that ends within the commit window it started in (most
// do) is written as one `tool.call` entry holding both events, not two entries: half the rows, half the
// hashes. Its data is canonical JSON built from the two events' canonical data by concatenation, so it
// is hashed, chained and proven like any other entry (the verifier knows nothing of it), and readers
// expand it back into the two events it records.
import type { HashedFields } from "../verify/entry.js";
import type { LedgerEntry } from "./chain.js";

/** The ledger entry type of a tool call folded into one entry: `{"called": <tool.called data>, "end": {data, id, ts, type}}`. */
export const TOOL_CALL_ENTRY = "tool.call";
const CALLED = "tool.called";
/** The events that end a call and fold into its `tool.called`. */
const ENDS: ReadonlySet<string> = new Set(["tool.completed", "tool.blocked"]);

/** What a fold reads of a draft (a `LedgerDraft`): the fields an entry's hash covers but its place, and its data. */
export type FoldableDraft = Omit<HashedFields, "seq" | "prevHash"> & { dataJson: string };

/**
 * One draft for a call's `tool.called` and the event that ends it, when `end` does and both name the
 * same call, place and actor; undefined otherwise. The folded draft keeps the first event's id and ts.
 */
export function foldDrafts<D extends FoldableDraft>(called: D, end: FoldableDraft): D | undefined {
  if (called.type !== CALLED || !ENDS.has(end.type) || called.toolCallId === null || called.toolCallId !== end.toolCallId) return undefined;
  if (called.org !== end.org || called.agentId !== end.agentId || called.runId !== end.runId || called.stepId !== end.stepId || called.actor !== end.actor || !Number.isSafeInteger(end.ts)) return undefined;
  // Keys in sorted order ("called" < "end"; "data" < "id" < "ts" < "type"): canonical as it stands.
  return { ...called, type: TOOL_CALL_ENTRY, dataJson: `{"called":${called.dataJson},"end":{"data":${end.dataJson},"id":${JSON.stringify(end.id)},"ts":${end.ts},"type":${JSON.stringify(end.type)}}}` };
}

/** The fields an entry and an event share. */
type EventLike = Pick<LedgerEntry, "id" | "ts" | "type" | "data">;

/**
 * The events a ledger entry records: the entry itself, or for a tool call folded into one entry
 * (`tool.call`) its `tool.called` and the event that ended it, each with its own id, time and data.
 * @example
 * import { expandLedgerEntry } from "agent-warden";
 * const events = warden.ledger.entries({ runId }).flatMap(expandLedgerEntry);
 */
export function expandLedgerEntry<E extends EventLike>(entry: E): E[] {
  if (entry.type !== TOOL_CALL_ENTRY) return [entry];
  const data = entry.data as { called?: unknown; end?: { data?: unknown; id?: unknown; ts?: unknown; type?: unknown } } | null;
  const end = data?.end;
  if (!isObject(data?.called) || !isObject(end) || !isObject(end.data) || typeof end.id !== "string" || !Number.isSafeInteger(end.ts) || typeof end.type !== "string" || !ENDS.has(end.type)) return [entry];
  return [
    { ...entry, type: CALLED, data: data!.called },
    { ...entry, id: end.id, ts: end.ts as number, type: end.type, data: end.data },
  ];
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** What reads the ledger as events (the remote watermark): its head and a page of entries after a seq. */
export interface LedgerEntryReader {
  head(): { seq: number };
  entries(filter: { afterSeq?: number; limit?: number }): LedgerEntry[];
}

/**
 * The ledger as the events it records, one entry per event: a folded entry as its two events. The first
 * carries the seq before the entry's, so a reader that takes an entry's seq as "everything up to here is
 * settled" (the remote watermark) passes a folded entry only with its last event.
 */
export function eventEntries(ledger: LedgerEntryReader): LedgerEntryReader {
  return {
    head: () => ledger.head(),
    entries: (filter) =>
      ledger.entries(filter).flatMap((entry) => {
        const events = expandLedgerEntry(entry);
        return events.length === 1 ? events : [{ ...events[0]!, seq: entry.seq - 1 }, events[1]!];
      }),
  };
}
