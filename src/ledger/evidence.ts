// Evidence bundles: what an auditor needs to check one run or tool call without access to our systems.
// The entries of that run or call, the policy set in force, the approvals with reviewer and reason, an
// RFC 9162 inclusion proof of each entry to a signed C2SP checkpoint, and the public key. A bundle
// stands alone: verifyEvidence() needs nothing else (a key obtained out of band makes it stronger).
import { createHash, type KeyObject } from "node:crypto";
import { z } from "zod";
import { InvalidInputError } from "../errors.js";
import { canonicalJson } from "../internal/canonical.js";
import type { LedgerDraft, LedgerRow } from "../store/sqlite-store.js";
import { storedRowProblem } from "./chain.js";
import { parsePublicKey, rawPublicKey } from "./keys.js";
import { verifyInclusion, type MerkleTree } from "./merkle.js";
import { ledgerOrigin, openCheckpoint, orgLedgerOrigin, parseVerifierKey, verifierKey } from "./note.js";
import { openCosignatures, parseWitnessKey, type Cosignature, type WitnessKey } from "./cosignature.js";

/** The ledger entry type that records a policy set when it takes effect. */
export const POLICY_SET_ENTRY = "policy.set";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

const EvidenceEntrySchema = z.strictObject({
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
});

/**
 * The evidence bundle format (`warden evidence <id> -o file.json`, `ledger.evidence(id)`).
 * @example
 * import { EvidenceBundleSchema } from "agent-warden";
 * const bundle = EvidenceBundleSchema.parse(JSON.parse(readFileSync("refund-1042.json", "utf8")));
 */
export const EvidenceBundleSchema = z.strictObject({
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
});

/**
 * An evidence bundle. See `EvidenceBundleSchema`.
 * @example
 * import type { EvidenceBundle } from "agent-warden";
 * const bundle: EvidenceBundle = warden.ledger.evidence("tc_…");
 */
export type EvidenceBundle = z.infer<typeof EvidenceBundleSchema>;
export type EvidenceEntry = z.infer<typeof EvidenceEntrySchema>;

/**
 * What `verifyEvidence` proved, or exactly what failed.
 * @example
 * import type { EvidenceVerification } from "agent-warden";
 * const result: EvidenceVerification = verifyEvidence(bundle, { publicKey });
 * console.log(result.ok ? result.statement : result.problem);
 */
export type EvidenceVerification =
  | {
      ok: true;
      /** One sentence on what is proven. */
      statement: string;
      subject: EvidenceBundle["subject"];
      entries: { from: number; to: number; count: number };
      /** `cosigners`: names on other signature lines (unchecked); `witnessed`: cosignatures verified against the `witnesses` given. */
      checkpoint: { origin: string; size: number; root: string; cosigners: string[]; witnessed: Cosignature[] };
      /** `supplied`: the key was given out of band; `bundle`: the bundle's own key (proves integrity against that key only). */
      key: { verifierKey: string; source: "supplied" | "bundle" };
      policy: { hash: string; text: string; seq: number } | null;
      approvals: Array<{ seq: number; status: string; approvalId: string | undefined; reviewer: string | null; reason: string | undefined; ts: number }>;
      agentId: string | null;
    }
  | { ok: false; problem: string };

