import { createHash } from "node:crypto";
import { z } from "zod";
import { builtOnFirstUse } from "../internal/once.js";
import { MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_NODES } from "./limits.js";

export const RedactionRuleSchema = builtOnFirstUse(() =>
  z.strictObject({
    /** `$.card`, `$.items[*].token`, `$..password` */
    path: z.string().regex(/^\$(\.\.?[^.[\]]+|\[\*\]|\[\d+\]|\.\*)+$/, "a JSON path such as $.card, $.items[*].token or $..password"),
    action: z.enum(["mask", "remove", "hash"]).default("mask"),
  }),
);
/**
 * One redaction by JSON path, for fields the default secret detection cannot know are sensitive.
 * @example
 * import type { RedactionRule } from "agent-warden";
 * const ibans: RedactionRule = { path: "$..iban", action: "hash" };
 */
export type RedactionRule = z.infer<typeof RedactionRuleSchema>;

export const RedactionOptionsSchema = builtOnFirstUse(() =>
  z.strictObject({
    rules: z.array(RedactionRuleSchema).default([]),
    /** Mask secret-looking keys (password, secret, token, api_key, authorization, cookie…) and values (bearer tokens, private keys). */
    defaults: z.boolean().default(true),
    /** More key names to mask everywhere, case-insensitive. */
    keys: z.array(z.string()).default([]),
  }),
);
/**
 * What to redact from payloads before they are recorded, sent or shown: `new Warden({ redaction })`.
 * @example
 * import { Warden, type RedactionOptions } from "agent-warden";
 * const redaction: RedactionOptions = { keys: ["iban"], rules: [{ path: "$.card", action: "remove" }] };
 * const warden = new Warden({ agentId: "billing-agent", redaction });
 */
export type RedactionOptions = z.input<typeof RedactionOptionsSchema>;

export const MASK = "[REDACTED]";
/** A reference back to an object the walk is inside of (parent ↔ child graphs). */
export const CIRCULAR = "[circular]";
/** Past MAX_PAYLOAD_NODES: a container that ends here, or a shared object that would not fit any more. */
export const TRUNCATED = "[truncated]";
/** An object nested deeper than MAX_PAYLOAD_DEPTH. */
export const TOO_DEEP = "[too deep]";
/** Values JSON cannot hold: a function, a symbol, a `toJSON` that throws. */
export const UNSERIALIZABLE = { function: "[function]", symbol: "[symbol]", toJSON: "[unserializable]" } as const;

/**
 * How a BigInt is recorded: its decimal digits with JavaScript's `n` suffix (`123n` → `"123n"`),
 * so recording never throws and the value stays readable. Canonical JSON (ledger hashes, approval
 * digests) spells it the same way.
 * @example
 * import { bigintMarker } from "agent-warden";
 * bigintMarker(9007199254740993n); // "9007199254740993n"
 */
export function bigintMarker(value: bigint): string {
  return `${value}n`;
}

const secretKey = /pass(word|wd|phrase)?$|secret|^token$|^.*[_-]token$|^(access|refresh|id|auth|session|bearer)token$|api[_-]?key|^authorization$|cookie|private[_-]?key|credential/i;
// Secrets inside any string (an error message quoting a header, a log line): each match is masked in place.
// Every alternative fails or succeeds within one run of its characters, so the scan is linear: the
// JWT one starts only where a run of base64url characters starts (a `\b` there would restart at
// every `-eyJ` of `-eyJ-eyJ…` and rescan the rest, quadratic in the string).
const secretInText = /Bearer\s+[A-Za-z0-9._~+/=-]{8,}|\b(?:sk|rk)[-_][A-Za-z0-9_-]{16,}|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----\s*|$)/g;

// Payment card numbers (13 to 19 digits, spaces or hyphens allowed between them), masked when the Luhn
// check passes so that order ids and timestamps stay readable. Separators are not digits, so the scan is linear.
const cardInText = /(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])/g;

function maskSecrets(text: string): string {
  secretInText.lastIndex = 0;
  const masked = secretInText.test(text) ? text.replace(secretInText, MASK) : text;
  return /[0-9]{4}/.test(masked.replace(/[ -]/g, "")) ? masked.replace(cardInText, (match) => (isCardNumber(match) ? MASK : match)) : masked;
}

