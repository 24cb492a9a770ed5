import { describe, expect, it } from "vitest";
import { ActionType, parsePolicySet, type PolicySet } from "agent-warden";
import { PolicyEngine, type PolicyInputCall } from "../src/policy/engine.js";
import { referenceEvaluate } from "./policy-reference.js";

// Large seeded policy sets (tens to thousands of policies over a small vocabulary, so that a name
// leads to many candidates, several globs match one name, and agent-indexed lists get long) and
// seeded calls, each decided by the compiled engine and by the reference evaluator, which looks at
// every policy in order. They must agree on everything a decision says.

/** xorshift32: the same sets and calls on every run. */
function random(seed: number): { next: () => number; pick: <T>(items: readonly T[]) => T; chance: (p: number) => boolean; int: (n: number) => number } {
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  return { next, pick: (items) => items[Math.floor(next() * items.length)]!, chance: (p) => next() < p, int: (n) => Math.floor(next() * n) };
}

type Random = ReturnType<typeof random>;

const tools = ["deploy", "deploy_prod", "read_file", "write_file", "svc.read", "svc.write", "svc.admin.read", "payments.refund", "payments.charge", "db.migrate", "get_secret", "rm", "xm", "run_script"];
const globs = ["svc.*", "*.read", "payments.*", "*_file", "deploy*", "d*y", "read_?ile", "?m", "*.*.*", "svc.*.read", "*", "*a*", "pay*s.*e", "db.*", "*secret"];
const actions = Object.values(ActionType);
const agents = ["agent_1", "agent_2", "agent_3", "agent_12", "ops", "billing"];
const callAgents = [...agents, "agent_1/helper", "agent_12/x/y", "ops/night", "stranger"];
const environments = ["production", "staging", "prod-eu"];

function toolCondition(r: Random, operators: boolean): unknown {
  const roll = r.next();
  if (roll < 0.15) return undefined;
  if (roll < 0.5) return r.pick(tools);
  if (roll < 0.75) return r.pick(globs);
  if (roll < 0.9 || !operators) return Array.from({ length: 1 + r.int(3) }, () => (r.chance(0.5) ? r.pick(tools) : r.pick(globs)));
  return r.pick([{ in: [r.pick(tools), r.pick(tools)] }, { matches: "^svc" }, { ne: r.pick(tools) }, { contains: "_" }]);
}

function nameCondition(r: Random, names: readonly string[], patterns: readonly string[]): unknown {
  const roll = r.next();
  if (roll < 0.6) return r.pick(names);
  if (roll < 0.75) return [r.pick(names), r.pick(names)];
  if (roll < 0.9) return r.pick(patterns);
  return r.pick([{ in: [r.pick(names), r.pick(names)] }, { ne: r.pick(names) }, { exists: false }, { matches: "_1" }]);
}

function argCondition(r: Random): [string, unknown] {
  return r.pick<() => [string, unknown]>([
    () => ["args.amount", { gt: r.int(1000) }],
    () => ["args.amount", { gte: r.int(1000), lt: 1000 + r.int(1000) }],
    () => ["args.amount", r.int(4) * 250],
    () => ["args.currency", { in: ["EUR", "USD"] }],
    () => ["args.currency", { ne: "EUR" }],
    () => ["args.flag", true],
    () => ["args.nested.level", { exists: r.chance(0.5) }],
    () => ["args.tags", { contains: "pii" }],
    () => ["metadata.channel", r.pick(["chat", "api"])],
  ])();
}

function policySet(seed: number, size: number, operators: boolean): PolicySet {
  const r = random(seed);
  const policies = Array.from({ length: size }, (_, i) => {
    const when: Record<string, unknown> = {};
    const tool = toolCondition(r, operators);
    if (tool !== undefined) when["tool"] = tool;
    if (r.chance(0.2)) when["action"] = r.pick([r.pick(actions), [r.pick(actions), r.pick(actions)], { in: [r.pick(actions), r.pick(actions)] }, { ne: r.pick(actions) }]);
    if (r.chance(0.45)) when["agent"] = nameCondition(r, agents, ["agent_*", "agent_?", "*/helper", "ops*"]);
    if (r.chance(0.3)) when["environment"] = nameCondition(r, environments, ["prod*", "*ing"]);
    for (let k = r.int(3); k > 0; k--) {
      const [key, condition] = argCondition(r);
      when[key] = condition;
    }
    return {
      id: `p${i}`,
      when,
      action: r.pick(["allow", "warn", "require_approval", "block"] as const),
      mode: r.chance(0.25) ? ("shadow" as const) : ("enforce" as const),
      enabled: r.chance(0.92),
    };
  });
  return parsePolicySet({ version: 1, default: r.pick(["allow", "warn", "require_approval", "block"] as const), policies });
}