/** A stored ledger row as a bundle carries it: the exact bytes hashed, and its inclusion proof in `tree`. */
export function evidenceEntryOf(row: LedgerRow, tree: MerkleTree, size = tree.size): EvidenceEntry {
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
    prevHash: row.prev_hash,
    hash: row.hash,
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
 * Verifies an evidence bundle offline, on its own: each entry's hash over its exact bytes, each entry's
 * inclusion in the signed checkpoint's tree, the checkpoint's signature, that every entry belongs to the
 * subject, and the policy set's text against its hash. With `publicKey` (obtained out of band) the
 * checkpoint must be signed by that key; without it, by the key the bundle names (`key.source: "bundle"`).
 * @example
 * import { verifyEvidence } from "agent-warden";
 * const result = verifyEvidence(JSON.parse(readFileSync("refund-1042.json", "utf8")), { publicKey: "./ledger-public.pem" });
 * console.log(result.ok ? result.statement : `NOT VERIFIED: ${result.problem}`);
 */
export function verifyEvidence(input: unknown, options: { publicKey?: KeyObject | string | readonly (KeyObject | string)[] | undefined; witnesses?: readonly string[] | undefined } = {}): EvidenceVerification {
  const parsed = EvidenceBundleSchema.safeParse(input);
  if (!parsed.success) return { ok: false, problem: `not an evidence bundle: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}` };
  const bundle = parsed.data;
  const named = parseVerifierKey(bundle.log.verifierKey);
  if (named === undefined) return { ok: false, problem: "the bundle's verifier key is malformed" };
  let publicKey = named.publicKey;
  let source: "supplied" | "bundle" = "bundle";
  if (options.publicKey !== undefined) {
    // Several keys (a line of rotated keys): the bundle's checkpoint must be signed by one of them.
    let supplied: KeyObject[];
    try {
      supplied = (Array.isArray(options.publicKey) ? options.publicKey : [options.publicKey]).map((k: KeyObject | string) => parsePublicKey(k));
    } catch (error) {
      return { ok: false, problem: (error as Error).message };
    }
    source = "supplied";
    const match = supplied.find((k) => rawPublicKey(k).equals(rawPublicKey(named.publicKey)));
    if (match === undefined) return { ok: false, problem: `the checkpoint key in the bundle is not the key supplied${supplied.length > 1 ? " (nor any of them)" : ""}` };
    publicKey = match;
  }
  // A key signs the embedded ledger's log, or on a control plane one log per organization.
  const org = bundle.entries[0]!.org;
  const origin = bundle.log.origin === ledgerOrigin(publicKey) ? ledgerOrigin(publicKey) : orgLedgerOrigin(publicKey, org);
  if (bundle.log.origin !== origin || named.name !== origin) return { ok: false, problem: `the bundle names log "${bundle.log.origin}", but the key's log is "${origin}"` };
  if (origin !== ledgerOrigin(publicKey) && bundle.entries.some((entry) => entry.org !== org)) return { ok: false, problem: `the bundle mixes organizations, but its log holds only organization "${org}"` };
  const opened = openCheckpoint(bundle.checkpoint, { name: origin, publicKey });
  if ("problem" in opened) return { ok: false, problem: `the checkpoint ${opened.problem}` };
  const { head } = opened;
  // Each witness named must have cosigned this checkpoint: its head, outside the writer's reach, is then the same tree.
  const witnessKeys: WitnessKey[] = [];
  for (const vkey of options.witnesses ?? []) {
    const key = parseWitnessKey(vkey);
    if (key === undefined) return { ok: false, problem: `"${vkey}" is not a witness verifier key` };
    witnessKeys.push(key);
  }
  const { cosignatures: witnessed, invalid } = openCosignatures(bundle.checkpoint, witnessKeys);
  if (invalid.length > 0) return { ok: false, problem: `the checkpoint carries an invalid cosignature of witness ${invalid[0]}` };
  const missing = witnessKeys.find((k) => !witnessed.some((c) => c.witness === k.name));
  if (missing !== undefined) return { ok: false, problem: `the checkpoint is not cosigned by witness ${missing.name}` };
  const subject = bundle.subject;
  let policy: { hash: string; text: string; seq: number } | null = null;
  const approvals: Extract<EvidenceVerification, { ok: true }>["approvals"] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let agentId: string | null = null;
  let count = 0;
  let previousSeq = 0;
  for (const entry of bundle.entries) {
    const where = `entry ${entry.seq}`;
    if (entry.seq <= previousSeq) return { ok: false, problem: `${where} is out of order or repeated` };
    previousSeq = entry.seq;
    const problem = storedRowProblem({ seq: entry.seq, id: entry.id, ts: entry.ts, type: entry.type, org: entry.org, agent_id: entry.agentId, run_id: entry.runId, step_id: entry.stepId, tool_call_id: entry.toolCallId, actor: entry.actor, data: entry.dataJson, prev_hash: entry.prevHash, hash: entry.hash });
    if (problem !== undefined) return { ok: false, problem: `${where} ${problem}` };
    if (entry.seq > head.size) return { ok: false, problem: `${where} is beyond the checkpoint (size ${head.size})` };
    const proof = entry.inclusionProof.map((p) => Buffer.from(p, "base64"));
    if (proof.some((p) => p.length !== 32) || !verifyInclusion(Buffer.from(entry.hash, "hex"), entry.seq - 1, head.size, proof, head.root)) {
      return { ok: false, problem: `${where} is not included in the signed checkpoint of size ${head.size} (its inclusion proof fails)` };
    }
    const data = JSON.parse(entry.dataJson) as Record<string, unknown> | null;
    if (entry.type === POLICY_SET_ENTRY && entry.runId === null && entry.toolCallId === null) {
      const text = typeof data?.text === "string" ? data.text : undefined;
      const hash = typeof data?.hash === "string" ? data.hash : undefined;
      if (text === undefined || hash === undefined || createHash("sha256").update(text).digest("hex") !== hash) return { ok: false, problem: `${where}: the policy set's text does not match its hash` };
      if (policy !== null || count > 0) return { ok: false, problem: `${where}: a bundle holds one policy set entry, before the subject's entries` };
      policy = { hash, text, seq: entry.seq };
      continue;
    }
    const belongs = subject.kind === "run" ? entry.runId === subject.id : entry.toolCallId === subject.id;
    if (!belongs) return { ok: false, problem: `${where} does not belong to ${subject.kind} ${subject.id}` };
    if (entry.type === "approval.approved" || entry.type === "approval.rejected") {
      approvals.push({ seq: entry.seq, status: entry.type.slice("approval.".length), approvalId: str(data?.approvalId), reviewer: str(data?.reviewer) ?? entry.actor, reason: str(data?.reason), ts: entry.ts });
    }
    agentId ??= entry.agentId;
    first = Math.min(first, entry.seq);
    last = Math.max(last, entry.seq);
    count++;
  }
  if (count === 0) return { ok: false, problem: `the bundle holds no entry of ${subject.kind} ${subject.id}` };
  const root = Buffer.from(head.root).toString("base64");
  const approvalText = approvals.length === 0 ? "with no approval recorded" : approvals.map((a) => `${a.status} by ${a.reviewer ?? "unknown"} at ${new Date(a.ts).toISOString()}${a.reason ? ` ("${a.reason}")` : ""}`).join(", ");
  const statement = `${subject.kind === "run" ? "run" : "tool call"} ${subject.id}${agentId ? ` by agent ${agentId}` : ""} ${approvalText}${policy ? ` under policy set ${policy.hash.slice(0, 16)}…` : " (no policy set recorded before it)"}; entries ${first}..${last} (${count}) included in the checkpoint of size ${head.size} signed by ${bundle.log.verifierKey.split("+").slice(0, 2).join("+")}${source === "bundle" ? " (the bundle's own key: compare it with one obtained out of band)" : ""}${witnessed.length > 0 ? `, cosigned by witness${witnessed.length === 1 ? "" : "es"} ${witnessed.map((c) => `${c.witness} at ${new Date(c.time).toISOString()}`).join(", ")}` : ""}`;
  return { ok: true, statement, subject, entries: { from: first, to: last, count }, checkpoint: { origin, size: head.size, root, cosigners: opened.cosigners, witnessed }, key: { verifierKey: bundle.log.verifierKey, source }, policy, approvals, agentId };
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

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
