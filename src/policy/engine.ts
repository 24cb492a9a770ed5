import type { ApprovalRule } from "../approvals/binding.js";
import type { ActionType, RiskSeverity } from "../enums.js";
import { agentLineage } from "./identity.js";
import { GlobIndex } from "./glob-index.js";
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
  /** Risks the calling surface found, decided with the policies (not conditions policies test). */
  risks?: readonly { id: string; action: "warn" | "require_approval" | "block"; reason: string; severity?: RiskSeverity | undefined }[] | undefined;
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
  /** Who must answer, when the policy says (`approval.approvers`, `from`, `escalate`). */
  approvalRule?: ApprovalRule | undefined;
  /** A policy of the set, a rate limit, a budget, or a risk the calling surface found (`CallRisk`). */
  kind: "policy" | "limit" | "budget" | "risk";
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
const noPolicies: readonly CompiledPolicy[] = Object.freeze([]);
/** Tool names whose candidates are kept, least recently used dropped first. */
const maxCachedTools = 16_384;
/** Distinct actions kept per tool name (actions come from a closed set unless a caller hints others). */
const maxCachedActions = 32;

/** The policies a tool name can match, in policy order, and those of them each action keeps. */
interface ToolCandidates {
  byName: readonly CompiledPolicy[];
  byAction: Map<string, readonly CompiledPolicy[]>;
  /** The cache's use count when this entry last moved to the recent end. */
  moved: number;
}

/**
 * Evaluates a policy set on its own, without a client or a store: for testing policies before they
 * ship. Compiles the set once: exact names and globs into one index over their literal prefixes and
 * suffixes, so a decision costs the policies that could apply to that tool, not the size of the set,
 * for names seen before and never-seen names alike.
 * @example
 * import { PolicyEngine, loadPolicyFile } from "agent-warden";
 * const engine = new PolicyEngine(loadPolicyFile("./warden.yaml"));
 * engine.evaluate({ tool: "deploy", action: "deploy", agent: "ci-bot", args: { environment: "production" } }).action;
 */
export class PolicyEngine {
  readonly set: PolicySet;
  /** Exact names and globs of every policy's `tool`, in one index. */
  readonly #globs = new GlobIndex<CompiledPolicy>();
  /** `tool` written with operators: tested one by one, as they can say anything about a name. */
  readonly #operators: Array<{ test: (tool: string) => boolean; policy: CompiledPolicy }> = [];
  readonly #anyTool: CompiledPolicy[] = [];
  /** Per tool name, least recently used first (a Map keeps insertion order). */
  readonly #candidates = new Map<string, ToolCandidates>();
  #uses = 0;
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
      else if (typeof tool === "string") this.#globs.add(tool, compiled);
      else if (Array.isArray(tool)) for (const t of new Set(tool)) this.#globs.add(t, compiled);
      else this.#operators.push({ test: compileNameCondition(tool), policy: compiled });
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

  /** The scopes (`scope`) of the enabled policies naming this tool, in policy order, each once. */
  scopesFor(tool: string): string[] {
    const scopes = new Set<string>();
    for (const policy of this.#policiesNaming(tool)) {
      const scope = this.set.policies[policy.order]?.scope;
      if (scope !== undefined) scopes.add(scope);
    }
    return [...scopes];
  }

  #candidatesFor(tool: string, action: string): readonly CompiledPolicy[] {
    let entry = this.#candidates.get(tool);
    const uses = ++this.#uses;
    if (entry === undefined) {
      entry = { byName: this.#policiesNaming(tool), byAction: new Map(), moved: uses };
      if (this.#candidates.size >= maxCachedTools) this.#candidates.delete(this.#candidates.keys().next().value!);
      this.#candidates.set(tool, entry);
    } else if (uses - entry.moved > this.#candidates.size >> 1) {
      // Most recently used goes last; the first key is the one to drop. An entry moved within the last
      // half of the cache's size uses is still in its recent half: it stays where it is (no delete and
      // set per decision), and moves once it has aged past that, long before it could be dropped.
      entry.moved = uses;
      this.#candidates.delete(tool);
      this.#candidates.set(tool, entry);
    }
    let candidates = entry.byAction.get(action);
    if (candidates === undefined) {
      candidates = entry.byName.length === 0 ? noPolicies : entry.byName.filter((p) => p.actions === undefined || p.actions(action));
      if (entry.byAction.size < maxCachedActions) entry.byAction.set(action, candidates);
    }
    return candidates;
  }

  /** Every policy whose `tool` matches the name, in policy order, each once. */
  #policiesNaming(tool: string): readonly CompiledPolicy[] {
    const found: CompiledPolicy[] = [];
    this.#globs.forEachMatch(tool, (policy) => found.push(policy));
    for (const { test, policy } of this.#operators) if (test(tool)) found.push(policy);
    if (found.length === 0) return this.#anyTool.length === 0 ? noPolicies : this.#anyTool;
    found.push(...this.#anyTool);
    found.sort((a, b) => a.order - b.order);
    // A policy listing several globs the name matches is found once per glob.
    return found.filter((policy, i) => i === 0 || found[i - 1] !== policy);
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
      approvalRule: approvalRuleOf(policy.approval),
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

/** @internal The rule a policy's `approval` sets, or undefined when it names no reviewers, count or escalation. */
export function approvalRuleOf(approval: Policy["approval"]): ApprovalRule | undefined {
  if (approval === undefined || (approval.approvers === undefined && approval.from === undefined && approval.escalate === undefined)) return undefined;
  return { approvers: approval.approvers, from: approval.from, escalate: approval.escalate && { afterMs: approval.escalate.after, to: approval.escalate.to } };
}

/** What a policy without a reason or description did, in words that read well after its id. */
function defaultReason(action: string): string {
  if (action === "block") return "the call matches its conditions";
  if (action === "require_approval") return "the call needs a reviewer's approval";
  if (action === "warn") return "the call is flagged for review";
  return "the call is allowed";
}
