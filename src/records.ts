import type { ApprovalRule } from "./approvals/binding.js";
import type { Decision } from "./decision.js";
import type { AgentContext, ApprovalStatus, RunStatus, ToolCallStatus } from "./enums.js";
import type { WardenEvent } from "./events.js";

/**
 * An approval request for one tool call and, once given, the reviewer's answer: what a review UI shows.
 * @example
 * import type { ApprovalRecord } from "agent-warden";
 * const pending: ApprovalRecord[] = warden.approvals.list({ status: "pending" });
 */
export interface ApprovalRecord {
  approvalId: string;
  toolCallId: string;
  runId: string;
  agentId: string;
  toolName: string;
  status: ApprovalStatus;
  /** The tool call's input, redacted. */
  payload: unknown;
  agentContext: AgentContext | undefined;
  policyId: string | undefined;
  reason: string | undefined;
  reviewer: string | undefined;
  decisionReason: string | undefined;
  createdAt: number;
  expiresAt: number;
  decidedAt: number | undefined;
  /** SHA-256 of the canonical unredacted arguments (salted with the approval id): the call this approval admits. */
  argsDigest?: string | undefined;
  /** The policy set version that asked for the approval. */
  policyVersion?: string | undefined;
  /** Who must answer (the deciding policy's `approval`), when it says more than "one reviewer". */
  rule?: ApprovalRule | undefined;
  /** Reviewers who approved so far (N-of-M), in order. */
  approvedBy?: string[] | undefined;
  /** When escalation became due and the escalation set was asked. */
  escalatedAt?: number | undefined;
  /** When the approved call was admitted: an approval admits its call once. */
  consumedAt?: number | undefined;
}

/**
 * One tool call (or LLM call) as recorded, with its decision and approval, for audits and run views.
 * @example
 * import type { ToolCallRecord } from "agent-warden";
 * const refused = (await warden.getRun(runId)).toolCalls.filter((call: ToolCallRecord) => call.status === "blocked");
 */
export interface ToolCallRecord {
  toolCallId: string;
  /** The framework's own id for the call (LangChain, AI SDK, MCP), if it gave one. */
  externalId: string | undefined;
  runId: string;
  stepId: string | undefined;
  kind: "tool" | "llm";
  toolName: string;
  actionType: string;
  status: ToolCallStatus;
  /** Input and output as recorded: after redaction. */
  input: unknown;
  output: unknown;
  error: unknown;
  blockedReason: string | undefined;
  decision: Decision | undefined;
  approval: ApprovalRecord | undefined;
  agentContext: AgentContext | undefined;
  reason: string | undefined;
  /** LLM calls: model and token usage. */
  usage: LlmUsage | undefined;
  startedAt: number;
  endedAt: number | undefined;
  durationMs: number | undefined;
}

/**
 * Token usage of one LLM call, what token budgets are reconciled against.
 * @example
 * import type { LlmUsage } from "agent-warden";
 * const llm = warden.beginLlmCall({ model: "gpt-4o", estimatedTokens: 2000 });
 * const usage: LlmUsage = { inputTokens: 1200, outputTokens: 300 };
 * llm.complete(usage);
 */
export interface LlmUsage {
  model?: string | undefined;
  inputTokens?: number | undefined;
  outputTokens?: number | undefined;
  totalTokens?: number | undefined;
}

/**
 * One step of a run as recorded, grouping the tool calls made inside `run.step`.
 * @example
 * import type { StepRecord } from "agent-warden";
 * const steps: StepRecord[] = (await warden.getRun(runId)).steps;
 */
export interface StepRecord {
  stepId: string;
  runId: string;
  name: string;
  status: RunStatus;
  metadata: unknown;
  startedAt: number;
  endedAt: number | undefined;
}

/**
 * A run with its steps, tool calls, events and child runs: what `getRun` returns, for showing or auditing one run.
 * @example
 * import type { RunRecord } from "agent-warden";
 * const record: RunRecord = await warden.getRun(runId);
 * console.log(record.status, record.toolCalls.length, record.childRunIds);
 */
export interface RunRecord {
  runId: string;
  agentId: string;
  traceId: string;
  parentRunId: string | undefined;
  status: RunStatus;
  metadata: unknown;
  reason: string | undefined;
  agentContext: AgentContext | undefined;
  /** The delegation token the run acted under, if any. */
  tokenId: string | undefined;
  startedAt: number;
  endedAt: number | undefined;
  error: unknown;
  steps: StepRecord[];
  toolCalls: ToolCallRecord[];
  events: WardenEvent[];
  /** Runs started with this run as parent (sub-agents, delegations). */
  childRunIds: string[];
}

/**
 * A run without its tree, cheap enough to list many of.
 * @example
 * import type { RunSummary } from "agent-warden";
 * const recent: RunSummary[] = warden.listRuns({ agentId: "billing-agent", limit: 20 });
 */
export type RunSummary = Omit<RunRecord, "steps" | "toolCalls" | "events" | "childRunIds">;

export interface RunRow {
  id: string;
  agent_id: string;
  trace_id: string;
  parent_run_id: string | null;
  status: string;
  metadata: string | null;
  reason: string | null;
  agent_context: string | null;
  token_id: string | null;
  started_at: number;
  ended_at: number | null;
  error: string | null;
}

