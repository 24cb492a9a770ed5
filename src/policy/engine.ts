import type { ActionType, RiskSeverity } from "../enums.js";
import { agentLineage } from "./identity.js";
import { compileCondition, compileGlobs, compilePath, type Predicate } from "./match.js";
import type { Condition, Operators, Policy, PolicySet, When } from "./schema.js";

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
  /** The `action` condition; undefined ⇒ any action. */
  actions: ((action: string) => boolean) | undefined;
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
  /** Each match's position in the set, to list the matches of several identities in policy order. */
  readonly #order = new Map<PolicyMatch, number>();

  constructor(set: PolicySet) {
    this.set = set;
    this.#defaultEvaluation = Object.freeze({ action: set.default, decidedBy: undefined, matches: noMatches });
    set.policies.forEach((policy, order) => {
      if (!policy.enabled) return;
      const compiled = compilePolicy(policy, order);
      this.#order.set(compiled.match, order);
      const tool = policy.when.tool;
      if (tool === undefined) this.#anyTool.push(compiled);
      else if (typeof tool === "string" && !/[*?]/.test(tool)) pushTo(this.#exact, tool, compiled);
      else if (Array.isArray(tool) && tool.every((t) => !/[*?]/.test(t))) for (const t of new Set(tool)) pushTo(this.#exact, t, compiled);
      // Globs and operator forms: tested once per tool name and action, then cached with the candidates.
      else this.#patterns.push({ test: compileNameCondition(tool), policy: compiled });
    });
  }

  /**
   * Evaluates one call. Pure: no counters, no recording. A sub-identity (`intern/helper`) is bound
   * by every rule for each identity above it: its decision is the strictest of the decisions for
   * `intern` and for `intern/helper`, and lists every policy that matched either.
   */
  evaluate(call: PolicyInputCall): PolicyEvaluation {
    if (call.agent.includes("/")) return this.#evaluateLineage(call);
    return this.#evaluateAs(call);
  }

  #evaluateLineage(call: PolicyInputCall): PolicyEvaluation {
    let strictest: PolicyEvaluation | undefined;
    const matched = new Set<PolicyMatch>();
    for (const agent of agentLineage(call.agent)) {
      const evaluation = this.#evaluateAs({ ...call, agent });
      for (const match of evaluation.matches) matched.add(match);
      if (strictest === undefined || strictness[evaluation.action] > strictness[strictest.action]) strictest = evaluation;
    }
    if (matched.size === 0) return strictest!;
    const matches = [...matched].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
    return { action: strictest!.action, decidedBy: strictest!.decidedBy, matches };
  }

  #evaluateAs(call: PolicyInputCall): PolicyEvaluation {
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
    candidates = all.filter((p) => p.actions === undefined || p.actions(action)).sort((a, b) => a.order - b.order);
    if (this.#candidates.size >= maxCachedTools) this.#candidates.clear();
    this.#candidates.set(key, candidates);
    return candidates;
  }
}

function compilePolicy(policy: Policy, order: number): CompiledPolicy {
  const { tool: _tool, action, agent, environment, ...fields } = policy.when as When;
  const tests: Array<(call: PolicyInputCall) => boolean> = [];
  if (agent !== undefined) {
    const test = compileNameCondition(agent);
    tests.push((call) => test(call.agent));
  }
  if (environment !== undefined) {
    if (isOperators(environment)) {
      // Operators see a missing environment as undefined, as `args.*` conditions see a missing field.
      const predicate = compileCondition(environment);
      tests.push((call) => predicate(call.environment));
    } else {
      const test = compileGlobs(environment);
      tests.push((call) => call.environment !== undefined && test(call.environment));
    }
  }
  for (const [key, condition] of Object.entries(fields)) {
    const [root, ...rest] = key.split(".");
    const read = compilePath(rest.join("."));
    const predicate: Predicate = compileCondition(condition as never);
    tests.push(root === "args" ? (call) => predicate(read(call.args)) : (call) => predicate(read(call.metadata)));
  }
  return {
    order,
    actions: compileActionCondition(action),
    test: tests.length === 0 ? undefined : tests.length === 1 ? tests[0] : (call) => tests.every((t) => t(call)),
    match: Object.freeze({
      policyId: policy.id,
      action: policy.action,
      mode: policy.mode,
      // Without a reason or description, the error already names the policy ("blocked by policy "x""): say what it did.
      reason: policy.reason ?? policy.description ?? defaultReason(policy.action),
      severity: policy.severity,
      timeoutMs: policy.approval?.timeout,
      kind: "policy" as const,
    }),
  };
}

function isOperators(condition: string | readonly string[] | Operators): condition is Operators {
  return typeof condition === "object" && !Array.isArray(condition);
}

/** A glob or list of globs, or operators tested on the name as a literal string. */
function compileNameCondition(condition: string | readonly string[] | Operators): (name: string) => boolean {
  if (!isOperators(condition)) return compileGlobs(condition);
  const predicate = compileCondition(condition as Condition);
  return (name) => predicate(name);
}

function compileActionCondition(condition: When["action"]): ((action: string) => boolean) | undefined {
  if (condition === undefined) return undefined;
  if (isOperators(condition)) {
    const predicate = compileCondition(condition as Condition);
    return (action) => predicate(action);
  }
  const set = new Set<string>(typeof condition === "string" ? [condition] : condition);
  return (action) => set.has(action);
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** What a policy without a reason or description did, in words that read well after its id. */
function defaultReason(action: string): string {
  if (action === "block") return "the call matches its conditions";
  if (action === "require_approval") return "the call needs a reviewer's approval";
  if (action === "warn") return "the call is flagged for review";
  return "the call is allowed";
}
