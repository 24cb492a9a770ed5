// Projects client events into the store's tables. Events may arrive late, twice (deduplicated
// before this runs) or out of order (a spool replayed after newer events), so every projection is
// an upsert that never moves a finished run or tool call back to an unfinished status, and never
// touches a row of another organization.
import type { SQLInputValue } from "node:sqlite";
import { ApprovalStatus, EventType } from "../enums.js";
import type { WardenEvent } from "../events.js";
import { toApprovalRecord, type ApprovalRow } from "../records.js";
import { DEFAULT_APPROVAL_TIMEOUT, type Role, type StreamMessageType } from "./store.js";

/** @internal The few statements a projection needs, inside the caller's transaction. */
export interface Sql {
  run(sql: string, ...params: SQLInputValue[]): number;
  get<T>(sql: string, ...params: SQLInputValue[]): T | undefined;
  all<T>(sql: string, ...params: SQLInputValue[]): T[];
}

/** @internal What a batch changed. */
export interface Effects {
  durable: Array<{ type: StreamMessageType; data: unknown }>;
  runs: Set<string>;
  toolCalls: Set<string>;
}

const FINAL_TOOL_STATUSES = "('completed','failed','blocked','rejected')";

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

/** @internal Applies one event's effect on runs, steps, tool calls, approvals and revocations. */
export function projectEvent(sql: Sql, org: string, role: Role, event: WardenEvent, effects: Effects): void {
  const data = event.data;
  const agentId = event.agentId ?? "unknown";
  switch (event.type as string) {
    case EventType.RUN_STARTED: {
      if (event.runId === null) return;
      sql.run("INSERT INTO agents (org, id, created_at) VALUES (?,?,?) ON CONFLICT(org, id) DO NOTHING", org, agentId, event.ts);
      const changed = sql.run(
        `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at)
         VALUES (?,?,?,?,?,'running',?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET agent_id = excluded.agent_id, trace_id = excluded.trace_id, parent_run_id = excluded.parent_run_id,
           metadata = excluded.metadata, reason = excluded.reason, agent_context = excluded.agent_context, token_id = excluded.token_id, started_at = excluded.started_at
         WHERE runs.org = excluded.org`,
        event.runId,
        org,
        agentId,
        str(data.traceId) ?? event.runId,
        str(data.parentRunId) ?? null,
        json(data.metadata),
        str(data.reason) ?? null,
        json(data.agentContext),
        str(data.tokenId) ?? null,
        event.ts,
      );
      if (changed) effects.runs.add(event.runId);
      return;
    }
    case EventType.RUN_COMPLETED:
    case EventType.RUN_FAILED: {
      if (event.runId === null) return;
      const status = event.type === EventType.RUN_COMPLETED ? "completed" : "failed";
      const changed = sql.run(
        `INSERT INTO runs (id, org, agent_id, trace_id, status, started_at, ended_at, error) VALUES (?,?,?,?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error WHERE runs.org = excluded.org`,
        event.runId,
        org,
        agentId,
        event.runId,
        status,
        event.ts,
        event.ts,
        status === "failed" ? json(data.error) : null,
      );
      if (changed) effects.runs.add(event.runId);
      return;
    }
    case EventType.STEP_STARTED:
    case EventType.STEP_COMPLETED: {
      if (event.runId === null || event.stepId === null) return;
      const started = event.type === EventType.STEP_STARTED;
      const status = started ? "running" : (str(data.status) ?? "completed");
      // A step belongs to its run, which must not be another organization's.
      sql.run(
        `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 FROM runs WHERE id = ?2 AND org <> ?8)
         ON CONFLICT(id) DO UPDATE SET ${started ? "name = excluded.name, metadata = excluded.metadata, started_at = excluded.started_at" : "status = excluded.status, ended_at = excluded.ended_at"}
         WHERE steps.run_id = excluded.run_id AND steps.org = excluded.org`,
        event.stepId,
        event.runId,
        started ? (str(data.name) ?? "step") : "step",
        status,
        started ? json(data.metadata) : null,
        event.ts,
        started ? null : event.ts,
        org,
      );
      return;
    }
    case EventType.TOOL_CALLED: {
      if (event.runId === null || event.toolCallId === null) return;
      const llm = data.kind === "llm";
      const action = str(data.decision);
      const status = action === "block" ? "blocked" : action === "require_approval" ? "awaiting_approval" : "pending";
      const changed = sql.run(
        `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET run_id = excluded.run_id, step_id = excluded.step_id, agent_id = excluded.agent_id, kind = excluded.kind,
           tool_name = excluded.tool_name, action_type = excluded.action_type, input = excluded.input, agent_context = excluded.agent_context,
           reason = excluded.reason, started_at = excluded.started_at,
           status = CASE WHEN tool_calls.status IN ${FINAL_TOOL_STATUSES} THEN tool_calls.status ELSE excluded.status END
         WHERE tool_calls.org = excluded.org`,
        event.toolCallId,
        event.runId,
        event.stepId,
        org,
        agentId,
        llm ? "llm" : "tool",
        (llm ? str(data.model) : str(data.toolName)) ?? "unknown",
        str(data.actionType) ?? "unknown",
        status,
        json(data.input),
        json(data.agentContext),
        str(data.reason) ?? null,
        event.ts,
      );
      if (changed && action !== undefined) mergeDecision(sql, org, event.toolCallId, { action, actionType: str(data.actionType) });
      if (changed) effects.toolCalls.add(event.toolCallId);
      return;
    }
    case EventType.POLICY_MATCHED: {
      if (event.toolCallId === null) return;
      mergeDecision(sql, org, event.toolCallId, { action: str(data.decision), policyId: str(data.policyId), matches: Array.isArray(data.matches) ? data.matches : undefined });
      return;
    }
    case EventType.TOOL_COMPLETED:
    case EventType.TOOL_BLOCKED: {
      if (event.runId === null || event.toolCallId === null) return;
      const llm = data.kind === "llm";
      const blocked = event.type === EventType.TOOL_BLOCKED;
      const status = str(data.status) ?? (blocked ? "blocked" : "completed");
      const durationMs = num(data.durationMs);
      const finished = status !== "blocked";
      const changed = sql.run(
        `INSERT INTO tool_calls (id, run_id, org, agent_id, kind, tool_name, action_type, status, output, error, blocked_reason, usage, started_at, ended_at, duration_ms)
         VALUES (?,?,?,?,?,?,'unknown',?,?,?,?,?,?,?,?)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, output = COALESCE(excluded.output, tool_calls.output), error = COALESCE(excluded.error, tool_calls.error),
           blocked_reason = COALESCE(excluded.blocked_reason, tool_calls.blocked_reason), usage = COALESCE(excluded.usage, tool_calls.usage),
           ended_at = COALESCE(excluded.ended_at, tool_calls.ended_at), duration_ms = COALESCE(excluded.duration_ms, tool_calls.duration_ms)
         WHERE tool_calls.org = excluded.org`,
        event.toolCallId,
        event.runId,
        org,
        agentId,
        llm ? "llm" : "tool",
        (llm ? str(data.model) : str(data.toolName)) ?? "unknown",
        status,
        json(data.output),
        json(data.error),
        blocked ? (str(data.reason) ?? null) : null,
        json(data.usage),
        event.ts - (durationMs ?? 0),
        finished ? event.ts : null,
        durationMs ?? null,
      );
      if (changed && blocked && status === "blocked") {
        mergeDecision(sql, org, event.toolCallId, { action: "block", reason: str(data.reason), policyId: str(data.policyId), halted: data.halted === true ? true : undefined });
      }
      if (changed) effects.toolCalls.add(event.toolCallId);
      return;
    }
    case EventType.APPROVAL_REQUESTED: {
      const approvalId = str(data.approvalId);
      if (approvalId === undefined || event.runId === null || event.toolCallId === null) return;
      const changed = sql.run(
        `INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at)
         VALUES (?,?,?,?,?,?,'pending',?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING`,
        approvalId,
        org,
        event.toolCallId,
        event.runId,
        agentId,
        str(data.toolName) ?? "unknown",
        json(data.payload ?? null),
        json(data.agentContext),
        str(data.policyId) ?? null,
        str(data.reason) ?? null,
        event.ts,
        num(data.expiresAt) ?? event.ts + DEFAULT_APPROVAL_TIMEOUT,
      );
      if (changed) effects.durable.push({ type: "approval.requested", data: approvalRecord(sql, org, approvalId) });
      return;
    }
    case EventType.APPROVAL_APPROVED:
    case EventType.APPROVAL_REJECTED: {
      const approvalId = str(data.approvalId);
      const status = str(data.status) ?? (event.type === EventType.APPROVAL_APPROVED ? ApprovalStatus.APPROVED : ApprovalStatus.REJECTED);
      if (approvalId === undefined || !(["approved", "rejected", "expired", "cancelled"] as string[]).includes(status)) return;
      // An agent may give up on its own request (reject, expire, cancel), never on another agent's;
      // approving takes a reviewer.
      if (status === ApprovalStatus.APPROVED && role === "agent") return;
      const ownRequestsOnly = role === "agent" ? agentId : null;
      const changed = sql.run(
        "UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ? WHERE id = ? AND org = ? AND status = 'pending' AND (? IS NULL OR agent_id = ?)",
        status,
        str(data.reviewer) ?? event.actor,
        str(data.reason) ?? null,
        event.ts,
        approvalId,
        org,
        ownRequestsOnly,
        ownRequestsOnly,
      );
      if (changed) effects.durable.push({ type: "approval.resolved", data: approvalRecord(sql, org, approvalId) });
      return;
    }
    case "token.revoked": {
      const tokenId = str(data.tokenId);
      if (tokenId === undefined) return;
      const changed = sql.run("INSERT OR IGNORE INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?)", org, tokenId, str(data.reason) ?? null, event.ts);
      // Every connected agent learns of it, so the token stops verifying across the fleet.
      if (changed) effects.durable.push({ type: "token.revoked", data: { tokenId, reason: str(data.reason) } });
      return;
    }
    default:
      // risk.detected, agent.halted, agent.resumed and anything newer: the ledger entry is the record.
      return;
  }
}

function mergeDecision(sql: Sql, org: string, toolCallId: string, patch: Record<string, unknown>): void {
  const row = sql.get<{ decision: string | null }>("SELECT decision FROM tool_calls WHERE id = ? AND org = ?", toolCallId, org);
  if (row === undefined) return;
  let current: Record<string, unknown> = {};
  try {
    const parsed: unknown = row.decision === null ? {} : JSON.parse(row.decision);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) current = parsed as Record<string, unknown>;
  } catch {
    // A decision that does not parse is replaced.
  }
  const next: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) if (value !== undefined) next[key] = value;
  sql.run("UPDATE tool_calls SET decision = ? WHERE id = ? AND org = ?", JSON.stringify(next), toolCallId, org);
}

/** @internal */
export function approvalRecord(sql: Sql, org: string, approvalId: string) {
  const row = sql.get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", approvalId, org);
  return row === undefined ? undefined : toApprovalRecord(row);
}
