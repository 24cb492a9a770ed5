import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ActionType, parsePolicySet, type PolicySet } from "agent-warden";
import { PolicyEngine, type PolicyInputCall } from "../src/policy/engine.js";
import { globMatches, referenceEvaluate } from "./policy-reference.js";

// Small vocabularies, so that random policies and random calls meet often.
const toolNames = ["deploy", "read_file", "write_file", "write_", "payments.refund", "payments.charge", "payments", "get_secret", "rm", "xm"];
const toolPatterns = [...toolNames, "payments.*", "write_*", "*", "read_?ile", "*.refund", "?m", "*_*", "pay*s"];
const actions = Object.values(ActionType);
const agents = ["a1", "a2", "billing-agent", "billing-", "a1/helper", "billing-agent/x/y"];
const agentPatterns = [...agents, "a?", "billing-*", "*", "a1/*"];
const environments = ["production", "staging", "prod-eu"];
const environmentPatterns = [...environments, "prod*", "*"];

const scalar = fc.constantFrom<string | number | boolean | null>(0, 1, 50, 100, 99.5, 50000, -1, "100", "50", "EUR", "USD", "chat", "a", "ab", "", true, false, null);
const number = fc.constantFrom(0, 1, 50, 99.5, 100, 50000, -1);
const regex = fc.constantFrom("^E", "U", "^\\d+$", "a|b", "0$", "^$", "^-");

const operators = {
  eq: scalar,
  ne: scalar,
  in: fc.array(scalar, { maxLength: 4 }),
  not_in: fc.array(scalar, { maxLength: 4 }),
  contains: scalar,
  matches: regex,
  exists: fc.boolean(),
  gt: number,
  gte: number,
  lt: number,
  lte: number,
} as const;
type Op = keyof typeof operators;

const operatorObject = fc
  .uniqueArray(fc.constantFrom(...(Object.keys(operators) as Op[])), { minLength: 1, maxLength: 3 })
  .chain((ops) => fc.tuple(...ops.map((op) => operators[op].map((value) => [op, value] as const))))
  .map((entries) => Object.fromEntries(entries));
const condition = fc.oneof(scalar, operatorObject, operatorObject);

const conditionKeys = ["args.amount", "args.currency", "args.tags", "args.nested.level", "args.nested.list.0", "args.flag", "metadata.channel", "metadata.score"];

const globs = (patterns: string[]) => fc.oneof(fc.constantFrom(...patterns), fc.array(fc.constantFrom(...patterns), { minLength: 1, maxLength: 3 }));

/** Present in a `when` about one time in `1 + absentWeight`. */
const sometimes = <T>(arb: fc.Arbitrary<T>, absentWeight: number) => fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: arb, weight: 1 });

/** The operator forms `tool`, `action`, `agent` and `environment` also take. */
const nameOperators = (names: readonly string[]) => {
  const name = fc.constantFrom(...names);
  const list = fc.array(name, { maxLength: 3 });
  const forms = { eq: name, ne: name, in: list, not_in: list, matches: fc.constantFrom("^a", "agent$", "^pay", "_", "^(deploy|rm)$", "/"), contains: fc.constantFrom("a", "-", "."), exists: fc.boolean() };
  return fc
    .uniqueArray(fc.constantFrom(...(Object.keys(forms) as Array<keyof typeof forms>)), { minLength: 1, maxLength: 2 })
    .chain((ops) => fc.tuple(...ops.map((op) => (forms[op] as fc.Arbitrary<unknown>).map((value) => [op, value] as const))))
    .map((entries) => Object.fromEntries(entries));
};
const nameCondition = (patterns: string[], names: readonly string[]) => fc.oneof({ weight: 3, arbitrary: globs(patterns) }, { weight: 1, arbitrary: nameOperators(names) });

