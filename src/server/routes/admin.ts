import { once } from "node:events";
import express, { Router } from "express";
import { z } from "zod";
import { NotFoundError } from "../../errors.js";
import { witnessVerifierKey } from "../../ledger/cosignature.js";
import { controlPlaneWitnessName } from "../countersign.js";
import { actorOf, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { EmptyQuerySchema, IdSchema, KeyCreateSchema, LedgerExportQuerySchema, parse } from "../validation.js";
import { orgLedgerOrigin, verifierKey } from "../../ledger/note.js";
import { jsonBody } from "./body.js";

const WitnessCheckpointQuerySchema = z.strictObject({ origin: z.string().min(1).max(512) });

/** The ledger (verify, export as JSON Lines) and API keys (create, list, revoke). */
export function adminRoutes(context: ServerContext): Router {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);

  router.get("/ledger/verify", requirePermission("ledger:read"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    // With witnesses configured, the report says which heads they cosigned and whether the newest is among them.
    response.json(await store.verifyLedger(principalOf(response).org, context.witnessKeys.length > 0 ? { witnesses: context.witnessKeys } : {}));
  });

  // The organization's log and the key that signs it, for auditors to pin out of band.
  router.get("/ledger/key", requirePermission("ledger:read"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    const publicKey = await store.ledgerPublicKey();
    const origin = orgLedgerOrigin(publicKey, principalOf(response).org);
    response.json({ origin, verifierKey: verifierKey(origin, publicKey), publicKey: publicKey.export({ type: "spki", format: "pem" }).toString() });
  });

  // The control plane as a witness of agents' local ledgers (C2SP tlog-witness, answers in its text form).
  router.get("/ledger/witness/key", requirePermission("events:write"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    const publicKey = await store.ledgerPublicKey();
    const name = controlPlaneWitnessName(publicKey);
    response.json({ name, verifierKey: witnessVerifierKey(name, publicKey) });
  });
  router.post("/ledger/witness/add-checkpoint", requirePermission("events:write"), express.text({ type: () => true, limit: "64kb" }), async (request, response) => {
    const principal = principalOf(response);
    const logKey = request.get("x-warden-log-key");
    const text = (status: number, body: string, headers: Record<string, string> = {}) => response.status(status).set({ "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", ...headers }).send(body);
    if (!logKey) return void text(400, "give the ledger's verifier key in x-warden-log-key\n");
    const answer = await store.countersign(principal.org, principal.agentId, logKey, typeof request.body === "string" ? request.body : "");
    if (answer.status === 200) return void text(200, answer.cosignature);
    if (answer.status === 409) return void text(409, `${answer.size}\n`, { "Content-Type": "text/x.tlog.size", "X-Warden-Problem": answer.problem });
    text(answer.status, `${answer.problem}\n`);
  });
  router.get("/ledger/witness/checkpoint", requirePermission("ledger:read"), async (request, response) => {
    const origin = parse(WitnessCheckpointQuerySchema, request.query, "query").origin;
    const note = await store.countersigned(principalOf(response).org, origin);
    if (note === undefined) throw new NotFoundError("countersigned checkpoint of log", origin);
    response.status(200).set({ "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" }).send(note);
  });

  // One run's or tool call's evidence, verifiable offline with `warden evidence verify` or `verifyEvidence`.
  router.get("/evidence/:id", requirePermission("ledger:read"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    const id = parse(IdSchema, request.params.id, "path");
    response.set("Cache-Control", "no-store").json(await store.evidence(principalOf(response).org, id, context.witnessKeys.length > 0 ? { witnesses: context.witnessKeys } : {}));
  });

  router.get("/ledger/export", requirePermission("ledger:read"), async (request, response) => {
    const query = parse(LedgerExportQuerySchema, request.query, "query");
    response.status(200).set({ "Content-Type": "application/x-ndjson; charset=utf-8", "Cache-Control": "no-store" });
    for await (const entry of store.exportLedger(principalOf(response).org, query)) {
      if (response.destroyed) return;
      if (!response.write(`${JSON.stringify(entry)}\n`)) await drainedOrClosed(response);
    }
    response.end();
  });

  router.get("/keys", requirePermission("keys:manage"), async (request, response) => {
    parse(EmptyQuerySchema, request.query, "query");
    response.json({ keys: await store.listKeys(principalOf(response).org) });
  });

  router.post("/keys", requirePermission("keys:manage"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(KeyCreateSchema, request.body);
    const { key, record } = await store.createKey({ org: principal.org, role: input.role, name: input.name, agentId: input.agentId, groups: input.groups, actor: actorOf(principal) });
    response.status(201).set("Cache-Control", "no-store").json({ key, ...record });
  });

  router.delete("/keys/:keyId", requirePermission("keys:manage"), async (request, response) => {
    const principal = principalOf(response);
    const keyId = parse(IdSchema, request.params.keyId, "path");
    const record = await store.revokeKey(principal.org, keyId, actorOf(principal));
    context.hub.drop(principal.org, (subscriber) => subscriber.keyId === keyId);
    response.json(record);
  });

  return router;
}

/** Waits for the response to drain or close, leaving no listener behind (a long export waits many times). */
async function drainedOrClosed(response: NodeJS.WritableStream & NodeJS.EventEmitter): Promise<void> {
  const done = new AbortController();
  const wait = (event: string) => once(response, event, { signal: done.signal }).catch(() => undefined);
  try {
    await Promise.race([wait("drain"), wait("close")]);
  } finally {
    done.abort();
  }
}
