import { Router, type Request, type Response } from "express";
import { TokenError, WardenError } from "agent-warden";
import { haltMatches, type HaltRecord } from "../../halt/halt.js";
import { CurrencyConverter } from "agent-warden";
import { createTokenAuthority, inspectToken } from "agent-warden";
import type { HaltInfo } from "../../tokens/token.js";
import { actorOf, principalOf, requirePermission } from "../auth.js";
import type { ServerContext } from "../context.js";
import { bareMessage } from "../errors.js";
import { EmptyQuerySchema, MintSchema, parse, RevokedTokensQuerySchema, RevokeTokenSchema, VerifyTokenSchema } from "../validation.js";
import { jsonBody } from "./body.js";

/** Delegation tokens of the caller's organization: mint, revoke, list revocations, verify, and the public key as JWKS. */
export function tokenRoutes(context: ServerContext): { router: Router; jwks: (request: Request, response: Response) => Promise<void> } {
  const { store } = context;
  const router = Router();
  const body = jsonBody(context.limits.body);
  const converter = new CurrencyConverter({});

  async function authorityFor(org: string, token?: string) {
    const key = await store.tokenKey(org);
    let revoked = new Set<string>();
    let halts: HaltRecord[] = [];
    const groups = new Map<string, string | undefined>();
    if (token !== undefined) {
      // Verification is synchronous: what it asks about is read first.
      let blockIds: string[] = [];
      try {
        const inspection = inspectToken(token);
        blockIds = inspection.chain.map((block) => block.id);
        for (const block of inspection.chain) if (block.audience !== undefined && !groups.has(block.audience)) groups.set(block.audience, await store.groupOf(org, block.audience));
      } catch {
        // Malformed: verify reports it.
      }
      revoked = await store.revokedTokenIds(org, blockIds);
      halts = await store.listHalts(org, { includeLifted: true });
    }
    // Verification asks by agent only: a run's halt does not reach tokens.
    const isHalted = ({ agentId, issuedAt }: HaltInfo) =>
      halts.some((h) => h.createdAt >= issuedAt && (h.scope === "organization" || (agentId !== undefined && haltMatches(h, { agentId, group: groups.get(agentId), runId: undefined }))));
    return createTokenAuthority({ rootPrivateKey: key.privateKey, rootPublicKey: key.publicKey, currency: converter, isRevoked: (id) => revoked.has(id), isHalted });
  }

  async function jwks(request: Request, response: Response): Promise<void> {
    parse(EmptyQuerySchema, request.query, "query");
    const authority = await authorityFor(principalOf(response).org);
    // Each organization has its own key behind the same URL: `private` keeps shared caches from mixing them up.
    response.set({ "Cache-Control": "private, max-age=300", Vary: "Authorization, X-API-Key, Cookie" }).json({ keys: [authority.publicJwk()] });
  }

  router.get("/tokens/jwks", requirePermission("tokens:read"), jwks);

  router.post("/tokens", requirePermission("tokens:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(MintSchema, request.body);
    const authority = await authorityFor(principal.org);
    const token = authority.mint({ ...input, issuer: actorOf(principal) });
    const inspection = inspectToken(token);
    response.status(201).json({ token, tokenId: inspection.id, agentId: input.agentId, expiresAt: inspection.chain[0]!.expiresAt });
  });

  router.post("/tokens/revoke", requirePermission("tokens:write"), ...body, async (request, response) => {
    const principal = principalOf(response);
    const input = parse(RevokeTokenSchema, request.body);
    context.publish(await store.revokeToken(principal.org, input.tokenId, { reason: input.reason, actor: actorOf(principal) }));
    response.json({ tokenId: input.tokenId, revoked: true });
  });

  // What was revoked since a time: agents catch up with it after a start or a stream reset, when the stream could not tell them.
  router.get("/tokens/revoked", requirePermission("tokens:read"), async (request, response) => {
    const { since, afterTokenId, limit } = parse(RevokedTokensQuerySchema, request.query, "query");
    const rows = await store.listRevokedTokens(principalOf(response).org, { since, afterTokenId, limit: limit + 1 });
    const items = rows.slice(0, limit);
    const last = items.at(-1);
    // `next`: the query of the following page, or null when this one is the last.
    response.json({ items, next: rows.length > limit && last !== undefined ? { since: last.revokedAt, afterTokenId: last.tokenId } : null });
  });

  router.post("/tokens/verify", requirePermission("tokens:read"), ...body, async (request, response) => {
    const input = parse(VerifyTokenSchema, request.body);
    const authority = await authorityFor(principalOf(response).org, input.token);
    try {
      const verified = authority.verify(input.token, { audience: input.audience });
      response.json({ valid: true, tokenId: verified.id, authority: verified.authority, expiresAt: verified.expiresAt, sealed: verified.sealed });
    } catch (error) {
      const message = bareMessage(error);
      if (error instanceof TokenError) response.json({ valid: false, reason: error.reason, message });
      else if (WardenError.isInstance(error)) response.json({ valid: false, reason: "malformed", message });
      else throw error;
    }
  });

  return { router, jwks };
}