const when = fc
  .record({
    tool: sometimes(nameCondition(toolPatterns, toolNames), 1),
    action: sometimes(fc.oneof(fc.constantFrom(...actions), fc.array(fc.constantFrom(...actions), { minLength: 1, maxLength: 4 }), nameOperators(actions)), 4),
    agent: sometimes(nameCondition(agentPatterns, agents), 3),
    environment: sometimes(nameCondition(environmentPatterns, environments), 3),
  })
  .map((base) => Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)))
  .chain((base) =>
    fc.uniqueArray(fc.constantFrom(...conditionKeys), { maxLength: 2 }).chain((keys) => fc.tuple(...keys.map((key) => condition.map((c) => [key, c] as const))).map((entries) => ({ ...base, ...Object.fromEntries(entries) }))),
  );

const policy = fc.record(
  {
    when,
    action: fc.constantFrom("allow", "warn", "block", "require_approval"),
    mode: fc.constantFrom("enforce", "shadow"),
    enabled: fc.boolean(),
  },
  { requiredKeys: ["when", "action"] },
);

const policySet = fc
  .record({ default: fc.constantFrom("allow", "warn", "block", "require_approval"), policies: fc.array(policy, { maxLength: 12 }) })
  .map(({ default: defaultAction, policies }): PolicySet => parsePolicySet({ version: 1, default: defaultAction, policies: policies.map((p, i) => ({ id: `p${i}`, ...p })) }));

const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.constant(undefined));
const args = fc.oneof(
  fc.record(
    {
      amount: value,
      currency: value,
      tags: fc.oneof(fc.array(scalar, { maxLength: 3 }), scalar),
      nested: fc.oneof(fc.record({ level: value, list: fc.array(scalar, { maxLength: 2 }) }, { requiredKeys: [] }), scalar),
      flag: fc.boolean(),
    },
    { requiredKeys: [] },
  ),
  fc.constantFrom(undefined, null, 42, "text", [1, 2]),
);
const call = fc.record(
  {
    tool: fc.constantFrom(...toolNames),
    action: fc.oneof(fc.constantFrom("unknown", "deploy", "secret_access"), fc.constantFrom(...actions)),
    agent: fc.constantFrom(...agents),
    environment: fc.constantFrom(...environments, undefined),
    args,
    metadata: fc.oneof(fc.record({ channel: value, score: value }, { requiredKeys: [] }), fc.constant(undefined)),
  },
  { requiredKeys: ["tool", "action", "agent", "args"] },
) as fc.Arbitrary<PolicyInputCall>;

describe("the compiled policy engine agrees with the reference evaluator", () => {
  it("on thousands of random policy sets and calls: action, deciding policy and every match", () => {
    let decided = 0;
    let matchedSome = 0;
    fc.assert(
      fc.property(policySet, fc.array(call, { minLength: 1, maxLength: 12 }), (set, calls) => {
        const engine = new PolicyEngine(set);
        // each call twice: the engine caches candidates per tool and action
        for (const c of [...calls, ...calls]) {
          const expected = referenceEvaluate(set, c);
          const actual = engine.evaluate(c);
          expect({ action: actual.action, decidedBy: actual.decidedBy?.policyId, matched: actual.matches.map((m) => m.policyId) }).toEqual(expected);
          if (expected.decidedBy !== undefined) decided++;
          if (expected.matched.length > 0) matchedSome++;
        }
      }),
      { numRuns: 3000 },
    );
    // the generators are not degenerate: many calls match policies and many are decided by one
    expect(matchedSome).toBeGreaterThan(5000);
    expect(decided).toBeGreaterThan(3000);
  });

  it("the reference glob matcher reads globs as the spec says", () => {
    expect(globMatches("payments.*", "payments.refund")).toBe(true);
    expect(globMatches("payments.*", "payments")).toBe(false);
    expect(globMatches("payments.*", "paymentsXrefund")).toBe(false);
    expect(globMatches("write_*", "write_")).toBe(true);
    expect(globMatches("read_?ile", "read_file")).toBe(true);
    expect(globMatches("read_?ile", "read_ile")).toBe(false);
    expect(globMatches("*", "")).toBe(true);
  });
});
