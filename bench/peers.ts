// Equivalent rule sets for the decision-speed benchmark: one abstract rule list rendered as a Warden
// policy set, a Cedar policy set, a Casbin model + policy, and a plain Map lookup (the floor).
// Every rule means "calls of `tool` are not allowed (when args.amount > minAmount, if given)".
import { preparsePolicySet, statefulIsAuthorized } from "@cedar-policy/cedar-wasm/nodejs";
import { newEnforcer, newModelFromString } from "casbin";

export interface RuleSpec {
  id: string;
  /** An exact name or a glob with `*` (the wildcard all three engines share). */
  tool: string;
  action: "block" | "require_approval" | "warn";
  /** The rule matches only when args.amount > minAmount. */
  minAmount?: number;
  /** The rule matches only this agent. */
  agent?: string;
  /** The rule matches only this environment. */
  environment?: string;
}

/** One call, as every engine is asked about it. */
export interface CallSpec {
  tool: string;
  amount: number;
  agent: string;
  environment: string;
}

export interface Decider {
  name: string;
  /** true = not allowed (a block / require_approval / warn rule matched). */
  decide(call: CallSpec): boolean;
}

const ACTIONS: readonly RuleSpec["action"][] = ["block", "require_approval", "warn"];
export const AGENTS = 25;
export const ENVIRONMENTS = ["production", "staging", "dev"] as const;

/**
 * n rules; `globShare` of them name tools by glob (`svc_k.*`, `*.op_k`, `svc_k*_op_j` in turn), the rest
 * exact names `tool_i`. Every third rule has an amount threshold, every fifth an agent, every seventh an
 * environment.
 */
export function makeRules(n: number, globShare = 0): RuleSpec[] {
  const rules: RuleSpec[] = [];
  const globEvery = globShare > 0 ? 1 / globShare : Number.POSITIVE_INFINITY;
  let globs = 0;
  for (let i = 0; i < n; i++) {
    let tool = `tool_${i}`;
    if ((i + 1) / globEvery >= globs + 1) {
      const k = globs++;
      tool = k % 3 === 0 ? `svc_${k}.*` : k % 3 === 1 ? `*.op_${k}` : `svc_${k}*_op_${k % 7}`;
    }
    const rule: RuleSpec = { id: `rule_${i}`, tool, action: ACTIONS[i % ACTIONS.length]! };
    if (i % 3 === 0) rule.minAmount = 100 + ((i * 37) % 900);
    if (i % 5 === 0) rule.agent = `agent_${i % AGENTS}`;
    if (i % 7 === 0) rule.environment = ENVIRONMENTS[i % ENVIRONMENTS.length]!;
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
      if (r.agent !== undefined) when["agent"] = r.agent;
      if (r.environment !== undefined) when["environment"] = r.environment;
      if (r.minAmount !== undefined) when["args.amount"] = { gt: r.minAmount };
      return { id: r.id, when, action: r.action };
    }),
  };
}

/** A reference: every rule tested in turn, globs as regular expressions compiled up front. */
export function referenceDecider(rules: RuleSpec[]): Decider {
  const compiled = rules.map((r) => ({ ...r, test: globRegex(r.tool) }));
  return {
    name: "reference (linear scan)",
    decide(call) {
      return compiled.some((r) => ruleMatches(r, r.test, call));
    },
  };
}

function ruleMatches(r: RuleSpec, test: RegExp, call: CallSpec): boolean {
  return (
    test.test(call.tool) &&
    (r.agent === undefined || r.agent === call.agent) &&
    (r.environment === undefined || r.environment === call.environment) &&
    (r.minAmount === undefined || call.amount > r.minAmount)
  );
}

function globRegex(glob: string): RegExp {
  return new RegExp(`^${glob.split("*").map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`, "s");
}

let cedarSetCounter = 0;

/**
 * Cedar: `permit(principal, action, resource);` plus one `forbid` per rule. The policy set is parsed once
 * into the wasm module's cache (`preparsePolicySet`) and each decision goes through `statefulIsAuthorized`,
 * so no policy text is re-parsed per call. Exact tools are resource equality (what Cedar indexes on);
 * globs are `like` on the tool name carried in the context.
 */
