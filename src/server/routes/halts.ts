import { Router } from "express";
import { actorOf, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { HaltQuerySchema, HaltSchema, parse, ResumeSchema } from "../validation.js";
import { jsonBody } from "./body.js";

/** The kill switch: halt the organization, an agent, a group or a run; resume; list. */
export function haltRoutes(context: ServerContext): Router {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);

  router.get("/halts", requirePermission("halts:read"), async (request, response) => {
    const { include } = parse(HaltQuerySchema, request.query, "query");
    response.json({ halts: await store.listHalts(principalOf(response).org, { includeLifted: include === "all" }) });
  });

  router.post("/halts", requirePermission("halts:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(HaltSchema, request.body);
    const { record, created, changes } = await store.halt(principal.org, { ...input, actor: input.actor ?? actorOf(principal) });
    context.publish(changes);
    response.status(created ? 201 : 200).json(record);
  });

  router.post("/halts/resume", requirePermission("halts:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(ResumeSchema, request.body);
    const { lifted, changes } = await store.resume(principal.org, { ...input, actor: input.actor ?? actorOf(principal) });
    context.publish(changes);
    response.json({ lifted });
  });

  return router;
}
