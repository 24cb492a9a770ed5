import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Request, Response } from "express";
import type { ConsoleSessionTable, Principal, Role } from "../server/store.js";

/** Roles that may sign in to the console. Agent keys report and ask; they never review. */
export const CONSOLE_ROLES: readonly Role[] = ["reviewer", "admin"];

export const SESSION_COOKIE = "warden_session";
/** Cookie-authenticated writes must echo the session's token in this header (synchronizer token). */
export const CSRF_HEADER = "x-warden-csrf";

/**
 * One signed-in operator. In memory, the key is kept so a revoked key ends its sessions at once; in a
 * database (several replicas), only the key's id is, and the key is looked up by it on each request.
 */
export interface ConsoleSession {
  secret: string | undefined;
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
 * Console sessions: in the server's memory (a restart signs everyone out), or in the store's table
 * when it has one (PostgreSQL: sessions survive a restart and a switch of replica). Looked up by the
 * hash of the cookie's token, so neither holds a usable cookie value.
 */
export class SessionStore {
  readonly #byDigest = new Map<string, ConsoleSession>();
  readonly #limits: SessionLimits;
  readonly #table: ConsoleSessionTable | undefined;

  constructor(limits: Partial<SessionLimits> = {}, table?: ConsoleSessionTable) {
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
    this.#table = table;
  }

  get maxAge(): number {
    return this.#limits.maxAge;
  }

  async create(secret: string, principal: Principal, now = Date.now()): Promise<{ token: string; session: ConsoleSession }> {
    const token = randomBytes(32).toString("base64url");
    const session: ConsoleSession = {
      secret: this.#table === undefined ? secret : undefined,
      csrfToken: randomBytes(32).toString("base64url"),
      keyId: principal.keyId,
      org: principal.org,
      role: principal.role,
      name: principal.name,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: now + this.#limits.maxAge,
    };
    if (this.#table !== undefined) {
      const { secret: _secret, ...stored } = session;
      await this.#table.put({ digest: digest(token), ...stored }, now);
      return { token, session };
    }
    while (this.#byDigest.size >= this.#limits.maxSessions) {
      const oldest = this.#byDigest.keys().next().value;
      if (oldest === undefined) break;
      this.#byDigest.delete(oldest);
    }
    this.#byDigest.set(digest(token), session);
    return { token, session };
  }

  /** The live session of `token`, or undefined (unknown, expired or idle too long: then forgotten). */
  async get(token: string, now = Date.now()): Promise<ConsoleSession | undefined> {
    const key = digest(token);
    let session: ConsoleSession | undefined;
    if (this.#table === undefined) session = this.#byDigest.get(key);
    else {
      const stored = await this.#table.get(key);
      if (stored !== undefined) {
        const { digest: _digest, ...rest } = stored;
        session = { ...rest, secret: undefined };
      }
    }
    if (session === undefined) return undefined;
    if (now >= session.expiresAt || now - session.lastSeenAt >= this.#limits.idleTimeout) {
      await this.delete(token);
      return undefined;
    }
    session.lastSeenAt = now;
    await this.#table?.touch(key, now);
    return session;
  }

  async delete(token: string): Promise<void> {
    this.#byDigest.delete(digest(token));
    await this.#table?.delete(digest(token));
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