export async function cedarDecider(rules: RuleSpec[]): Promise<Decider> {
  const staticPolicies: Record<string, string> = { permit_all: "permit(principal, action, resource);" };
  for (const r of rules) {
    const glob = r.tool.includes("*");
    const principal = r.agent === undefined ? "principal" : `principal == Agent::"${r.agent}"`;
    const resource = glob ? "resource" : `resource == Tool::"${r.tool}"`;
    const conditions: string[] = [];
    if (glob) conditions.push(`context.tool like "${r.tool}"`);
    if (r.environment !== undefined) conditions.push(`context.environment == "${r.environment}"`);
    if (r.minAmount !== undefined) conditions.push(`context.amount > ${r.minAmount}`);
    staticPolicies[r.id] = `forbid(${principal}, action == Action::"call", ${resource})${conditions.length > 0 ? ` when { ${conditions.join(" && ")} }` : ""};`;
  }
  const setId = `peers_bench_${++cedarSetCounter}`;
  const parsed = preparsePolicySet(setId, { staticPolicies });
  if (parsed.type !== "success") throw new Error(`cedar: policy set did not parse: ${JSON.stringify(parsed.errors)}`);
  const action = { type: "Action", id: "call" };
  return {
    name: "cedar-wasm",
    decide(call) {
      const answer = statefulIsAuthorized({
        principal: { type: "Agent", id: call.agent },
        action,
        resource: { type: "Tool", id: call.tool },
        context: { tool: call.tool, amount: call.amount, environment: call.environment },
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
r = sub, obj, env, amount

[policy_definition]
p = sub, obj, env, min, eft

[policy_effect]
e = !some(where (p.eft == deny))

[matchers]
m = (p.sub == "*" || r.sub == p.sub) && toolMatch(r.obj, p.obj) && (p.env == "*" || r.env == p.env) && amountGt(r.amount, p.min)
`;

/**
 * Casbin: deny-override model held in memory, one `deny` row per rule. Tool globs go through a
 * `toolMatch` function with each glob's regular expression compiled once (Casbin's own `globMatch`
 * compiles a minimatch pattern on every test); the amount threshold is `amountGt`, an empty `min`
 * meaning "any amount". enforceSync returns false on deny.
 */
export async function casbinDecider(rules: RuleSpec[]): Promise<Decider> {
  const enforcer = await newEnforcer(newModelFromString(CASBIN_MODEL));
  const regexes = new Map<string, RegExp>();
  await enforcer.addFunction("toolMatch", (tool: string, glob: string) => {
    if (!glob.includes("*")) return tool === glob;
    let regex = regexes.get(glob);
    if (regex === undefined) regexes.set(glob, (regex = globRegex(glob)));
    return regex.test(tool);
  });
  await enforcer.addFunction("amountGt", (amount: unknown, min: unknown) => min === "" || Number(amount) > Number(min));
  if (rules.length > 0) {
    await enforcer.addPolicies(rules.map((r) => [r.agent ?? "*", r.tool, r.environment ?? "*", r.minAmount === undefined ? "" : String(r.minAmount), "deny"]));
  }
  return {
    name: "casbin",
    decide(call) {
      return !enforcer.enforceSync(call.agent, call.tool, call.environment, call.amount);
    },
  };
}

/**
 * A deterministic call mix. "mixed": ~45% name a ruled exact tool, ~20% a name one of the globs matches,
 * ~20% one of 2,000 unruled names, ~15% a name never seen before (unique to the call); agents, environments
 * and amounts vary on every call. "never-seen": every call names a tool never seen before.
 */
export function sampleCalls(rules: RuleSpec[], count: number, mix: "mixed" | "never-seen", seed = 1): CallSpec[] {
  let state = (0x9e3779b9 ^ (rules.length * 7919) ^ seed) >>> 0 || 1;
  const next = (): number => {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
  const exact = rules.filter((r) => !r.tool.includes("*"));
  const globs = rules.filter((r) => r.tool.includes("*"));
  const calls: CallSpec[] = [];
  for (let i = 0; i < count; i++) {
    const pick = mix === "never-seen" ? 1 : next();
    let tool: string;
    if (pick < 0.45 && exact.length > 0) tool = exact[Math.floor(next() * exact.length)]!.tool;
    else if (pick < 0.65 && globs.length > 0) tool = instantiate(globs[Math.floor(next() * globs.length)]!.tool, next);
    else if (pick < 0.85) tool = `unruled_${Math.floor(next() * 2000)}`;
    else tool = `fresh_${seed}_${i}_${Math.floor(next() * 1e9).toString(36)}.call`;
    calls.push({ tool, amount: Math.floor(next() * 2000), agent: `agent_${Math.floor(next() * AGENTS)}`, environment: ENVIRONMENTS[Math.floor(next() * ENVIRONMENTS.length)]! });
  }
  return calls;
}

/** A name the glob matches, its `*` filled with varied text. */
function instantiate(glob: string, next: () => number): string {
  return glob.replaceAll("*", () => `x${Math.floor(next() * 500)}`);
}
