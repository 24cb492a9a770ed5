import { createHash, hash } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";

/**
 * Who must answer an approval request, from the deciding policy's `approval`: how many distinct
 * reviewers, which identities or `group:<name>`s may answer, and the set added once escalation is due.
 * @example
 * import type { ApprovalRule } from "agent-warden";
 * const rule: ApprovalRule = { approvers: 2, from: ["group:payments-leads", "alice@example.com"], escalate: { afterMs: 600_000, to: ["group:cfo"] } };
 */
export interface ApprovalRule {
  /** Distinct reviewers needed (default 1). */
  approvers?: number | undefined;
  /** Who may answer; absent: anyone but the requesting agent. */
  from?: readonly string[] | undefined;
  /** After `afterMs` unanswered, `to` may answer too. */
  escalate?: { afterMs: number; to: readonly string[] } | undefined;
}

/**
 * The digest an approval is bound to: SHA-256 over the canonical JSON of the unredacted arguments,
 * salted with the approval id so equal arguments do not give equal digests across requests. Only
 * the digest is stored; the arguments themselves are recorded redacted.
 * @example
 * import { argsDigest } from "agent-warden";
 * const same = argsDigest("apr_1", { version: "1.4.2" }) === record.argsDigest;
 */
export function argsDigest(approvalId: string, args: unknown): string {
  return createHash("sha256").update(approvalId).update("\n").update(canonicalJson(args ?? {})).digest("hex");
}

/** A short, stable version of a policy set: the same policies give the same version in every process. */
export function policySetVersion(set: unknown): string {
  return hash("sha256", canonicalJson(set), "hex").slice(0, 32);
}

/** Whether `reviewer` (with `groups`) is one of `allowed` (identities, or `group:<name>`). */
export function reviewerIn(allowed: readonly string[], reviewer: string, groups: readonly string[]): boolean {
  for (const entry of allowed) {
    if (entry.startsWith("group:")) {
      if (groups.includes(entry.slice("group:".length))) return true;
    } else if (entry === reviewer) return true;
  }
  return false;
}

/** One reviewer's approval of a request that needs several: who, when, why, and through what (api, console, slack, link, cli). */
export interface ApprovalVote {
  reviewer: string;
  at: number;
  reason?: string | undefined;
  via?: string | undefined;
}

/** What a reviewer check needs to know of a request. */
export interface ReviewedRequest {
  agentId: string;
  createdAt: number;
  escalatedAt: number | undefined;
  rule: ApprovalRule | undefined;
  votes: readonly ApprovalVote[];
}

/**
 * Why `reviewer` (with `groups`) may not answer `request` now, or undefined when they may: the
 * requesting agent never answers its own request; a rule needs a named reviewer, one of `from` (or of
 * `escalate.to` once escalation is due), who has not approved already. The embedded client and the
 * control plane's stores decide with this one function.
 */
export function reviewerRefusal(request: ReviewedRequest, reviewer: string | undefined, groups: readonly string[], now: number): string | undefined {
  if (reviewer !== undefined && (reviewer === request.agentId || reviewer === `agent:${request.agentId}`)) return "the requesting agent cannot answer its own request";
  const rule = request.rule;
  if (rule === undefined) return undefined;
  if (reviewer === undefined || reviewer.length === 0) return "this policy needs a named reviewer";
  const escalated = rule.escalate !== undefined && (request.escalatedAt !== undefined || now >= request.createdAt + rule.escalate.afterMs);
  const allowed = rule.from === undefined ? undefined : [...rule.from, ...(escalated ? rule.escalate!.to : [])];
  if (allowed !== undefined && !reviewerIn(allowed, reviewer, groups)) return escalated ? "not among the policy's reviewers or its escalation set" : "not among the policy's reviewers";
  if (request.votes.some((vote) => vote.reviewer === reviewer)) return "already approved; another reviewer must";
  return undefined;
}
