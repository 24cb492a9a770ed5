import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import type { Principal, Role } from "../server/store.js";

/** Roles that may sign in to the console. Agent keys report and ask; they never review. */
export const CONSOLE_ROLES: readonly Role[] = ["reviewer", "admin"];

export const SESSION_COOKIE = "warden_session";
/** Cookie-authenticated writes must echo the session's token in this header (synchronizer token). */
export const CSRF_HEADER = "x-warden-csrf";

/** One signed-in operator. The key is kept (in memory only) so a revoked key ends its sessions at once. */
export interface ConsoleSession {
  secret: string;
  csrfToken: string;
  keyId: string;
  org: string;
  role: Role;
  name: string | undefined;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

export interface SessionLimits {
  /** A session ends this long after sign-in. Default 12 h. */
  maxAge: number;
  /** A session ends after this long without a request. Default 2 h. */
  idleTimeout: number;
  /** Sessions kept at most; the oldest is ended first. Default 10,000. */
  maxSessions: number;
}

const DEFAULT_SESSION_LIMITS: SessionLimits = { maxAge: 12 * 3_600_000, idleTimeout: 2 * 3_600_000, maxSessions: 10_000 };

const digest = (token: string) => createHash("sha256").update(token).digest("hex");

/**
 * Console sessions, in the server's memory: a restart signs everyone out. Looked up by the hash of
 * the cookie's token, so the table never holds a usable cookie value.
 */
export class SessionStore {
  readonly #byDigest = new Map<string, ConsoleSession>();
  readonly #limits: SessionLimits;

  constructor(limits: Partial<SessionLimits> = {}) {
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
  }

  get maxAge(): number {
    return this.#limits.maxAge;
  }

  create(secret: string, principal: Principal, now = Date.now()): { token: string; session: ConsoleSession } {
    const token = randomBytes(32).toString("base64url");
    const session: ConsoleSession = {
      secret,
      csrfToken: randomBytes(32).toString("base64url"),
      keyId: principal.keyId,
      org: principal.org,
      role: principal.role,
      name: principal.name,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.#limits.maxAge,
    };
    while (this.#byDigest.size >= this.#limits.maxSessions) {
      const oldest = this.#byDigest.keys().next().value;
      if (oldest === undefined) break;
      this.#byDigest.delete(oldest);
    }
    this.#byDigest.set(digest(token), session);
    return { token, session };
  }

  /** The live session of `token`, or undefined (unknown, expired or idle too long: then forgotten). */
  get(token: string, now = Date.now()): ConsoleSession | undefined {
    const key = digest(token);
    const session = this.#byDigest.get(key);
    if (session === undefined) return undefined;
    if (now >= session.expiresAt || now - session.lastSeenAt >= this.#limits.idleTimeout) {
      this.#byDigest.delete(key);
      return undefined;
    }
    session.lastSeenAt = now;
    return session;
  }

  delete(token: string): void {
    this.#byDigest.delete(digest(token));
  }
}

/** Reads one cookie from the request without a cookie-parsing dependency. */
export function readCookie(request: Request, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const index = part.indexOf("=");
    if (index === -1 || part.slice(0, index).trim() !== name) continue;
    const value = part.slice(index + 1).trim();
    return /^[A-Za-z0-9_-]{1,128}$/.test(value) ? value : undefined;
  }
  return undefined;
}

export function setSessionCookie(request: Request, response: Response, token: string, maxAge: number): void {
  response.cookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: "strict", secure: request.secure, path: "/", maxAge });
}

export function clearSessionCookie(request: Request, response: Response): void {
  response.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: "strict", secure: request.secure, path: "/" });
}

/** Constant-time comparison of the header a write carries with the session's token. */
export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const expected = Buffer.from(session.csrfToken);
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * A write that rides on the cookie must come from the console's own origin. Browsers send `Origin`
 * on every cross-origin request and on same-origin writes; its absence is accepted (the token
 * check still applies).
 */
export function sameOrigin(request: Request): boolean {
  const origin = request.get("origin");
  if (origin === undefined) return true;
  const host = request.get("host");
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
