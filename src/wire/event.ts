// The shapes of event ingest (`POST /v1/events`), on both sides of the wire: the control plane
// parses requests with them, the remote client checks what it sends and parses what it reads back
// (answers, its spool) with the very same schemas.
import { z } from "zod";
import { once } from "../internal/once.js";
import { MAX_EVENT_BYTES, MAX_EVENT_TYPE_LENGTH, MAX_EVENTS_PER_BATCH, MAX_ID_LENGTH, MAX_JSON_DEPTH, MAX_NAME_LENGTH, withinDepth } from "./limits.js";

/**
 * The ingest schemas, built on first use: by the control plane when it starts, by a remote client when it
 * sends, never by an embedded client.
 */
export const wireEvents = once(() => {
  /** An id on the wire: non-empty, at most 256 characters. */
  const IdSchema = z.string().min(1).max(MAX_ID_LENGTH);
  const Timestamp = z.int().min(0).max(8.64e15);
  const depthMessage = `nested deeper than ${MAX_JSON_DEPTH} levels`;
  /** Free-form JSON no deeper than the wire allows. */
  const JsonSchema = z.unknown().refine((value) => withinDepth(value), depthMessage);
  /** A free-form JSON object no deeper than the wire allows. */
  const JsonObjectSchema = z.record(z.string(), z.unknown()).refine((value) => withinDepth(value), depthMessage);

  /**
   * A `WardenEvent` as the client sends it and the control plane accepts it. `org` is
   * ignored by the server: the key's organization applies.
   */
  const EventSchema = z.strictObject({
    id: IdSchema,
    type: z.string().max(MAX_EVENT_TYPE_LENGTH).regex(/^[a-z][a-z_]*(\.[a-z_]+)+$/, "an event type such as tool.called"),
    ts: Timestamp,
    org: z.string().max(MAX_NAME_LENGTH).optional(),
    agentId: IdSchema.nullable(),
    runId: IdSchema.nullable(),
    stepId: IdSchema.nullable(),
    toolCallId: IdSchema.nullable(),
    actor: z.string().max(MAX_NAME_LENGTH).nullable(),
    data: JsonObjectSchema,
  });

  /** The body of `POST /v1/events`, every event valid. */
  const IngestSchema = z.strictObject({ events: z.array(EventSchema).min(1).max(MAX_EVENTS_PER_BATCH) });
  /** The body of `POST /v1/events` as a control plane that checks each event on its own reads it. */
  const IngestEnvelopeSchema = z.strictObject({ events: z.array(z.unknown()).min(1).max(MAX_EVENTS_PER_BATCH) });

  /** One event of a batch the control plane refused on its own (by its index in the request), the rest being written. */
  const RefusedEventSchema = z.object({
    index: z.int().min(0),
    /** Empty when the event had no readable id. */
    id: z.string().max(256),
    code: z.string().min(1).max(64),
    reason: z.string().max(10_000),
  });

  /** The answer to `POST /v1/events`: events written, events it already had, and, when some were refused one by one, which. */
  const IngestResponseSchema = z.object({
    accepted: z.int().min(0),
    duplicates: z.int().min(0).optional(),
    rejected: z.array(RefusedEventSchema).max(MAX_EVENTS_PER_BATCH).optional(),
  });
  return { IdSchema, JsonSchema, JsonObjectSchema, EventSchema, IngestSchema, IngestEnvelopeSchema, RefusedEventSchema, IngestResponseSchema };
});
export type IngestResponse = z.output<ReturnType<typeof wireEvents>["IngestResponseSchema"]>;

/** Why an event cannot go over the wire as it is: the same words the control plane would answer. */
export interface EventRefusal {
  code: "invalid_event" | "event_too_large";
  reason: string;
}

/**
 * How many times longer an event's JSON can be than the text it was parsed from: only a number grows,
 * the most `1e20` (4 characters) written out as 21 digits; strings and the rest come back as long or shorter.
 */
export const WIRE_GROWTH = 6;

/**
 * Checks one event as the control plane will: its shape and limits, and its size as
 * JSON. Returns why it would be refused, or undefined when it can be sent. `json` is the event's
 * JSON when the caller has it already; `fits` says the caller knows it is within the size limit
 * (it came in a text small enough, see `WIRE_GROWTH`).
 */
export function checkWireEvent(event: unknown, json?: string, fits = false): EventRefusal | undefined {
  const parsed = plainWireEvent(event) ? undefined : wireEvents().EventSchema.safeParse(event);
  if (parsed !== undefined && !parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${issue.path.map(String).join(".") || "event"}: ${issue.message}`);
    return { code: "invalid_event", reason: issues.join("; ") };
  }
  if (fits) return undefined;
  const bytes = Buffer.byteLength(json ?? JSON.stringify(event));
  if (bytes > MAX_EVENT_BYTES) return { code: "event_too_large", reason: `${bytes} bytes as JSON, over the ${MAX_EVENT_BYTES} a request may carry` };
  return undefined;
}

/** The fields of a wire event (`EventSchema`'s keys). */
const EVENT_KEYS: ReadonlySet<string> = new Set(["id", "type", "ts", "org", "agentId", "runId", "stepId", "toolCallId", "actor", "data"]);
const EVENT_TYPE = /^[a-z][a-z_]*(\.[a-z_]+)+$/;
const isId = (value: unknown): boolean => typeof value === "string" && value.length >= 1 && value.length <= MAX_ID_LENGTH;
const isNullableId = (value: unknown): boolean => value === null || isId(value);
const isName = (value: unknown): boolean => typeof value === "string" && value.length <= MAX_NAME_LENGTH;

/**
 * True when `event` is, by a direct reading of its fields, what `EventSchema` accepts: a plain object
 * with the schema's keys only, each within its limits, and plain-object data no deeper than the wire
 * allows. False is no verdict: anything unusual (another prototype, symbol keys, a `constructor`
 * key in data) goes to the schema, which gives the reasons. The schema costs several times this on
 * every event of every batch, on both sides of the wire.
 */
export function plainWireEvent(event: unknown): boolean {
  if (typeof event !== "object" || event === null || Object.getPrototypeOf(event) !== Object.prototype) return false;
  const e = event as Record<string, unknown>;
  for (const key in e) if (!EVENT_KEYS.has(key)) return false;
  const { type, ts, org, data } = e;
  if (!isId(e.id) || typeof type !== "string" || type.length > MAX_EVENT_TYPE_LENGTH || !EVENT_TYPE.test(type)) return false;
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0 || ts > 8.64e15) return false;
  if ((org !== undefined && !isName(org)) || (e.actor !== null && !isName(e.actor))) return false;
  if (!isNullableId(e.agentId) || !isNullableId(e.runId) || !isNullableId(e.stepId) || !isNullableId(e.toolCallId)) return false;
  if (typeof data !== "object" || data === null) return false;
  const proto: unknown = Object.getPrototypeOf(data);
  if ((proto !== Object.prototype && proto !== null) || Object.hasOwn(data, "constructor") || Object.getOwnPropertySymbols(data).length > 0) return false;
  return withinDepth(data);
}
