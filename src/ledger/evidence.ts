// Evidence bundles: what an auditor needs to check one run or tool call without access to our systems.
// The entries of that run or call, the policy set in force, the approvals with reviewer and reason, an
// RFC 9162 inclusion proof of each entry to a signed C2SP checkpoint, and the public key. A bundle
// stands alone: verifyEvidence() needs nothing else (a key obtained out of band makes it stronger).
import { createHash, type KeyObject } from "node:crypto";
import { InvalidInputError } from "../errors.js";
import { canonicalJson } from "../internal/canonical.js";
import { linkOf, type LedgerDraft, type LinkedLedgerRow } from "../store/sqlite-store.js";
import { storedHashHex } from "./chain.js";
import type { BundleVerification } from "../verify/verify.js";
import { POLICY_SET_ENTRY, type EvidenceEntry } from "../verify/schema.js";
import { parsePublicKey, rawPublicKey } from "./keys.js";
import { type MerkleTree } from "./merkle.js";
import { ledgerOrigin, verifierKey } from "./note.js";

// The bundle's format lives with the verifier (no Node built-ins), so a browser reads the same schema.
export { EvidenceBundleSchema, POLICY_SET_ENTRY } from "../verify/schema.js";
export type { EvidenceBundle, EvidenceEntry } from "../verify/schema.js";

/**
 * What `verifyEvidence` proved, or exactly what failed (`code`, `problem`, and every failure in `failures`).
 * @example
 * import type { EvidenceVerification } from "agent-warden";
 * const result: EvidenceVerification = await verifyEvidence(bundle, { publicKey });
 * console.log(result.ok ? result.statement : result.problem);
 */
export type EvidenceVerification = BundleVerification;

/** A stored ledger row (read with its chain link) as a bundle carries it: the exact bytes hashed, hashes in hex, and its inclusion proof in `tree`. */
export function evidenceEntryOf(row: LinkedLedgerRow, tree: MerkleTree, size = tree.size): EvidenceEntry {
  return {
    seq: row.seq,
    id: row.id,
    ts: row.ts,
    type: row.type,
    org: row.org,
    agentId: row.agent_id,
    runId: row.run_id,
    stepId: row.step_id,
    toolCallId: row.tool_call_id,
    actor: row.actor,
    dataJson: row.data,
    prevHash: linkOf(row),
    hash: storedHashHex(row.hash),
    inclusionProof: tree.inclusionProof(row.seq - 1, size).map((h) => Buffer.from(h).toString("base64")),
  };
}

/**
 * A ledger draft recording the policy set now in force: its hash and its text (canonical JSON), so
 * evidence bundles can show which policy a decision was made under. Append it when policies are set.
 * @example
 * store.append(policySetDraft({ org: "acme", policySet, actor: "ops" }));
 */
export function policySetDraft(input: { org: string; policySet: unknown; actor?: string | null; agentId?: string | null; id?: string; ts?: number }): LedgerDraft {
  const text = canonicalJson(input.policySet);
  const hash = createHash("sha256").update(text).digest("hex");
  return { id: input.id ?? `evt_${createHash("sha256").update(`${text}${Date.now()}${Math.random()}`).digest("hex").slice(0, 26)}`, ts: input.ts ?? Date.now(), type: POLICY_SET_ENTRY, org: input.org, agentId: input.agentId ?? null, runId: null, stepId: null, toolCallId: null, actor: input.actor ?? null, dataJson: canonicalJson({ hash, text }) };
}

/**
 * Verifies an evidence bundle offline, on its own: each entry's hash over its exact bytes and its chain
 * link, each entry's inclusion in the signed checkpoint's tree, the checkpoint's signature, witness
 * cosignatures, that every entry belongs to the subject, and the policy set's text against its hash.
 * With `publicKey` (obtained out of band: a KeyObject, PEM, a PEM file or base64 raw key) the checkpoint
 * must be signed by that key; without it, by the key the bundle names (`key.source: "bundle"`). The
 * checks are those of `agent-warden/verify` (WebCrypto), which this calls after reading the keys.
 * @example
 * import { verifyEvidence } from "agent-warden";
 * const result = await verifyEvidence(JSON.parse(readFileSync("refund-1042.json", "utf8")), { publicKey: "./ledger-public.pem" });
 * console.log(result.ok ? result.statement : `NOT VERIFIED: ${result.problem}`);
 */
export async function verifyEvidence(input: unknown, options: { publicKey?: KeyObject | string | readonly (KeyObject | string)[] | undefined; witnesses?: readonly string[] | undefined } = {}): Promise<EvidenceVerification> {
  let publicKey: Uint8Array[] | undefined;
  if (options.publicKey !== undefined) {
    try {
      publicKey = (Array.isArray(options.publicKey) ? options.publicKey : [options.publicKey]).map((k: KeyObject | string) => new Uint8Array(rawPublicKey(parsePublicKey(k))));
    } catch (error) {
      const problem = (error as Error).message;
      return { ok: false, code: "key_malformed", problem, failures: [{ code: "key_malformed", problem }] };
    }
  }
  // The verifier loads with the first bundle checked, not with the package.
  const { verifyBundle } = await import("../verify/verify.js");
  return verifyBundle(input, { publicKey, witnesses: options.witnesses });
}

/** The verifier key of a ledger signed by `publicKey`, as a bundle names it. */
export function ledgerVerifierKey(publicKey: KeyObject): string {
  return verifierKey(ledgerOrigin(publicKey), publicKey);
}

/** Throws a typed error for input that is not a bundle (for the CLI's file reading). */
export function parseEvidenceFile(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidInputError(`${where} is not JSON`, { cause });
  }
}
