import type { ActionType, RiskSeverity } from "../enums.js";
import { compileCondition, compileGlobs, compilePath, type Predicate } from "./match.js";
import type { Policy, PolicySet, When } from "./schema.js";

/**
 * What a policy decides; ordered from least to most strict, the strictest match winning.
 * @example
 * import type { DecisionAction } from "agent-warden";
 * const action: DecisionAction = warden.check({ tool: "deploy" }).action;
 */
export type DecisionAction = "allow" | "warn" | "require_approval" | "block";

export const strictness: Readonly<Record<DecisionAction, number>> = { allow: 0, warn: 1, require_approval: 2, block: 3 };

/** The facts a policy is evaluated against. */
export interface PolicyInputCall {
  tool: string;
  action: ActionType;
  agent: string;
  environment?: string | undefined;
  args: unknown;
  metadata?: unknown;
}

/**
 * One policy, limit or budget that matched a call, so a decision can be explained or a shadow policy
 * evaluated before it is enforced. Shadow matches are listed but never decide.
 * @example
 * import type { PolicyMatch } from "agent-warden";
 * const shadowed = warden.check({ tool: "deploy" }).matches.filter((match: PolicyMatch) => match.mode === "shadow");
 */
export interface PolicyMatch {
  policyId: string;
  action: DecisionAction;
  mode: "enforce" | "shadow";
  reason: string;
  severity?: RiskSeverity | undefined;
  /** Approval timeout the policy asks for, in ms. */
  timeoutMs?: number | undefined;
  kind: "policy" | "limit" | "budget";
}

export interface PolicyEvaluation {
  action: DecisionAction;
  /** The match that decided the action; absent when the default applied. */
  decidedBy: PolicyMatch | undefined;
  matches: readonly PolicyMatch[];
}

interface CompiledPolicy {
  order: number;
  match: PolicyMatch;
  actions: ReadonlySet<string> | undefined;
  /** Conditions other than tool and action, AND-ed. */
  test: ((call: PolicyInputCall) => boolean) | undefined;
}

const noMatches: readonly PolicyMatch[] = Object.freeze([]);
const maxCachedTools = 10_000;

/**
 * Evaluates a policy set on its own, without a client or a store: for testing policies before they
 * ship. Compiles the set once into an index by tool name and action, so a decision
 * costs the policies that could apply to that tool, not the size of the set.
 * @example
 * import { PolicyEngine, loadPolicyFile } from "agent-warden";
 * const engine = new PolicyEngine(loadPolicyFile("./warden.yaml"));
 * engine.evaluate({ tool: "deploy", action: "deploy", agent: "ci-bot", args: { environment: "production" } }).action;
 */
export class PolicyEngine {
  readonly set: PolicySet;
  readonly #exact = new Map<string, CompiledPolicy[]>();
  readonly #patterns: Array<{ test: (tool: string) => boolean; policy: CompiledPolicy }> = [];
  readonly #anyTool: CompiledPolicy[] = [];
  readonly #candidates = new Map<string, readonly CompiledPolicy[]>();
  readonly #defaultEvaluation: PolicyEvaluation;

  constructor(set: PolicySet) {
    this.set = set;
    this.#defaultEvaluation = Object.freeze({ action: set.default, decidedBy: undefined, matches: noMatches });
    set.policies.forEach((policy, order) => {
      if (!policy.enabled) return;
      const compiled = compilePolicy(policy, order);
      const tool = policy.when.tool;
      if (tool === undefined) this.#anyTool.push(compiled);
      else if (typeof tool === "string" && !/[*?]/.test(tool)) pushTo(this.#exact, tool, compiled);
      else if (Array.isArray(tool) && tool.every((t) => !/[*?]/.test(t))) for (const t of new Set(tool)) pushTo(this.#exact, t, compiled);
      else this.#patterns.push({ test: compileGlobs(tool), policy: compiled });
    });
  }

  /** Evaluates one call. Pure: no counters, no recording. */
  evaluate(call: PolicyInputCall): PolicyEvaluation {
    const candidates = this.#candidatesFor(call.tool, call.action);
    if (candidates.length === 0) return this.#defaultEvaluation;
    let matches: PolicyMatch[] | undefined;
    let decidedBy: PolicyMatch | undefined;
    for (const policy of candidates) {
      if (policy.test !== undefined && !policy.test(call)) continue;
      (matches ??= []).push(policy.match);
      if (policy.match.mode === "enforce" && (decidedBy === undefined || strictness[policy.match.action] > strictness[decidedBy.action])) {
        decidedBy = policy.match;
      }
    }
    if (matches === undefined) return this.#defaultEvaluation;
    return { action: decidedBy?.action ?? this.set.default, decidedBy, matches };
  }

  #candidatesFor(tool: string, action: string): readonly CompiledPolicy[] {
    const key = `${tool}\u0000${action}`;
    let candidates = this.#candidates.get(key);
    if (candidates !== undefined) return candidates;
    const all = [...(this.#exact.get(tool) ?? []), ...this.#patterns.filter((p) => p.test(tool)).map((p) => p.policy), ...this.#anyTool];
    candidates = all.filter((p) => p.actions === undefined || p.actions.has(action)).sort((a, b) => a.order - b.order);
    if (this.#candidates.size >= maxCachedTools) this.#candidates.clear();
    this.#candidates.set(key, candidates);
    return candidates;
  }
}

function compilePolicy(policy: Policy, order: number): CompiledPolicy {
  const { tool: _tool, action, agent, environment, ...fields } = policy.when as When;
  const tests: Array<(call: PolicyInputCall) => boolean> = [];
  if (agent !== undefined) {
    const test = compileGlobs(agent);
    tests.push((call) => test(call.agent));
  }
  if (environment !== undefined) {
    const test = compileGlobs(environment);
    tests.push((call) => call.environment !== undefined && test(call.environment));
  }
  for (const [key, condition] of Object.entries(fields)) {
    const [root, ...rest] = key.split(".");
    const read = compilePath(rest.join("."));
    const predicate: Predicate = compileCondition(condition as never);
    tests.push(root === "args" ? (call) => predicate(read(call.args)) : (call) => predicate(read(call.metadata)));
  }
  return {
    order,
    actions: action === undefined ? undefined : new Set(typeof action === "string" ? [action] : action),
    test: tests.length === 0 ? undefined : tests.length === 1 ? tests[0] : (call) => tests.every((t) => t(call)),
    match: Object.freeze({
      policyId: policy.id,
      action: policy.action,
      mode: policy.mode,
      reason: policy.reason ?? policy.description ?? `matched policy "${policy.id}"`,
      severity: policy.severity,
      timeoutMs: policy.approval?.timeout,
      kind: "policy" as const,
    }),
  };
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
