import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { PolicyError, type PolicyIssue } from "../errors.js";
import { once } from "../internal/once.js";
import { PolicySchema, PolicySetSchema, RateLimitSchema, type PolicySet, type PolicySetInput } from "./schema.js";

// The YAML parser loads when a policy text is first parsed, not with the package: most clients are
// given their policies in code. Synchronous (require), as the functions that need it are.
const requireModule = createRequire(import.meta.url);
let yamlModule: typeof import("yaml") | undefined;
/** The YAML parser, loaded on first use. Internal: the channels file loads it through here too. */
export const yaml = (): typeof import("yaml") => (yamlModule ??= requireModule("yaml") as typeof import("yaml"));

/** What a client is given when it is given no policies. */
export const NO_POLICIES_INPUT: PolicySetInput = Object.freeze({ version: 1, default: "allow", policies: [] });

/**
 * `NO_POLICIES_INPUT` as its parse returns it (a test holds them equal), without building the policy
 * schemas: a client given no policies never needs them.
 */
function noPolicies(): PolicySet {
  return { version: 1, default: "allow", policies: [], limits: [], budgets: [] };
}

/**
 * Validates a policy set built in code and fills in its defaults. Throws `PolicyError` naming the policy and field.
 * @example
 * import { parsePolicySet } from "agent-warden";
 * const set = parsePolicySet({ default: "block", policies: [{ id: "reads", when: { tool: "read_*" }, action: "allow" }] });
 */
export function parsePolicySet(input: unknown, file?: string): PolicySet {
  if (input === NO_POLICIES_INPUT) return noPolicies();
  // A policy set is parsed once per load: zod's compiled fast path would cost more than it saves.
  const result = PolicySetSchema.safeParse(input, { jitless: true });
  if (result.success) {
    assertUniqueIds(result.data, file);
    assertChannelNames(result.data, file);
    return result.data;
  }
  throw new PolicyError(toIssues(result.error, input).map(({ path: _path, ...issue }) => issue), file);
}

/**
 * Reads and validates a YAML or JSON policy file, for checking it in CI before a client loads it;
 * errors carry the file, line, policy id and field.
 * @example
 * import { loadPolicyFile } from "agent-warden";
 * const set = loadPolicyFile("./warden.yaml");
 */
export function loadPolicyFile(path: string): PolicySet {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new PolicyError([{ message: `cannot read policy file (${(cause as NodeJS.ErrnoException).code ?? String(cause)})` }], path);
  }
  return parsePolicyText(text, path);
}

/**
 * Parses and validates policy text (YAML, of which JSON is a subset) held in memory, such as a set
 * fetched from a config service; `file` only labels the errors.
 * @example
 * import { parsePolicyText } from "agent-warden";
 * const set = parsePolicyText(await response.text(), "remote:warden.yaml");
 */
export function parsePolicyText(text: string, file?: string): PolicySet {
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      doc.errors.map((e) => ({ message: e.message.split("\n")[0]!, line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line })),
      file,
    );
  }
  const input: unknown = doc.toJS();
  const result = PolicySetSchema.safeParse(input, { jitless: true });
  if (!result.success) {
    const issues = toIssues(result.error, input).map(({ path, ...issue }) => ({ ...issue, line: lineOf(doc, path, lineCounter) }));
    throw new PolicyError(issues, file);
  }
  assertUniqueIds(result.data, file, (path) => lineOf(doc, path, lineCounter));
  assertChannelNames(result.data, file, (path) => lineOf(doc, path, lineCounter));
  return result.data;
}

function lineOf(doc: ReturnType<typeof parseDocument>, path: (string | number)[], lines: LineCounter): number | undefined {
  // The deepest node that exists along the path: a missing field points at its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true);
    if (yaml().isNode(node) && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}

type ZodIssue = z.ZodError["issues"][number];

/**
 * A value that fits no branch of a union (`{ gt: "five" }` is neither a scalar nor valid operators)
 * is reported by the branch it came closest to, so the message says what is wrong and where.
 */
function flatten(issues: readonly ZodIssue[], prefix: PropertyKey[] = []): ZodIssue[] {
  return issues.flatMap((issue): ZodIssue[] => {
    const path = [...prefix, ...issue.path];
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const closest = issue.errors.find((branch) => branch.some((i) => i.path.length > 0));
      if (closest) return flatten(closest, path);
    }
    return [{ ...issue, path } as ZodIssue];
  });
}

