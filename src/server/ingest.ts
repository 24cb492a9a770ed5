// `POST /v1/events`: what a key may report, and how accepted events become rows. Shared by every
// store (see sql.ts). Events may arrive late, twice (deduplicated by id) or out of order (a spool
// replayed after newer events), so every projection is an upsert that never moves a finished run or
// tool call back to an unfinished status, and never touches a row of another organization.
//
// An agent key reports only what its agent may say about itself: the event types an agent emits,
// about its own runs and tool calls, as itself. Decisions of reviewers and admins (approvals, halts,
// resumes, revocations) enter through their endpoints. Each refused event is named in the answer;
// the rest of the batch is written.
import { ApprovalStatus, EventType } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import { haltMatches, toHaltRecord, type HaltRow } from "../halt/halt.js";
import { canonicalJson } from "../internal/canonical.js";
import { toApprovalRecord, type ApprovalRecord, type ApprovalRow } from "../records.js";
import type { OrgLedger, OrgLedgerDraft } from "./org-ledger.js";
import { all, get, run, type Query } from "./sql.js";
import { appendStream } from "./stream-log.js";
import { DEFAULT_APPROVAL_TIMEOUT, type Principal, type StreamMessage, type StreamMessageType } from "./store.js";

/**  What a batch changed. */
export interface Effects {
  durable: Array<{ type: StreamMessageType; data: unknown }>;
  runs: Set<string>;
  toolCalls: Set<string>;
}

/**
 * One event of a batch that was not written, and why (`POST /v1/events` answers them as `rejected`,
 * the shape the remote client reads with `RejectedEventSchema`). `index` is its place in the batch;
 * `code` is `invalid_event` or `event_too_large` (it does not fit the wire), `insufficient_scope`
 * (this key may not say it) or `conflict` (it contradicts what is recorded, such as completing a
 * blocked call). Sending it again gets the same answer.
 * @example
 * import type { RejectedEvent } from "agent-warden/server";
 * const deadLetters = (rejected: RejectedEvent[]) => rejected.map((r) => `${r.id || `#${r.index}`}: ${r.code} ${r.reason}`);
 */
export interface RejectedEvent {
  index: number;
  id: string;
  code: "invalid_event" | "event_too_large" | "insufficient_scope" | "conflict";
  reason: string;
}

/** Event types an agent emits about its own work. */
export const AGENT_EVENT_TYPES: ReadonlySet<string> = new Set([
  EventType.RUN_STARTED,
  EventType.RUN_COMPLETED,
  EventType.RUN_FAILED,
  EventType.STEP_STARTED,
  EventType.STEP_COMPLETED,
  EventType.TOOL_CALLED,
  EventType.TOOL_COMPLETED,
  EventType.TOOL_BLOCKED,
  EventType.RISK_DETECTED,
  EventType.POLICY_MATCHED,
  EventType.APPROVAL_REQUESTED,
]);
/** A blocked or rejected call stays so: nothing reported later turns it into a success. */
const FINAL_REFUSALS = new Set(["blocked", "rejected"]);
/** Statuses a `tool.called` does not overwrite. */
export const FINAL_TOOL_STATUS_LIST = ["completed", "failed", "blocked", "rejected"] as const;
const FINAL_TOOL_STATUSES = `(${FINAL_TOOL_STATUS_LIST.map((status) => `'${status}'`).join(",")})`;

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);
const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

export type Verdict = { kind: "accept"; event: WardenEvent } | { kind: "echo" } | { kind: "refuse"; code: RejectedEvent["code"]; reason: string };
const refuse = (code: RejectedEvent["code"], reason: string): Verdict => ({ kind: "refuse", code, reason });

/** What one event's ingest came to. */
export type IngestOutcome = { kind: "accepted" } | { kind: "duplicate" } | { kind: "rejected"; code: RejectedEvent["code"]; reason: string };

/**
 * Writes a batch of schema-valid events (each with its index in the request), inside one
 * transaction: duplicates skipped, refused events listed, the rest projected and chained.
 */
