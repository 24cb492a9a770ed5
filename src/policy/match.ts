import { compileRegex } from "./pattern.js";
import type { Condition, Operators } from "./schema.js";

export { compileGlob, compileGlobs } from "./pattern.js";

export type Predicate = (value: unknown) => boolean;

/** Reads `a.b.0.c` from an object; undefined when any step is missing. */
export function compilePath(path: string): (root: unknown) => unknown {
  const parts = path.split(".");
  if (parts.length === 1) {
    const key = parts[0]!;
    return (root) => (root !== null && typeof root === "object" && Object.hasOwn(root, key) ? (root as Record<string, unknown>)[key] : undefined);
  }
  return (root) => {
    let value = root;
    for (const part of parts) {
      // Own properties only: `args.constructor` must not find Object's.
      if (value === null || typeof value !== "object" || !Object.hasOwn(value, part)) return undefined;
      value = (value as Record<string, unknown>)[part];
    }
    return value;
  };
}

/** Numbers, BigInts, and strings that are plain decimal numbers (models often send "28000"). */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  // A BigInt must not slip past `gt`/`lt` limits: compared by its (nearest) number value.
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return undefined;
}

export function compileCondition(condition: Condition): Predicate {
  if (condition === null || typeof condition !== "object") return (value) => value === condition;
  const tests = Object.entries(condition as Operators).map(([op, expected]) => compileOperator(op as keyof Operators, expected));
  return allOf(tests);
}

/** True when every test holds; built once, so a decision allocates no closure per call. */
export function allOf<A>(tests: ReadonlyArray<(value: A) => boolean>): (value: A) => boolean {
  if (tests.length === 1) return tests[0]!;
  if (tests.length === 2) {
    const [a, b] = tests as [(value: A) => boolean, (value: A) => boolean];
    return (value) => a(value) && b(value);
  }
  return (value) => {
    for (const test of tests) if (!test(value)) return false;
    return true;
  };
}

function compileOperator(op: keyof Operators, expected: unknown): Predicate {
  switch (op) {
    case "eq":
      return (value) => value === expected;
    case "ne":
      return (value) => value !== expected;
    case "in": {
      const set = new Set(expected as unknown[]);
      return (value) => set.has(value);
    }
    case "not_in": {
      const set = new Set(expected as unknown[]);
      return (value) => !set.has(value);
    }
    case "contains":
      return (value) =>
        typeof value === "string" ? value.includes(String(expected)) : Array.isArray(value) ? value.includes(expected) : false;
    case "matches": {
      // Linear-time (RE2): a policy pattern and a hostile argument cannot stall a decision.
      const test = compileRegex(expected as string);
      return (value) => (typeof value === "string" || typeof value === "number") && test(String(value));
    }
    case "exists":
      return (value) => (value !== undefined && value !== null) === expected;
    case "gt":
      return (value) => (asNumber(value) ?? Number.NaN) > (expected as number);
    case "gte":
      return (value) => (asNumber(value) ?? Number.NaN) >= (expected as number);
    case "lt":
      return (value) => (asNumber(value) ?? Number.NaN) < (expected as number);
    case "lte":
      return (value) => (asNumber(value) ?? Number.NaN) <= (expected as number);
  }
}
