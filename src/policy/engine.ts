import type { ApprovalRule } from "../approvals/binding.js";
import type { ActionType, RiskSeverity } from "../enums.js";
import { agentLineage } from "./identity.js";
import { GlobIndex } from "./glob-index.js";
import { allOf, compileCondition, compileGlobs, compilePath, type Predicate } from "./match.js";
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
  /** The agents an `agent` condition of plain names can match; undefined when it can match others. */
  agents: readonly string[] | undefined;
  /** The one agent, or environment, a condition naming just one requires: compared in place, not through a closure. */
  agentIs: string | undefined;
  environmentIs: string | undefined;
  /** The evaluation when this policy is the only one that matches: built once, not per call. */
  alone: PolicyEvaluation;
}

/** Policies found together for a name: those of one exact name, one glob, or one `tool` operator condition. */
interface Source {
  id: number;
  policies: CompiledPolicy[];
  /** What a name matching this source alone can match (policies without `tool` included), built on first use. */
  list: CandidateList | undefined;
  /** What a name matching this source and one other (of a higher id) can match, by the other's id. */
  pairs: Map<number, CandidateList> | undefined;
}

/** Candidates for one action, split by agent once the list is long enough for the split to pay. */
interface Candidates {
  /** Policies that can match any agent, in policy order. */
  general: readonly CompiledPolicy[];
  /** Policies whose `agent` condition lists plain names, by name, in policy order. */
  byAgent: ReadonlyMap<string, readonly CompiledPolicy[]> | undefined;
}

const noMatches: readonly PolicyMatch[] = Object.freeze([]);
const noCandidates: Candidates = Object.freeze({ general: Object.freeze([]), byAgent: undefined });
/** From this many candidates on, those naming their agents are looked up by the call's agent rather than tested one by one. */
const agentIndexFrom = 8;
/** Distinct actions kept per candidate list (actions come from a closed set unless a caller hints others). */
const maxCachedActions = 32;
/** Tool names whose candidates are kept when `tool` operator conditions must be tested, least recently used dropped first. */
const maxCachedTools = 16_384;
/** Pairs of sources found together for a name, kept per source with their merged candidates. */
const maxPairsPerSource = 32;
/** Sets of three or more sources found together for a name, kept with their merged candidates. */
const maxCachedCombinations = 4096;

/**
 * The policies a tool name can match, in policy order, and those of them each action keeps. Bound to
 * sources of the policy set (an exact name, a glob, a combination of them), never to one call's name,
 * so their number is bounded by the set whatever names calls bring.
 */
class CandidateList implements Candidates {
  readonly all: readonly CompiledPolicy[];
  /** When no policy of the list tests the action, the list is its own answer for every action (one object less to reach per call). */
  readonly general: readonly CompiledPolicy[];
  readonly byAgent: ReadonlyMap<string, readonly CompiledPolicy[]> | undefined;
  readonly #anyAction: boolean;
  #byAction: Map<string, Candidates> | undefined;

  constructor(all: readonly CompiledPolicy[]) {
    this.all = all;
    this.#anyAction = all.every((policy) => policy.actions === undefined);
    const own = this.#anyAction ? splitByAgent(all) : noCandidates;
    this.general = own.general;
    this.byAgent = own.byAgent;
  }

