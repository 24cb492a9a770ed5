// Pattern matching for delegation tokens. Two families:
// - scopes (permissions) such as `flights:book`: `*` alone grants everything, a trailing `:*` grants
//   every permission below that prefix, anything else is an exact name;
// - tool globs such as `payments.*` or `read_?`: `*` spans any characters (dots included) and `?`
//   one character, as in policy `tool` conditions.
import { compileGlob } from "../policy/pattern.js";

/**
 * True when scope pattern `pattern` grants `permission`.
 *
 * The same test tells whether one pattern covers another: the permissions a child pattern `a:b:*`
 * can grant all start with `a:b:`, so a parent grants all of them exactly when it grants the
 * literal text `a:b:*` (the parent is `*`, a prefix of it ending in `:*`, or `a:b:*` itself).
 */
export function scopeMatches(pattern: string, permission: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith(":*")) return permission.startsWith(pattern.slice(0, -1));
  return pattern === permission;
}

/** True when every permission the `child` pattern could grant is granted by some pattern in `parentScopes`. */
export function scopeCovered(child: string, parentScopes: readonly string[]): boolean {
  return parentScopes.some((parent) => scopeMatches(parent, child));
}

/** The first child scope no parent scope covers, or undefined when the child set is within the parent set. */
export function uncoveredScope(childScopes: readonly string[], parentScopes: readonly string[]): string | undefined {
  return childScopes.find((child) => !scopeCovered(child, parentScopes));
}

/** True when tool glob `pattern` matches the concrete tool name `name` (the policy glob matcher: no table the size of the name). */
export function toolMatches(pattern: string, name: string): boolean {
  if (pattern === "*" || pattern === name) return true;
  return compileGlob(pattern)(name);
}

/**
 * True when every name the `child` glob matches is matched by the `parent` glob. Conservative: a
 * parent `?` never stands in for a child `*` (which may be empty or long), so a few exotic pairs that
 * are in fact narrower are refused, but a wider child is never accepted.
 */
export function toolGlobCovers(parent: string, child: string): boolean {
  if (parent === "*" || parent === child) return true;
  return globWalk(parent, child, true);
}

/** True when every name the `child` glob matches is matched by some glob in `parentTools`. */
export function toolCovered(child: string, parentTools: readonly string[]): boolean {
  return parentTools.some((parent) => toolGlobCovers(parent, child));
}

/** The first child tool glob no parent glob covers, or undefined when the child set is within the parent set. */
export function uncoveredTool(childTools: readonly string[], parentTools: readonly string[]): string | undefined {
  return childTools.find((child) => !toolCovered(child, parentTools));
}

/**
 * Matches glob `pattern` against glob `subject` position by position, memoized on (i, j) so stars
 * cannot blow up (both are token patterns, at most 256 characters). With `subjectIsGlob`, the
 * subject's `*` and `?` are wildcards that only a pattern `*` (or, for `?`, a pattern `?`) can
 * absorb; otherwise every subject character is literal.
 */
function globWalk(pattern: string, subject: string, subjectIsGlob: boolean): boolean {
  const seen = new Uint8Array((pattern.length + 1) * (subject.length + 1));
  const walk = (i: number, j: number): boolean => {
    const slot = i * (subject.length + 1) + j;
    if (seen[slot] !== 0) return seen[slot] === 2;
    const result = step(i, j);
    seen[slot] = result ? 2 : 1;
    return result;
  };
  const step = (i: number, j: number): boolean => {
    if (i === pattern.length) return j === subject.length;
    const p = pattern[i];
    if (p === "*") return walk(i + 1, j) || (j < subject.length && walk(i, j + 1));
    if (j === subject.length) return false;
    const s = subject[j];
    const wild = subjectIsGlob && (s === "*" || s === "?");
    if (p === "?") return (!wild || s === "?") && walk(i + 1, j + 1);
    return !wild && p === s && walk(i + 1, j + 1);
  };
  return walk(0, 0);
}
