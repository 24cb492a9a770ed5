import type { ActionType, AgentContext, RiskSeverity } from "./enums.js";

/**
 * A risk the calling surface found in the call itself, decided together with the policies (strictest
 * wins) and recorded among the decision's matches with `kind: "risk"`: the MCP gateway flags a tool
 * whose definition changed since it was pinned, or whose description carries instructions to the model.
 * @example
 * import type { CallRisk } from "agent-warden";
 * const risk: CallRisk = { id: "mcp.tool-pin", action: "require_approval", reason: "the tool's description changed", severity: "high" };
 * warden.beginToolCall({ tool: "read_file", args, risks: [risk] });
 */
export interface CallRisk {
  /** A stable name for the risk, recorded as the match's `policyId`. */
  id: string;
  /** What it asks for: `warn` records it, `require_approval` holds the call for a reviewer, `block` refuses it. */
  action: "warn" | "require_approval" | "block";
  reason: string;
  severity?: RiskSeverity | undefined;
}

/**
 * A call to decide on with `warden.check`, for asking before acting without recording anything.
 * Everything but `tool` is optional.
 * @example
 * import type { CheckInput } from "agent-warden";
 * const call: CheckInput = { tool: "payments.refund", args: { amount: 2800, currency: "EUR" } };
 * if (warden.check(call).action === "block") hideRefundButton();
 */
export interface CheckInput {
  tool: string;
  args?: unknown;
  runId?: string | undefined;
  /** Defaults to the run's agent, else the client's. */
  agentId?: string | undefined;
  actionHint?: ActionType | undefined;
  metadata?: Record<string, unknown> | undefined;
  environment?: string | undefined;
  /**
   * The permission a delegation token must grant for this call. Default: the tool name with dots
   * read as colons (`flights.book` needs `flights:book` or `flights:*`).
   */
  permission?: string | undefined;
  /** Risks the surface found in the call (decided with the policies; a shadow call records them only). */
  risks?: readonly CallRisk[] | undefined;
}

/**
 * A tool call to decide on and record with `warden.beginToolCall`, as a framework adapter sees it.
 * @example
 * import type { ToolCallInit } from "agent-warden";
 * const init: ToolCallInit = { tool: "search", args: { query }, externalId: toolCall.id, signal };
 * const handle = warden.beginToolCall(init);
 */
export interface ToolCallInit extends CheckInput {
  /** The framework's own id for the call, so records line up with its traces and a paused call can be resumed by it. */
  externalId?: string | undefined;
  stepId?: string | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  /** The framework's abort signal; merged with the halt signal. */
  signal?: AbortSignal | undefined;
  /**
   * Other names policies may know the tool by, when a framework renamed it (`payments.refund` for the
   * OpenAI Agents SDK's `payments_refund`): the call is decided once, under whichever of `tool` and these
   * names gets the strictest decision (enforcement fails closed; `tool` on a tie), and recorded and
   * counted against limits and budgets under that name.
   */
  aliases?: readonly string[] | undefined;
  /**
   * Records the decision without enforcing it, as if every policy were in shadow mode: a would-be
   * block or approval is recorded as `warn` with a reason naming it. Halts still block.
   */
  shadow?: boolean | undefined;
}

/**
 * Options of `run.tool`, `warden.guard` and `trackToolCall`: what policies and reviewers learn about
 * a call beyond its name and arguments.
 * @example
 * import type { ToolOptions } from "agent-warden";
 * const options: ToolOptions = { actionHint: "deploy", reason: "release 1.4 after green CI" };
 * await run.tool("ship", { env: "prod" }, () => ci.ship("prod"), options);
 */
export interface ToolOptions {
  actionHint?: ActionType | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  stepId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Options of `warden.run` and `beginRun`: the run's id, why it runs, and where it sits in a tree of
 * sub-agents.
 * @example
 * import type { RunOptions } from "agent-warden";
 * const options: RunOptions = { agentId: "research-subagent", reason: "summarise the sources" };
 * await warden.run({ task: "research" }, async (run) => research(run), options);
 */
export interface RunOptions {
  runId?: string | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  /** Makes this run a child in another run's tree (a sub-agent). Defaults to the enclosing run. */
  parentRunId?: string | undefined;
  traceId?: string | undefined;
  /** Acts as another agent (a sub-agent sharing this client). */
  agentId?: string | undefined;
}