export interface ToolCallRow {
  id: string;
  external_id: string | null;
  run_id: string;
  step_id: string | null;
  agent_id: string;
  kind: string;
  tool_name: string;
  action_type: string;
  status: string;
  input: string | null;
  output: string | null;
  error: string | null;
  blocked_reason: string | null;
  decision: string | null;
  agent_context: string | null;
  reason: string | null;
  usage: string | null;
  started_at: number;
  ended_at: number | null;
  duration_ms: number | null;
}

export interface ApprovalRow {
  id: string;
  tool_call_id: string;
  run_id: string;
  agent_id: string;
  tool_name: string;
  status: string;
  payload: string | null;
  agent_context: string | null;
  policy_id: string | null;
  reason: string | null;
  reviewer: string | null;
  decision_reason: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  args_digest?: string | null;
  policy_version?: string | null;
  rule?: string | null;
  votes?: string | null;
  escalated_at?: number | null;
  consumed_at?: number | null;
  consumed_by?: string | null;
}

export interface StepRow {
  id: string;
  run_id: string;
  name: string;
  status: string;
  metadata: string | null;
  started_at: number;
  ended_at: number | null;
}

/**  A new pending approval request, as the client and the control plane both create it. */
export function pendingApproval(input: { approvalId: string; toolCallId: string; runId: string; agentId: string; toolName: string; payload: unknown; agentContext: AgentContext | undefined; policyId: string | undefined; reason: string | undefined; createdAt: number; expiresAt: number }): ApprovalRecord {
  return { ...input, status: "pending", reviewer: undefined, decisionReason: undefined, decidedAt: undefined };
}

const json = (text: string | null): unknown => (text === null ? undefined : JSON.parse(text));
const opt = <T>(value: T | null): T | undefined => (value === null ? undefined : value);

export function toRunSummary(row: RunRow): RunSummary {
  return {
    runId: row.id,
    agentId: row.agent_id,
    traceId: row.trace_id,
    parentRunId: opt(row.parent_run_id),
    status: row.status as RunStatus,
    metadata: json(row.metadata),
    reason: opt(row.reason),
    agentContext: json(row.agent_context) as AgentContext | undefined,
    tokenId: opt(row.token_id),
    startedAt: row.started_at,
    endedAt: opt(row.ended_at),
    error: json(row.error),
  };
}

/** The decision most calls get (allowed, nothing matched), stored as one word instead of its 90 bytes of JSON. */
const PLAIN_ALLOW = JSON.stringify("allow");

/** A call's decision as its row stores it. */
export function storedDecision(decision: Decision): string {
  return decision.action === "allow" && decision.reason === "allowed" && decision.matches.length === 0 && decision.complete === true && definedMembers(decision) === 5 ? PLAIN_ALLOW : JSON.stringify(decision);
}

/** How many members of an object are defined (counted without building a list of them). */
function definedMembers(value: object): number {
  let count = 0;
  for (const key in value) if ((value as Record<string, unknown>)[key] !== undefined) count++;
  return count;
}

/** A call's decision from its row (undefined for a call recorded without one). */
export function decisionOf(row: { decision: string | null; action_type: string }): Decision | undefined {
  if (row.decision === null) return undefined;
  if (row.decision === PLAIN_ALLOW) return { action: "allow", reason: "allowed", matches: [], actionType: row.action_type, complete: true } as unknown as Decision;
  return JSON.parse(row.decision) as Decision;
}

export function toToolCallRecord(row: ToolCallRow, approval: ApprovalRecord | undefined): ToolCallRecord {
  return {
    toolCallId: row.id,
    externalId: opt(row.external_id),
    runId: row.run_id,
    stepId: opt(row.step_id),
    kind: row.kind as "tool" | "llm",
    toolName: row.tool_name,
    actionType: row.action_type,
    status: row.status as ToolCallStatus,
    input: json(row.input),
    output: json(row.output),
    error: json(row.error),
    blockedReason: opt(row.blocked_reason),
    decision: decisionOf(row),
    approval,
    agentContext: json(row.agent_context) as AgentContext | undefined,
    reason: opt(row.reason),
    usage: json(row.usage) as LlmUsage | undefined,
    startedAt: row.started_at,
    endedAt: opt(row.ended_at),
    durationMs: opt(row.duration_ms),
  };
}

export function toApprovalRecord(row: ApprovalRow): ApprovalRecord {
  return {
    approvalId: row.id,
    toolCallId: row.tool_call_id,
    runId: row.run_id,
    agentId: row.agent_id,
    toolName: row.tool_name,
    status: row.status as ApprovalStatus,
    payload: json(row.payload),
    agentContext: json(row.agent_context) as AgentContext | undefined,
    policyId: opt(row.policy_id),
    reason: opt(row.reason),
    reviewer: opt(row.reviewer),
    decisionReason: opt(row.decision_reason),
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    decidedAt: opt(row.decided_at),
    ...(row.args_digest != null && { argsDigest: row.args_digest }),
    ...(row.policy_version != null && { policyVersion: row.policy_version }),
    ...(row.rule != null && { rule: JSON.parse(row.rule) as ApprovalRule }),
    ...(row.votes != null && { approvedBy: (JSON.parse(row.votes) as Array<{ reviewer: string }>).map((vote) => vote.reviewer) }),
    ...(row.escalated_at != null && { escalatedAt: row.escalated_at }),
    ...(row.consumed_at != null && { consumedAt: row.consumed_at }),
  };
}

export function toStepRecord(row: StepRow): StepRecord {
  return { stepId: row.id, runId: row.run_id, name: row.name, status: row.status as RunStatus, metadata: json(row.metadata), startedAt: row.started_at, endedAt: opt(row.ended_at) };
}
