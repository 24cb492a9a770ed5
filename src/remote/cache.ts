import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { JsonWebKey } from "node:crypto";
import { dirname } from "node:path";

/** The last policy set synced from the control plane, so a restart without it still enforces it. */
export interface PolicyCacheEntry {
  url: string;
  version: number;
  etag: string;
  policies: unknown;
  savedAt: number;
}

export function readPolicyCache(path: string, url: string): PolicyCacheEntry | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, "utf8")) as Partial<PolicyCacheEntry>;
    if (entry.url !== url || typeof entry.etag !== "string" || typeof entry.version !== "number" || typeof entry.policies !== "object" || entry.policies === null) return undefined;
    return entry as PolicyCacheEntry;
  } catch {
    return undefined;
  }
}

/** Written to a temporary file and renamed into place: a reader never sees half a file. */
export function writePolicyCache(path: string, entry: PolicyCacheEntry): void {
  writeCacheFile(path, entry);
}

/** The organization's public key as the control plane last published it (tokens verify offline against it). */
export interface KeyCacheEntry {
  url: string;
  jwk: JsonWebKey;
}

export function readKeyCache(path: string, url: string): JsonWebKey | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, "utf8")) as Partial<KeyCacheEntry>;
    return entry.url === url && typeof entry.jwk === "object" && entry.jwk !== null ? entry.jwk : undefined;
  } catch {
    return undefined;
  }
}

export function writeKeyCache(path: string, entry: KeyCacheEntry): void {
  writeCacheFile(path, entry);
}

/** A revocation as the control plane lists it (`GET /v1/tokens/revoked`). */
export interface RevocationEntry {
  tokenId: string;
  reason?: string | undefined;
  revokedAt: number;
}

/**
 * Every revocation synced from the control plane, oldest first: a restart without it (an in-memory
 * store, the server unreachable) still refuses those tokens, and asks only for newer ones.
 */
export interface RevocationCacheEntry {
  url: string;
  items: RevocationEntry[];
}

export function readRevocationCache(path: string, url: string): RevocationEntry[] | undefined {
  try {
    const entry = JSON.parse(readFileSync(path, "utf8")) as Partial<RevocationCacheEntry>;
    if (entry.url !== url || !Array.isArray(entry.items)) return undefined;
    return entry.items.filter(isRevocationEntry).map((item) => ({ tokenId: item.tokenId, revokedAt: item.revokedAt, ...(typeof item.reason === "string" && { reason: item.reason }) }));
  } catch {
    return undefined;
  }
}

export function writeRevocationCache(path: string, entry: RevocationCacheEntry): void {
  writeCacheFile(path, entry);
}

export function isRevocationEntry(value: unknown): value is RevocationEntry {
  const item = value as Partial<RevocationEntry> | null;
  return typeof item === "object" && item !== null && typeof item.tokenId === "string" && item.tokenId !== "" && typeof item.revokedAt === "number" && Number.isFinite(item.revokedAt);
}

function writeCacheFile(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(value), { mode: 0o600 });
  renameSync(temp, path);
}