/** A name the glob matches: each `*` filled with varied text, each `?` with one character. */
function instantiate(r: Random, glob: string): string {
  return glob.replaceAll("*", () => r.pick(["", "x", "svc", ".read", `n${r.int(50)}`])).replaceAll("?", () => r.pick(["f", "r", "."]));
}

function calls(seed: number, count: number): PolicyInputCall[] {
  const r = random(seed);
  return Array.from({ length: count }, (_, i) => {
    const roll = r.next();
    const tool = roll < 0.5 ? r.pick(tools) : roll < 0.8 ? instantiate(r, r.pick(globs)) : `fresh_${seed}_${i}${r.pick(["", ".read", "_file", ".x.y"])}`;
    const args: Record<string, unknown> = {};
    if (r.chance(0.8)) args["amount"] = r.chance(0.85) ? r.int(2000) : r.pick(["500", "abc", null]);
    if (r.chance(0.6)) args["currency"] = r.pick(["EUR", "USD", "GBP"]);
    if (r.chance(0.4)) args["flag"] = r.chance(0.5);
    if (r.chance(0.3)) args["nested"] = r.chance(0.5) ? { level: r.int(3) } : {};
    if (r.chance(0.3)) args["tags"] = r.chance(0.5) ? ["pii", "x"] : "no-pii";
    return {
      tool,
      action: r.chance(0.7) ? r.pick(actions) : ActionType.UNKNOWN,
      agent: r.pick(callAgents),
      environment: r.chance(0.8) ? r.pick(environments) : undefined,
      args,
      metadata: r.chance(0.5) ? { channel: r.pick(["chat", "api"]) } : undefined,
    };
  });
}

describe("the compiled policy engine on large seeded sets agrees with the reference evaluator", () => {
  // [seed, policies, calls, tool operators in the set]
  const cases: Array<[number, number, number, boolean]> = [
    [1, 40, 3000, false],
    [2, 40, 3000, true],
    [3, 400, 3000, false],
    [4, 400, 2000, true],
    [5, 2500, 500, false],
    [6, 2500, 400, true],
  ];
  it.each(cases)("seed %i: %i policies, %i calls (tool operators: %s): action, deciding policy, every match and shadow matches", (seed, size, count, operators) => {
    const set = policySet(seed, size, operators);
    const mode = new Map(set.policies.map((policy) => [policy.id, policy.mode]));
    const engine = new PolicyEngine(set);
    const workload = calls(seed * 7919, count);
    let decided = 0;
    let shadowed = 0;
    let manyMatches = 0;
    // Twice over: the second pass is answered from what the first one built.
    for (const call of [...workload, ...workload]) {
      const expected = referenceEvaluate(set, call);
      const actual = engine.evaluate(call);
      expect({ tool: call.tool, agent: call.agent, action: actual.action, decidedBy: actual.decidedBy?.policyId, matched: actual.matches.map((m) => m.policyId) }).toEqual({
        tool: call.tool,
        agent: call.agent,
        action: expected.action,
        decidedBy: expected.decidedBy,
        matched: expected.matched,
      });
      const shadow = actual.matches.filter((m) => m.mode === "shadow").map((m) => m.policyId);
      expect(shadow).toEqual(expected.matched.filter((id) => mode.get(id) === "shadow"));
      if (actual.decidedBy !== undefined) expect(actual.decidedBy.mode).toBe("enforce");
      if (expected.decidedBy !== undefined) decided++;
      if (shadow.length > 0) shadowed++;
      if (expected.matched.length >= 3) manyMatches++;
    }
    // The workload is not degenerate: calls are decided by policies, shadow policies match, several policies match one call.
    expect(decided).toBeGreaterThan(count / 4);
    expect(shadowed).toBeGreaterThan(count / 10);
    expect(manyMatches).toBeGreaterThan(size >= 400 ? count : count / 20);
  });
});
