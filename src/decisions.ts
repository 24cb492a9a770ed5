import { policySetVersion } from "./approvals/binding.js";
import type { Decision } from "./decision.js";
import type { ActionType } from "./enums.js";
import { InvalidInputError, TokenError } from "./errors.js";
import type { HaltGuard } from "./halt/guard.js";
import type { CallRisk, CheckInput } from "./inputs.js";
import { CurrencyConverter, type CurrencyTable, type Money } from "./money.js";
import { classifyTool } from "./policy/classify.js";
import { PolicyEngine, strictness, type PolicyInputCall, type PolicyMatch } from "./policy/engine.js";
import { BudgetTracker, RateLimiter } from "./policy/limits.js";
import { loadPolicyFile, parsePolicySet } from "./policy/load.js";
import type { PolicySet, PolicySetInput } from "./policy/schema.js";
import type { ErrorSink } from "./recorder.js";
import type { ActiveRun } from "./scope.js";
import { hasPermission as tokenHasPermission, tokenDenial, toolAllowed, type VerifiedToken } from "./tokens/token.js";
import { stillValid, type Tokens } from "./tokens/tokens.js";

/** What a token invalidated by a halt says, as `stillValid` words it. */
const TOKEN_HALTED = "a halt since this token was issued invalidates it";

/**  What decisions need, injected. */
export interface DecisionsDeps {
  agentId: string;
  environment: string | undefined;
  /** The constructor's currency table; a policy set's own table goes on top of it. */
  currencies: CurrencyTable | undefined;
  approvalTimeout: number;
  /** The client's own delegation token, as given (verified on first use). */
  token: string | undefined;
  tokens: Tokens;
  halts: HaltGuard;
  errors: ErrorSink;
  /** Each policy set as it takes effect (the ledger records it). */
  onPolicies?: ((set: PolicySet) => void) | undefined;
}

/**
 * Decides on a call: halt guard → delegation token → policies (strictest wins) → rate limits and
 * budgets, into one `Decision`. Holds the policy set in force and what it compiles to.
 */
export class Decisions {
  readonly #deps: DecisionsDeps;
  // Two generations: names in use move to the newer one, a full newer one retires the older whole. A
  // stream of never-seen names never re-classifies every known name at once, and nothing scans (a Map's
  // oldest key is found by walking past the holes deletes leave).
  #actionTypes = new Map<string, ActionType>();
  #olderActionTypes = new Map<string, ActionType>();
  #engine!: PolicyEngine;
  #limits!: RateLimiter;
  #budgets!: BudgetTracker;
  /** The constructor's currency table with the policy set's on top: caps and budgets convert with it. */
  #converter!: CurrencyConverter;
  #clientToken: VerifiedToken | undefined;
  #policyVersion = "";

  constructor(deps: DecisionsDeps, policies: string | PolicySetInput) {
    this.#deps = deps;
    this.setPolicies(policies);
  }

  get policies(): PolicySet {
    return this.#engine.set;
  }

  /** The scopes the policy set in force asks of a caller of this tool. */
  scopesFor(tool: string): string[] {
    return this.#engine.scopesFor(tool);
  }

  /** The version of the policy set in force (a digest of it): what an approval is bound to. */
  get policyVersion(): string {
    return this.#policyVersion;
  }

  get budgets(): BudgetTracker {
    return this.#budgets;
  }

  get converter(): CurrencyConverter {
    return this.#converter;
  }

  setPolicies(policies: string | PolicySetInput): void {
    const set = typeof policies === "string" ? loadPolicyFile(policies) : parsePolicySet(policies);
    this.#converter = new CurrencyConverter({ ...this.#deps.currencies, ...set.currencies });
    this.#engine = new PolicyEngine(set);
    this.#policyVersion = policySetVersion(set);
    this.#limits = new RateLimiter(set.limits);
    this.#budgets = new BudgetTracker(set.budgets, this.#converter);
    this.#deps.onPolicies?.(set);
  }

