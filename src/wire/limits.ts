// Every limit of the event wire, in one place: the control plane validates with these and the
// remote client checks each event against them before sending, so an event the server would refuse
// is set aside on the client instead of taking its batch down with it.

/** Deepest nesting accepted inside free-form JSON (event data, payloads, policy sets): objects and arrays at depth 0..31. */
export const MAX_JSON_DEPTH = 32;
/** Longest id (event, agent, run, step, tool call, approval). */
export const MAX_ID_LENGTH = 256;
/** Longest event type (`tool.called`). */
export const MAX_EVENT_TYPE_LENGTH = 64;
/** Longest actor and organization name on an event. */
export const MAX_NAME_LENGTH = 256;
/** Events per `POST /v1/events`. */
export const MAX_EVENTS_PER_BATCH = 1000;
/** Largest `POST /v1/events` body, in bytes (the control plane's default `ingestBodyLimit`, 5 MB). */
export const MAX_INGEST_BYTES = 5 * 1024 * 1024;
/** What `{"events":[…]}` adds around the events, with room to spare. */
const BATCH_ENVELOPE_BYTES = 64;
/** Largest single event, as JSON bytes: one that alone fills a request body can never be accepted. */
export const MAX_EVENT_BYTES = MAX_INGEST_BYTES - BATCH_ENVELOPE_BYTES;

/**
 * True when `value` nests no deeper than `limit` (objects and arrays at depths 0 … limit-1).
 * Iterative: hostile input cannot overflow the stack.
 */
export function withinDepth(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== "object") continue;
    if (depth >= limit) return false;
    for (const child of Object.values(item as Record<string, unknown>)) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return true;
}
