// Every pattern a user writes (policy globs and `matches` regexes, token tool globs) is matched here,
// in time that cannot blow up on hostile input: a backtracking engine lets one pattern and a
// 30-character argument stall a decision (and every halt behind it) for seconds or hours.
//
// - Globs (`payments.*`, `read_?`): split on `*` and matched segment by segment, each segment placed
//   once at its leftmost fit and never revisited. Cost: at most the name's length times the pattern's.
// - Regexes: RE2 (re2js, a pure-JS port): linear in the input, whatever the pattern. RE2 has no
//   backreferences or lookaround; patterns that use them are refused when the policy loads.
import { createRequire } from "node:module";
import type { RE2JS } from "re2js";

// RE2 loads with the first regex compiled, not with the package: most policy sets have none.
const requireModule = createRequire(import.meta.url);
let re2Module: typeof import("re2js") | undefined;
const RE2 = (): typeof RE2JS => (re2Module ??= requireModule("re2js") as typeof import("re2js")).RE2JS;

/**
 * A compiled pattern: true when `subject` matches. Internal to the core: policies, tokens and
 * redaction reach user patterns only through this module.
 * @example
 * import { compileGlob, type Matcher } from "./pattern.js";
 * const isPayment: Matcher = compileGlob("payments.*");
 */
export type Matcher = (subject: string) => boolean;

/**
 * Compiles a glob: `*` spans any characters (dots included), `?` exactly one, anything else is
 * itself; the whole name must match. Matches in time bounded by name length × pattern length.
 * @example
 * import { compileGlob } from "./pattern.js";
 * compileGlob("payments.*")("payments.refund"); // true
 */
export function compileGlob(pattern: string): Matcher {
  if (pattern === "*") return () => true;
  if (!pattern.includes("*") && !pattern.includes("?")) return (name) => name === pattern;
  const segments = pattern.split("*");
  if (segments.length === 1) return (name) => name.length === pattern.length && fitsAt(pattern, name, 0);
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  const middle = segments.slice(1, -1).filter((segment) => segment.length > 0);
  const fixed = first.length + last.length;
  return (name) => {
    if (name.length < fixed || !fitsAt(first, name, 0) || !fitsAt(last, name, name.length - last.length)) return false;
    // Greedy leftmost placement is exact for `*`-separated segments: a later fit never helps.
    let from = first.length;
    const end = name.length - last.length;
    for (const segment of middle) {
      const at = findSegment(segment, name, from, end);
      if (at === -1) return false;
      from = at + segment.length;
    }
    return true;
  };
}

/**
 * What each wildcard of a glob spans in `name` (`*` and `?`, in the glob's order) when it matches,
 * else undefined: segments placed as `compileGlob` places them, in the same bounded time. For names a
 * framework rewrites, to read back which name a policy's glob was written for.
 * @example
 * import { globCaptures } from "agent-warden";
 * globCaptures("payments_*", "payments_refund"); // ["refund"]
 */
export function globCaptures(pattern: string, name: string): string[] | undefined {
  const segments = pattern.split("*");
  const first = segments[0]!;
  const last = segments[segments.length - 1]!;
  if (segments.length === 1) {
    if (name.length !== pattern.length || !fitsAt(pattern, name, 0)) return undefined;
  } else if (name.length < first.length + last.length || !fitsAt(first, name, 0) || !fitsAt(last, name, name.length - last.length)) return undefined;
  const starts = [0];
  if (segments.length > 1) {
    let from = first.length;
    const end = name.length - last.length;
    for (const segment of segments.slice(1, -1)) {
      const at = segment.length === 0 ? from : findSegment(segment, name, from, end);
      if (at === -1) return undefined;
      starts.push(at);
      from = at + segment.length;
    }
    starts.push(end);
  }
  const captures: string[] = [];
  segments.forEach((segment, i) => {
    if (i > 0) captures.push(name.slice(starts[i - 1]! + segments[i - 1]!.length, starts[i]));
    for (let j = 0; j < segment.length; j++) if (segment.charCodeAt(j) === 63 /* ? */) captures.push(name[starts[i]! + j]!);
  });
  return captures;
}

