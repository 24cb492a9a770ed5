import type { NextFunction, Request, RequestHandler, Response } from "express";
import { HttpError } from "./errors.js";
import { allows, type Permission } from "./keys.js";
import type { ControlPlaneStore, Principal, Role } from "./store.js";

const realm = 'Bearer realm="warden"';

/**
 * Resolves the caller from `Authorization: Bearer wdn_…` (or `X-API-Key`). A middleware placed
 * before it may set `response.locals.principal` itself (a console session); then the key is not
 * required.
 */
export function authenticate(store: ControlPlaneStore): RequestHandler {
  return async function authenticateRequest(request: Request, response: Response, next: NextFunction): Promise<void> {
    if (response.locals.principal !== undefined) return next();
    const header = request.get("authorization");
    let secret: string | undefined;
    if (header !== undefined) {
      const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
      if (!match) throw new HttpError(401, "invalid_token", "the Authorization header must be `Bearer <API key>`", { headers: { "WWW-Authenticate": `${realm}, error="invalid_request"` } });
      secret = match[1];
    } else {
      secret = request.get("x-api-key");
    }
    if (!secret) throw new HttpError(401, "unauthorized", "an API key is required (Authorization: Bearer wdn_…)", { headers: { "WWW-Authenticate": realm } });
    const principal = await store.authenticate(secret);
    if (principal === undefined) throw new HttpError(401, "invalid_token", "the API key is not valid or was revoked", { headers: { "WWW-Authenticate": `${realm}, error="invalid_token"` } });
    response.locals.principal = principal;
    next();
  };
}

/** 403 `insufficient_scope` unless the caller's role grants `permission`. */
export function requirePermission(permission: Permission): RequestHandler {
  return function requirePermissionOf(_request: Request, response: Response, next: NextFunction): void {
    const principal = principalOf(response);
    if (!allows(principal.role, permission)) {
      throw new HttpError(403, "insufficient_scope", `${withArticle(principal.role)} key may not do this (needs ${permission})`, { headers: { "WWW-Authenticate": `${realm}, error="insufficient_scope", scope="${permission}"` } });
    }
    next();
  };
}

export function principalOf(response: Response): Principal {
  const principal = response.locals.principal as Principal | undefined;
  if (principal === undefined) throw new HttpError(401, "unauthorized", "not authenticated", { headers: { "WWW-Authenticate": realm } });
  return principal;
}

/** Who a write is recorded as: the key's name, else its id. */
export function actorOf(principal: Principal): string {
  return principal.name ?? principal.keyId;
}

/** "an agent", "a reviewer", "an admin". */
export function withArticle(role: Role): string {
  return `${/^[aeiou]/.test(role) ? "an" : "a"} ${role}`;
}

/** A key bound to one agent may only speak for that agent. */
export function assertSpeaksFor(principal: Principal, agentIds: Iterable<string | null>): void {
  if (principal.agentId === undefined) return;
  for (const agentId of agentIds) {
    if (agentId !== null && agentId !== principal.agentId) throw new HttpError(403, "insufficient_scope", `this key may only report for agent "${principal.agentId}"`);
  }
}
