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

function writeCacheFile(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(value), { mode: 0o600 });
  renameSync(temp, path);
}
