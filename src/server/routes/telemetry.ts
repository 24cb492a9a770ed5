import { Router } from "express";
import type { Decision } from "agent-warden";
import type { WardenEvent } from "agent-warden";
import { haltMatches, describeScope } from "../../halt/halt.js";
import { classifyTool } from "../../policy/classify.js";
import { PolicyEngine } from "agent-warden";
import { parsePolicySet } from "agent-warden";
import { assertSpeaksFor, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HttpError } from "../errors.js";
import type { RejectedEvent } from "../ingest.js";
import { checkWireEvent, WIRE_GROWTH } from "../../wire/event.js";
import { MAX_EVENT_BYTES } from "../../wire/limits.js";
import { DEFAULT_APPROVAL_TIMEOUT } from "../store.js";
import { AgentRegistrationSchema, CheckSchema, EmptyQuerySchema, IdSchema, IngestEnvelopeSchema, parse, RunQuerySchema, RunTreeQuerySchema, ToolCallQuerySchema } from "../validation.js";
import { bodyText, jsonBody } from "./body.js";

/** Event ingest, agents, the server-side check, runs and tool calls. */
export function telemetryRoutes(context: ServerContext): Router {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);
  const engines = new Map<string, { etag: string; engine: PolicyEngine }>();

  router.get("/me", (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    const { keyId, org, role, name, agentId } = principalOf(response);
    response.json({ keyId, org, role, name, agentId });
  });

  router.post("/events", requirePermission("events:write"), ...jsonBody(context.limits.ingestBody, { keepText: true }), async (request, response) => {
    const principal = principalOf(response);
    const { events } = parse(IngestEnvelopeSchema, request.body);
    const text = bodyText(request);
    // No event is larger as JSON than WIRE_GROWTH times the whole body: below that, no event needs measuring.
    const fits = text !== undefined && text.length * WIRE_GROWTH <= MAX_EVENT_BYTES;
    // Each event stands alone: one that does not fit the wire (the schema and limits the client checks
    // with), or that this key may not report, is named in `rejected`; the rest is written.
    const valid: WardenEvent[] = [];
    const indexOf: number[] = [];
    const rejected: RejectedEvent[] = [];
    events.forEach((candidate, index) => {
      const refusal = checkWireEvent(candidate, undefined, fits);
      if (refusal === undefined) {
        valid.push(candidate as WardenEvent);
        indexOf.push(index);
        return;
      }
      const id = (candidate as { id?: unknown } | null)?.id;
      rejected.push({ index, id: typeof id === "string" ? id.slice(0, 256) : "", code: refusal.code, reason: refusal.reason });
    });
    // The body is exactly the events to write when none was set aside: it goes on whole.
    const result = valid.length === 0 ? { accepted: 0, duplicates: 0, rejected: [], changes: { org: principal.org, messages: [] } } : await store.ingest(principal, valid, valid.length === events.length ? text : undefined);
    context.publish(result.changes);
    for (const refusal of result.rejected) rejected.push({ ...refusal, index: indexOf[refusal.index]! });
    rejected.sort((a, b) => a.index - b.index);
    response.json({ accepted: result.accepted, duplicates: result.duplicates, ...(rejected.length > 0 && { rejected }) });
  });

  router.get("/agents", requirePermission("runs:read"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    response.json({ agents: await store.listAgents(principalOf(response).org) });
  });

  router.put("/agents/:agentId", requirePermission("agents:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const agentId = parse(IdSchema, request.params.agentId, "path");
    assertSpeaksFor(principal, [agentId]);
    const { group } = parse(AgentRegistrationSchema, request.body ?? {});
    response.json(await store.registerAgent(principal.org, agentId, group ?? undefined));
  });

  router.post("/check", requirePermission("check"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(CheckSchema, request.body);
    const agentId = input.agentId ?? principal.agentId;
    if (agentId === undefined) throw new HttpError(400, "invalid_request", "agentId is required", { problems: [{ path: "agentId", message: "required" }] });
    assertSpeaksFor(principal, [agentId]);
    const current = await store.currentPolicy(principal.org);
    let cached = engines.get(principal.org);
    if (cached?.etag !== current.etag) engines.set(principal.org, (cached = { etag: current.etag, engine: new PolicyEngine(parsePolicySet(current.policies)) }));
    const actionType = input.actionHint ?? classifyTool(input.tool);
    const group = input.group ?? (await store.groupOf(principal.org, agentId));
    const halt = (await store.listHalts(principal.org, { includeLifted: false })).find((h) => haltMatches(h, { agentId, group, runId: input.runId }));
    let decision: Decision;
    if (halt) {
      decision = { action: "block", halted: true, reason: `halted (${describeScope(halt)}): ${halt.reason}`, matches: [], actionType, complete: true };
    } else {
      const evaluation = cached.engine.evaluate({ tool: input.tool, action: actionType, agent: agentId, environment: input.environment, args: input.args ?? {}, metadata: input.metadata });
      const by = evaluation.decidedBy;
      const base = { reason: by?.reason ?? (evaluation.action === "allow" ? "allowed" : `default action: ${evaluation.action}`), matches: evaluation.matches, policyId: by?.policyId, severity: by?.severity, actionType, complete: true };
      decision = evaluation.action === "require_approval" ? { ...base, action: "require_approval", timeoutMs: by?.timeoutMs ?? DEFAULT_APPROVAL_TIMEOUT } : ({ ...base, action: evaluation.action } as Decision);
    }
    response.json({ ...decision, policyVersion: current.version });
  });

  router.get("/runs", requirePermission("runs:read"), async (request, response) => {
    const { limit, offset, ...filter } = parse(RunQuerySchema, request.query, "query");
    response.json(await store.listRuns(principalOf(response).org, filter, { limit, offset }));
  });

  router.get("/runs/:runId", requirePermission("runs:read"), async (request, response) => {
    const runId = parse(IdSchema, request.params.runId, "path");
    const { depth } = parse(RunTreeQuerySchema, request.query, "query");
    const run = await store.getRun(principalOf(response).org, runId, depth);
    if (run === undefined) throw new HttpError(404, "not_found", `run "${runId}" not found`);
    response.json(run);
  });

  router.get("/tool-calls", requirePermission("runs:read"), async (request, response) => {
    const { limit, offset, ...filter } = parse(ToolCallQuerySchema, request.query, "query");
    response.json(await store.listToolCalls(principalOf(response).org, filter, { limit, offset }));
  });

  router.get("/tool-calls/:toolCallId", requirePermission("runs:read"), async (request, response) => {
    const toolCallId = parse(IdSchema, request.params.toolCallId, "path");
    parse(EmptyQuerySchema, request.query, "query");
    const call = await store.getToolCall(principalOf(response).org, toolCallId);
    if (call === undefined) throw new HttpError(404, "not_found", `tool call "${toolCallId}" not found`);
    response.json(call);
  });

  return router;
}
