import { join } from "node:path";
import express, { Router, type Express, type NextFunction, type Request, type Response } from "express";
import { z } from "zod";
import { ConfigError } from "agent-warden";
import type { ServerContext } from "../server/context.js";
import { HttpError } from "../server/errors.js";
import { looksLikeApiKey } from "../server/keys.js";
import { jsonBody } from "../server/routes/body.js";
import { parse } from "../server/validation.js";
import { consoleAssetsDir } from "./assets-dir.js";
import { VERIFY_ASSET, verifyAssetFromSource } from "./verify-asset.js";
import {
  CONSOLE_ROLES,
  CSRF_HEADER,
  SESSION_COOKIE,
  SessionStore,
  clearSessionCookie,
  csrfMatches,
  readCookie,
  sameOrigin,
  setSessionCookie,
  type ConsoleSession,
} from "./session.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Pages: only the console's own files, nothing inline, nothing from elsewhere, never framed. */
const PAGE_HEADERS = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
};

const LoginSchema = z.strictObject({
  apiKey: z.string("enter an API key").trim().min(1, "enter an API key").max(200, "an API key is 47 characters"),
});

/** What the console's own forms require beyond the API's schemas: a decision states its reason, and the actor is always the signed-in key. */
const ConsoleDecisionSchema = z.object({
  reason: z.string("give a reason for the decision").trim().min(1, "give a reason for the decision").max(4000),
  reviewer: z.never("the console records the signed-in key as the reviewer").optional(),
});
const ConsoleHaltSchema = z.object({ actor: z.never("the console records the signed-in key as the actor").optional() });

function sessionBody(session: ConsoleSession) {
  return { signedIn: true, keyId: session.keyId, org: session.org, role: session.role, name: session.name, csrfToken: session.csrfToken, expiresAt: session.expiresAt };
}

/**
 * Mounts the web console on the control plane's app: its pages at `/` (static files shipped with
 * the package), sign-in at `/console/session` (a reviewer or admin key exchanged for an HttpOnly,
 * SameSite=Strict session cookie), and a middleware that lets that cookie authenticate `/v1`
 * requests, with a CSRF token required on every cookie-authenticated write. Call it before `/v1`
 * is mounted. Requests carrying an API key are left to the API's own authentication.
 */
export function mountConsole(app: Express, context: ServerContext): void {
  const assets = consoleAssetsDir();
  if (assets === undefined) throw new ConfigError("the console's files were not found (looked beside the server's code and in dist/console); pass console: false to serve the API alone");
  const { store } = context;
  const sessions = new SessionStore({}, store.consoleSessions);
  const body = jsonBody(context.limits.body);
  const sessionOf = async (request: Request) => {
    const token = readCookie(request, SESSION_COOKIE);
    return { token, session: token === undefined ? undefined : await sessions.get(token) };
  };

  // ── /v1: the session cookie as credentials ────────────────────────────────────────────────
  const api = Router();
  api.use(async function consoleSession(request: Request, response: Response, next: NextFunction): Promise<void> {
    if (request.path === "/health" || request.get("authorization") !== undefined || request.get("x-api-key") !== undefined) return next();
    const { token, session } = await sessionOf(request);
    if (token === undefined) return next();
    const principal = session && (session.secret !== undefined ? await store.authenticate(session.secret) : await store.principalOfKey?.(session.keyId));
    if (session === undefined || principal === undefined || !CONSOLE_ROLES.includes(principal.role)) {
      await sessions.delete(token);
      clearSessionCookie(request, response);
      throw new HttpError(401, "unauthorized", "the console session ended (expired, signed out, or its key was revoked); sign in again");
    }
    if (!SAFE_METHODS.has(request.method)) {
      if (!sameOrigin(request)) throw new HttpError(403, "insufficient_scope", "a console write must come from the console's own origin");
      if (!csrfMatches(session, request.get(CSRF_HEADER))) throw new HttpError(403, "insufficient_scope", "a console write needs the session's X-Warden-CSRF header");
    }
    response.locals.principal = principal;
    response.locals.consoleSession = true;
    response.locals.sessionExpiresAt = session.expiresAt;
    next();
  });
  const onlyConsole = (_request: Request, response: Response, next: NextFunction) => next(response.locals.consoleSession === true ? undefined : "route");
  api.post("/approvals/:approvalId/:verb", onlyConsole, ...body, (request, _response, next) => {
    if (request.params.verb === "approve" || request.params.verb === "reject") parse(ConsoleDecisionSchema, request.body ?? {});
    next();
  });
  api.post(["/halts", "/halts/resume"], onlyConsole, ...body, (request, _response, next) => {
    parse(ConsoleHaltSchema, request.body ?? {});
    next();
  });
  app.use("/v1", api);

  // ── sign-in ───────────────────────────────────────────────────────────────────────────────
  const pages = Router();
  pages.get("/console/session", async (request, response) => {
    const { session } = await sessionOf(request);
    // 200 either way: asking is not an error, and the page asks on every load.
    response.json(session === undefined ? { signedIn: false } : sessionBody(session));
  });

  pages.post("/console/session", ...body, async (request, response) => {
    if (!sameOrigin(request)) throw new HttpError(403, "insufficient_scope", "sign in from the console's own origin");
    const { apiKey } = parse(LoginSchema, request.body ?? {});
    if (!looksLikeApiKey(apiKey)) throw new HttpError(400, "invalid_request", "not an API key", { problems: [{ path: "apiKey", message: "an API key starts with wdn_ and is 47 characters long" }] });
    const principal = await store.authenticate(apiKey);
    if (principal === undefined) throw new HttpError(401, "invalid_token", "the API key is not valid or was revoked", { problems: [{ path: "apiKey", message: "this key is not valid or was revoked" }] });
    if (!CONSOLE_ROLES.includes(principal.role)) {
      throw new HttpError(403, "insufficient_scope", "agent keys cannot sign in to the console", { problems: [{ path: "apiKey", message: "this is an agent key: sign in with a reviewer or admin key" }] });
    }
    const previous = readCookie(request, SESSION_COOKIE);
    if (previous !== undefined) await sessions.delete(previous);
    const { token, session } = await sessions.create(apiKey, principal);
    setSessionCookie(request, response, token, sessions.maxAge);
    response.status(201).json(sessionBody(session));
  });

  pages.delete("/console/session", async (request, response) => {
    const { token, session } = await sessionOf(request);
    if (session !== undefined && (!sameOrigin(request) || !csrfMatches(session, request.get(CSRF_HEADER)))) {
      throw new HttpError(403, "insufficient_scope", "signing out needs the session's X-Warden-CSRF header");
    }
    if (token !== undefined) await sessions.delete(token);
    clearSessionCookie(request, response);
    response.status(204).end();
  });

  // ── pages and their files ─────────────────────────────────────────────────────────────────
  const indexFile = join(assets, "index.html");
  pages.get(["/", "/index.html"], (_request, response) => {
    response.set(PAGE_HEADERS).type("html").sendFile(indexFile);
  });
  const verifyFromSource = verifyAssetFromSource(assets);
  pages.use(
    "/assets",
    (_request, response, next) => {
      response.set({ ...PAGE_HEADERS, "Cache-Control": "no-cache" });
      next();
    },
    ...(verifyFromSource === undefined ? [] : [Router().get(`/${VERIFY_ASSET}`, verifyFromSource)]),
    express.static(assets, { index: false, redirect: false, dotfiles: "ignore", etag: true, lastModified: false, cacheControl: false }),
  );
  app.use(pages);
}