/**
 * Compiles one glob or a list (any of them matches).
 * @example
 * import { compileGlobs } from "./pattern.js";
 * compileGlobs(["read_*", "search"])("read_file"); // true
 */
export function compileGlobs(patterns: string | readonly string[]): Matcher {
  if (typeof patterns === "string") return compileGlob(patterns);
  const tests = patterns.map(compileGlob);
  if (tests.length === 1) return tests[0]!;
  return (name) => {
    for (const test of tests) if (test(name)) return true;
    return false;
  };
}

/**
 * Why `source` cannot be used as a `matches` pattern (RE2 syntax: no backreferences, no lookaround),
 * or undefined when it can.
 * @example
 * import { regexProblem } from "./pattern.js";
 * regexProblem("(a)\\1"); // "invalid escape sequence: `\\1`"
 */
export function regexProblem(source: string): string | undefined {
  try {
    re2(source);
    return undefined;
  } catch (error) {
    return String((error as Error).message ?? error).replace(/^error parsing regexp: /, "");
  }
}

/**
 * Compiles a regular expression for linear-time search (unanchored, like `RegExp.test`; use `^…$`
 * to match the whole value). JavaScript's `\uXXXX` and `\u{…}` escapes are accepted. Throws a
 * `SyntaxError` for what RE2 cannot run: backreferences, lookaround.
 * @example
 * import { compileRegex } from "./pattern.js";
 * compileRegex("^\\d{4}-\\d{2}$")("2026-01"); // true
 */
export function compileRegex(source: string): Matcher {
  let regex: RE2JS;
  try {
    regex = re2(source);
  } catch (error) {
    throw new SyntaxError(`not a linear-time regular expression: ${regexProblem(source) ?? String(error)}`, { cause: error });
  }
  return (subject) => regex.test(subject);
}

// Compiling costs far more than matching (~0.25 ms): a set is validated, then compiled, and sets are
// reloaded whole, so the same sources come back. Compiled programs are immutable and safe to share.
const compiled = new Map<string, RE2JS>();
const MAX_COMPILED = 1024;

function re2(source: string): RE2JS {
  let regex = compiled.get(source);
  if (regex === undefined) {
    regex = RE2().compile(toRe2Syntax(source));
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(source, regex);
  }
  return regex;
}

/** True when `segment` (literal characters and `?`) fits `name` starting at `at`. */
function fitsAt(segment: string, name: string, at: number): boolean {
  if (at < 0 || at + segment.length > name.length) return false;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c !== 63 /* ? */ && c !== name.charCodeAt(at + i)) return false;
  }
  return true;
}

/** Leftmost position in [from, end) where `segment` fits entirely before `end`, or -1. */
function findSegment(segment: string, name: string, from: number, end: number): number {
  if (!segment.includes("?")) {
    const at = name.indexOf(segment, from);
    return at !== -1 && at + segment.length <= end ? at : -1;
  }
  for (let at = from; at + segment.length <= end; at++) if (fitsAt(segment, name, at)) return at;
  return -1;
}

/** JavaScript-only escapes RE2 spells differently: `\uXXXX` and `\u{X…}` become `\x{…}`. */
function toRe2Syntax(source: string): string {
  if (!source.includes("\\u")) return source;
  let out = "";
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const next = source[i + 1];
    const braced = next === "u" ? /^\{([0-9A-Fa-f]{1,6})\}/.exec(source.slice(i + 2, i + 10)) : null;
    const plain = next === "u" && !braced ? /^[0-9A-Fa-f]{4}/.exec(source.slice(i + 2, i + 6)) : null;
    if (braced) {
      out += `\\x{${braced[1]}}`;
      i += 1 + braced[0].length;
    } else if (plain) {
      out += `\\x{${plain[0]}}`;
      i += 5;
    } else {
      out += c + (next ?? "");
      i += 1;
    }
  }
  return out;
}
