import { Router, type Response } from "express";
import { parse as parseYaml } from "yaml";
import { PolicyError } from "agent-warden";
import { parsePolicySet, parsePolicyText } from "agent-warden";
import type { PolicySet } from "agent-warden";
import { actorOf, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HttpError, type Problem } from "../errors.js";
import { etagMatches } from "../etag.js";
import type { PolicyVersion } from "../store.js";
import { withinDepth, EmptyQuerySchema, PageQuerySchema, parse, PolicyPutSchema, PolicyRollbackSchema, PolicyValidateSchema, PolicyVersionParamSchema } from "../validation.js";
import { jsonBody } from "./body.js";

/** Validates a policy document (an object, or YAML/JSON text) the way the client will load it. */
function validate(document: string | Record<string, unknown>): { set: PolicySet; policies: unknown; source: string | undefined } {
  try {
    return validateDocument(document);
  } catch (error) {
    // YAML nested deep enough to exhaust the parser is a bad request, not a server failure.
    if (error instanceof RangeError) throw new HttpError(400, "invalid_policy", "the policy text is nested too deeply");
    throw error;
  }
}

function validateDocument(document: string | Record<string, unknown>): { set: PolicySet; policies: unknown; source: string | undefined } {
  if (typeof document === "string") {
    const set = parsePolicyText(document);
    // The text parsed; its JSON form is what clients load, the text is kept for editing.
    const policies: unknown = parseYaml(document);
    if (!withinDepth(policies)) throw new HttpError(400, "invalid_policy", "the policy text is nested too deeply");
    return { set, policies, source: document };
  }
  return { set: parsePolicySet(document), policies: document, source: undefined };
}

export function policyProblems(error: PolicyError): Problem[] {
  return error.issues.map((issue) => ({
    path: ["policies", issue.policyId, issue.field].filter((part) => part !== undefined).join("."),
    message: issue.message,
    ...(issue.policyId !== undefined && { policyId: issue.policyId }),
    ...(issue.field !== undefined && { field: issue.field }),
    ...(issue.line !== undefined && { line: issue.line }),
  }));
}

function sendVersion(response: Response, version: PolicyVersion, status = 200): void {
  response.status(status).set({ ETag: version.etag, "Cache-Control": "no-cache" }).json(version);
}

/** The organization's policy set: current (with ETag), versions, update, validate, roll back. */
export function policyRoutes(context: ServerContext): Router {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);

  router.get("/policies/current", requirePermission("policies:read"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    const current = await store.currentPolicy(principalOf(response).org);
    const ifNoneMatch = request.get("if-none-match");
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, current.etag)) {
      response.status(304).set({ ETag: current.etag, "Cache-Control": "no-cache" }).end();
      return;
    }
    sendVersion(response, current);
  });

  router.get("/policies/versions", requirePermission("policies:read"), async (request, response) => {
    const page = parse(PageQuerySchema, request.query, "query");
    response.json(await store.listPolicyVersions(principalOf(response).org, page));
  });

  router.get("/policies/versions/:version", requirePermission("policies:read"), async (request, response) => {
    const version = parse(PolicyVersionParamSchema, request.params.version, "path");
    parse(EmptyQuerySchema, request.query, "query");
    const found = await store.getPolicyVersion(principalOf(response).org, version);
    if (found === undefined) throw new HttpError(404, "not_found", `policy version ${version} not found`);
    sendVersion(response, found);
  });

  router.post("/policies/validate", requirePermission("policies:read"), ...body, (request, response) => {
    const { policies } = parse(PolicyValidateSchema, request.body);
    try {
      const { set } = validate(policies);
      response.json({ valid: true, summary: { default: set.default, policies: set.policies.length, limits: set.limits.length, budgets: set.budgets.length } });
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      response.json({ valid: false, problems: policyProblems(error) });
    }
  });

  router.put("/policies", requirePermission("policies:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(PolicyPutSchema, request.body);
    const { policies, source } = validate(input.policies);
    const { version, changes } = await store.putPolicy(principal.org, { policies, source, author: actorOf(principal), comment: input.comment, ifMatch: request.get("if-match") });
    context.publish(changes);
    sendVersion(response, version, 201);
  });

  router.post("/policies/rollback", requirePermission("policies:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(PolicyRollbackSchema, request.body);
    const target = await store.getPolicyVersion(principal.org, input.version);
    if (target === undefined) throw new HttpError(404, "not_found", `policy version ${input.version} not found`);
    const { version, changes } = await store.putPolicy(principal.org, {
      policies: target.policies,
      source: target.source,
      author: actorOf(principal),
      comment: input.comment ?? `rollback to version ${input.version}`,
      ifMatch: request.get("if-match"),
      rolledBackFrom: input.version,
    });
    context.publish(changes);
    sendVersion(response, version, 201);
  });

  return router;
}
