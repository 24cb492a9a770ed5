// Who may answer an approval on the control plane: the same rule the embedded client applies
// (src/approvals/binding.ts), plus what only a server knows: which API key asked, and which key answers.
import { ApprovalStatus, EventType, InvalidStateError, type WardenEvent, isWithinAgent, NotFoundError, parsePolicySet, ReviewerNotAllowedError, type ApprovalRule } from "agent-warden";
import { reviewerRefusal, type ApprovalVote } from "../approvals/binding.js";
import { newId } from "../internal/ids.js";
import { approvalRuleOf } from "../policy/engine.js";
import { toApprovalRecord, type ApprovalRecord, type ApprovalRow } from "../records.js";
import { AgentHaltedError } from "./errors.js";
import { activeHaltFor } from "./ingest.js";
import { draftOf, toOrgLedgerEntry, type OrgLedger, type OrgLedgerRow } from "./org-ledger.js";
import { all, get, run, type Query } from "./sql.js";
import type { StreamMessage } from "./store.js";
import { appendStream } from "./stream-log.js";

/**
 * Who answers an approval request on the control plane, and through what.
 * @example
 * import type { ApprovalAnswer } from "agent-warden/server";
 * const answer: ApprovalAnswer = { reviewer: "slack:U024BE7LH", reason: "decided in Slack", via: "slack" };
 */
export interface ApprovalAnswer {
  /** Who is recorded as deciding. With `key`, and a rule on the request, it must be the key's identity. */
  reviewer?: string | undefined;
  reason?: string | undefined;
  /**
   * The API key deciding (directly or behind a console session): its identity and groups are checked
   * against the request's rule, and the key that asked for the approval never answers it. Absent for
   * channels that carry their own verified identity (Slack's signed interactions, one-time links).
   */
  key?: { keyId: string; identity: string; groups: readonly string[]; agentId: string | undefined } | undefined;
  /** Where the answer came from: `api` (default), `console`, `slack`, `link`. */
  via?: string | undefined;
}

/** What a decision does to a pending request. */
export type AnswerOutcome =
  | { kind: "refused"; reviewer: string | undefined; detail: string }
  /** An approval short of the count: recorded, the request stays pending. */
  | { kind: "voted"; reviewer: string; votes: ApprovalVote[]; needed: number }
  | { kind: "decided"; reviewer: string | undefined; votes: ApprovalVote[] | undefined };

/** A row of a control plane's `approvals` table, with the columns only the server keeps. */
export type ServerApprovalRow = ApprovalRow & { requested_by?: string | null; decided_via?: string | null };

/** The rule of `policyId` in a stored policy document, if that policy asks for named or several reviewers. */
export function ruleOfPolicy(document: unknown, policyId: string | undefined): ApprovalRule | undefined {
  if (policyId === undefined) return undefined;
  try {
    const policy = parsePolicySet(document).policies.find((candidate) => candidate.id === policyId);
    return policy === undefined ? undefined : approvalRuleOf(policy.approval);
  } catch {
    // A stored version was validated when it was put; one that no longer parses names no reviewers.
    return undefined;
  }
}

/** Checks an answer against the request: refused (and why), one vote of several, or the decision. */
export function evaluateAnswer(row: ServerApprovalRow, status: "approved" | "rejected", answer: ApprovalAnswer, now: number): AnswerOutcome {
  const rule = row.rule ? (JSON.parse(row.rule) as ApprovalRule) : undefined;
  const votes = row.votes ? (JSON.parse(row.votes) as ApprovalVote[]) : [];
  const key = answer.key;
  const reviewer = answer.reviewer ?? key?.identity;
  const refuse = (detail: string): AnswerOutcome => ({ kind: "refused", reviewer, detail });
  if (key !== undefined) {
    // An agent holding a reviewer's or an admin's key still may not approve what it asked for.
    if (row.requested_by != null && row.requested_by === key.keyId) return refuse("the key that asked for this approval cannot answer it");
    if (key.agentId !== undefined && isWithinAgent(row.agent_id, key.agentId)) return refuse("the requesting agent cannot answer its own request");
    if (rule !== undefined && reviewer !== key.identity) return refuse(`a key answers as its own identity ("${key.identity}"), not as another reviewer`);
  }
  const detail = reviewerRefusal({ agentId: row.agent_id, createdAt: row.created_at, escalatedAt: row.escalated_at ?? undefined, rule, votes }, reviewer, key?.groups ?? [], now);
  if (detail !== undefined) return refuse(detail);
  const needed = rule?.approvers ?? 1;
  if (status === "approved" && needed > 1) {
    const all = [...votes, { reviewer: reviewer!, at: now, ...(answer.reason !== undefined && { reason: answer.reason }), ...(answer.via !== undefined && { via: answer.via }) }];
    if (all.length < needed) return { kind: "voted", reviewer: reviewer!, votes: all, needed };
    return { kind: "decided", reviewer: all.map((vote) => vote.reviewer).join(", "), votes: all };
  }
  return { kind: "decided", reviewer, votes: votes.length > 0 ? votes : undefined };
}