export function* ingestBatch(ledger: OrgLedger, principal: Principal, events: ReadonlyArray<{ index: number; event: WardenEvent }>, now: number): Query<{ accepted: number; duplicates: number; rejected: RejectedEvent[]; effects: Effects; messages: StreamMessage[] }> {
  const org = principal.org;
  const effects: Effects = { durable: [], runs: new Set(), toolCalls: new Set() };
  const rejected: RejectedEvent[] = [];
  let accepted = 0;
  let duplicates = 0;
  for (const { index, event: sent } of events) {
    const outcome = yield* ingestOne(ledger, principal, sent, effects, now);
    if (outcome.kind === "accepted") accepted++;
    else if (outcome.kind === "duplicate") duplicates++;
    else rejected.push({ index, id: sent.id, code: outcome.code, reason: outcome.reason });
  }
  return { accepted, duplicates, rejected, effects, messages: yield* streamEffects(org, effects, now) };
}

/** One event, statement by statement: seen already, refused, or claimed, projected and chained. */
export function* ingestOne(ledger: OrgLedger, principal: Principal, sent: WardenEvent, effects: Effects, now: number): Query<IngestOutcome> {
  const org = principal.org;
  if (yield* isIngested(org, sent.id)) return { kind: "duplicate" };
  const verdict = yield* admit(principal, sent);
  if (verdict.kind === "refuse") return { kind: "rejected", code: verdict.code, reason: verdict.reason };
  // The claim, not the read above, decides: a replica writing the same batch (a client resending what
  // it got no answer for) holds the id until it commits, and then this insert finds it taken.
  if (!(yield* markIngested(org, sent.id, now))) return { kind: "duplicate" };
  // An echo is the client's own record of a decision the server made: the server's entry is the record.
  if (verdict.kind === "echo") return { kind: "duplicate" };
  const event = verdict.event;
  yield* projectEvent(org, principal, event, effects);
  yield* ledger.append(org, ledgerDraft(event));
  return { kind: "accepted" };
}

/**  The ledger entry of an accepted event. */
export function ledgerDraft(event: WardenEvent): OrgLedgerDraft {
  return { id: event.id, ts: event.ts, type: event.type, agentId: event.agentId, runId: event.runId, stepId: event.stepId, toolCallId: event.toolCallId, actor: event.actor, dataJson: canonicalJson(event.data) };
}

/**  The durable stream messages a batch's effects announce, written in its transaction. */
export function* streamEffects(org: string, effects: Effects, now: number): Query<StreamMessage[]> {
  const messages: StreamMessage[] = [];
  for (const durable of effects.durable) messages.push(yield* appendStream(org, durable.type, durable.data, now));
  return messages;
}

/**  True when the organization has already seen this event id (its ledger entry exists). */
export function* isIngested(org: string, eventId: string): Query<boolean> {
  return (yield* get("SELECT 1 AS found FROM ingested_events WHERE org = ? AND id = ?", org, eventId)) !== undefined;
}

/**  Records a client's event id as seen. False when it was seen before. */
export function* markIngested(org: string, eventId: string | undefined, now = Date.now()): Query<boolean> {
  if (eventId === undefined) return true;
  return (yield* run("INSERT INTO ingested_events (org, id, received_at) VALUES (?,?,?) ON CONFLICT DO NOTHING", org, eventId, now)) > 0;
}

/**  The rows admission reads: the run and the tool call an event names, in the key's organization. */
export interface AdmissionLookup {
  run(org: string, runId: string): Query<{ agent_id: string } | undefined>;
  toolCall(org: string, toolCallId: string): Query<{ agent_id: string; run_id: string; status: string } | undefined>;
}

const databaseLookup: AdmissionLookup = {
  run: (org, runId) => get<{ agent_id: string }>("SELECT agent_id FROM runs WHERE id = ? AND org = ?", runId, org),
  toolCall: (org, toolCallId) => get<{ agent_id: string; run_id: string; status: string }>("SELECT agent_id, run_id, status FROM tool_calls WHERE id = ? AND org = ?", toolCallId, org),
};

