import { Router } from "express";
import type { ApprovalDelivery, ApprovalRecord, WardenEvent } from "agent-warden";
import { actorOf, assertSpeaksFor, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HttpError } from "../errors.js";
import { ApprovalCreateSchema, ApprovalDecisionSchema, ApprovalQuerySchema, EmptyQuerySchema, IdSchema, parse } from "../validation.js";
import { jsonBody } from "./body.js";

/** Approval requests: an agent asks, a reviewer decides, the waiting agent hears it on the stream. */
export function approvalRoutes(context: ServerContext): Router {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);
  // Overdue requests are expired before anyone reads them, not only on the sweeper's tick.
  const sweep = async () => context.publish(await store.expireApprovals(Date.now()));

  router.post("/approvals", requirePermission("approvals:create"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(ApprovalCreateSchema, request.body);
    assertSpeaksFor(principal, [input.agentId]);
    const { record, created, changes } = await store.createApproval(principal, input);
    context.publish(changes);
    response.status(created ? 201 : 200).json(record);
  });

  router.get("/approvals", requirePermission("approvals:read"), async (request, response) => {
    const principal = principalOf(response);
    const { limit, offset, ...filter } = parse(ApprovalQuerySchema, request.query, "query");
    // A key bound to an agent reads that agent's requests only (their payloads are other agents' business).
    if (principal.agentId !== undefined) {
      assertSpeaksFor(principal, [filter.agentId ?? null]);
      filter.agentId = principal.agentId;
    }
    await sweep();
    response.json(await store.listApprovals(principal.org, filter, { limit, offset }));
  });

  router.get("/approvals/:approvalId", requirePermission("approvals:read"), async (request, response) => {
    const approvalId = parse(IdSchema, request.params.approvalId, "path");
    parse(EmptyQuerySchema, request.query, "query");
    await sweep();
    const principal = principalOf(response);
    const found = await store.getApproval(principal.org, approvalId);
    // Another agent's request answers as an unknown one.
    const record = found !== undefined && (principal.agentId === undefined || found.agentId === principal.agentId) ? found : undefined;
    if (record === undefined) throw new HttpError(404, "not_found", `approval "${approvalId}" not found`);
    response.json(record);
  });

  // Who was asked, through which channel and when it was delivered, who answered from where (and who was refused).
  router.get("/approvals/:approvalId/history", requirePermission("approvals:read"), async (request, response) => {
    const approvalId = parse(IdSchema, request.params.approvalId, "path");
    parse(EmptyQuerySchema, request.query, "query");
    await sweep();
    const principal = principalOf(response);
    const found = await store.getApproval(principal.org, approvalId);
    const record = found !== undefined && (principal.agentId === undefined || found.agentId === principal.agentId) ? found : undefined;
    if (record === undefined) throw new HttpError(404, "not_found", `approval "${approvalId}" not found`);
    const [events, deliveries] = await Promise.all([store.approvalEntries(principal.org, record), context.channelsFor(principal.org).then((channels) => channels?.listDeliveries({ org: principal.org, approvalId, limit: 100 }) ?? [])]);
    response.json({ approval: record, timeline: approvalTimeline(record, events, deliveries) });
  });

  for (const [verb, status] of [
    ["approve", "approved"],
    ["reject", "rejected"],
  ] as const) {
    router.post(`/approvals/:approvalId/${verb}`, requirePermission("approvals:decide"), ...body, async (request, response) => {
      const principal = principalOf(response);
      const approvalId = parse(IdSchema, request.params.approvalId, "path");
      const input = parse(ApprovalDecisionSchema, request.body);
      // The key answers as its own identity; a named `reviewer` is only a label where the policy names no reviewers.
      const key = { keyId: principal.keyId, identity: actorOf(principal), groups: principal.groups ?? [], agentId: principal.agentId };
      const via = response.locals.consoleSession === true ? "console" : "api";
      const { record, changes } = await store.decideApproval(principal.org, approvalId, status, { reviewer: input.reviewer ?? key.identity, reason: input.reason, key, via });
      context.publish(changes);
      response.json(record);
    });
  }

  return router;
}

/**
 * One moment of an approval's history, oldest first.
 * @example
 * import type { ApprovalHistoryItem } from "agent-warden/server";
 * const answers = (items: ApprovalHistoryItem[]) => items.filter((item) => item.kind === "vote" || item.kind === "decided");
 */
export type ApprovalHistoryItem =
  | { kind: "requested"; at: number; agentId: string; policyId: string | undefined; reason: string | undefined }
  /** Who may answer: the rule's `from` (absent: any reviewer but the agent), and how many must approve. */
  | { kind: "asked"; at: number; from: readonly string[] | undefined; approvers: number }
  | { kind: "escalated"; at: number; to: readonly string[] }
  | { kind: "delivery"; at: number; channel: ApprovalDelivery["channel"]; target: string; event: ApprovalDelivery["event"]; status: ApprovalDelivery["status"]; attempts: number; deliveredAt: number | undefined; lastError: string | undefined }
  | { kind: "vote"; at: number; reviewer: string; via: string; reason: string | undefined }
  | { kind: "refused"; at: number; reviewer: string | undefined; via: string; reason: string }
  | { kind: "decided"; at: number; status: string; reviewer: string | undefined; via: string; reason: string | undefined };

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

/** The approval's history from its record, its ledger entries and its delivery records. */
export function approvalTimeline(record: ApprovalRecord, events: readonly WardenEvent[], deliveries: readonly ApprovalDelivery[]): ApprovalHistoryItem[] {
  const items: ApprovalHistoryItem[] = [
    { kind: "requested", at: record.createdAt, agentId: record.agentId, policyId: record.policyId, reason: record.reason },
    { kind: "asked", at: record.createdAt, from: record.rule?.from, approvers: record.rule?.approvers ?? 1 },
  ];
  for (const event of events) {
    const data = event.data;
    if (event.type === "approval.requested" && data.escalated === true) items.push({ kind: "escalated", at: event.ts, to: Array.isArray(data.to) ? (data.to as string[]) : (record.rule?.escalate?.to ?? []) });
    else if (event.type === "approval.requested" && data.vote !== undefined) {
      const vote = data.vote as { reviewer?: unknown; via?: unknown; reason?: unknown };
      items.push({ kind: "vote", at: event.ts, reviewer: str(vote.reviewer) ?? "", via: str(vote.via) ?? "api", reason: str(vote.reason) });
    } else if (event.type === "risk.detected" && data.refusedReviewer !== undefined) items.push({ kind: "refused", at: event.ts, reviewer: str(data.refusedReviewer), via: str(data.via) ?? "api", reason: str(data.reason) ?? "" });
    else if (event.type === "approval.approved" || event.type === "approval.rejected") items.push({ kind: "decided", at: event.ts, status: str(data.status) ?? (event.type === "approval.approved" ? "approved" : "rejected"), reviewer: str(data.reviewer), via: str(data.via) ?? (str(data.reviewer) === "warden" ? "warden" : "api"), reason: str(data.reason) });
  }
  for (const delivery of deliveries) items.push({ kind: "delivery", at: delivery.createdAt, channel: delivery.channel, target: delivery.target, event: delivery.event, status: delivery.status, attempts: delivery.attempts, deliveredAt: delivery.deliveredAt, lastError: delivery.lastError });
  // Stable: the request and who was asked first, then in time order.
  return items.map((item, index) => ({ item, index })).sort((a, b) => a.item.at - b.item.at || a.index - b.index).map(({ item }) => item);
}
