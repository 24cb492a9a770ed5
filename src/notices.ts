// What Warden says, once, when a newcomer would otherwise be left guessing: a call waiting for a
// reviewer, a client that governs nothing. Through the `logger` option, else stderr.
import type { ApprovalRecord } from "./records.js";

const DEFAULT_STORE = "./.warden/warden.db";

/** Where the waiting client keeps its approvals, so the notice can say how to reach them. */
export interface ApprovalsHome {
  store: string;
  organization: string;
  /** Remote mode: the control plane. */
  url?: string | undefined;
}

/** `tool "refund" is waiting for approval apr_… (policy "large-refunds"): approve it with `warden approve apr_…` …` */
export function waitingNotice(approval: ApprovalRecord, home: ApprovalsHome): string {
  const id = approval.approvalId;
  const why = approval.policyId ? ` (policy "${approval.policyId}")` : "";
  const head = `tool "${approval.toolName}" is waiting for approval ${id}${why}`;
  if (home.url !== undefined) {
    const base = home.url.replace(/\/+$/, "");
    return `${head}: approve it in the console at ${base}/#/approvals or with \`warden approve ${id} --url ${base} --api-key <reviewer key>\` (\`warden reject\` refuses it)`;
  }
  if (home.store === ":memory:") return `${head}: the store is in memory, so decide it in this process with warden.approvals.approve("${id}") or an onApprovalRequest handler`;
  const flags = [home.store !== DEFAULT_STORE && home.store !== ".warden/warden.db" ? ` --store ${quote(home.store)}` : "", home.organization !== "default" ? ` --org ${quote(home.organization)}` : ""].join("");
  return `${head}: approve it with \`npx warden approve ${id}${flags}\` in another terminal (\`warden reject\` refuses it)`;
}

/** A client built with no policies at all. */
export const NO_POLICIES_NOTICE = 'no policies loaded: every tool call is recorded and allowed. Pass `policies: "./warden.yaml"` (or a policy set object) to govern them.';

/** A remote client whose organization has no policy version on the control plane yet. */
export function noRemotePolicyNotice(url: string, organization: string | undefined): string {
  const base = url.replace(/\/+$/, "");
  return `the control plane at ${base} has no policy for ${organization ? `organization "${organization}"` : "this organization"} yet: every tool call is allowed by default. Publish one with \`warden policy push warden.yaml --url ${base} --api-key <admin key>\``;
}

const quote = (value: string) => (/^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value));
