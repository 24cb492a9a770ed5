/**
 * Canonical JSON: object keys sorted by code unit, no whitespace, `undefined` members dropped.
 * What the ledger hashes and tokens sign, so the same value always gives the same bytes.
 *
 * Never throws on values JSON cannot hold: a BigInt is written as redaction records it (`123n` →
 * `"123n"`), functions and symbols as `null` in arrays and not at all as members (as JSON.stringify
 * does), and a reference back to an enclosing object as `"[circular]"`.
 */
export function canonicalJson(value: unknown): string {
  return write(value, []);
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
