// What a client given the common options skips (the options' schema, the policy schemas, the redaction
// and currency schemas) reads exactly as the schemas would: the plain reading of the options against the
// schema on generated options, the preset sets against their parses; and the schemas users import by
// name, built on first use, behave as zod schemas.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, CurrencyConverter, createRedactor, EvidenceBundleSchema, parsePolicySet, PolicyChannelsSchema, PolicySetSchema, Warden } from "agent-warden";
import { EvidenceBundleSchema as VerifierEvidenceBundleSchema } from "agent-warden/verify";
import { z } from "zod";
import { parseOptions, plainOptions, WardenOptionsSchema } from "../src/config.js";
import { NO_POLICIES_INPUT } from "../src/policy/load.js";
import { builtOnFirstUse } from "../src/internal/once.js";

const schemaReading = (options: unknown) => {
  const result = WardenOptionsSchema.safeParse(options, { jitless: true });
  return result.success ? result.data : undefined;
};

const maybe = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined });
const text = fc.oneof(fc.constant(""), fc.string({ maxLength: 8 }));
const integer = fc.oneof(fc.integer({ min: -10, max: 2000 }), fc.constantFrom(0, 1023, 1024, 65_536, 2 ** 53, 1.5, Number.NaN, Number.POSITIVE_INFINITY));
const logger = { warn() {} };
// The options the plain reading takes, with values the schema takes and values it refuses…
const commonOptions = fc.record(
  {
    agentId: fc.oneof(text, fc.constant(7)),
    organization: maybe(text),
    group: maybe(text),
    environment: maybe(fc.oneof(text, fc.constant(null))),
    token: maybe(text),
    apiKey: maybe(text),
    store: maybe(fc.oneof(text, fc.constant(":memory:"))),
    storeWriter: maybe(fc.constantFrom("worker", "inline", "thread")),
    storeMaxPending: maybe(integer),
    maxRecordedBytes: maybe(integer),
    policies: maybe(fc.oneof(text, fc.constant({ policies: [] }), fc.constant(null), fc.constant(3))),
    logger: maybe(fc.constantFrom(logger, {}, null, console)),
    onError: maybe(fc.constantFrom(() => {}, "log")),
    clock: maybe(fc.constantFrom(Date.now, 5)),
    onApprovalRequest: maybe(fc.constantFrom(() => {}, {})),
  },
  { requiredKeys: [] },
);
// …and the ones it leaves to the schema.
const otherOptions = fc.record(
  {
    approvalTimeout: maybe(fc.constantFrom("5m", 100, -1)),
    ledger: maybe(fc.constantFrom({}, { checkpointEvery: 10 }, { checkpointEvery: 0 })),
    halt: maybe(fc.constantFrom({}, { whenUnknown: "allow" })),
    redaction: maybe(fc.constantFrom({}, { keys: ["iban"] })),
    currencies: maybe(fc.constantFrom({}, { USD: { EUR: "0.92" } })),
    remote: maybe(fc.constantFrom({}, { flushInterval: "1s" })),
    url: maybe(fc.constantFrom("http://127.0.0.1:1", "ftp://x")),
    tokens: maybe(fc.constantFrom({}, { signingKey: 1 })),
    unknown: maybe(fc.constant(1)),
  },
  { requiredKeys: [] },
);

describe("options read without the schema", () => {
  it("take what the schema takes, as the schema reads it", () => {
    fc.assert(
      fc.property(commonOptions, (given) => {
        expect(plainOptions(given)).toEqual(schemaReading(given));
      }),
      { numRuns: 3000 },
    );
  });

  it("leave the other options to the schema", () => {
    fc.assert(
      fc.property(commonOptions, otherOptions, (common, other) => {
        const given = { ...common, ...other };
        const plain = plainOptions(given);
        if (Object.keys(other).length > 0) expect(plain).toBeUndefined();
        else expect(plain).toEqual(schemaReading(given));
      }),
      { numRuns: 1000 },
    );
  });

  it("words a refused option as the schema does", () => {
    expect(() => parseOptions({ agentId: "" })).toThrow(ConfigError);
    expect(() => parseOptions({ agentId: "a", storeMaxPending: 0 })).toThrow(/invalid options: storeMaxPending: /);
    expect(() => parseOptions({ agentId: "a", remote: { flushInterval: "soon" } })).toThrow(/invalid options: remote\.flushInterval: invalid duration "soon"/);
    expect(() => parseOptions({ agentId: "a", ledger: { checkpointEvery: 0 } })).toThrow(/invalid options: ledger\.checkpointEvery: /);
    expect(() => parseOptions({ agentId: "a", url: "ftp://x", apiKey: "k" })).toThrow(/invalid options: url: /);
    expect(parseOptions({ agentId: "a", approvalTimeout: "5m", halt: { whenUnknown: "allow" } })).toMatchObject({ approvalTimeout: 300_000, halt: { pollInterval: 25, staleAfter: 5_000, whenUnknown: "allow" } });
  });
});

