import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkWireEvent, plainWireEvent, wireEvents } from "../src/wire/event.js";
import { MAX_ID_LENGTH, MAX_JSON_DEPTH } from "../src/wire/limits.js";
import { event as benchEvent } from "../bench/fixtures/ingest-agents-events.js";

// The direct reading of an event (`plainWireEvent`) may only ever say yes where the schema does: a yes
// skips the schema. Candidates are valid events with one field replaced by a value near a limit, of
// another type, or missing, and extra keys, so both answers come up often.
const valid = () => ({ id: "evt_1", type: "tool.called", ts: 1_700_000_000_000, org: "default", agentId: "a1", runId: "run_1", stepId: null, toolCallId: "tc_1", actor: null, data: { toolName: "read", input: { id: 1 } } });

const nested = (depth: number): unknown => (depth === 0 ? 1 : { a: nested(depth - 1) });
const odd = fc.constantFrom<unknown>(
  undefined,
  null,
  "",
  "x",
  "x".repeat(MAX_ID_LENGTH),
  "x".repeat(MAX_ID_LENGTH + 1),
  "Tool.Called",
  "tool.called",
  "tool",
  "a.b.c",
  "tool.called ",
  0,
  -1,
  1.5,
  8.64e15,
  8.64e15 + 2,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 53,
  true,
  [],
  [1],
  {},
  { constructor: "x" },
  Object.create(null),
  new Date(0),
  { [Symbol("s")]: 1 },
  nested(MAX_JSON_DEPTH - 1),
  nested(MAX_JSON_DEPTH),
  nested(MAX_JSON_DEPTH + 1),
  { deep: nested(MAX_JSON_DEPTH) },
  { __proto__: null, a: 1 },
  JSON.parse('{"__proto__": {"a": 1}}'),
);
const keys = fc.constantFrom("id", "type", "ts", "org", "agentId", "runId", "stepId", "toolCallId", "actor", "data", "extra", "__proto__", "constructor");

describe("the wire check's direct reading", () => {
  it("agrees with the schema wherever it accepts, and accepts ordinary events", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(keys, odd, fc.boolean()), { maxLength: 3 }), (changes) => {
        const candidate: Record<string, unknown> = valid();
        for (const [key, value, remove] of changes) {
          if (remove) delete candidate[key];
          else Object.defineProperty(candidate, key, { value, enumerable: true, configurable: true, writable: true });
        }
        const schema = wireEvents().EventSchema.safeParse(candidate).success;
        if (plainWireEvent(candidate)) expect(schema).toBe(true);
        // The answer callers get is the schema's either way.
        expect(checkWireEvent(candidate, undefined, true) === undefined).toBe(schema);
      }),
      { numRuns: 5000 },
    );
  });

  it("reads the events agents send without the schema", () => {
    for (let i = 0; i < 8; i++) expect(plainWireEvent(JSON.parse(JSON.stringify(benchEvent(1, i))))).toBe(true);
    expect(plainWireEvent(benchEvent(0, 1))).toBe(true);
    expect(plainWireEvent({ ...valid(), org: undefined })).toBe(true);
    expect(plainWireEvent({ ...valid(), data: Object.assign(Object.create(null), { a: 1 }) })).toBe(true);
  });

  it("leaves the reasons to the schema", () => {
    expect(checkWireEvent({ ...valid(), ts: -1 })).toMatchObject({ code: "invalid_event", reason: expect.stringContaining("ts") });
    expect(checkWireEvent({ ...valid(), extra: 1 })).toMatchObject({ code: "invalid_event" });
    expect(checkWireEvent({ ...valid(), data: nested(MAX_JSON_DEPTH + 1) })).toMatchObject({ code: "invalid_event", reason: expect.stringContaining("nested deeper") });
  });
});
