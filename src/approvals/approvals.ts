import { ApprovalStatus, EventType, type AgentContext } from "../enums.js";
import { ApprovalInvalidError, InvalidStateError, NotFoundError, ReviewerNotAllowedError, type ApprovalInvalidReason } from "../errors.js";
import { newId } from "../internal/ids.js";
import { pendingApproval, toApprovalRecord, type ApprovalRecord, type ApprovalRow } from "../records.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { argsDigest, reviewerRefusal as refusalOf, type ApprovalRule, type ApprovalVote as Vote } from "./binding.js";

export type { ApprovalRule };

/**
 * Who answered an approval request and why, recorded in the ledger so every decision has an owner.
 * @example
 * import type { ApprovalDecisionInput } from "agent-warden";
 * const answer: ApprovalDecisionInput = { reviewer: "alice", reason: "outside the change window" };
 * warden.approvals.reject(approvalId, answer);
 */
export interface ApprovalDecisionInput {
  /** Who decided (a person, a service). Recorded in the ledger; checked against the policy's `approval.from`. */
  reviewer?: string | undefined;
  /** The groups the reviewer belongs to (from the API key or console user), for `group:<name>` in `approval.from`. */
  groups?: readonly string[] | undefined;
  reason?: string | undefined;
}

/**
 * The call presented to an approval when it is to run: the core checks it is the call the reviewer
 * approved (`Approvals.admit`). `args` are the arguments the framework hands back on resume.
 */
export interface PresentedCall {
  toolName: string;
  agentId: string;
  runId: string;
  /** Digest of the presented arguments (`argsDigest(approvalId, args)`); undefined when none were presented. */
  argsDigest: string | undefined;
  /** Who admits it (the tool call id and process), recorded as the approval's one use. */
  consumer: string;
  /** The policy set version in force now, and the decision it gives the presented call. */
  policyVersion: string;
  redecide: () => { action: string; policyId: string | undefined };
}

/**
 * Called when a tool call needs approval, to route the request to a reviewer (chat, ticket, pager);
 * may decide at once or later through the handles.
 * @example
 * import { Warden, type ApprovalRequestHandler } from "agent-warden";
 * const onApprovalRequest: ApprovalRequestHandler = (request) => slack.post(`${request.toolName} needs approval: ${request.approvalId}`);
 * const warden = new Warden({ agentId: "billing-agent", onApprovalRequest });
 */
export type ApprovalRequestHandler = (
  request: ApprovalRecord,
  decide: { approve(input?: ApprovalDecisionInput): void; reject(input?: ApprovalDecisionInput): void },
) => unknown;

/** @internal */
export interface ApprovalsContext {
  store: SqliteStore;
  org: string;
  record: (type: EventType, ids: { agentId: string; runId: string; toolCallId: string }, data: Record<string, unknown>, actor?: string) => void;
  onRequest: ApprovalRequestHandler | undefined;
  onError: (error: unknown) => void;
  pollIntervalMs: number;
  /** The clock approvals read (expiry, escalation); injectable for tests. */
  now?: (() => number) | undefined;
}

interface Waiter {
  resolve: (record: ApprovalRecord) => void;
  timer: NodeJS.Timeout;
  record: ApprovalRecord;
}

/**
 * Approval requests, reached as `warden.approvals`: created when policy says `require_approval`,
 * decided by a reviewer (this API, the CLI from another process, the console, or
 * `onApprovalRequest`), expired on timeout.
 * @example
 * import type { Approvals } from "agent-warden";
 * const approvals: Approvals = warden.approvals;
 * const [first] = approvals.list({ status: "pending" });
 * if (first) approvals.approve(first.approvalId, { reviewer: "alice", reason: "change window" });
 */
export class Approvals {
  readonly #ctx: ApprovalsContext;
  readonly #waiters = new Map<string, Waiter>();
  #poller: NodeJS.Timeout | undefined;

  /** @internal */
  constructor(ctx: ApprovalsContext) {
    this.#ctx = ctx;
  }

