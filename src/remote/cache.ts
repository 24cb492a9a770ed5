import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Jwk } from "../tokens/jwk.js";
import { dirname } from "node:path";
import { z } from "zod";
import { once } from "../internal/once.js";
import { wireResponses } from "../wire/responses.js";

// The cache is read with the schemas its content arrived under: a file cut short, edited, or left
// by another version is ignored, never half-applied.
// Remote mode only: built on first use, not at import.
const cacheSchemas = once(() => {
  const { JwksSchema, PolicyVersionSchema } = wireResponses();
  return {
    PolicyCacheSchema: PolicyVersionSchema.extend({ url: z.string(), savedAt: z.number() }),
    KeyCacheSchema: z.object({ url: z.string(), jwk: JwksSchema.shape.keys.element }),
    RevocationCacheSchema: z.object({ url: z.string(), items: z.array(z.unknown()) }),
  };
});

/** The last policy set synced from the control plane, so a restart without it still enforces it. */
export type PolicyCacheEntry = z.output<ReturnType<typeof cacheSchemas>["PolicyCacheSchema"]>;

export function readPolicyCache(path: string, url: string): PolicyCacheEntry | undefined {
  const entry = readCacheFile(path, cacheSchemas().PolicyCacheSchema);
  return entry?.url === url ? entry : undefined;
}

/** Written to a temporary file and renamed into place: a reader never sees half a file. */
export function writePolicyCache(path: string, entry: PolicyCacheEntry): void {
  writeCacheFile(path, entry);
}

/** The organization's public key as the control plane last published it (tokens verify offline against it). */
export interface KeyCacheEntry {
  url: string;
  jwk: Jwk;
}

export function readKeyCache(path: string, url: string): Jwk | undefined {
  const entry = readCacheFile(path, cacheSchemas().KeyCacheSchema);
  return entry?.url === url ? entry.jwk : undefined;
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
  const entry = readCacheFile(path, cacheSchemas().RevocationCacheSchema);
  if (entry?.url !== url) return undefined;
  const items: RevocationEntry[] = [];
  for (const value of entry.items) {
    const item = wireResponses().RevocationSchema.safeParse(value);
    if (item.success) items.push({ tokenId: item.data.tokenId, revokedAt: item.data.revokedAt, ...(item.data.reason !== undefined && { reason: item.data.reason }) });
  }
  return items;
}

export function writeRevocationCache(path: string, entry: RevocationCacheEntry): void {
  writeCacheFile(path, entry);
}

function readCacheFile<S extends z.ZodType>(path: string, schema: S): z.output<S> | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(readFileSync(path, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function writeCacheFile(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(value), { mode: 0o600 });
  renameSync(temp, path);
}
