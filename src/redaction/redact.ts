import { createHash } from "node:crypto";
import { z } from "zod";

export const RedactionRuleSchema = z.strictObject({
  /** `$.card`, `$.items[*].token`, `$..password` */
  path: z.string().regex(/^\$(\.\.?[^.[\]]+|\[\*\]|\[\d+\]|\.\*)+$/, "a JSON path such as $.card, $.items[*].token or $..password"),
  action: z.enum(["mask", "remove", "hash"]).default("mask"),
});
export type RedactionRule = z.infer<typeof RedactionRuleSchema>;

export const RedactionOptionsSchema = z.strictObject({
  rules: z.array(RedactionRuleSchema).default([]),
  /** Mask secret-looking keys (password, secret, token, api_key, authorization, cookie…) and values (bearer tokens, private keys). */
  defaults: z.boolean().default(true),
  /** More key names to mask everywhere, case-insensitive. */
  keys: z.array(z.string()).default([]),
});
export type RedactionOptions = z.input<typeof RedactionOptionsSchema>;

export const MASK = "[REDACTED]";

const secretKey = /pass(word|wd|phrase)?$|secret|^token$|^.*[_-]token$|^(access|refresh|id|auth|session|bearer)token$|api[_-]?key|^authorization$|cookie|private[_-]?key|credential/i;
const secretValue = /^(Bearer\s+\S{8,}|(sk|rk)[-_][A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*)$/;

type Segment = { kind: "key"; key: string } | { kind: "any" } | { kind: "deep"; key: string };

export type Redactor = (value: unknown) => unknown;

/**
 * Builds the function every payload passes through before it is recorded, sent or shown.
 * It copies only what it changes, so a clean payload costs one walk and no allocation.
 */
export function createRedactor(options: RedactionOptions = {}): Redactor {
  const parsed = RedactionOptionsSchema.parse(options);
  const extra = new Set(parsed.keys.map((k) => k.toLowerCase()));
  const isSecretKey = (key: string) => (parsed.defaults && secretKey.test(key)) || (extra.size > 0 && extra.has(key.toLowerCase()));
  const rules = parsed.rules.map((rule) => ({ segments: parseJsonPath(rule.path), action: rule.action }));
  const checkValues = parsed.defaults;

  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === "string") return checkValues && value.length >= 16 && secretValue.test(value) ? MASK : value;
    if (value === null || typeof value !== "object" || depth > 64) return value;
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const next = walk(value[i], depth + 1);
        if (next !== value[i]) (copy ??= value.slice())[i] = next;
      }
      return copy ?? value;
    }
    let copy: Record<string, unknown> | undefined;
    for (const key in value) {
      const current = (value as Record<string, unknown>)[key];
      const next = isSecretKey(key) && current !== null && current !== undefined && current !== "" ? MASK : walk(current, depth + 1);
      if (next !== current) (copy ??= { ...(value as Record<string, unknown>) })[key] = next;
    }
    return copy ?? value;
  };

  if (rules.length === 0) return (value) => walk(value, 0);
  return (value) => {
    let result = walk(value, 0);
    if (result === null || typeof result !== "object") return result;
    result = structuredClone(result);
    for (const rule of rules) applyRule(result, rule.segments, rule.action);
    return result;
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

function applyRule(node: unknown, segments: Segment[], action: RedactionRule["action"]): void {
  if (node === null || typeof node !== "object" || segments.length === 0) return;
  const [head, ...rest] = segments as [Segment, ...Segment[]];
  const container = node as Record<string, unknown>;
  const keys = head.kind === "key" ? (head.key in container ? [head.key] : []) : Object.keys(container);
  if (head.kind === "deep") {
    for (const key of Object.keys(container)) {
      if (key === head.key) {
        if (rest.length === 0) redactKey(container, key, action);
        else applyRule(container[key], rest, action);
      }
      if (key in container) applyRule(container[key], segments, action);
    }
    return;
  }
  for (const key of keys) {
    if (rest.length === 0) redactKey(container, key, action);
    else applyRule(container[key], rest, action);
  }
}

function redactKey(container: Record<string, unknown>, key: string, action: RedactionRule["action"]): void {
  if (action === "remove") {
    if (Array.isArray(container)) container[key as unknown as number] = undefined;
    else delete container[key];
  } else if (action === "hash") {
    container[key] = `sha256:${createHash("sha256").update(JSON.stringify(container[key]) ?? "").digest("hex").slice(0, 16)}`;
  } else container[key] = MASK;
}
