import { createHash } from "node:crypto";
import { z } from "zod";

export const RedactionRuleSchema = z.strictObject({
  /** `$.card`, `$.items[*].token`, `$..password` */
  path: z.string().regex(/^\$(\.\.?[^.[\]]+|\[\*\]|\[\d+\]|\.\*)+$/, "a JSON path such as $.card, $.items[*].token or $..password"),
  action: z.enum(["mask", "remove", "hash"]).default("mask"),
});
/**
 * One redaction by JSON path, for fields the default secret detection cannot know are sensitive.
 * @example
 * import type { RedactionRule } from "agent-warden";
 * const ibans: RedactionRule = { path: "$..iban", action: "hash" };
 */
export type RedactionRule = z.infer<typeof RedactionRuleSchema>;

export const RedactionOptionsSchema = z.strictObject({
  rules: z.array(RedactionRuleSchema).default([]),
  /** Mask secret-looking keys (password, secret, token, api_key, authorization, cookie…) and values (bearer tokens, private keys). */
  defaults: z.boolean().default(true),
  /** More key names to mask everywhere, case-insensitive. */
  keys: z.array(z.string()).default([]),
});
/**
 * What to redact from payloads before they are recorded, sent or shown: `new Warden({ redaction })`.
 * @example
 * import { Warden, type RedactionOptions } from "agent-warden";
 * const redaction: RedactionOptions = { keys: ["iban"], rules: [{ path: "$.card", action: "remove" }] };
 * const warden = new Warden({ agentId: "billing-agent", redaction });
 */
export type RedactionOptions = z.input<typeof RedactionOptionsSchema>;

export const MASK = "[REDACTED]";

const secretKey = /pass(word|wd|phrase)?$|secret|^token$|^.*[_-]token$|^(access|refresh|id|auth|session|bearer)token$|api[_-]?key|^authorization$|cookie|private[_-]?key|credential/i;
// Secrets inside any string (an error message quoting a header, a log line): each match is masked in place.
const secretInText = /Bearer\s+[A-Za-z0-9._~+/=-]{8,}|\b(?:sk|rk)[-_][A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----\s*|$)/g;

function maskSecrets(text: string): string {
  secretInText.lastIndex = 0;
  if (!secretInText.test(text)) return text;
  return text.replace(secretInText, MASK);
}

type Segment = { kind: "key"; key: string } | { kind: "any" } | { kind: "deep"; key: string };

/**
 * A redaction function from `createRedactor`: returns the value with secrets masked, removed or hashed.
 * @example
 * import { createRedactor, type Redactor } from "agent-warden";
 * const redact: Redactor = createRedactor();
 * redact({ user: "ada", password: "hunter2" }); // { user: "ada", password: "[REDACTED]" }
 */
export type Redactor = (value: unknown) => unknown;

/**
 * Builds the function every payload passes through before it is recorded, sent or shown; exported to
 * apply the same rules to your own logs. It copies only what it changes, so a clean payload costs
 * one walk and no allocation.
 * @example
 * import { createRedactor } from "agent-warden";
 * const redact = createRedactor({ rules: [{ path: "$.card.number", action: "remove" }] });
 * logger.info(redact(request.body));
 */
export function createRedactor(options: RedactionOptions = {}): Redactor {
  const parsed = RedactionOptionsSchema.parse(options);
  const extra = new Set(parsed.keys.map((k) => k.toLowerCase()));
  const isSecretKey = (key: string) => (parsed.defaults && secretKey.test(key)) || (extra.size > 0 && extra.has(key.toLowerCase()));
  const rules = parsed.rules.map((rule) => ({ segments: parseJsonPath(rule.path), action: rule.action }));
  const checkValues = parsed.defaults;

  // `ruled`: keys a rule already redacted, per container; the defaults leave them as the rule made them.
  const walk = (value: unknown, depth: number, ruled?: WeakMap<object, Set<string>>): unknown => {
    if (typeof value === "string") return checkValues && value.length >= 16 ? maskSecrets(value) : value;
    if (value === null || typeof value !== "object") return value;
    // Too deep to walk: never record what was not checked.
    if (depth > 64) return MASK;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const next = walk(value[i], depth + 1, ruled);
        if (next !== value[i]) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    let copy: Record<string, unknown> | undefined;
    for (const key in value) {
      const current = (value as Record<string, unknown>)[key];
      const next = ruled?.get(value)?.has(key) ? current : isSecretKey(key) && current !== null && current !== undefined && current !== "" ? MASK : walk(current, depth + 1, ruled);
      if (next !== current) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
    }
    return copy ?? value;
  };

  if (rules.length === 0) return (value) => walk(value, 0);
  return (value) => {
    if (value === null || typeof value !== "object") return walk(value, 0);
    // Rules first, on a copy, so `hash` hashes the real value rather than the default mask.
    const result = structuredClone(value);
    const ruled = new WeakMap<object, Set<string>>();
    for (const rule of rules) applyRule(result, rule.segments, rule.action, ruled);
    return walk(result, 0, ruled);
  };
}

function parseJsonPath(path: string): Segment[] {
  const segments: Segment[] = [];
  const re = /\.\.([^.[\]]+)|\.\*|\.([^.[\]]+)|\[\*\]|\[(\d+)\]/g;
  for (const m of path.slice(1).matchAll(re)) {
    if (m[1] !== undefined) segments.push({ kind: "deep", key: m[1] });
    else if (m[2] !== undefined) segments.push({ kind: "key", key: m[2] });
    else if (m[3] !== undefined) segments.push({ kind: "key", key: m[3] });
    else segments.push({ kind: "any" });
  }
  return segments;
}

function applyRule(node: unknown, segments: Segment[], action: RedactionRule["action"], ruled: WeakMap<object, Set<string>>): void {
  if (node === null || typeof node !== "object" || segments.length === 0) return;
  const [head, ...rest] = segments as [Segment, ...Segment[]];
  const container = node as Record<string, unknown>;
  const keys = head.kind === "key" ? (head.key in container ? [head.key] : []) : Object.keys(container);
  if (head.kind === "deep") {
    for (const key of Object.keys(container)) {
      if (key === head.key) {
        if (rest.length === 0) redactKey(container, key, action, ruled);
        else applyRule(container[key], rest, action, ruled);
      }
      if (key in container) applyRule(container[key], segments, action, ruled);
    }
    return;
  }
  for (const key of keys) {
    if (rest.length === 0) redactKey(container, key, action, ruled);
    else applyRule(container[key], rest, action, ruled);
  }
}

function redactKey(container: Record<string, unknown>, key: string, action: RedactionRule["action"], ruled: WeakMap<object, Set<string>>): void {
  if (!ruled.has(container)) ruled.set(container, new Set());
  ruled.get(container)!.add(key);
  if (action === "remove") {
    if (Array.isArray(container)) container[key as unknown as number] = undefined;
    else delete container[key];
  } else if (action === "hash") {
    container[key] = `sha256:${createHash("sha256").update(JSON.stringify(container[key]) ?? "").digest("hex").slice(0, 16)}`;
  } else container[key] = MASK;
}