  /**
   * @internal Creates a pending request; it is committed at once so other processes can decide it.
   * Bound to the unredacted arguments' digest (never the arguments in clear), the policy version and rule.
   */
  create(input: { toolCallId: string; runId: string; agentId: string; toolName: string; payload: unknown; args: unknown; agentContext: AgentContext | undefined; policyId: string | undefined; policyVersion: string | undefined; rule: ApprovalRule | undefined; reason: string; timeoutMs: number }): ApprovalRecord {
    const now = this.#now();
    const approvalId = newId("apr");
    const digest = argsDigest(approvalId, input.args);
    const record: ApprovalRecord = {
      ...pendingApproval({ approvalId, toolCallId: input.toolCallId, runId: input.runId, agentId: input.agentId, toolName: input.toolName, payload: input.payload, agentContext: input.agentContext, policyId: input.policyId, reason: input.reason, createdAt: now, expiresAt: now + input.timeoutMs }),
      argsDigest: digest,
      ...(input.policyVersion !== undefined && { policyVersion: input.policyVersion }),
      ...(input.rule !== undefined && { rule: input.rule }),
    };
    this.#ctx.store.write(
      "INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at, args_digest, policy_version, rule) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      [record.approvalId, this.#ctx.org, record.toolCallId, record.runId, record.agentId, record.toolName, record.status, JSON.stringify(record.payload ?? null), record.agentContext ? JSON.stringify(record.agentContext) : null, record.policyId ?? null, record.reason ?? null, now, record.expiresAt, digest, input.policyVersion ?? null, input.rule ? JSON.stringify(input.rule) : null],
    );
    // Committed before anyone hears of it: a reviewer acting on the event at once must find the request.
    this.#ctx.store.flush();
    this.#ctx.record(EventType.APPROVAL_REQUESTED, record, { approvalId: record.approvalId, toolName: record.toolName, policyId: record.policyId, reason: record.reason, payload: record.payload, agentContext: record.agentContext, expiresAt: record.expiresAt, argsDigest: digest, policyVersion: input.policyVersion, rule: input.rule });
    this.#ctx.store.flush();
    return record;
  }

  /**
   * @internal Admits the call presented to an approved request, once: the same tool, agent, run and
   * arguments (by digest) the reviewer saw, a policy set that still asks for this approval, before
   * the request's expiry, and not used before (in any process: the store marks it consumed).
   * Returns the refusal, recorded, or undefined when admitted.
   */
  admit(approvalId: string, call: PresentedCall): ApprovalInvalidError | undefined {
    const now = this.#now();
    let refusal: ApprovalInvalidReason | undefined;
    let record: ApprovalRecord | undefined;
    this.#ctx.store.transaction(() => {
      const row = this.#ctx.store.db.prepare("SELECT * FROM approvals WHERE id = ? AND org = ?").get(approvalId, this.#ctx.org) as ApprovalRow | undefined;
      if (!row) throw new NotFoundError("approval", approvalId);
      record = toApprovalRecord(row);
      refusal = bindingRefusal(row, call, now);
      if (refusal === undefined) this.#ctx.store.db.prepare("UPDATE approvals SET consumed_at = ?, consumed_by = ? WHERE id = ? AND consumed_at IS NULL").run(now, call.consumer, approvalId);
    });
    if (refusal === undefined) return undefined;
    const error = new ApprovalInvalidError({ approvalId, toolName: call.toolName, reason: refusal });
    this.#ctx.record(EventType.RISK_DETECTED, { agentId: call.agentId, runId: call.runId, toolCallId: record!.toolCallId }, { approvalId, toolName: call.toolName, refused: refusal, reason: error.message, severity: "high" });
    return error;
  }

  /** @internal Notifies `onApprovalRequest`; its failures are reported, and the request then waits for another reviewer or the timeout. */
  notify(record: ApprovalRecord): void {
    const handler = this.#ctx.onRequest;
    if (!handler) return;
    const decide = {
      approve: (input?: ApprovalDecisionInput) => this.#decideQuietly(record.approvalId, ApprovalStatus.APPROVED, input),
      reject: (input?: ApprovalDecisionInput) => this.#decideQuietly(record.approvalId, ApprovalStatus.REJECTED, input),
    };
    try {
      const result = handler(record, decide);
      if (result instanceof Promise) result.catch(this.#ctx.onError);
    } catch (error) {
      this.#ctx.onError(error);
    }
  }

  /** One request by id. */
  get(approvalId: string): ApprovalRecord {
    const row = this.#ctx.store.get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", approvalId, this.#ctx.org);
    if (!row) throw new NotFoundError("approval", approvalId);
    return this.#expireIfDue(toApprovalRecord(row));
  }

  /** The request made for a tool call, if any. */
  forToolCall(toolCallId: string): ApprovalRecord | undefined {
    const row = this.#ctx.store.get<ApprovalRow>("SELECT * FROM approvals WHERE tool_call_id = ? AND org = ? ORDER BY created_at DESC LIMIT 1", toolCallId, this.#ctx.org);
    return row ? this.#expireIfDue(toApprovalRecord(row)) : undefined;
  }

  /** Requests, newest first. Overdue pending requests are reported (and stored) as expired. */
  list(filter: { status?: ApprovalStatus | undefined; runId?: string | undefined; limit?: number | undefined } = {}): ApprovalRecord[] {
    const rows = this.#ctx.store.all<ApprovalRow>(
      "SELECT * FROM approvals WHERE org = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR run_id = ?3) ORDER BY created_at DESC LIMIT ?4",
      this.#ctx.org,
      filter.status ?? null,
      filter.runId ?? null,
      filter.limit ?? 100,
    );
    const records = rows.map((row) => this.#expireIfDue(toApprovalRecord(row)));
    return filter.status ? records.filter((r) => r.status === filter.status) : records;
  }

  /** Approves a pending request; the waiting tool call runs. */
  approve(approvalId: string, input: ApprovalDecisionInput = {}): ApprovalRecord {
    return this.decide(approvalId, ApprovalStatus.APPROVED, input);
  }

  /** Rejects a pending request; the waiting tool call never runs. */
  reject(approvalId: string, input: ApprovalDecisionInput = {}): ApprovalRecord {
    return this.decide(approvalId, ApprovalStatus.REJECTED, input);
  }

  /**
   * @internal Moves a pending request to a final status, once, across processes. A reviewer's answer
   * is checked against the deciding policy's rule (who may answer, how many must approve); an approval
   * short of the count is recorded as a vote and the request stays pending.
   */
  decide(approvalId: string, status: Exclude<ApprovalStatus, "pending">, input: ApprovalDecisionInput = {}): ApprovalRecord {
    const now = this.#now();
    const reviewed = status === ApprovalStatus.APPROVED || status === ApprovalStatus.REJECTED;
    let refused: ReviewerNotAllowedError | undefined;
    let voted = false;
    const record = this.#ctx.store.transaction(() => {
      const row = this.#ctx.store.db.prepare("SELECT * FROM approvals WHERE id = ? AND org = ?").get(approvalId, this.#ctx.org) as ApprovalRow | undefined;
      if (!row) throw new NotFoundError("approval", approvalId);
      if (row.status !== ApprovalStatus.PENDING) throw new InvalidStateError(`approval "${approvalId}" is already ${row.status}`);
      // Past its deadline a request can only expire or be cancelled: a late answer must not run the call.
      if (row.expires_at <= now && reviewed) throw new InvalidStateError(`approval "${approvalId}" is already expired`);
      if (reviewed) {
        refused = reviewerRefusal(row, input, now);
        if (refused !== undefined) return toApprovalRecord(row);
      }
      const votes = row.votes ? (JSON.parse(row.votes) as Vote[]) : [];
      if (status === ApprovalStatus.APPROVED) {
        const needed = ruleOf(row)?.approvers ?? 1;
        votes.push({ reviewer: input.reviewer ?? "", at: now, reason: input.reason });
        if (votes.length < needed) {
          voted = true;
          this.#ctx.store.db.prepare("UPDATE approvals SET votes = ? WHERE id = ?").run(JSON.stringify(votes), approvalId);
          return toApprovalRecord({ ...row, votes: JSON.stringify(votes) });
        }
      }
      const reviewer = status === ApprovalStatus.APPROVED && votes.length > 1 ? votes.map((vote) => vote.reviewer).join(", ") : (input.reviewer ?? null);
      const votesJson = votes.length > 0 ? JSON.stringify(votes) : (row.votes ?? null);
      this.#ctx.store.db.prepare("UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ?, votes = ? WHERE id = ?").run(status, reviewer, input.reason ?? null, now, votesJson, approvalId);
      return toApprovalRecord({ ...row, status, reviewer, decision_reason: input.reason ?? null, decided_at: now, votes: votesJson });
    });
    if (refused !== undefined) {
      // A refused reviewer is recorded: who tried to answer what, and why they could not.
      this.#ctx.record(EventType.RISK_DETECTED, record, { approvalId, toolName: record.toolName, refusedReviewer: input.reviewer, groups: input.groups, reason: refused.message, severity: "high" }, input.reviewer);
      throw refused;
    }
    if (voted) {
      this.#ctx.record(EventType.APPROVAL_REQUESTED, record, { approvalId, toolName: record.toolName, status: ApprovalStatus.PENDING, vote: { reviewer: input.reviewer, reason: input.reason }, approvals: record.approvedBy?.length ?? 0, needed: record.rule?.approvers ?? 1 }, input.reviewer);
      return record;
    }
    const type = status === ApprovalStatus.APPROVED ? EventType.APPROVAL_APPROVED : EventType.APPROVAL_REJECTED;
    this.#ctx.record(type, record, { approvalId, status, reviewer: record.reviewer, reason: input.reason, toolName: record.toolName, ...(record.approvedBy !== undefined && record.approvedBy.length > 1 && { approvedBy: record.approvedBy }) }, input.reviewer);
    this.#settle(record);
    return record;
  }

  /**
   * Escalates the pending requests whose rule's `escalate.after` has passed unanswered: the
   * escalation set may answer from now on, and the request is recorded as asked of it (once).
   * Also done whenever a request is read or answered; call it from a timer to notify promptly.
   */
  escalateDue(): ApprovalRecord[] {
    const now = this.#now();
    const rows = this.#ctx.store.all<ApprovalRow>("SELECT * FROM approvals WHERE org = ? AND status = 'pending' AND rule IS NOT NULL AND escalated_at IS NULL", this.#ctx.org);
    const escalated: ApprovalRecord[] = [];
    for (const row of rows) {
      const record = this.#escalateIfDue(toApprovalRecord(row), now);
      if (record.escalatedAt !== undefined) escalated.push(record);
    }
    return escalated;
  }

  /**
   * @internal Resolves with the final record once the request is decided, expired or cancelled.
   * Decisions made in other processes are noticed by polling the store.
   */
  wait(record: ApprovalRecord): Promise<ApprovalRecord> {
    return new Promise((resolve) => {
      const existing = this.#waiters.get(record.approvalId);
      if (existing) {
        const previous = existing.resolve;
        existing.resolve = (r) => {
          previous(r);
          resolve(r);
        };
        return;
      }
      const timer = setTimeout(() => this.#expire(record.approvalId), Math.max(0, record.expiresAt - Date.now()));
      this.#waiters.set(record.approvalId, { resolve, timer, record });
      this.#startPolling();
    });
  }

  /**
   * @internal Applies a decision made on the control plane: stored here and the waiting call wakes,
   * without a second ledger entry (the control plane recorded it).
   */
  applyRemote(decided: ApprovalRecord): void {
    if (decided.status === ApprovalStatus.PENDING) return;
    let record: ApprovalRecord = decided;
    try {
      const row = this.#ctx.store.get<ApprovalRow>("SELECT * FROM approvals WHERE id = ? AND org = ?", decided.approvalId, this.#ctx.org);
      if (row !== undefined) {
        if (row.status !== ApprovalStatus.PENDING) return;
        this.#ctx.store.write("UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ? WHERE id = ? AND status = 'pending'", [decided.status, decided.reviewer ?? null, decided.decisionReason ?? null, decided.decidedAt ?? Date.now(), decided.approvalId]);
        record = { ...toApprovalRecord(row), status: decided.status, reviewer: decided.reviewer, decisionReason: decided.decisionReason, decidedAt: decided.decidedAt };
      }
    } catch (error) {
      this.#ctx.onError(error);
    }
    this.#settle(record);
  }

  /** @internal Cancels pending requests (a halt). */
  cancel(approvalIds: readonly string[], reason: string): void {
    for (const id of approvalIds) {
      try {
        this.decide(id, ApprovalStatus.CANCELLED, { reviewer: "warden", reason });
      } catch (error) {
        if (!(error instanceof InvalidStateError)) this.#ctx.onError(error);
      }
    }
  }

  /** @internal */
  waitingIds(): string[] {
    return [...this.#waiters.keys()];
  }

  /** @internal */
  close(): void {
    if (this.#poller) clearInterval(this.#poller);
    // A closing client answers its waiting calls (they are refused) rather than leaving them hanging.
    for (const [approvalId, waiter] of this.#waiters) {
      clearTimeout(waiter.timer);
      this.#waiters.delete(approvalId);
      waiter.resolve({ ...waiter.record, status: ApprovalStatus.CANCELLED, decisionReason: "the Warden client was closed" });
    }
  }

  #decideQuietly(approvalId: string, status: Exclude<ApprovalStatus, "pending">, input?: ApprovalDecisionInput): void {
    try {
      this.decide(approvalId, status, input);
    } catch (error) {
      if (!(error instanceof InvalidStateError)) this.#ctx.onError(error);
    }
  }

  #expire(approvalId: string): void {
    try {
      this.decide(approvalId, ApprovalStatus.EXPIRED, { reviewer: "warden", reason: "approval timed out" });
    } catch (error) {
      if (error instanceof InvalidStateError) this.#settle(this.get(approvalId));
      else this.#ctx.onError(error);
    }
  }

  #now(): number {
    return this.#ctx.now?.() ?? Date.now();
  }

  #escalateIfDue(record: ApprovalRecord, now: number): ApprovalRecord {
    const escalate = record.rule?.escalate;
    if (record.status !== ApprovalStatus.PENDING || escalate === undefined || record.escalatedAt !== undefined || now < record.createdAt + escalate.afterMs) return record;
    const changed = this.#ctx.store.transaction(() => this.#ctx.store.db.prepare("UPDATE approvals SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL AND status = 'pending'").run(now, record.approvalId).changes > 0);
    const escalated = { ...record, escalatedAt: now };
    if (changed) this.#ctx.record(EventType.APPROVAL_REQUESTED, escalated, { approvalId: record.approvalId, toolName: record.toolName, status: ApprovalStatus.PENDING, escalated: true, to: escalate.to });
    return escalated;
  }

  #expireIfDue(record: ApprovalRecord): ApprovalRecord {
    if (record.status !== ApprovalStatus.PENDING) return record;
    if (record.expiresAt > this.#now()) return this.#escalateIfDue(record, this.#now());
    try {
      return this.decide(record.approvalId, ApprovalStatus.EXPIRED, { reviewer: "warden", reason: "approval timed out" });
    } catch {
      return record;
    }
  }

  #settle(record: ApprovalRecord): void {
    const waiter = this.#waiters.get(record.approvalId);
    if (!waiter) return;
    this.#waiters.delete(record.approvalId);
    clearTimeout(waiter.timer);
    if (this.#waiters.size === 0 && this.#poller) {
      clearInterval(this.#poller);
      this.#poller = undefined;
    }
    waiter.resolve(record);
  }

  #startPolling(): void {
    if (this.#poller || this.#ctx.store.isMemory) return;
    this.#poller = setInterval(() => {
      try {
        for (const id of [...this.#waiters.keys()]) {
          const row = this.#ctx.store.peek<ApprovalRow>("SELECT * FROM approvals WHERE id = ?", id);
          if (row && row.status !== ApprovalStatus.PENDING) this.#settle(toApprovalRecord(row));
        }
      } catch (error) {
        this.#ctx.onError(error);
      }
    }, this.#ctx.pollIntervalMs);
    // The approval's own timeout timer keeps the process alive; polling must not.
    this.#poller.unref();
  }
}

