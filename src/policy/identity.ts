// Agent identities and sub-identities.
//
// `A/x` is a sub-identity of `A`: what a token for `A` may be narrowed to (a token may never be
// re-targeted to an unrelated agent). A sub-identity is bound by every rule for `A`: its policy
// decision is the strictest of the decisions for `A` and for itself, and it shares `A`'s per-agent
// rate limits. Whoever holds `A`'s token chooses the name after the slash, so a rule that exempts
// `A/x` from something `A` must obey never helps `A/x`.

/** Separates an agent id from the name of a sub-identity below it. */
export const SUB_IDENTITY_SEPARATOR = "/";

/**
 * True when `agentId` is `ancestor` itself or a sub-identity below it (`ancestor/…`).
 * @example
 * import { isWithinAgent } from "agent-warden";
 * isWithinAgent("intern/reviewer", "intern"); // true
 * isWithinAgent("senior-engineer", "intern"); // false
 */
export function isWithinAgent(agentId: string, ancestor: string): boolean {
  if (agentId === ancestor) return true;
  return agentId.length > ancestor.length + 1 && agentId.startsWith(ancestor) && agentId[ancestor.length] === SUB_IDENTITY_SEPARATOR;
}

/**
 * The sub-identity `name` below `parent` (`parent/name`); a name already within `parent` is returned as is.
 * @example
 * import { subAgentId } from "agent-warden";
 * const audience = subAgentId("travel-agent", "booking-agent"); // "travel-agent/booking-agent"
 */
export function subAgentId(parent: string, name: string): string {
  return isWithinAgent(name, parent) ? name : `${parent}${SUB_IDENTITY_SEPARATOR}${name}`;
}

/** `a/b/c` → `["a", "a/b", "a/b/c"]`: the identities whose rules bind `agentId`, outermost first. */
export function agentLineage(agentId: string): string[] {
  const lineage: string[] = [];
  let at = agentId.indexOf(SUB_IDENTITY_SEPARATOR);
  while (at !== -1) {
    lineage.push(agentId.slice(0, at));
    at = agentId.indexOf(SUB_IDENTITY_SEPARATOR, at + 1);
  }
  lineage.push(agentId);
  return lineage;
}

/** The outermost identity: the one whose per-agent rate limits a sub-identity shares. */
export function rootAgentId(agentId: string): string {
  const at = agentId.indexOf(SUB_IDENTITY_SEPARATOR);
  return at === -1 ? agentId : agentId.slice(0, at);
}