  forAction(action: string): Candidates {
    if (this.#anyAction) return this;
    let candidates = this.#byAction?.get(action);
    if (candidates === undefined) {
      candidates = splitByAgent(this.all.filter((policy) => policy.actions === undefined || policy.actions(action)));
      this.#byAction ??= new Map();
      if (this.#byAction.size < maxCachedActions) this.#byAction.set(action, candidates);
    }
    return candidates;
  }
}

function splitByAgent(policies: readonly CompiledPolicy[]): Candidates {
  if (policies.length === 0) return noCandidates;
  if (policies.length < agentIndexFrom || policies.every((policy) => policy.agents === undefined)) return { general: policies, byAgent: undefined };
  const byAgent = new Map<string, CompiledPolicy[]>();
  for (const policy of policies) {
    for (const agent of policy.agents ?? []) {
      const list = byAgent.get(agent);
      if (list === undefined) byAgent.set(agent, [policy]);
      else list.push(policy);
    }
  }
  return { general: policies.filter((policy) => policy.agents === undefined), byAgent };
}

/** Policies of several lists in policy order, each once. */
function merged(lists: ReadonlyArray<readonly CompiledPolicy[]>): CompiledPolicy[] {
  const all = lists.flat().sort((a, b) => a.order - b.order);
  // A policy listing several globs the name matches is found once per glob.
  return all.filter((policy, i) => i === 0 || all[i - 1] !== policy);
}

/**
 * Evaluates a policy set on its own, without a client or a store: for testing policies before they
 * ship. Compiles the set once: exact names and globs into one index over their literal prefixes and
 * suffixes, each with the policies it leads to listed per action (and per agent where policies name
 * theirs), so a decision costs the policies that could apply to that call, not the size of the set,
 * for names seen before and never-seen names alike, and allocates nothing unless several policies match.
 * @example
 * import { PolicyEngine, loadPolicyFile } from "agent-warden";
 * const engine = new PolicyEngine(loadPolicyFile("./warden.yaml"));
 * engine.evaluate({ tool: "deploy", action: "deploy", agent: "ci-bot", args: { environment: "production" } }).action;
 */
export class PolicyEngine {
  readonly set: PolicySet;
  /** Plain tool names: their source, replaced by the name's candidates once first asked for (one object less to reach per call). */
  readonly #exact = new Map<string, Source | CandidateList>();
  /** Every glob of the policies' `tool`, one source per distinct glob. */
  readonly #globs = new GlobIndex<Source>();
  /** `tool` written with operators: tested one by one, as they can say anything about a name. */
  readonly #operators: Array<{ test: (tool: string) => boolean; source: Source }> = [];
  /** Policies without `tool`, and the candidates of a name no other policy matches. */
  readonly #anyTool: CompiledPolicy[] = [];
  readonly #anyToolList: CandidateList;
  /** Merged candidates per set of sources found together, by their ids. */
  readonly #combinations = new Map<string, CandidateList>();
  /** Per tool name when operators must be tested, least recently used first (a Map keeps insertion order). */
  readonly #byName = new Map<string, { list: CandidateList; moved: number }>();
  #uses = 0;
  /** Sources found for the name being looked up: reused, lookups are synchronous. */
  readonly #found: Source[] = [];
  readonly #defaultEvaluation: PolicyEvaluation;
  /** Each match's position in the set, to list the matches of several identities in policy order. */
  readonly #order = new Map<PolicyMatch, number>();

  constructor(set: PolicySet) {
    this.set = set;
    this.#defaultEvaluation = Object.freeze({ action: set.default, decidedBy: undefined, matches: noMatches });
    let sources = 0;
    const globs = new Map<string, Source>();
    const sourceOf = (map: Map<string, Source | CandidateList>, key: string): Source => {
      let source = map.get(key) as Source | undefined;
      if (source === undefined) map.set(key, (source = { id: sources++, policies: [], list: undefined, pairs: undefined }));
      return source;
    };
    set.policies.forEach((policy, order) => {
      if (!policy.enabled) return;
      const compiled = compilePolicy(policy, order, set.default);
      this.#order.set(compiled.match, order);
      const tool = policy.when.tool;
      if (tool === undefined) this.#anyTool.push(compiled);
      else if (typeof tool === "string" || Array.isArray(tool)) {
        for (const name of new Set(typeof tool === "string" ? [tool] : tool)) {
          // `*` matches every name, as no `tool` at all does.
          if (/^\*+$/.test(name)) this.#anyTool.push(compiled);
          else if (!name.includes("*") && !name.includes("?")) sourceOf(this.#exact, name).policies.push(compiled);
          else sourceOf(globs, name).policies.push(compiled);
        }
      } else this.#operators.push({ test: compileNameCondition(tool), source: { id: sources++, policies: [compiled], list: undefined, pairs: undefined } });
    });
    for (const [pattern, source] of globs) this.#globs.add(pattern, source);
    this.#globs.compile();
    // A policy listing `*` and other globs is in `#anyTool` once.
    this.#anyTool = merged([this.#anyTool]);
    this.#anyToolList = new CandidateList(this.#anyTool);
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
    const { general, byAgent } = this.#listFor(call.tool).forAction(call.action);
    const own = byAgent?.get(call.agent);
    const generalCount = general.length;
    const ownCount = own === undefined ? 0 : own.length;
    let first: CompiledPolicy | undefined;
    let matches: PolicyMatch[] | undefined;
    let decidedBy: PolicyMatch | undefined;
    // The policies for any agent and those naming this one, merged in policy order.
    for (let i = 0, j = 0; i < generalCount || j < ownCount; ) {
      const policy = j === ownCount || (i < generalCount && general[i]!.order < own![j]!.order) ? general[i++]! : own![j++]!;
      if (policy.agentIs !== undefined && policy.agentIs !== call.agent) continue;
      if (policy.environmentIs !== undefined && policy.environmentIs !== call.environment) continue;
      if (policy.test !== undefined && !policy.test(call)) continue;
      if (first === undefined) first = policy;
      else (matches ??= [first.match]).push(policy.match);
      if (policy.match.mode === "enforce" && (decidedBy === undefined || strictness[policy.match.action] > strictness[decidedBy.action])) {
        decidedBy = policy.match;
      }
    }
    if (first === undefined) return this.#defaultEvaluation;
    if (matches === undefined) return first.alone;
    return { action: decidedBy?.action ?? this.set.default, decidedBy, matches };
  }

  /** The scopes (`scope`) of the enabled policies naming this tool, in policy order, each once. */
  scopesFor(tool: string): string[] {
    const scopes = new Set<string>();
    for (const policy of this.#listFor(tool).all) {
      const scope = this.set.policies[policy.order]?.scope;
      if (scope !== undefined) scopes.add(scope);
    }
    return [...scopes];
  }

  #listFor(tool: string): CandidateList {
    const exact = this.#exact.get(tool);
    if (exact !== undefined) {
      if (exact instanceof CandidateList) return exact;
      const list = this.#lookUp(tool, exact);
      this.#exact.set(tool, list);
      return list;
    }
    if (this.#operators.length === 0) return this.#lookUp(tool, undefined);
    // Operators are tested one by one: their answer for a name is kept.
    let entry = this.#byName.get(tool);
    const uses = ++this.#uses;
    if (entry === undefined) {
      entry = { list: this.#lookUp(tool, undefined), moved: uses };
      if (this.#byName.size >= maxCachedTools) this.#byName.delete(this.#byName.keys().next().value!);
      this.#byName.set(tool, entry);
    } else if (uses - entry.moved > this.#byName.size >> 1) {
      // Most recently used goes last; the first key is the one to drop. An entry moved within the last
      // half of the cache's size uses is still in its recent half: it stays where it is (no delete and
      // set per decision), and moves once it has aged past that, long before it could be dropped.
      entry.moved = uses;
      this.#byName.delete(tool);
      this.#byName.set(tool, entry);
    }
    return entry.list;
  }

  /** The candidates of a name: of the one source it matches (most names), or of the combination it matches. */
  #lookUp(tool: string, exact: Source | undefined): CandidateList {
    const found = this.#found;
    found.length = 0;
    if (exact !== undefined) found.push(exact);
    this.#globs.collect(tool, found);
    for (const { test, source } of this.#operators) if (test(tool)) found.push(source);
    if (found.length === 0) return this.#anyToolList;
    if (found.length === 1) {
      const source = found[0]!;
      return (source.list ??= new CandidateList(this.#anyTool.length === 0 ? source.policies : merged([source.policies, this.#anyTool])));
    }
    if (found.length === 2) {
      // Two globs matching one name (the usual overlap): the pair is kept by the first of them, no key to build.
      const low = found[0]!.id < found[1]!.id ? found[0]! : found[1]!;
      const high = low === found[0] ? found[1]! : found[0]!;
      let list = low.pairs?.get(high.id);
      if (list === undefined) {
        list = new CandidateList(merged([low.policies, high.policies, this.#anyTool]));
        low.pairs ??= new Map();
        if (low.pairs.size < maxPairsPerSource) low.pairs.set(high.id, list);
      }
      return list;
    }
    found.sort((a, b) => a.id - b.id);
    let key = "";
    for (const source of found) key += `${source.id},`;
    let list = this.#combinations.get(key);
    if (list === undefined) {
      list = new CandidateList(merged([...found.map((source) => source.policies), this.#anyTool]));
      if (this.#combinations.size >= maxCachedCombinations) this.#combinations.delete(this.#combinations.keys().next().value!);
      this.#combinations.set(key, list);
    }
    return list;
  }
}

function compilePolicy(policy: Policy, order: number, defaultAction: DecisionAction): CompiledPolicy {
  const { tool: _tool, action, agent, environment, ...fields } = policy.when as When;
  const tests: Array<(call: PolicyInputCall) => boolean> = [];
  const agents = plainNames(agent);
  const agentIs = agents?.length === 1 ? agents[0] : undefined;
  const environments = plainNames(environment);
  const environmentIs = environments?.length === 1 ? environments[0] : undefined;
  if (agent !== undefined && agentIs === undefined) {
    const test = compileNameCondition(agent);
    tests.push((call) => test(call.agent));
  }
  if (environment !== undefined && environmentIs === undefined) {
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
    tests.push(fieldTest(root === "args" ? "args" : "metadata", rest, compileCondition(condition as never)));
  }
  const match: PolicyMatch = Object.freeze({
    policyId: policy.id,
    action: policy.action,
    mode: policy.mode,
    // Without a reason or description, the error already names the policy ("blocked by policy "x""): say what it did.
    reason: policy.reason ?? policy.description ?? defaultReason(policy.action),
    severity: policy.severity,
    timeoutMs: policy.approval?.timeout,
    approvalRule: approvalRuleOf(policy.approval),
    kind: "policy" as const,
  });
  const enforced = policy.mode === "enforce";
  return {
    order,
    actions: compileActionCondition(action),
    test: tests.length === 0 ? undefined : allOf(tests),
    agents,
    agentIs,
    environmentIs,
    match,
    alone: Object.freeze({ action: enforced ? match.action : defaultAction, decidedBy: enforced ? match : undefined, matches: Object.freeze([match]) }),
  };
}

/** An `args.*` or `metadata.*` condition; a top-level field is read in place, one closure less to reach per call. */
function fieldTest(root: "args" | "metadata", path: readonly string[], predicate: Predicate): (call: PolicyInputCall) => boolean {
  if (path.length === 1) {
    const key = path[0]!;
    // Own properties only, as `compilePath` reads them: `args.constructor` must not find Object's.
    if (root === "args") {
      return (call) => {
        const args = call.args;
        return predicate(args !== null && typeof args === "object" && Object.hasOwn(args, key) ? (args as Record<string, unknown>)[key] : undefined);
      };
    }
    return (call) => {
      const metadata = call.metadata;
      return predicate(metadata !== null && typeof metadata === "object" && Object.hasOwn(metadata, key) ? (metadata as Record<string, unknown>)[key] : undefined);
    };
  }
  const read = compilePath(path.join("."));
  return root === "args" ? (call) => predicate(read(call.args)) : (call) => predicate(read(call.metadata));
}

/** The names a name condition lists when none is a glob or operators, else undefined. */
function plainNames(condition: When["agent"]): string[] | undefined {
  if (condition === undefined || isOperators(condition)) return undefined;
  const names = typeof condition === "string" ? [condition] : condition;
  return names.some((name) => name.includes("*") || name.includes("?")) ? undefined : [...new Set(names)];
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