/** Decides whether this key may say this; gives the event as it will be recorded. */
export function* admit(principal: Principal, sent: WardenEvent, lookup: AdmissionLookup = databaseLookup): Query<Verdict> {
  const org = principal.org;
  const type = sent.type as string;
  const bound = principal.agentId;
  if (bound !== undefined && sent.agentId !== null && sent.agentId !== bound) return refuse("insufficient_scope", `this key may only report for agent "${bound}"`);
  const agentId = sent.agentId ?? bound ?? null;
  const event: WardenEvent = { ...sent, agentId };

  if (type === EventType.APPROVAL_APPROVED || type === EventType.APPROVAL_REJECTED) return yield* admitApprovalOutcome(principal, event);
  if (type === EventType.TOKEN_REVOKED) {
    // The same authority as POST /v1/tokens/revoke.
    if (principal.role !== "admin") return refuse("insufficient_scope", "revocations go through POST /v1/tokens/revoke, which takes an admin key");
    return { kind: "accept", event };
  }
  if (!AGENT_EVENT_TYPES.has(type)) {
    const where = type === EventType.AGENT_HALTED || type === EventType.AGENT_RESUMED ? "POST /v1/halts and /v1/halts/resume" : "their endpoints";
    return refuse("insufficient_scope", `"${type}" is not an event a client reports; decisions go through ${where}`);
  }
  if (principal.role === "agent" && sent.actor !== null && ![principal.name, principal.keyId, principal.agentId].includes(sent.actor)) {
    return refuse("insufficient_scope", `an agent key reports as itself; actor "${sent.actor}" is not this key`);
  }
  if (agentId === null && principal.role === "agent") return refuse("invalid_event", "agentId is required");

  if (event.runId !== null) {
    const owner = yield* lookup.run(org, event.runId);
    if (owner !== undefined && owner.agent_id !== agentId) return refuse("insufficient_scope", `run "${event.runId}" belongs to another agent`);
  }
  if (event.toolCallId !== null) {
    const call = yield* lookup.toolCall(org, event.toolCallId);
    if (call !== undefined) {
      if (call.agent_id !== agentId || (event.runId !== null && call.run_id !== event.runId)) return refuse("insufficient_scope", `tool call "${event.toolCallId}" belongs to another agent or run`);
      if (FINAL_REFUSALS.has(call.status) && (type === EventType.TOOL_COMPLETED || type === EventType.TOOL_BLOCKED)) {
        const status = str(event.data.status) ?? (type === EventType.TOOL_BLOCKED ? "blocked" : "completed");
        if (status !== call.status) return refuse("conflict", `tool call "${event.toolCallId}" is ${call.status}; it cannot become ${status}`);
      }
    }
  }
  if (type === EventType.APPROVAL_REQUESTED && agentId !== null) {
    const halt = yield* activeHaltFor(org, agentId, event.runId);
    if (halt !== undefined) return refuse("insufficient_scope", `agent "${agentId}" is halted (${halt}); it may not ask for approvals`);
  }
  return { kind: "accept", event };
}

/**
 * `approval.approved` / `approval.rejected` from a client: its echo of a decision already made
 * (skipped), or an agent giving up its own pending request (rejected, expired, cancelled). Approving
 * takes a reviewer, through POST /v1/approvals/:id/approve.
 */
function* admitApprovalOutcome(principal: Principal, event: WardenEvent): Query<Verdict> {
  const approvalId = str(event.data.approvalId);
  const status = str(event.data.status) ?? (event.type === EventType.APPROVAL_APPROVED ? ApprovalStatus.APPROVED : ApprovalStatus.REJECTED);
  if (approvalId === undefined || !(["approved", "rejected", "expired", "cancelled"] as string[]).includes(status)) return refuse("invalid_event", "data.approvalId and a final data.status are required");
  const row = yield* get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", approvalId, principal.org);
  // An unknown id and another agent's request get the same answer: no existence oracle.
  if (row === undefined || (principal.role === "agent" && row.agent_id !== event.agentId)) return refuse("insufficient_scope", `this key may not decide approval "${approvalId}"`);
  if (row.status !== ApprovalStatus.PENDING) return row.status === status ? { kind: "echo" } : refuse("conflict", `approval "${approvalId}" is already ${row.status}`);
  if (status === ApprovalStatus.APPROVED) return refuse("insufficient_scope", "approving takes a reviewer: POST /v1/approvals/:id/approve");
  if (principal.role === "agent" && event.actor !== null && ![principal.name, principal.keyId, principal.agentId].includes(event.actor)) {
    return refuse("insufficient_scope", `an agent key reports as itself; actor "${event.actor}" is not this key`);
  }
  return { kind: "accept", event };
}

