// Equivalent rule sets for the decision-speed benchmark: one abstract rule list rendered as a Warden
// policy set, a Cedar policy set, a Casbin model + policy, and a plain Map lookup (the floor).
// Every rule means "calls of `tool` are not allowed (when args.amount > minAmount, if given)".
import { preparsePolicySet, statefulIsAuthorized } from "@cedar-policy/cedar-wasm/nodejs";
import { newEnforcer, newModelFromString } from "casbin";

export interface RuleSpec {
  id: string;
  tool: string;
  action: "block" | "require_approval" | "warn";
  /** The rule matches only when args.amount > minAmount. */
  minAmount?: number;
}

export interface Decider {
  name: string;
  /** true = not allowed (a block / require_approval / warn rule matched). */
  decide(tool: string, amount: number): boolean;
}

const ACTIONS: readonly RuleSpec["action"][] = ["block", "require_approval", "warn"];

/** n rules over n distinct tools `tool_0`..`tool_{n-1}`; every third rule carries an amount threshold. */
export function makeRules(n: number): RuleSpec[] {
  const rules: RuleSpec[] = [];
  for (let i = 0; i < n; i++) {
    const rule: RuleSpec = { id: `rule_${i}`, tool: `tool_${i}`, action: ACTIONS[i % ACTIONS.length]! };
    if (i % 3 === 0) rule.minAmount = 100 + ((i * 37) % 900);
    rules.push(rule);
  }
  return rules;
}

export function wardenPolicySet(rules: RuleSpec[]): {
  version: 1;
  default: "allow";
  policies: Array<{ id: string; when: Record<string, unknown>; action: string }>;
} {
  return {
    version: 1,
    default: "allow",
    policies: rules.map((r) => {
      const when: Record<string, unknown> = { tool: r.tool };
      if (r.minAmount !== undefined) when["args.amount"] = { gt: r.minAmount };
      return { id: r.id, when, action: r.action };
    }),
  };
}

/** The floor: one Map lookup and one comparison. */
export function mapFloorDecider(rules: RuleSpec[]): Decider {
  const byTool = new Map<string, RuleSpec>();
  for (const r of rules) byTool.set(r.tool, r);
  return {
    name: "map-floor",
    decide(tool, amount) {
      const r = byTool.get(tool);
      if (r === undefined) return false;
      return r.minAmount === undefined || amount > r.minAmount;
    },
  };
}

let cedarSetCounter = 0;

/**
 * Cedar: `permit(principal, action, resource);` plus one `forbid` per rule. The policy set is parsed once
 * into the wasm module's cache (`preparsePolicySet`) and each decision goes through `statefulIsAuthorized`,
 * so no policy text is re-parsed per call.
 */
export async function cedarDecider(rules: RuleSpec[]): Promise<Decider> {
  const staticPolicies: Record<string, string> = { permit_all: "permit(principal, action, resource);" };
  for (const r of rules) {
    const head = `forbid(principal, action == Action::"call", resource == Tool::"${r.tool}")`;
    staticPolicies[r.id] = r.minAmount === undefined ? `${head};` : `${head} when { context.amount > ${r.minAmount} };`;
  }
  const setId = `peers_bench_${++cedarSetCounter}`;
  const parsed = preparsePolicySet(setId, { staticPolicies });
  if (parsed.type !== "success") throw new Error(`cedar: policy set did not parse: ${JSON.stringify(parsed.errors)}`);
  const principal = { type: "Agent", id: "a" };
  const action = { type: "Action", id: "call" };
  return {
    name: "cedar-wasm",
    decide(tool, amount) {
      const answer = statefulIsAuthorized({
        principal,
        action,
        resource: { type: "Tool", id: tool },
        context: { amount },
        entities: [],
        preparsedPolicySetId: setId,
      });
      if (answer.type !== "success") throw new Error(`cedar: authorization failed: ${JSON.stringify(answer.errors)}`);
      return answer.response.decision === "deny";
    },
  };
}

const CASBIN_MODEL = `
[request_definition]
r = sub, obj, act, amount

[policy_definition]
p = sub, obj, act, min, eft

[policy_effect]
e = !some(where (p.eft == deny))

[matchers]
m = r.obj == p.obj && r.act == p.act && amountGt(r.amount, p.min)
`;

/**
 * Casbin: deny-override model held in memory, one `deny` row per rule; the amount threshold is a
 * matcher function (`amountGt`), an empty `min` meaning "any amount". enforceSync returns false on deny.
 */
export async function casbinDecider(rules: RuleSpec[]): Promise<Decider> {
  const enforcer = await newEnforcer(newModelFromString(CASBIN_MODEL));
  await enforcer.addFunction("amountGt", (amount: unknown, min: unknown) => min === "" || Number(amount) > Number(min));
  if (rules.length > 0) {
    await enforcer.addPolicies(rules.map((r) => ["*", r.tool, "call", r.minAmount === undefined ? "" : String(r.minAmount), "deny"]));
  }
  return {
    name: "casbin",
    decide(tool, amount) {
      return !enforcer.enforceSync("a", tool, "call", amount);
    },
  };
}

/**
 * Deterministic call mix: about three quarters name a ruled tool (amounts below, at and above any threshold),
 * the rest name tools no rule mentions. Amounts are integers (Cedar `Long`).
 */
export function sampleCalls(rules: RuleSpec[], count: number): Array<{ tool: string; amount: number }> {
  let state = 0x9e3779b9 ^ rules.length;
  const next = (): number => {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  const calls: Array<{ tool: string; amount: number }> = [];
  for (let i = 0; i < count; i++) {
    const pick = next();
    if (rules.length === 0 || pick < 0.25) {
      calls.push({ tool: `unruled_${Math.floor(next() * 1000)}`, amount: Math.floor(next() * 2000) });
      continue;
    }
    const rule = rules[Math.floor(next() * rules.length)]!;
    let amount: number;
    if (rule.minAmount === undefined) amount = Math.floor(next() * 2000);
    else {
      const where = next();
      amount = where < 0.4 ? Math.floor(next() * rule.minAmount) : where < 0.5 ? rule.minAmount : rule.minAmount + 1 + Math.floor(next() * 1000);
    }
    calls.push({ tool: rule.tool, amount });
  }
  return calls;
}