describe("presets in place of a parse", () => {
  it("no policies: the set the parse would give", () => {
    const preset = parsePolicySet(NO_POLICIES_INPUT);
    const parsed = PolicySetSchema.parse({ ...NO_POLICIES_INPUT });
    expect(preset).toEqual(parsed);
    // A fresh set each time: a client changing its set changes no other's.
    expect(parsePolicySet(NO_POLICIES_INPUT)).not.toBe(preset);
  });

  it("no redaction options: the schema's defaults", () => {
    const payload = { password: "hunter2", nested: { authorization: "Bearer abc.def", note: "ok" } };
    expect(createRedactor({})(payload)).toEqual(createRedactor({ rules: [], defaults: true, keys: [] })(payload));
    expect(() => createRedactor({ rules: [{ path: "not a path", action: "remove" }] })).toThrow();
  });

  it("no exchange rates: nothing to convert, a bad table still refused", () => {
    expect(new CurrencyConverter({}).convert({ amount: 5, currency: "EUR" }, "EUR")).toEqual({ amount: 5, currency: "EUR" });
    expect(() => new CurrencyConverter({}).convert({ amount: 5, currency: "EUR" }, "USD")).toThrow(/no exchange rate/);
    expect(() => new CurrencyConverter({ usd: { EUR: "1" } })).toThrow(ConfigError);
  });

  it("a client given the common options governs as before", () => {
    const warden = new Warden({ agentId: "a", store: ":memory:", logger: { warn() {} }, policies: { policies: [{ id: "no-wipes", when: { tool: "wipe_*" }, action: "block" }] } });
    expect(warden.check({ tool: "wipe_disk" }).action).toBe("block");
    expect(warden.policies.limits).toEqual([]);
    warden.close();
  });
});

describe("schemas built on first use", () => {
  it("parse, expose their shape and compose as zod schemas", () => {
    expect(PolicySetSchema.safeParse({ default: "block" }).success).toBe(true);
    expect(Object.keys(PolicySetSchema.shape)).toContain("policies");
    expect(PolicySetSchema instanceof z.ZodObject).toBe(true);
    expect(z.object({ set: PolicySetSchema }).parse({ set: {} }).set.default).toBe("allow");
    expect(PolicySetSchema.optional().parse(undefined)).toBeUndefined();
    expect(PolicyChannelsSchema.safeParse({ webhooks: [{ id: "ops", url: "https://hooks.example.com/w", secret: "clear" }] }).success).toBe(false);
    expect(EvidenceBundleSchema.safeParse({}).success).toBe(false);
    expect(VerifierEvidenceBundleSchema.safeParse({}).success).toBe(false);
  });

  it("give zod's JSON Schema output as the schemas themselves do, held in a schema of one's own or not", () => {
    const json = z.toJSONSchema(z.object({ set: PolicySetSchema, maybe: PolicySetSchema.optional() }), { io: "input", unrepresentable: "any" }) as { properties: Record<string, { properties: Record<string, { items: { properties: Record<string, unknown> } }> }> };
    const duration = { anyOf: [{ type: "number", minimum: 0 }, { type: "string" }] };
    expect(json.properties.set!.properties.limits!.items.properties.per).toEqual(duration);
    expect(json.properties.maybe!.properties.limits!.items.properties.per).toEqual(duration);
    expect(z.toJSONSchema(EvidenceBundleSchema)).toMatchObject({ type: "object", additionalProperties: false });
  });

  it("builds once, on the first read", () => {
    let builds = 0;
    const schema = builtOnFirstUse(() => {
      builds++;
      return z.object({ n: z.number() });
    });
    expect(builds).toBe(0);
    expect(schema.parse({ n: 1 })).toEqual({ n: 1 });
    expect(schema.parse({ n: 2 })).toEqual({ n: 2 });
    expect("shape" in schema).toBe(true);
    expect(builds).toBe(1);
  });
});
