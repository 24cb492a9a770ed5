// The SDK rewrites tool names outside [a-zA-Z0-9_-] (`payments.refund` becomes `payments_refund`);
// policies are written for the name the developer gave, so decisions and records use that name.
import { AsyncLocalStorage } from "node:async_hooks";
import { tool as sdkTool } from "@openai/agents";
import { globCaptures, type PolicySet, type Warden } from "agent-warden";

const developerNames = new WeakMap<object, string>();

/** What a governed call's tool threw, if it threw: set by `tool()` below, read by the governed invoke. */
export interface ToolFailure {
  error?: unknown;
}
export const toolFailures = new AsyncLocalStorage<ToolFailure>();

/**
 * The SDK's `tool()`, remembering the name you gave: the SDK sends `payments_refund` to the model,
 * Warden decides and records the call as `payments.refund`, so `payments.*` policies match. A tool
 * that throws is recorded as failed, even with tracing off.
 * @example
 * import { tool } from "agent-warden/openai-agents";
 * const refund = tool({ name: "payments.refund", description: "Refunds an order", parameters: z.object({ amount: z.number() }), execute: async ({ amount }) => `refunded ${amount}` });
 */
export const tool: typeof sdkTool = ((options: Parameters<typeof sdkTool>[0]) => {
  const execute = options.execute as (...args: unknown[]) => unknown;
  const made = sdkTool({
    ...options,
    // The SDK turns a thrown error into text for the model; the governed call is recorded as failed all the same.
    execute: async (...args: unknown[]) => {
      try {
        return await execute(...args);
      } catch (error) {
        const failure = toolFailures.getStore();
        if (failure) failure.error = error;
        throw error;
      }
    },
  } as Parameters<typeof sdkTool>[0]);
  if (typeof options.name === "string" && options.name !== made.name) developerNames.set(made, options.name);
  return made;
}) as typeof sdkTool;

/** Remembers a developer's name for a tool made elsewhere (an agent tool, say). */
export function rememberName(made: object, name: string): void {
  developerNames.set(made, name);
}

/**
 * How Warden names a tool the SDK knows as `tool.name`: the name given to `tool()` above, else the
 * names policies, limits and budgets were written for that the SDK would rewrite into this one
 * (`payments.*` for `payments_refund`: `payments.refund`), else the SDK's own name.
 */
export function namesFor(made: { name: string }, warden: Warden): readonly string[] {
  const given = developerNames.get(made);
  if (given !== undefined) return [given];
  return rewrittenCandidates(warden.policies, made.name);
}

const candidateCache = new WeakMap<PolicySet, Map<string, readonly string[]>>();

function rewrittenCandidates(policies: PolicySet, sdkName: string): readonly string[] {
  let byName = candidateCache.get(policies);
  if (!byName) candidateCache.set(policies, (byName = new Map()));
  let names = byName.get(sdkName);
  if (names === undefined) {
    const found = new Set<string>();
    for (const glob of toolGlobs(policies)) {
      const name = unrewrite(glob, sdkName);
      if (name !== undefined && name !== sdkName) found.add(name);
    }
    names = found.size === 0 ? [sdkName] : [...found];
    byName.set(sdkName, names);
  }
  return names;
}

function* toolGlobs(policies: PolicySet): Iterable<string> {
  // Operator forms (`{ in: [...] }`) name tools literally: their string values are the names to look for.
  const globs = (value: string | readonly string[] | Record<string, unknown> | undefined): readonly string[] =>
    value === undefined ? [] : typeof value === "string" ? [value] : Array.isArray(value) ? (value as readonly string[]) : [(value as Record<string, unknown>)["eq"], (value as Record<string, unknown>)["in"]].flat().filter((name): name is string => typeof name === "string");
  for (const policy of policies.policies) yield* globs(policy.when.tool);
  for (const limit of policies.limits ?? []) yield* globs(limit.tool);
  for (const budget of policies.budgets ?? []) yield* globs(budget.tool);
}

/**
 * The name matching `glob` that the SDK would rewrite into `sdkName`, or undefined when there is
 * none: literal characters come from the glob, wildcards take what they span in `sdkName`.
 */
export function unrewrite(glob: string, sdkName: string): string | undefined {
  // Only globs the rewrite changes: the SDK turns every character outside [a-zA-Z0-9] into "_".
  if (!/[^a-zA-Z0-9_*?]/.test(glob)) return undefined;
  const chars = [...glob];
  // The glob as the SDK would rewrite it, matched by the core's linear glob matcher; its literal
  // characters come back from the glob, its wildcards take what they span in `sdkName`.
  const captures = globCaptures(chars.map((char) => (char === "*" || char === "?" || /[a-zA-Z0-9]/.test(char) ? char : "_")).join(""), sdkName);
  if (captures === undefined) return undefined;
  let wildcard = 0;
  return chars.map((char) => (char === "*" || char === "?" ? captures[wildcard++]! : char)).join("");
}
