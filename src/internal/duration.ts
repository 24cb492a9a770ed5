import { z } from "zod";
import { once } from "./once.js";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses `500ms`, `30s`, `15m`, `1h`, `7d` (or a number of milliseconds) into milliseconds: the
 * duration format of policy files, options and token lifetimes.
 * @example
 * import { parseDuration } from "agent-warden";
 * parseDuration("15m"); // 900000
 */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`invalid duration ${value}`);
    return value;
  }
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new RangeError(`invalid duration "${value}" (use e.g. 500ms, 30s, 15m, 1h, 7d)`);
  return Math.round(Number(match[1]) * units[match[2]!]!);
}

/**
 * A duration field: `"15m"` or milliseconds, parsed to milliseconds. Built on first use, by the schemas
 * that hold it (a function rather than a stand-in: zod's JSON Schema output needs the schema itself).
 */
export const durationSchema = once(() =>
  z.union([z.number().nonnegative(), z.string()]).transform((value, ctx) => {
    try {
      return parseDuration(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
      return z.NEVER;
    }
  }),
);
