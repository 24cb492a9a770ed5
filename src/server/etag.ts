import { createHash } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";

/** A strong ETag over a policy set's version and content: equal content at another version is another tag. */
export function policyEtag(version: number, document: unknown): string {
  return `"${version}-${createHash("sha256").update(canonicalJson(document)).digest("hex").slice(0, 16)}"`;
}

/** `If-Match` / `If-None-Match`: a list of ETags or `*`; weak comparison. */
export function etagMatches(header: string, etag: string): boolean {
  const bare = (value: string) => value.trim().replace(/^W\//, "");
  if (header.trim() === "*") return true;
  return header.split(",").some((candidate) => bare(candidate) === bare(etag));
}
