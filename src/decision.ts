import type { ActionType, RiskSeverity } from "./enums.js";
import type { ApprovalRule } from "./approvals/binding.js";
import type { DecisionAction, PolicyMatch } from "./policy/engine.js";

interface DecisionBase {
  /** Why: the deciding policy's reason, or the default. */
  reason: string;
  /** Every policy, limit and budget that matched, shadow ones included. */
  matches: readonly PolicyMatch[];
  /** The policy that decided, if one did. */
  policyId?: string | undefined;
  severity?: RiskSeverity | undefined;
  /** The tool's semantic action, from `actionHint` or inferred from its name. */
  actionType: ActionType;
  /** False when a check could not complete (halt state unknown, engine error) and the fail rule decided. */
  complete: boolean;
}

/**
 * What refused a blocked call: a halt, the delegation token (its scope, cap, tools, or a halt of an
 * agent it was delegated by, then `halted` is true too), a policy, a rate limit or a budget.
 * @example
 * import type { BlockCause } from "agent-warden";
 * const decision = warden.check({ tool: "payments.refund", args: { amount: 90000 } });
 * const cause: BlockCause | undefined = decision.action === "block" ? decision.cause : undefined;
 */
export type BlockCause = "halt" | "token" | "policy" | "limit" | "budget";

/**
 * The one answer `warden.check()` gives, for every adapter: what to do with a call and why.
 * @example
 * import type { Decision } from "agent-warden";
 * const decision: Decision = warden.check({ tool: "deploy", args: { environment: "production" } });
 * if (decision.action === "require_approval") console.log(decision.timeoutMs);
 */
export type Decision =
  | (DecisionBase & { action: "allow" })
  | (DecisionBase & { action: "warn" })
  | (DecisionBase & { action: "block"; halted?: boolean | undefined; cause?: BlockCause | undefined })
  | (DecisionBase & { action: "require_approval"; timeoutMs: number; approvalRule?: ApprovalRule | undefined });

export type { DecisionAction, PolicyMatch };
