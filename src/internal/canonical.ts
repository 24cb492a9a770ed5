/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, `undefined` members dropped.
 * What the ledger hashes and tokens sign, so the same value always gives the same bytes.
 *
 * Never throws on values JSON cannot hold: a BigInt is written as redaction records it (`123n` →
 * `"123n"`), functions and symbols as `null` in arrays and not at all as members (as JSON.stringify
 * does), and a reference back to an enclosing object as `"[circular]"`.
 */
export function canonicalJson(value: unknown): string {
  // Most values (events, redacted payloads) are shallow trees: written without tracking ancestors.
  // Deeper than FAST_DEPTH, which every cycle is sooner or later, the general writer starts over.
  const fast = writeFast(value, 0);
  return fast ?? write(value, []);
}

/** How deep the fast writer goes before it hands the value to the one that tracks cycles. */
const FAST_DEPTH = 48;

/** As `write` for a value with no object deeper than FAST_DEPTH (so no cycle); undefined past that. */
function writeFast(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case "string":
      return quote(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return `"${value}n"`;
    case "object":
      break;
    default:
      // undefined, a function, a symbol: what `write` gives at the top and in arrays.
      return "null";
  }
  if (value === null) return "null";
  if (depth >= FAST_DEPTH) return undefined;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      const member: unknown = value[i];
      // A hole is written as nothing, as `write` (through Array.prototype.map and join) writes it.
      const item = member === undefined && !(i in value) ? "" : writeFast(member, depth + 1);
      if (item === undefined) return undefined;
      out += i === 0 ? item : `,${item}`;
    }
    return `${out}]`;
  }
  const keys = sortedKeys(value);
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
    const written = writeFast(item, depth + 1);
    if (written === undefined) return undefined;
    out += out.length > 1 ? `,${memberName(key)}${written}` : `${memberName(key)}${written}`;
  }
  return `${out}}`;
}

/** The object's own enumerable keys in code-unit order (insertion sort: objects have few keys). */
function sortedKeys(value: object): string[] {
  const keys = Object.keys(value);
  if (keys.length > 32) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    if (keys[j]! <= key) continue;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = key;
  }
  return keys;
}

/** Member names as written (`"name":`), by name: events and payloads repeat a small set of them. */
const memberNames = new Map<string, string>();

/** `"name":` for a member name, written once per name (bounded: past 4,096 names the memory starts over). */
function memberName(key: string): string {
  let written = memberNames.get(key);
  if (written === undefined) {
    written = `${quote(key)}:`;
    // Long names are not kept: a payload's keys can be anything, and a cache of them is memory for nothing.
    if (key.length <= 64) {
      if (memberNames.size >= 4096) memberNames.clear();
      memberNames.set(key, written);
    }
  }
  return written;
}

/** A string as JSON writes it; a short one that needs no escape is only wrapped in quotes. */
function quote(text: string): string {
  if (text.length > 64) return JSON.stringify(text);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // Control characters, `"`, `\` and surrogates (a lone one is escaped): JSON.stringify decides.
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(text);
  }
  return `"${text}"`;
}

function write(value: unknown, ancestors: object[]): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) return "null";
    if (typeof value === "bigint") return JSON.stringify(`${value}n`);
    return JSON.stringify(value) ?? "null";
  }
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (ancestors.includes(value)) return JSON.stringify("[circular]");
  ancestors.push(value);
  try {
    if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : write(item, ancestors))).join(",")}]`;
    const keys = Object.keys(value).sort();
    let out = "{";
    for (const key of keys) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined || typeof item === "function" || typeof item === "symbol") continue;
      if (out.length > 1) out += ",";
      out += `${JSON.stringify(key)}:${write(item, ancestors)}`;
    }
    return `${out}}`;
  } finally {
    ancestors.pop();
  }
}
