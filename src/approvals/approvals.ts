import { ApprovalStatus, EventType, type AgentContext } from "../enums.js";
import { InvalidStateError, NotFoundError } from "../errors.js";
import { newId } from "../internal/ids.js";
import { pendingApproval, toApprovalRecord, type ApprovalRecord, type ApprovalRow } from "../records.js";
import type { SqliteStore } from "../store/sqlite-store.js";

/**
 * Who answered an approval request and why, recorded in the ledger so every decision has an owner.
 * @example
 * import type { ApprovalDecisionInput } from "agent-warden";
 * const answer: ApprovalDecisionInput = { reviewer: "alice", reason: "outside the change window" };
 * warden.approvals.reject(approvalId, answer);
 */
export interface ApprovalDecisionInput {
  /** Who decided (a person, a service). Recorded in the ledger. */
  reviewer?: string | undefined;
  reason?: string | undefined;
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

  /** @internal Creates a pending request; it is committed at once so other processes can decide it. */
  create(input: { toolCallId: string; runId: string; agentId: string; toolName: string; payload: unknown; agentContext: AgentContext | undefined; policyId: string | undefined; reason: string; timeoutMs: number }): ApprovalRecord {
    const now = Date.now();
    const record = pendingApproval({ approvalId: newId("apr"), toolCallId: input.toolCallId, runId: input.runId, agentId: input.agentId, toolName: input.toolName, payload: input.payload, agentContext: input.agentContext, policyId: input.policyId, reason: input.reason, createdAt: now, expiresAt: now + input.timeoutMs });
    this.#ctx.store.write(
      "INSERT INTO approvals (id, org, tool_call_id, run_id, agent_id, tool_name, status, payload, agent_context, policy_id, reason, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
      [record.approvalId, this.#ctx.org, record.toolCallId, record.runId, record.agentId, record.toolName, record.status, JSON.stringify(record.payload ?? null), record.agentContext ? JSON.stringify(record.agentContext) : null, record.policyId ?? null, record.reason ?? null, now, record.expiresAt],
    );
    // Committed before anyone hears of it: a reviewer acting on the event at once must find the request.
    this.#ctx.store.flush();
    this.#ctx.record(EventType.APPROVAL_REQUESTED, record, { approvalId: record.approvalId, toolName: record.toolName, policyId: record.policyId, reason: record.reason, payload: record.payload, agentContext: record.agentContext, expiresAt: record.expiresAt });
    this.#ctx.store.flush();
    return record;
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

  /** @internal Moves a pending request to a final status, once, across processes. */
  decide(approvalId: string, status: Exclude<ApprovalStatus, "pending">, input: ApprovalDecisionInput = {}): ApprovalRecord {
    const now = Date.now();
    const record = this.#ctx.store.transaction(() => {
      const row = this.#ctx.store.db.prepare("SELECT * FROM approvals WHERE id = ? AND org = ?").get(approvalId, this.#ctx.org) as ApprovalRow | undefined;
      if (!row) throw new NotFoundError("approval", approvalId);
      if (row.status !== ApprovalStatus.PENDING) throw new InvalidStateError(`approval "${approvalId}" is already ${row.status}`);
      // Past its deadline a request can only expire or be cancelled: a late answer must not run the call.
      if (row.expires_at <= now && (status === ApprovalStatus.APPROVED || status === ApprovalStatus.REJECTED)) throw new InvalidStateError(`approval "${approvalId}" is already expired`);
      this.#ctx.store.db.prepare("UPDATE approvals SET status = ?, reviewer = ?, decision_reason = ?, decided_at = ? WHERE id = ?").run(status, input.reviewer ?? null, input.reason ?? null, now, approvalId);
      return { ...toApprovalRecord(row), status, reviewer: input.reviewer, decisionReason: input.reason, decidedAt: now };
    });
    const type = status === ApprovalStatus.APPROVED ? EventType.APPROVAL_APPROVED : EventType.APPROVAL_REJECTED;
    this.#ctx.record(type, record, { approvalId, status, reviewer: input.reviewer, reason: input.reason, toolName: record.toolName }, input.reviewer);
    this.#settle(record);
    return record;
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

  #expireIfDue(record: ApprovalRecord): ApprovalRecord {
    if (record.status !== ApprovalStatus.PENDING || record.expiresAt > Date.now()) return record;
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