/**  The active halt that covers an agent (or one of its runs), described; undefined when none. */
export function* activeHaltFor(org: string, agentId: string, runId: string | null): Query<string | undefined> {
  const rows = yield* all<HaltRow>("SELECT id, target_kind, target, reason, actor, created_at, lifted_at FROM halts WHERE org = ? AND lifted_at IS NULL", org);
  if (rows.length === 0) return undefined;
  const group = (yield* get<{ grp: string | null }>("SELECT grp FROM agents WHERE org = ? AND id = ?", org, agentId))?.grp ?? undefined;
  const halt = rows.map((row) => toHaltRecord(row)).find((h) => haltMatches(h, { agentId, group, runId: runId ?? undefined }));
  return halt === undefined ? undefined : `${halt.scope === "organization" ? "organization" : `${halt.scope} ${halt.target}`}: ${halt.reason}`;
}

/**  Applies one admitted event's effect on runs, steps, tool calls, approvals and revocations. */
export function* projectEvent(org: string, principal: Principal, event: WardenEvent, effects: Effects): Query<void> {
  const data = event.data;
  const agentId = event.agentId ?? "unknown";
  switch (event.type as string) {
    case EventType.RUN_STARTED: {
      if (event.runId === null) return;
      yield* run("INSERT INTO agents (org, id, created_at) VALUES (?,?,?) ON CONFLICT (org, id) DO NOTHING", org, agentId, event.ts);
      const changed = yield* run(
        `INSERT INTO runs (id, org, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at)
         VALUES (?,?,?,?,?,'running',?,?,?,?,?)
         ON CONFLICT (id) DO UPDATE SET trace_id = excluded.trace_id, parent_run_id = excluded.parent_run_id,
           metadata = excluded.metadata, reason = excluded.reason, agent_context = excluded.agent_context, token_id = excluded.token_id, started_at = excluded.started_at
         WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id`,
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
      const changed = yield* run(
        `INSERT INTO runs (id, org, agent_id, trace_id, status, started_at, ended_at, error) VALUES (?,?,?,?,?,?,?,?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error WHERE runs.org = excluded.org AND runs.agent_id = excluded.agent_id`,
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
      // A step belongs to its run, which must not be another organization's.
      if ((yield* get("SELECT 1 AS found FROM runs WHERE id = ? AND org <> ?", event.runId, org)) !== undefined) return;
      const started = event.type === EventType.STEP_STARTED;
      const status = started ? "running" : (str(data.status) ?? "completed");
      yield* run(
        `INSERT INTO steps (id, run_id, name, status, metadata, started_at, ended_at, org) VALUES (?,?,?,?,?,?,?,?)
         ON CONFLICT (id) DO UPDATE SET ${started ? "name = excluded.name, metadata = excluded.metadata, started_at = excluded.started_at" : "status = excluded.status, ended_at = excluded.ended_at"}
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
      // A call already blocked or rejected keeps what it was recorded with.
      const changed = yield* run(
        `INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, agent_context, reason, started_at)
         VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
         ON CONFLICT (id) DO UPDATE SET step_id = excluded.step_id, kind = excluded.kind,
           tool_name = excluded.tool_name, action_type = excluded.action_type, input = excluded.input, agent_context = excluded.agent_context,
           reason = excluded.reason, started_at = excluded.started_at,
           status = CASE WHEN tool_calls.status IN ${FINAL_TOOL_STATUSES} THEN tool_calls.status ELSE excluded.status END
         WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')`,
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
      if (changed && action !== undefined) yield* mergeDecision(org, event.toolCallId, { action, actionType: str(data.actionType) });
      if (changed) effects.toolCalls.add(event.toolCallId);
      return;
    }
    case EventType.POLICY_MATCHED: {
      if (event.toolCallId === null) return;
      yield* mergeDecision(org, event.toolCallId, { action: str(data.decision), policyId: str(data.policyId), matches: Array.isArray(data.matches) ? data.matches : undefined });
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
      const changed = yield* run(
        `INSERT INTO tool_calls (id, run_id, org, agent_id, kind, tool_name, action_type, status, output, error, blocked_reason, usage, started_at, ended_at, duration_ms)
         VALUES (?,?,?,?,?,?,'unknown',?,?,?,?,?,?,?,?)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, output = COALESCE(excluded.output, tool_calls.output), error = COALESCE(excluded.error, tool_calls.error),
           blocked_reason = COALESCE(excluded.blocked_reason, tool_calls.blocked_reason), usage = COALESCE(excluded.usage, tool_calls.usage),
           ended_at = COALESCE(excluded.ended_at, tool_calls.ended_at), duration_ms = COALESCE(excluded.duration_ms, tool_calls.duration_ms)
         WHERE tool_calls.org = excluded.org AND tool_calls.agent_id = excluded.agent_id AND tool_calls.status NOT IN ('blocked','rejected')`,
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
        // Durations are fractional milliseconds; times are whole ones (PostgreSQL's BIGINT refuses fractions).
        Math.round(event.ts - (durationMs ?? 0)),
        finished ? event.ts : null,
        durationMs ?? null,
      );
      if (changed && blocked && status === "blocked") {
        yield* mergeDecision(org, event.toolCallId, { action: "block", reason: str(data.reason), policyId: str(data.policyId), halted: data.halted === true ? true : undefined });
      }
      if (changed) effects.toolCalls.add(event.toolCallId);
      return;
    }
    case EventType.APPROVAL_REQUESTED: {
      const approvalId = str(data.approvalId);
      if (approvalId === undefined || event.runId === null || event.toolCallId === null) return;
      const changed = yield* run(
        `INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at)
         VALUES (?,?,?,?,?,?,'pending',?,?,?,?,?,?) ON CONFLICT (org, id) DO NOTHING`,
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
        Math.round(num(data.expiresAt) ?? event.ts + DEFAULT_APPROVAL_TIMEOUT),
      );
      if (changed) effects.durable.push({ type: "approval.requested", data: yield* approvalRecord(org, approvalId) });
      return;
    }
    case EventType.APPROVAL_APPROVED:
    case EventType.APPROVAL_REJECTED: {
      // Admitted above: the agent's own pending request given up, or an admin's decision.
      const approvalId = str(data.approvalId)!;
      const status = str(data.status) ?? (event.type === EventType.APPROVAL_APPROVED ? ApprovalStatus.APPROVED : ApprovalStatus.REJECTED);
      const changed = yield* run(
        "UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ? WHERE id = ? AND org = ? AND status = 'pending'",
        status,
        principal.role === "agent" ? (event.actor ?? agentId) : (str(data.reviewer) ?? event.actor),
        str(data.reason) ?? null,
        event.ts,
        approvalId,
        org,
      );
      if (changed) effects.durable.push({ type: "approval.resolved", data: yield* approvalRecord(org, approvalId) });
      return;
    }
    case EventType.TOKEN_REVOKED: {
      const tokenId = str(data.tokenId);
      if (tokenId === undefined) return;
      const changed = yield* run("INSERT INTO revoked_tokens (org, id, reason, revoked_at) VALUES (?,?,?,?) ON CONFLICT DO NOTHING", org, tokenId, str(data.reason) ?? null, event.ts);
      // Every connected agent learns of it, so the token stops verifying across the fleet.
      if (changed) effects.durable.push({ type: "token.revoked", data: { tokenId, reason: str(data.reason) } });
      return;
    }
    default:
      // risk.detected: the ledger entry is the record.
      return;
  }
}

function* mergeDecision(org: string, toolCallId: string, patch: Record<string, unknown>): Query<void> {
  const row = yield* get<{ decision: string | null }>("SELECT decision FROM tool_calls WHERE id = ? AND org = ?", toolCallId, org);
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
  yield* run("UPDATE tool_calls SET decision = ? WHERE id = ? AND org = ?", JSON.stringify(next), toolCallId, org);
}

/**  */
export function* approvalRecord(org: string, approvalId: string): Query<ApprovalRecord | undefined> {
  const row = yield* get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", approvalId, org);
  return row === undefined ? undefined : toApprovalRecord(row);
}