  /** Per-run counts of a run that ended are dropped. */
  forgetRun(runId: string): void {
    if (this.#limits.size > 0) this.#limits.forgetRun(runId);
    if (this.#budgets.size > 0) this.#budgets.forgetRun(runId);
  }

  policyInput(input: CheckInput, agentId: string): PolicyInputCall {
    return {
      tool: input.tool,
      action: input.actionHint ?? this.actionTypeOf(input.tool),
      agent: agentId,
      environment: input.environment ?? this.#deps.environment,
      args: input.args ?? {},
      metadata: input.metadata,
      ...(input.risks !== undefined && input.risks.length > 0 && { risks: checkedRisks(input.risks) }),
    };
  }

  actionTypeOf(tool: string): ActionType {
    let action = this.#actionTypes.get(tool);
    if (action === undefined) {
      action = this.#olderActionTypes.get(tool) ?? classifyTool(tool);
      if (this.#actionTypes.size >= 5_000) {
        this.#olderActionTypes = this.#actionTypes;
        this.#actionTypes = new Map();
      }
      this.#actionTypes.set(tool, action);
    }
    return action;
  }

  /** The client's own token, verified on first use. Throws `TokenError` when it does not verify. */
  clientToken(): VerifiedToken | undefined {
    if (this.#deps.token === undefined) return undefined;
    return (this.#clientToken ??= this.#deps.tokens.verify(this.#deps.token, { audience: this.#deps.agentId }));
  }

  /**
   * The decision on `call`, made in `run` (undefined: outside any run the client tracks, where the
   * client's own token applies). `consume` counts the call against limits and budgets when it may go ahead.
   */
  decide(call: PolicyInputCall, run: ActiveRun | undefined, runId: string, consume: boolean, permission?: string): Decision {
    const halt = this.#deps.halts.find({ agentId: call.agent, runId: runId || undefined, ancestorRunIds: run?.ancestors });
    if (halt !== undefined) return this.#deps.halts.decision(call.action, halt);
    if (run?.tokenMissing !== undefined) {
      return { action: "block", cause: "token", reason: `run "${run.runId}" acts under delegation token ${run.tokenMissing}, which this process does not hold`, matches: [], actionType: call.action, complete: false };
    }
    let token: VerifiedToken | undefined;
    try {
      // A run carries the token it acts under (its own, its parent's, the client's); outside one, the client's.
      token = run !== undefined ? run.token : this.clientToken();
    } catch (error) {
      // Fail closed: a client token that does not verify blocks every call.
      return { action: "block", cause: "token", halted: isTokenHalt(error) || undefined, reason: (error as Error).message, matches: [], actionType: call.action, complete: false };
    }
    if (token !== undefined) {
      const denial = this.tokenDenial(token, call, permission);
      // A token a halt of a delegating agent invalidated is a halt for the caller: it stops the run.
      if (denial !== undefined) return { action: "block", cause: "token", halted: denial.halted || undefined, reason: denial.reason, matches: [], actionType: call.action, complete: true };
    }
    return this.#evaluate(call, runId, consume);
  }

  /** Policies, then limits and budgets. */
  #evaluate(call: PolicyInputCall, runId: string, consume: boolean): Decision {
    let evaluation;
    try {
      evaluation = this.#engine.evaluate(call);
    } catch (error) {
      // Enforcement fails closed: a condition that throws blocks the call.
      this.#deps.errors.report(error);
      return { action: "block", cause: "policy", reason: `policy evaluation failed: ${(error as Error).message}`, matches: [], actionType: call.action, complete: false };
    }
    let action = evaluation.action;
    let decidedBy = evaluation.decidedBy;
    let matches = evaluation.matches;
    if (call.risks !== undefined && call.risks.length > 0) {
      // Found by the surface in the call itself: as strict as a policy asking the same, over the default.
      const risks: PolicyMatch[] = call.risks.map((risk) => ({ policyId: risk.id, action: risk.action, mode: "enforce", reason: risk.reason, severity: risk.severity, kind: "risk" }));
      for (const match of risks) {
        if (decidedBy === undefined ? strictness[match.action] >= strictness[action] : strictness[match.action] > strictness[action]) {
          action = match.action;
          decidedBy = match;
        }
      }
      matches = [...matches, ...risks];
    }
    if (action !== "block" && (this.#limits.size > 0 || this.#budgets.size > 0)) {
      const now = Date.now();
      const extra: PolicyMatch[] = this.#limits.size > 0 ? this.#limits.check(call, { runId }, now) : [];
      let charges: Array<[string, number]> = [];
      if (this.#budgets.size > 0) {
        const spend = this.#budgets.checkSpend(call, runId);
        extra.push(...spend.matches);
        charges = spend.charges;
      }
      for (const match of extra) {
        if (decidedBy === undefined || strictness[match.action] > strictness[action]) {
          action = match.action;
          decidedBy = match;
        }
      }
      if (extra.length > 0) matches = [...matches, ...extra];
      // A call that waits for approval counts now: once approved it runs without another check, so
      // approvals granted together can never add up to more than the limit or budget allows.
      if (consume && action !== "block") {
        this.#limits.record(call, { runId }, now);
        this.#budgets.commitSpend(charges);
      }
    }
    const reason = decidedBy?.reason ?? (action === "allow" ? "allowed" : `default action: ${action}`);
    // Allowed or warned (most calls): built once, its members in the order the others spread them.
    if (action === "allow" || action === "warn") return { reason, matches, policyId: decidedBy?.policyId, severity: decidedBy?.severity, actionType: call.action, complete: true, action } as Decision;
    const base = { reason, matches, policyId: decidedBy?.policyId, severity: decidedBy?.severity, actionType: call.action, complete: true };
    if (action === "require_approval") return { ...base, action, timeoutMs: decidedBy?.timeoutMs ?? this.#deps.approvalTimeout, ...(decidedBy?.approvalRule !== undefined && { approvalRule: decidedBy.approvalRule }) };
    // A risk the surface found refuses as a policy does.
    if (action === "block") return { ...base, action, cause: decidedBy === undefined || decidedBy.kind === "risk" ? "policy" : decidedBy.kind };
    return { ...base, action } as Decision;
  }

  /** Why a token does not cover a call (and whether a halt is why), or undefined if it does. Enforcement: checked before policy. */
  tokenDenial(token: VerifiedToken, call: PolicyInputCall, permission: string | undefined): { reason: string; halted: boolean } | undefined {
    const invalid = stillValid(this.#deps.tokens, token, (info) => this.#deps.halts.haltedSince(info.agentId, info.issuedAt), Date.now());
    if (invalid) return { reason: invalid.message, halted: invalid.reason === "halted" };
    const authority = token.authority;
    // A token's `tools` list grants those tools; otherwise the call needs a scope for its permission.
    const byTool = authority.tools !== undefined && toolAllowed(authority, call.tool);
    if (authority.tools !== undefined && !byTool && permission === undefined) return { reason: `token ${token.id} does not allow tool "${call.tool}"`, halted: false };
    const args = call.args as { amount?: unknown; currency?: unknown } | undefined;
    // The policy file's `currencies` table counts for caps too, as for budgets.
    const denial = tokenDenial(token, { permission: byTool ? undefined : (permission ?? call.tool.replaceAll(".", ":")), amount: args?.amount, currency: args?.currency }, this.#converter);
    return denial === undefined ? undefined : { reason: denial, halted: false };
  }

  /** From the token alone: is `permission` granted (and the token unexpired)? */
  hasPermission(permission: string, token: VerifiedToken | undefined): boolean {
    return token !== undefined && tokenHasPermission(token.authority, permission) && Date.now() < token.expiresAt;
  }

  /** The token (scope and amount cap), then policy (`permission` as the tool, the amount as `args.amount`): one decision. */
  authorize(permission: string, money: Partial<Money>, token: VerifiedToken | undefined): Decision {
    const args = { amount: money.amount, currency: money.currency };
    const call: PolicyInputCall = { tool: permission, action: this.actionTypeOf(permission), agent: token?.authority.agentId ?? this.#deps.agentId, environment: this.#deps.environment, args };
    if (token === undefined) return { action: "block", cause: "token", reason: "no delegation token", matches: [], actionType: call.action, complete: true };
    const halt = this.#deps.halts.find({ agentId: call.agent });
    if (halt !== undefined) return this.#deps.halts.decision(call.action, halt);
    const denial = this.tokenDenial(token, call, permission);
    if (denial !== undefined) return { action: "block", cause: "token", halted: denial.halted || undefined, reason: denial.reason, matches: [], actionType: call.action, complete: true };
    return this.#evaluate(call, "", false);
  }

  /** The error a blocked decision surfaces: `TokenError` for a token a halt invalidated, `HaltedError` for a halt, else `undefined` (the caller builds a `ToolBlockedError`). */
  static haltError(decision: Decision): TokenError | undefined {
    return decision.action === "block" && decision.halted && decision.cause === "token" ? new TokenError("halted", TOKEN_HALTED) : undefined;
  }
}

const RISK_ACTIONS: ReadonlySet<unknown> = new Set(["warn", "require_approval", "block"]);

/** The risks as given, or `InvalidInputError`: a risk that cannot be decided must not pass as none. */
function checkedRisks(risks: readonly CallRisk[]): readonly CallRisk[] {
  if (!Array.isArray(risks)) throw new InvalidInputError("risks must be an array");
  for (const risk of risks) {
    if (risk === null || typeof risk !== "object" || typeof risk.id !== "string" || risk.id.length === 0 || typeof risk.reason !== "string" || !RISK_ACTIONS.has(risk.action)) {
      throw new InvalidInputError('a risk needs an id, a reason and an action ("warn", "require_approval" or "block")');
    }
  }
  return risks;
}

function isTokenHalt(error: unknown): boolean {
  return error instanceof TokenError && error.reason === "halted";
}
