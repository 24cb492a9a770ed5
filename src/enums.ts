// Values are a compatibility contract with clients of the step-by-step lifecycle API (`startRun`,
// `trackToolCall`, `completeRun`…) and with stored records: exact strings, never renamed. Warden adds
// agent.halted, agent.resumed and token.revoked to that API's EventType.

/**
 * Every lifecycle event Warden emits and records, for subscribing to one kind without string typos.
 * @example
 * import { EventType } from "agent-warden";
 * warden.on(EventType.TOOL_BLOCKED, (event) => console.warn(`${event.data.toolName} blocked: ${event.data.reason}`));
 */
export const EventType = {
  RUN_STARTED: "run.started",
  RUN_COMPLETED: "run.completed",
  RUN_FAILED: "run.failed",
  STEP_STARTED: "step.started",
  STEP_COMPLETED: "step.completed",
  TOOL_CALLED: "tool.called",
  TOOL_COMPLETED: "tool.completed",
  TOOL_BLOCKED: "tool.blocked",
  RISK_DETECTED: "risk.detected",
  APPROVAL_REQUESTED: "approval.requested",
  APPROVAL_APPROVED: "approval.approved",
  APPROVAL_REJECTED: "approval.rejected",
  POLICY_MATCHED: "policy.matched",
  AGENT_HALTED: "agent.halted",
  AGENT_RESUMED: "agent.resumed",
  TOKEN_REVOKED: "token.revoked",
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/**
 * What a policy does when it matches, and what a policy set does when none does (`default`).
 * @example
 * import { PolicyAction } from "agent-warden";
 * warden.setPolicies({ policies: [{ id: "deploys", when: { action: "deploy" }, action: PolicyAction.REQUIRE_APPROVAL }] });
 */
export const PolicyAction = {
  ALLOW: "allow",
  WARN: "warn",
  BLOCK: "block",
  REQUIRE_APPROVAL: "require_approval",
} as const;
export type PolicyAction = (typeof PolicyAction)[keyof typeof PolicyAction];

/**
 * The state of an approval request, for filtering what reviewers still have to answer.
 * @example
 * import { ApprovalStatus } from "agent-warden";
 * const waiting = warden.approvals.list({ status: ApprovalStatus.PENDING });
 */
export const ApprovalStatus = {
  PENDING: "pending",
  APPROVED: "approved",
  REJECTED: "rejected",
  EXPIRED: "expired",
  CANCELLED: "cancelled",
} as const;
export type ApprovalStatus = (typeof ApprovalStatus)[keyof typeof ApprovalStatus];

/**
 * The state of a recorded tool call, for telling what ran from what was refused or is still waiting.
 * @example
 * import { ToolCallStatus } from "agent-warden";
 * const refused = (await warden.getRun(runId)).toolCalls.filter((call) => call.status === ToolCallStatus.BLOCKED);
 */
export const ToolCallStatus = {
  PENDING: "pending",
  COMPLETED: "completed",
  BLOCKED: "blocked",
  AWAITING_APPROVAL: "awaiting_approval",
  FAILED: "failed",
  REJECTED: "rejected",
} as const;
export type ToolCallStatus = (typeof ToolCallStatus)[keyof typeof ToolCallStatus];

/**
 * How serious a flagged risk is: set on a policy, carried by its decision and `risk.detected` events.
 * @example
 * import { RiskSeverity } from "agent-warden";
 * warden.setPolicies({ policies: [{ id: "secrets", when: { action: "secret_access" }, action: "warn", severity: RiskSeverity.HIGH }] });
 */
export const RiskSeverity = {
  LOW: "low",
  MEDIUM: "medium",
  HIGH: "high",
  CRITICAL: "critical",
} as const;
export type RiskSeverity = (typeof RiskSeverity)[keyof typeof RiskSeverity];

/**
 * Semantic kind of a tool call, given as `actionHint` or inferred from the tool name, so one policy
 * can cover every tool that deploys or touches secrets whatever it is called.
 * @example
 * import { ActionType } from "agent-warden";
 * await run.tool("ship", { env: "prod" }, () => ci.ship("prod"), { actionHint: ActionType.DEPLOY });
 */
export const ActionType = {
  PR_CREATE: "pr_create",
  PR_MERGE: "pr_merge",
  PR_UPDATE: "pr_update",
  BRANCH_DELETE: "branch_delete",
  DEPLOY: "deploy",
  SCRIPT_EXECUTE: "script_execute",
  DB_MIGRATE: "db_migrate",
  CONFIG_CHANGE: "config_change",
  SECRET_ACCESS: "secret_access",
  API_WRITE: "api_write",
  UNKNOWN: "unknown",
} as const;
export type ActionType = (typeof ActionType)[keyof typeof ActionType];

/**
 * The state of a run or step, for finding runs that are still going or that failed.
 * @example
 * import { RunStatus } from "agent-warden";
 * const failed = warden.listRuns({ status: RunStatus.FAILED, limit: 20 });
 */
export const RunStatus = {
  RUNNING: "running",
  COMPLETED: "completed",
  FAILED: "failed",
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/**
 * Context about the agent's intent, stored on runs and tool calls so a reviewer sees why a call is made.
 * @example
 * import type { AgentContext } from "agent-warden";
 * const agentContext: AgentContext = { goal: "refund order 1042", reasoning: "the customer was charged twice" };
 * await warden.run({ task: "refund order 1042" }, refundOrder, { agentContext });
 */
export interface AgentContext {
  /** The user's original task or instruction. */
  goal?: string | undefined;
  /** The agent's rationale before this action. */
  reasoning?: string | undefined;
  /** External reference to the conversation thread. */
  conversationId?: string | undefined;
  /** Summary of the active prompt or context window. */
  promptSummary?: string | undefined;
}

export const values = <T extends Record<string, string>>(o: T) => Object.values(o) as [T[keyof T], ...T[keyof T][]];
