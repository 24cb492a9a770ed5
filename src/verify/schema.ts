// The evidence bundle format: the one schema that writes (ledger.evidence) and every verifier (Node,
// the browser, the console) read. zod alone, so it bundles for a browser.
import * as z from "zod";
import { builtOnFirstUse } from "../internal/once.js";

const hex64 = builtOnFirstUse(() => z.string().regex(/^[0-9a-f]{64}$/));
const base64 = builtOnFirstUse(() => z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/));

export const EvidenceEntrySchema = builtOnFirstUse(() =>
  z.strictObject({
    seq: z.number().int().positive(),
    id: z.string(),
    ts: z.number().int(),
    type: z.string(),
    org: z.string(),
    agentId: z.string().nullable(),
    runId: z.string().nullable(),
    stepId: z.string().nullable(),
    toolCallId: z.string().nullable(),
    actor: z.string().nullable(),
    /** The entry's data exactly as hashed (canonical JSON text). */
    dataJson: z.string(),
    prevHash: hex64,
    hash: hex64,
    /** RFC 9162 inclusion proof of this entry (leaf seq - 1) in the checkpoint's tree, base64 hashes. */
    inclusionProof: z.array(base64).max(64),
  }),
);

/**
 * The evidence bundle format (`warden evidence <id> -o file.json`, `ledger.evidence(id)`).
 * @example
 * import { EvidenceBundleSchema } from "agent-warden";
 * const bundle = EvidenceBundleSchema.parse(JSON.parse(readFileSync("refund-1042.json", "utf8")));
 */
export const EvidenceBundleSchema = builtOnFirstUse(() =>
  z.strictObject({
    format: z.literal("agent-warden.evidence/1"),
    subject: z.strictObject({ kind: z.enum(["run", "toolCall"]), id: z.string().min(1) }),
    /** The log: its origin (C2SP key name) and the verifier key that signs its checkpoints. */
    log: z.strictObject({ origin: z.string(), verifierKey: z.string() }),
    /** A C2SP tlog-checkpoint signed note covering every entry below. */
    checkpoint: z.string().max(64 * 1024),
    /** The subject's entries, and the policy set entry in force before them. */
    entries: z.array(EvidenceEntrySchema).min(1).max(100_000),
    createdAt: z.number().int(),
    /** What the issuer could not vouch for (a configured witness that has not cosigned the checkpoint); not signed, never needed to verify. */
    warnings: z.array(z.string().max(1000)).max(16).optional(),
  }),
);

/**
 * An evidence bundle. See `EvidenceBundleSchema`.
 * @example
 * import type { EvidenceBundle } from "agent-warden";
 * const bundle: EvidenceBundle = warden.ledger.evidence("tc_…");
 */
export type EvidenceBundle = z.infer<typeof EvidenceBundleSchema>;
export type EvidenceEntry = z.infer<typeof EvidenceEntrySchema>;

/** The ledger entry type that records a policy set when it takes effect. */
export const POLICY_SET_ENTRY = "policy.set";