/**
 * The rule a new request is held to: the deciding policy's, from the organization's current policy
 * set on the control plane when that set names the policy (the server's word, not the agent's);
 * otherwise the rule the agent's own policy gave.
 */
export function* ruleForRequest(org: string, policyId: string | undefined, fromAgent: ApprovalRule | undefined): Query<ApprovalRule | undefined> {
  if (policyId === undefined) return fromAgent;
  const current = yield* get<{ document: string }>("SELECT document FROM policy_versions WHERE org = ? ORDER BY version DESC LIMIT 1", org);
  if (current !== undefined) {
    const document = JSON.parse(current.document) as { policies?: Array<{ id?: unknown }> };
    if (document.policies?.some((policy) => policy?.id === policyId)) return ruleOfPolicy(document, policyId);
  }
  return fromAgent;
}

/** Moves a pending request to a final status in the caller's transaction: the row, its ledger entry, its stream message. */
export function* resolveApproval(ledger: OrgLedger, org: string, row: ServerApprovalRow, status: Exclude<ApprovalStatus, "pending">, reviewer: string | undefined, reason: string | undefined, now: number, answer: { votes?: ApprovalVote[] | undefined; via?: string | undefined } = {}): Query<{ record: ApprovalRecord; message: StreamMessage }> {
  const votes = answer.votes === undefined ? (row.votes ?? null) : JSON.stringify(answer.votes);
  yield* run("UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ?, votes = ?, decided_via = ? WHERE id = ? AND org = ?", status, reviewer ?? null, reason ?? null, now, votes, answer.via ?? null, row.id, org);
  const record: ApprovalRecord = { ...toApprovalRecord({ ...row, votes }), status, reviewer, decisionReason: reason, decidedAt: now };
  const type = status === ApprovalStatus.APPROVED ? EventType.APPROVAL_APPROVED : EventType.APPROVAL_REJECTED;
  // `via` is written when it is not the API, so entries of API decisions keep their shape.
  const data = { approvalId: row.id, status, reviewer, reason, toolName: row.tool_name, ...(answer.via !== undefined && answer.via !== "api" && { via: answer.via }), ...(answer.votes !== undefined && answer.votes.length > 1 && { approvedBy: answer.votes.map((vote) => vote.reviewer) }) };
  yield* ledger.append(org, draftOf(type, { agentId: row.agent_id, runId: row.run_id, toolCallId: row.tool_call_id }, data, reviewer ?? null, newId("evt"), now));
  return { record, message: yield* appendStream(org, "approval.resolved", record, now) };
}

/** What answering a request came to: decided (announce the message), one vote recorded, or refused (recorded; the caller throws `refused` once committed). */
export type AnswerResult =
  | { kind: "decided"; record: ApprovalRecord; message: StreamMessage }
  | { kind: "voted"; record: ApprovalRecord }
  | { kind: "refused"; record: ApprovalRecord; refused: ReviewerNotAllowedError };

/**
 * Answers a pending request in the caller's transaction, for both control plane stores. The row is
 * read `FOR UPDATE` where the database takes row locks, so votes from several replicas are counted
 * one after another: N of M holds across replicas. A refused reviewer is recorded in the ledger and
 * nothing is decided.
 */
