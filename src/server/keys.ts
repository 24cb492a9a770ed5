import { createHash, randomBytes } from "node:crypto";
import type { Role } from "./store.js";

/** API keys start with this, so a leaked one is easy to spot and scan for. */
const API_KEY_PREFIX = "wdn_";
const API_KEY_PATTERN = /^wdn_[A-Za-z0-9_-]{43}$/;

/** A new API key: `wdn_` and 256 random bits, base64url. Shown once; only its hash is stored. */
export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/** SHA-256 is enough for a key with 256 bits of entropy: there is nothing to brute-force. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Shape only: a value that cannot be a key is refused before any lookup. */
export function looksLikeApiKey(value: string): boolean {
  return API_KEY_PATTERN.test(value);
}

/** What each role may do. Checked on every route. */
export type Permission =
  | "events:write"
  | "agents:write"
  | "check"
  | "approvals:create"
  | "approvals:read"
  | "approvals:decide"
  | "policies:read"
  | "policies:write"
  | "halts:read"
  | "halts:write"
  | "runs:read"
  | "ledger:read"
  | "tokens:read"
  | "tokens:write"
  | "keys:manage"
  | "stream";

const agent: Permission[] = ["events:write", "agents:write", "check", "approvals:create", "approvals:read", "policies:read", "halts:read", "tokens:read", "stream"];
const reviewer: Permission[] = ["check", "approvals:read", "approvals:decide", "policies:read", "halts:read", "runs:read", "ledger:read", "tokens:read", "stream"];
const admin: Permission[] = [...new Set<Permission>([...agent, ...reviewer, "policies:write", "halts:write", "tokens:write", "keys:manage"])];

const GRANTS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  agent: new Set(agent),
  reviewer: new Set(reviewer),
  admin: new Set(admin),
};

export function allows(role: Role, permission: Permission): boolean {
  return GRANTS[role].has(permission);
}