function ruleOf(row: ApprovalRow): ApprovalRule | undefined {
  return row.rule ? (JSON.parse(row.rule) as ApprovalRule) : undefined;
}

/** Why this reviewer may not answer this request now, or undefined when they may. */
function reviewerRefusal(row: ApprovalRow, input: ApprovalDecisionInput, now: number): ReviewerNotAllowedError | undefined {
  const votes = row.votes ? (JSON.parse(row.votes) as Vote[]) : [];
  const detail = refusalOf({ agentId: row.agent_id, createdAt: row.created_at, escalatedAt: row.escalated_at ?? undefined, rule: ruleOf(row), votes }, input.reviewer, input.groups ?? [], now);
  return detail === undefined ? undefined : new ReviewerNotAllowedError({ approvalId: row.id, reviewer: input.reviewer, detail });
}

/** Why the presented call is not the one this approval admits, or undefined when it is. */
function bindingRefusal(row: ApprovalRow, call: PresentedCall, now: number): ApprovalInvalidReason | undefined {
  if (row.status !== ApprovalStatus.APPROVED) return row.status === ApprovalStatus.EXPIRED ? "expired" : "not_approved";
  // Used once: only the same call in the same client may be admitted again (a later hook for it).
  const again = row.consumed_at != null;
  if (again && row.consumed_by !== call.consumer) return "used";
  if (!again && row.expires_at <= now) return "expired";
  if (row.tool_name !== call.toolName) return "tool_changed";
  if (row.agent_id !== call.agentId) return "agent_changed";
  if (row.run_id !== call.runId) return "run_changed";
  if (row.args_digest != null && call.argsDigest !== undefined && row.args_digest !== call.argsDigest) return "args_changed";
  if (row.policy_version != null && row.policy_version !== call.policyVersion) {
    // A new policy set keeps the approval only if it still asks for it, from the same policy.
    const now = call.redecide();
    if (now.action === "block") return "policy_blocks";
    if (now.action !== "require_approval" || now.policyId !== (row.policy_id ?? undefined)) return "policy_changed";
  }
  return undefined;
}
