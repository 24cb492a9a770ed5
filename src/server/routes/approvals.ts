import { Router } from "express";
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
