import type { CurrencyConverter } from "../money.js";
import type { PolicyInputCall, PolicyMatch } from "./engine.js";
import { rootAgentId } from "./identity.js";
import { asNumber, compileGlobs, compilePath } from "./match.js";
import type { Budget, RateLimit } from "./schema.js";

interface LimitContext {
  runId: string;
}

interface CompiledLimit {
  limit: RateLimit;
  applies: (call: PolicyInputCall) => boolean;
}

/**
 * Sliding-window call counts per limit and scope, in process memory. `check` answers; `record`
 * counts a call that went ahead, so refused calls do not use up the window.
 */
export class RateLimiter {
  readonly #limits: CompiledLimit[];
  readonly #windows = new Map<string, number[]>();

  constructor(limits: readonly RateLimit[]) {
    this.#limits = limits.map((limit) => {
      const tool = limit.tool === undefined ? undefined : compileGlobs(limit.tool);
      const actions = limit.action === undefined ? undefined : new Set(typeof limit.action === "string" ? [limit.action] : limit.action);
      return { limit, applies: (call) => (tool === undefined || tool(call.tool)) && (actions === undefined || actions.has(call.action)) };
    });
  }

  get size(): number {
    return this.#limits.length;
  }

  check(call: PolicyInputCall, context: LimitContext, now: number): PolicyMatch[] {
    const matches: PolicyMatch[] = [];
    for (const { limit, applies } of this.#limits) {
      if (!applies(call)) continue;
      const window = this.#window(limit, call, context, now);
      if (window.length >= limit.max) {
        matches.push({
          policyId: limit.id,
          action: limit.exceed,
          mode: "enforce",
          kind: "limit",
          reason: `rate limit "${limit.id}": more than ${limit.max} calls per ${formatMs(limit.per)}`,
        });
      }
    }
    return matches;
  }

  /** Drops the windows of a run that ended: per-run counts must not pile up in a long-lived process. */
  forgetRun(runId: string): void {
    for (const { limit } of this.#limits) if (limit.scope === "run") this.#windows.delete(`${limit.id}\u0000${runId}`);
  }

  record(call: PolicyInputCall, context: LimitContext, now: number): void {
    for (const { limit, applies } of this.#limits) if (applies(call)) this.#window(limit, call, context, now).push(now);
  }

  #window(limit: RateLimit, call: PolicyInputCall, context: LimitContext, now: number): number[] {
    // Sub-identities count against the agent they belong to: `intern/0`, `intern/1`… share `intern`'s window.
    const scope = limit.scope === "agent" ? rootAgentId(call.agent) : limit.scope === "run" ? context.runId : "";
    const key = `${limit.id}\u0000${scope}`;
    let window = this.#windows.get(key);
    if (window === undefined) {
      window = [];
      this.#windows.set(key, window);
    }
    const cutoff = now - limit.per;
    let drop = 0;
    while (drop < window.length && window[drop]! <= cutoff) drop++;
    if (drop > 0) window.splice(0, drop);
    return window;
  }
}

interface CompiledBudget {
  budget: Budget;
  applies: (call: PolicyInputCall) => boolean;
  amount: (call: PolicyInputCall) => unknown;
  currency: (call: PolicyInputCall) => unknown;
}

/** Spend per run (integer minor units, converted into the budget's currency) and LLM tokens per run. */
export class BudgetTracker {
  readonly #budgets: CompiledBudget[];
  readonly #spent = new Map<string, number>();
  readonly #converter: CurrencyConverter;