export function* answerApproval(ledger: OrgLedger, org: string, approvalId: string, status: "approved" | "rejected", answer: ApprovalAnswer, now: number, lockRows: boolean): Query<AnswerResult> {
  const row = yield* get<ServerApprovalRow>(`SELECT * FROM approvals WHERE id = ? AND org = ?${lockRows ? " FOR UPDATE" : ""}`, approvalId, org);
  if (row === undefined) throw new NotFoundError("approval", approvalId);
  if (row.status !== ApprovalStatus.PENDING) throw new InvalidStateError(`approval "${approvalId}" is already ${row.status}`);
  // Overdue but not yet swept: too late to decide; the sweeper records the expiry.
  if (row.expires_at <= now) throw new InvalidStateError(`approval "${approvalId}" has expired`);
  const ids = { agentId: row.agent_id, runId: row.run_id, toolCallId: row.tool_call_id };
  const outcome = evaluateAnswer(row, status, answer, now);
  if (outcome.kind === "refused") {
    const refused = new ReviewerNotAllowedError({ approvalId, reviewer: outcome.reviewer, detail: outcome.detail });
    const data = { approvalId, toolName: row.tool_name, refusedReviewer: outcome.reviewer, keyId: answer.key?.keyId, groups: answer.key?.groups, via: answer.via ?? "api", decision: status, reason: refused.message, severity: "high" };
    yield* ledger.append(org, draftOf(EventType.RISK_DETECTED, ids, data, outcome.reviewer ?? answer.key?.keyId ?? null, newId("evt"), now));
    return { kind: "refused", record: toApprovalRecord(row), refused };
  }
  if (status === ApprovalStatus.APPROVED) {
    const halt = yield* activeHaltFor(org, row.agent_id, row.run_id);
    if (halt !== undefined) throw new AgentHaltedError(`approval "${approvalId}" cannot be approved: agent "${row.agent_id}" is halted (${halt})`);
  }
  if (outcome.kind === "voted") {
    const votes = JSON.stringify(outcome.votes);
    yield* run("UPDATE approvals SET votes = ? WHERE id = ? AND org = ?", votes, approvalId, org);
    const data = { approvalId, toolName: row.tool_name, status: ApprovalStatus.PENDING, vote: { reviewer: outcome.reviewer, reason: answer.reason, via: answer.via ?? "api" }, approvals: outcome.votes.length, needed: outcome.needed };
    yield* ledger.append(org, draftOf(EventType.APPROVAL_REQUESTED, ids, data, outcome.reviewer, newId("evt"), now));
    return { kind: "voted", record: toApprovalRecord({ ...row, votes }) };
  }
  const { record, message } = yield* resolveApproval(ledger, org, row, status, outcome.reviewer, answer.reason, now, { votes: outcome.votes, via: answer.via });
  return { kind: "decided", record, message };
}

/** The ledger entries about one approval (its tool call's entries that name it), oldest first. */
export function* approvalEntries(org: string, runId: string, toolCallId: string, approvalId: string): Query<WardenEvent[]> {
  const rows = yield* all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND run_id = ? AND tool_call_id = ? ORDER BY seq LIMIT 1000", org, runId, toolCallId);
  return rows
    .map((row) => {
      const { id, type, ts, agentId, runId: run, stepId, toolCallId: call, actor, data } = toOrgLedgerEntry(row);
      return { id, type: type as EventType, ts, org, agentId, runId: run, stepId, toolCallId: call, actor, data: data as Record<string, unknown> };
    })
    .filter((event) => event.data.approvalId === approvalId);
}

/** Pending requests whose rule escalates, not yet escalated: the candidates a sweep checks. */
export const ESCALATION_CANDIDATES = "SELECT * FROM approvals WHERE status = 'pending' AND rule IS NOT NULL AND escalated_at IS NULL ORDER BY created_at LIMIT 500";

/** Whether `row`'s escalation is due at `now`. */
export function escalationDue(row: ServerApprovalRow, now: number): boolean {
  const escalate = row.rule ? (JSON.parse(row.rule) as ApprovalRule).escalate : undefined;
  return escalate !== undefined && now >= row.created_at + escalate.afterMs && row.expires_at > now;
}

/**
 * Records the escalations that are due, once each (whichever replica's sweep gets there first): the
 * request's `escalated_at`, and an `approval.requested` entry with `escalated: true` and the set now asked.
 */
export function* escalateApprovals(ledger: OrgLedger, rows: ReadonlyArray<ServerApprovalRow & { org: string }>, now: number): Query<number> {
  let escalated = 0;
  for (const row of rows) {
    if (!escalationDue(row, now)) continue;
    if ((yield* run("UPDATE approvals SET escalated_at = ? WHERE id = ? AND org = ? AND escalated_at IS NULL AND status = 'pending'", now, row.id, row.org)) === 0) continue;
    const to = (JSON.parse(row.rule!) as ApprovalRule).escalate!.to;
    yield* ledger.append(row.org, draftOf(EventType.APPROVAL_REQUESTED, { agentId: row.agent_id, runId: row.run_id, toolCallId: row.tool_call_id }, { approvalId: row.id, toolName: row.tool_name, status: ApprovalStatus.PENDING, escalated: true, to }, "warden", newId("evt"), now));
    escalated++;
  }
  return escalated;
}