/** A card number by length and the Luhn check digit. */
function isCardNumber(text: string): boolean {
  const digits = text.replace(/[ -]/g, "");
  if (digits.length < 13 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

type Segment = { kind: "key"; key: string } | { kind: "any" } | { kind: "deep"; key: string };
interface CompiledRule {
  segments: Segment[];
  action: RedactionRule["action"];
}
/** Where the walk stands in each rule's path: `[rule index, next segment index]`. */
type RuleState = readonly [number, number];
const noStates: readonly RuleState[] = Object.freeze([]);

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
 * one walk and no allocation. The result is always JSON-safe and bounded: each object is visited once
 * (a shared one is reused, a reference back to an ancestor becomes `"[circular]"`), a BigInt becomes
 * `"123n"`, functions and symbols become markers, nesting stops at MAX_PAYLOAD_DEPTH and size at
 * MAX_PAYLOAD_NODES.
 * @example
 * import { createRedactor } from "agent-warden";
 * const redact = createRedactor({ rules: [{ path: "$.card.number", action: "remove" }] });
 * logger.info(redact(request.body));
 */
export function createRedactor(options: RedactionOptions = {}): Redactor {
  // Parsed once per redactor: compiling zod's fast path would cost more than the parse. No options (most
  // clients): the schema's defaults, without building the schema.
  const parsed = isEmptyObject(options) ? { rules: [], defaults: true, keys: [] } : RedactionOptionsSchema.parse(options, { jitless: true });
  const extra = new Set(parsed.keys.map((k) => k.toLowerCase()));
  // Payloads repeat their keys: each key is tested once (a bounded memory of the answers).
  const secretKeys = new Map<string, boolean>();
  const isSecretKey = (key: string) => {
    let secret = secretKeys.get(key);
    if (secret === undefined) {
      secret = (parsed.defaults && secretKey.test(key)) || (extra.size > 0 && extra.has(key.toLowerCase()));
      if (secretKeys.size >= KEYS_REMEMBERED) secretKeys.clear();
      secretKeys.set(key, secret);
    }
    return secret;
  };
  const rules = parsed.rules.map((rule): CompiledRule => ({ segments: parseJsonPath(rule.path), action: rule.action }));
  const initial: readonly RuleState[] = rules.length === 0 ? noStates : rules.map((_, index): RuleState => [index, 0]);
  const settings: WalkSettings = { isSecretKey, checkValues: parsed.defaults, rules };
  // A small plain payload with nothing to change is the walk's own answer (the value itself): a scan
  // that allocates nothing finds it; anything else (a secret, a rule, a class, a cycle, a large value) takes the walk.
  const scan = rules.length === 0 ? new CleanScan(isSecretKey, parsed.defaults) : undefined;
  return (value) => (scan?.clean(value) ? value : new Walk(settings).visit(value, 0, initial));
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype && Object.keys(value).length === 0;
}

/** How many key names a redactor remembers the verdict on. */
const KEYS_REMEMBERED = 4096;
/** The fast scan's bounds: past them, the walk decides (it counts, truncates and marks). */
const SCAN_DEPTH = 8;
const SCAN_NODES = 512;

/** Whether a value is one the walk would return unchanged, for small plain JSON values; false when unsure. */
class CleanScan {
  readonly #isSecretKey: (key: string) => boolean;
  readonly #checkValues: boolean;
  #nodes = 0;

  constructor(isSecretKey: (key: string) => boolean, checkValues: boolean) {
    this.#isSecretKey = isSecretKey;
    this.#checkValues = checkValues;
  }

  clean(value: unknown): boolean {
    this.#nodes = 0;
    return this.#clean(value, 0);
  }

  #clean(value: unknown, depth: number): boolean {
    if (++this.#nodes > SCAN_NODES) return false;
    switch (typeof value) {
      case "string":
        return !this.#checkValues || value.length < 16 || maskSecrets(value) === value;
      case "number":
      case "boolean":
      case "undefined":
        return true;
      case "object":
        break;
      default:
        // A BigInt, a function, a symbol: the walk writes a marker.
        return false;
    }
    if (value === null) return true;
    if (depth >= SCAN_DEPTH) return false;
    // What serializes as something else (`toJSON`: a Date, a class of the caller's) is the walk's to decide.
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return false;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (!this.#clean(value[i], depth + 1)) return false;
      return true;
    }
    // Plain objects only: a class instance, a Map may hold what a walk of its keys would not show the same way.
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) return false;
    for (const key in value) {
      if (!Object.hasOwn(value, key)) return false;
      const member = (value as Record<string, unknown>)[key];
      if (this.#isSecretKey(key) && member !== null && member !== undefined && member !== "") return false;
      if (!this.#clean(member, depth + 1)) return false;
    }
    return true;
  }
}

interface WalkSettings {
  isSecretKey: ((key: string) => boolean) | undefined;
  checkValues: boolean;
  rules: readonly CompiledRule[];
}

const plainSettings: WalkSettings = { isSecretKey: undefined, checkValues: false, rules: [] };

/** One redaction: the budget, the objects in progress (for cycles) and the results so far (for shared objects). */
class Walk {
  readonly #settings: WalkSettings;
  /** Values emitted so far, each shared object counted every time it is emitted. */
  #count = 0;
  #inProgress: Set<object> | undefined;
  #done: Map<object, { result: unknown; size: number }> | undefined;

  constructor(settings: WalkSettings) {
    this.#settings = settings;
  }

  visit(value: unknown, depth: number, states: readonly RuleState[]): unknown {
    switch (typeof value) {
      case "string":
        this.#count++;
        return this.#settings.checkValues && value.length >= 16 ? maskSecrets(value) : value;
      case "bigint":
        this.#count++;
        return bigintMarker(value);
      case "function":
        this.#count++;
        return UNSERIALIZABLE.function;
      case "symbol":
        this.#count++;
        return UNSERIALIZABLE.symbol;
      case "object":
        if (value !== null) return this.#visitObject(value, depth, states);
    }
    this.#count++;
    return value;
  }

  #visitObject(object: object, depth: number, states: readonly RuleState[]): unknown {
    const inProgress = (this.#inProgress ??= new Set());
    if (inProgress.has(object)) return this.#marker(CIRCULAR);
    // A result depends on the rules still pending along the path; without any, it can be shared.
    const shareable = states.length === 0;
    const done = shareable ? this.#done?.get(object) : undefined;
    if (done !== undefined) {
      if (this.#count + done.size > MAX_PAYLOAD_NODES) return this.#marker(TRUNCATED);
      this.#count += done.size;
      return done.result;
    }
    // Too deep to walk: never record what was not checked.
    if (depth > MAX_PAYLOAD_DEPTH) return this.#marker(TOO_DEEP);
    if (this.#count >= MAX_PAYLOAD_NODES) return this.#marker(TRUNCATED);
    const start = this.#count++;
    inProgress.add(object);
    let result: unknown;
    try {
      const source = serializedForm(object);
      if (source !== object) result = source === null || typeof source !== "object" ? this.visit(source, depth, states) : this.#visitContainer(source, depth, states);
      else result = this.#visitContainer(object, depth, states);
    } finally {
      inProgress.delete(object);
    }
    if (shareable) (this.#done ??= new Map()).set(object, { result, size: this.#count - start });
    return result;
  }

  #visitContainer(value: object, depth: number, states: readonly RuleState[]): unknown {
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        if (this.#count >= MAX_PAYLOAD_NODES) {
          copy = (copy ?? value).slice(0, i);
          copy.push(TRUNCATED);
          return copy;
        }
        const current: unknown = value[i];
        const next = states.length === 0 ? this.visit(current, depth + 1, noStates) : this.#visitRuled(String(i), current, depth, states);
        if (next !== current || next === REMOVED) (copy ??= value.slice())[i] = next === REMOVED ? undefined : next;
      }
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (this.#count >= MAX_PAYLOAD_NODES) {
        const kept: Record<string, unknown> = {};
        for (const done of keys.slice(0, i)) if (Object.hasOwn(copy ?? record, done)) kept[done] = (copy ?? record)[done];
        kept[TRUNCATED] = keys.length - i;
        return kept;
      }
      const current = record[key];
      let next: unknown;
      if (states.length > 0) next = this.#visitRuled(key, current, depth, states, true);
      else if (this.#settings.isSecretKey?.(key) && current !== null && current !== undefined && current !== "") next = this.#marker(MASK);
      else next = this.visit(current, depth + 1, noStates);
      if (next === REMOVED) delete (copy ??= { ...record })[key];
      else if (next !== current) (copy ??= { ...record })[key] = next;
    }
    return copy ?? value;
  }

  /** A member while rules are pending: a rule whose path ends here decides it; otherwise the defaults, then deeper. */
  #visitRuled(key: string, current: unknown, depth: number, states: readonly RuleState[], checkKey = false): unknown {
    const { rules } = this.#settings;
    let ruled: RedactionRule["action"] | undefined;
    const next: RuleState[] = [];
    const advance = (rule: number, at: number) => {
      if (at === rules[rule]!.segments.length) ruled ??= rules[rule]!.action;
      else next.push([rule, at]);
    };
    for (const [rule, at] of states) {
      const segment = rules[rule]!.segments[at]!;
      if (segment.kind === "deep") {
        next.push([rule, at]);
        if (segment.key === key) advance(rule, at + 1);
      } else if (segment.kind === "any" || segment.key === key) advance(rule, at + 1);
    }
    if (ruled === "remove") {
      this.#count++;
      return REMOVED;
    }
    if (ruled === "hash") return this.#marker(hashOf(current));
    if (ruled === "mask") return this.#marker(MASK);
    if (checkKey && this.#settings.isSecretKey?.(key) && current !== null && current !== undefined && current !== "") return this.#marker(MASK);
    return this.visit(current, depth + 1, next.length === 0 ? noStates : next);
  }

  #marker(text: string): string {
    this.#count++;
    return text;
  }
}

/** Stands for a member a `remove` rule takes out (an array keeps its slot, as `undefined`). */
const REMOVED: unique symbol = Symbol("removed");

/** What JSON.stringify would serialize in place of `object`: its `toJSON()` result when it has one. */
function serializedForm(object: object): unknown {
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON !== "function") return object;
  try {
    return toJSON.call(object);
  } catch {
    return UNSERIALIZABLE.toJSON;
  }
}

/** `hash` rules: a digest of the value as it would be recorded unredacted, bounded and JSON-safe like everything else. */
function hashOf(value: unknown): string {
  const plain = new Walk(plainSettings).visit(value, 0, noStates);
  return `sha256:${createHash("sha256").update(JSON.stringify(plain) ?? "").digest("hex").slice(0, 16)}`;
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