  constructor(budgets: readonly Budget[], converter: CurrencyConverter) {
    this.#converter = converter;
    this.#budgets = budgets.map((budget) => {
      const tool = budget.tool === undefined ? undefined : compileGlobs(budget.tool);
      const read = (path: string) => {
        const [root, ...rest] = path.split(".");
        const get = compilePath(rest.join("."));
        return (call: PolicyInputCall) => get(root === "metadata" ? call.metadata : call.args);
      };
      return {
        budget,
        applies: (call) => tool === undefined || tool(call.tool),
        amount: budget.spend ? read(budget.spend.amount) : () => undefined,
        currency: budget.spend ? read(budget.spend.currency) : () => undefined,
      };
    });
  }

  get size(): number {
    return this.#budgets.length;
  }

  /** Spend budgets a call would exceed. A call whose amount cannot be read or converted is refused, not waved through. */
  checkSpend(call: PolicyInputCall, runId: string): { matches: PolicyMatch[]; charges: Array<[string, number]> } {
    const matches: PolicyMatch[] = [];
    const charges: Array<[string, number]> = [];
    for (const entry of this.#budgets) {
      const spend = entry.budget.spend;
      if (spend === undefined || !entry.applies(call)) continue;
      const raw = asNumber(entry.amount(call));
      if (raw === undefined) continue;
      const currency = entry.currency(call);
      const key = `${entry.budget.id}\u0000${runId}`;
      let converted: number;
      try {
        if (!Number.isInteger(raw) || raw < 0) throw new RangeError("amount must be a non-negative integer in minor units");
        converted = this.#converter.convert({ amount: raw, currency: typeof currency === "string" ? currency : spend.max.currency }, spend.max.currency).amount;
      } catch (error) {
        matches.push({ policyId: entry.budget.id, action: "block", mode: "enforce", kind: "budget", reason: `budget "${entry.budget.id}": ${(error as Error).message}` });
        continue;
      }
      const total = (this.#spent.get(key) ?? 0) + converted;
      if (total > spend.max.amount) {
        matches.push({
          policyId: entry.budget.id,
          action: entry.budget.exceed,
          mode: "enforce",
          kind: "budget",
          reason: `budget "${entry.budget.id}": ${total} exceeds ${spend.max.amount} ${spend.max.currency} per run`,
        });
      }
      // Charged only if the call goes ahead (`commitSpend`), which an over-budget `warn` still does.
      charges.push([key, converted]);
    }
    return { matches, charges };
  }

  commitSpend(charges: ReadonlyArray<[string, number]>): void {
    for (const [key, amount] of charges) this.#spent.set(key, (this.#spent.get(key) ?? 0) + amount);
  }

  /** Reserves an LLM call's estimated tokens; refuses when the run's token budget would be exceeded. */
  reserveTokens(runId: string, estimate: number): PolicyMatch | undefined {
    const over = this.tokensOver(runId, estimate);
    // A refused call reserves nothing in any budget (it is never reconciled); one that goes ahead reserves in all.
    if (over?.action === "block") return over;
    for (const { budget } of this.#budgets) {
      if (budget.tokens === undefined) continue;
      const key = `${budget.id}\u0000${runId}`;
      this.#spent.set(key, (this.#spent.get(key) ?? 0) + estimate);
    }
    return over;
  }

  /** The token budget an LLM call of `estimate` tokens would exceed in the run (a blocking one first); reserves nothing. */
  tokensOver(runId: string, estimate: number): PolicyMatch | undefined {
    let over: PolicyMatch | undefined;
    for (const { budget } of this.#budgets) {
      if (budget.tokens === undefined) continue;
      const used = this.#spent.get(`${budget.id}\u0000${runId}`) ?? 0;
      if (used + estimate > budget.tokens && (over === undefined || (over.action !== "block" && budget.exceed === "block"))) {
        over = { policyId: budget.id, action: budget.exceed, mode: "enforce", kind: "budget", reason: `token budget "${budget.id}": ${used + estimate} exceeds ${budget.tokens} per run` };
      }
    }
    return over;
  }

  /** Replaces a reservation with the tokens actually used. */
  reconcileTokens(runId: string, reserved: number, actual: number): void {
    for (const { budget } of this.#budgets) {
      if (budget.tokens === undefined) continue;
      const key = `${budget.id}\u0000${runId}`;
      this.#spent.set(key, Math.max(0, (this.#spent.get(key) ?? 0) - reserved + actual));
    }
  }

  /** Drops what a run that ended had spent. */
  forgetRun(runId: string): void {
    for (const { budget } of this.#budgets) this.#spent.delete(`${budget.id}\u0000${runId}`);
  }

  tokensUsed(runId: string): number | undefined {
    const budget = this.#budgets.find((b) => b.budget.tokens !== undefined);
    return budget ? (this.#spent.get(`${budget.budget.id}\u0000${runId}`) ?? 0) : undefined;
  }
}

function formatMs(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