/** Field names a typo is most likely meant for, for "did you mean". */
// Read from the schemas when a typo is first looked up: reading them at import would build them.
const knownFields = once(() => [...new Set([...Object.keys(PolicySetSchema.shape), ...Object.keys(PolicySchema.shape), ...Object.keys(RateLimitSchema.shape), "spend", "tokens", "exceed", "timeout"])]);

/** What each required field is for, so a missing one reads as missing (not as an invalid option). */
const REQUIRED: Record<string, string> = {
  action: "every policy needs an action (allow, warn, block or require_approval)",
  id: "every policy, limit and budget needs an id",
  max: "a limit needs max (calls per window)",
  per: "a limit needs per (the window, e.g. 1h)",
};

function closest(key: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of knownFields()) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance <= 2 && distance < key.length && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) value = value !== null && typeof value === "object" ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  return value;
}

/** An unknown key becomes one issue at the key itself (its own line), with the field it was probably meant to be. */
function splitUnknownKeys(issues: ZodIssue[], input: unknown): ZodIssue[] {
  return issues.flatMap((issue): ZodIssue[] => {
    // Inside `when`, an unknown key is an unknown operator: its own message lists the accepted ones.
    if (issue.code === "unrecognized_keys" && !issue.path.includes("when")) {
      return issue.keys.map((key) => {
        const guess = closest(key);
        return { ...issue, path: [...issue.path, key], message: `unknown field "${key}"${guess ? ` (did you mean "${guess}"?)` : ""}` } as ZodIssue;
      });
    }
    if (valueAt(input, issue.path) === undefined && issue.path.length > 0) {
      const field = String(issue.path[issue.path.length - 1]);
      return [{ ...issue, message: `missing: ${REQUIRED[field] ?? `required (${issue.message.charAt(0).toLowerCase()}${issue.message.slice(1)})`}` } as ZodIssue];
    }
    return [issue];
  });
}

function toIssues(error: z.ZodError, input: unknown): Array<PolicyIssue & { path: (string | number)[] }> {
  return splitUnknownKeys(flatten(error.issues), input).map((issue) => {
    const path = issue.path as (string | number)[];
    let policyId: string | undefined;
    let fieldPath = path;
    if ((path[0] === "policies" || path[0] === "limits" || path[0] === "budgets") && typeof path[1] === "number") {
      const entry = (input as Record<string, unknown[]> | undefined)?.[path[0]]?.[path[1]] as { id?: unknown } | undefined;
      policyId = typeof entry?.id === "string" ? entry.id : `${path[0]}[${path[1]}]`;
      fieldPath = path.slice(2);
    }
    return { message: issue.message, policyId, field: fieldPath.length ? fieldPath.join(".") : undefined, path };
  });
}

/** Every name in a policy's `approval.notify` is a declared webhook id, or `slack` with Slack declared. */
function assertChannelNames(set: PolicySet, file?: string, locate?: (path: (string | number)[]) => number | undefined): void {
  const known = new Set([...(set.channels?.webhooks ?? []).map((hook) => hook.id), ...(set.channels?.slack ? ["slack"] : [])]);
  const seen = new Set<string>();
  (set.channels?.webhooks ?? []).forEach((hook, index) => {
    if (seen.has(hook.id) || hook.id === "slack") throw new PolicyError([{ message: hook.id === "slack" ? `"slack" names the Slack channel; give the webhook another id` : `duplicate webhook id "${hook.id}"`, field: "channels.webhooks.id", line: locate?.(["channels", "webhooks", index, "id"]) }], file);
    seen.add(hook.id);
  });
  set.policies.forEach((policy, index) => {
    (policy.approval?.notify ?? []).forEach((name, at) => {
      if (known.has(name)) return;
      const declared = known.size === 0 ? "the set declares no channels" : `declared: ${[...known].join(", ")}`;
      throw new PolicyError([{ message: `approval.notify names "${name}", which is not a channel (${declared})`, policyId: policy.id, field: "approval.notify", line: locate?.(["policies", index, "approval", "notify", at]) }], file);
    });
  });
}

function assertUniqueIds(set: PolicySet, file?: string, locate?: (path: (string | number)[]) => number | undefined): void {
  const seen = new Set<string>();
  for (const section of ["policies", "limits", "budgets"] as const) {
    set[section].forEach(({ id }, index) => {
      if (seen.has(id)) throw new PolicyError([{ message: "duplicate id", policyId: id, field: "id", line: locate?.([section, index, "id"]) }], file);
      seen.add(id);
    });
  }
}

export type { PolicySetInput };
