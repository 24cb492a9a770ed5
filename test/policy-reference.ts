// A plain reference evaluator, written from the policy spec alone and kept deliberately naive:
// every policy is looked at, in order, every condition evaluated from scratch. The compiled engine
// must agree with it on every call (see policy.property.test.ts).
import type { PolicySet } from "agent-warden";

export interface ReferenceCall {
  tool: string;
  action: string;
  agent: string;
  environment?: string | undefined;
  args: unknown;
  metadata?: unknown;
}

export interface ReferenceResult {
  action: "allow" | "warn" | "require_approval" | "block";
  decidedBy: string | undefined;
  matched: string[];
}

const rank = { allow: 0, warn: 1, require_approval: 2, block: 3 } as const;

/** `*` is any run of characters (dots too), `?` exactly one, everything else itself. */
export function globMatches(pattern: string, name: string): boolean {
  if (pattern.length === 0) return name.length === 0;
  const [head, rest] = [pattern[0], pattern.slice(1)];
  if (head === "*") {
    for (let i = 0; i <= name.length; i++) if (globMatches(rest, name.slice(i))) return true;
    return false;
  }
  if (name.length === 0) return false;
  if (head === "?" || head === name[0]) return globMatches(rest, name.slice(1));
  return false;
}

function anyGlob(patterns: string | string[], name: string | undefined): boolean {
  if (name === undefined) return false;
  const list = typeof patterns === "string" ? [patterns] : patterns;
  return list.some((p) => globMatches(p, name));
}

/** `tool`, `agent`, `environment`: globs, or an operator object tested like an `args.*` value. */
function nameHolds(condition: unknown, name: string | undefined): boolean {
  if (typeof condition === "object" && condition !== null && !Array.isArray(condition)) return conditionHolds(condition, name);
  return anyGlob(condition as string | string[], name);
}

function readPath(root: unknown, path: string): unknown {
  let value = root;
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function numeric(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && /^-?[0-9]+(\.[0-9]+)?$/.test(value)) return Number(value);
  return Number.NaN;
}

function operatorHolds(op: string, expected: unknown, value: unknown): boolean {
  switch (op) {
    case "eq":
      return value === expected;
    case "ne":
      return value !== expected;
    case "in":
      return (expected as unknown[]).some((x) => x === value);
    case "not_in":
      return !(expected as unknown[]).some((x) => x === value);
    case "contains":
      if (typeof value === "string") return value.includes(String(expected));
      if (Array.isArray(value)) return value.some((x) => x === expected);
      return false;
    case "matches":
      if (typeof value !== "string" && typeof value !== "number") return false;
      return new RegExp(expected as string).test(String(value));
    case "exists":
      return expected === (value !== undefined && value !== null);
    case "gt":
      return numeric(value) > (expected as number);
    case "gte":
      return numeric(value) >= (expected as number);
    case "lt":
      return numeric(value) < (expected as number);
    case "lte":
      return numeric(value) <= (expected as number);
    default:
      throw new Error(`reference evaluator: unknown operator ${op}`);
  }
}

function conditionHolds(condition: unknown, value: unknown): boolean {
  if (condition === null || typeof condition !== "object") return value === condition;
  return Object.entries(condition).every(([op, expected]) => operatorHolds(op, expected, value));
}

function policyMatches(when: Record<string, unknown>, call: ReferenceCall): boolean {
  for (const [key, condition] of Object.entries(when)) {
    if (key === "tool") {
      if (!nameHolds(condition, call.tool)) return false;
    } else if (key === "action") {
      if (typeof condition === "object" && condition !== null && !Array.isArray(condition)) {
        if (!conditionHolds(condition, call.action)) return false;
      } else {
        const list = typeof condition === "string" ? [condition] : (condition as string[]);
        if (!list.includes(call.action)) return false;
      }
    } else if (key === "agent") {
      if (!nameHolds(condition, call.agent)) return false;
    } else if (key === "environment") {
      if (!nameHolds(condition, call.environment)) return false;
    } else if (key.startsWith("args.")) {
      if (!conditionHolds(condition, readPath(call.args, key.slice("args.".length)))) return false;
    } else if (key.startsWith("metadata.")) {
      if (!conditionHolds(condition, readPath(call.metadata, key.slice("metadata.".length)))) return false;
    } else {
      throw new Error(`reference evaluator: unknown condition ${key}`);
    }
  }
  return true;
}

/**
 * Strictest enforced match wins (the first one among equals); shadow matches never decide; else the
 * default. A sub-identity `a/b/c` gets the strictest of the results for `a`, `a/b` and `a/b/c` (the
 * outermost among equals), with the policies that matched any of them.
 */
export function referenceEvaluate(set: PolicySet, call: ReferenceCall): ReferenceResult {
  const parts = call.agent.split("/");
  const results = parts.map((_, i) => evaluateAs(set, { ...call, agent: parts.slice(0, i + 1).join("/") }));
  let strictest = results[0]!;
  for (const result of results) if (rank[result.action] > rank[strictest.action]) strictest = result;
  const matched = set.policies.map((policy) => policy.id).filter((id) => results.some((result) => result.matched.includes(id)));
  return { action: strictest.action, decidedBy: strictest.decidedBy, matched };
}

function evaluateAs(set: PolicySet, call: ReferenceCall): ReferenceResult {
  const matched: string[] = [];
  let decider: { id: string; action: ReferenceResult["action"] } | undefined;
  for (const policy of set.policies) {
    if (policy.enabled === false) continue;
    if (!policyMatches(policy.when as Record<string, unknown>, call)) continue;
    matched.push(policy.id);
    if (policy.mode === "shadow") continue;
    if (decider === undefined || rank[policy.action] > rank[decider.action]) decider = { id: policy.id, action: policy.action };
  }
  return { action: decider?.action ?? set.default, decidedBy: decider?.id, matched };
}
