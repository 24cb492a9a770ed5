// Verifies an evidence bundle on its own, with WebCrypto only: each entry's hash over its exact bytes and
// its link to the entry before it, each entry's RFC 9162 inclusion in the signed checkpoint's tree, the
// checkpoint's C2SP signature, witness cosignatures, that every entry belongs to the subject, and the
// policy set's text against its hash. The same code runs in Node (`verifyEvidence`, `warden evidence
// verify`) and in a browser (the console's Verify page).
import { equalBytes, fromBase64, fromHex, toBase64, utf8 } from "./bytes.js";
import { sha256Hex } from "./crypto.js";
import { entryProblem, GENESIS_HASH } from "./entry.js";
import { readPublicKey, type PublicKeyInput } from "./keys.js";
import { verifyInclusion, type NodeCache } from "./merkle.js";
import { COSIGNATURE_V1, ledgerOrigin, openCheckpoint, openCosignatures, parseVerifierKey, type Cosignature, type NamedKey } from "./note.js";
import { EvidenceBundleSchema, POLICY_SET_ENTRY, type EvidenceBundle, type EvidenceEntry } from "./schema.js";

/** Why a bundle does not verify: a stable code per kind of failure. */
export type VerificationFailureCode =
  /** Not an evidence bundle (shape, types, format version). */
  | "bundle_malformed"
  /** The bundle's verifier key, a supplied key or a witness key cannot be read. */
  | "key_malformed"
  /** The key that signs the bundle's checkpoint is not one of the keys supplied out of band. */
  | "key_mismatch"
  /** The bundle names a log that is not its key's (or mixes organizations in one organization's log). */
  | "origin_mismatch"
  /** The checkpoint is not a C2SP signed note holding a tlog-checkpoint, or is for another log. */
  | "checkpoint_malformed"
  /** The checkpoint carries no signature of the log's key. */
  | "signature_missing"
  /** The log key's signature over the checkpoint does not verify. */
  | "signature_invalid"
  /** A cosignature of a trusted witness does not verify. */
  | "cosignature_invalid"
  /** A witness required by the caller did not cosign the checkpoint. */
  | "cosignature_missing"
  /** Entries out of order or repeated. */
  | "entry_order"
  /** An entry's data is not canonical JSON. */
  | "entry_malformed"
  /** An entry's content does not match its hash. */
  | "entry_hash"
  /** An entry's prevHash is not the hash of the entry before it. */
  | "entry_chain"
  /** An entry lies beyond the signed checkpoint. */
  | "entry_beyond_checkpoint"
  /** An entry's inclusion proof does not lead to the checkpoint's root. */
  | "inclusion_failed"
  /** The policy set's text does not match its hash, or the policy entry is misplaced. */
  | "policy_mismatch"
  /** An entry belongs to another run or call than the bundle's subject. */
  | "entry_foreign"
  /** The bundle holds no entry of its subject. */
  | "subject_empty";

export interface VerificationFailure {
  code: VerificationFailureCode;
  problem: string;
  /** The entry concerned, for entry-level failures. */
  seq?: number;
}

export interface VerifiedApproval {
  seq: number;
  status: string;
  approvalId: string | undefined;
  reviewer: string | null;
  reason: string | undefined;
  ts: number;
  /**
   * The request this decision answers, when the bundle holds it (same approval id, same call): the
   * policy that asked and the SHA-256 digest of the arguments the reviewer was shown.
   */
  request: { seq: number; policyId: string | undefined; argsDigest: string | undefined } | undefined;
}

/**
 * What a bundle's verification proved, or exactly what failed: `code` and `problem` of the first
 * failure, and in `failures` every failure found (entries are all checked; a bad key or checkpoint stops).
 * @example
 * import { verifyBundle, type BundleVerification } from "agent-warden/verify";
 * const result: BundleVerification = await verifyBundle(bundle);
 * console.log(result.ok ? result.statement : result.failures.map((f) => `${f.code}: ${f.problem}`));
 */
export type BundleVerification =
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
      approvals: VerifiedApproval[];
      agentId: string | null;
    }
  | { ok: false; code: VerificationFailureCode; problem: string; failures: VerificationFailure[] };

export interface VerifyBundleOptions {
  /**
   * The log's public key, obtained out of band (one of them, after key rotations): the checkpoint must
   * be signed by it. Without it, the bundle's own key is used (`key.source: "bundle"`).
   */
  publicKey?: PublicKeyInput | readonly PublicKeyInput[] | undefined;
  /** Witness verifier keys (`<name>+<id>+<base64>`): the checkpoint must carry a valid cosignature of each. */
  witnesses?: readonly string[] | undefined;
}

const failed = (failures: VerificationFailure[]): BundleVerification => ({ ok: false, code: failures[0]!.code, problem: failures[0]!.problem, failures });
const fail = (code: VerificationFailureCode, problem: string): BundleVerification => failed([{ code, problem }]);

/**
 * Verifies an evidence bundle offline, in Node or a browser (WebCrypto Ed25519 and SHA-256).
 * @example
 * import { verifyBundle } from "agent-warden/verify";
 * const result = await verifyBundle(JSON.parse(await file.text()), { publicKey: pinnedPem });
 * console.log(result.ok ? result.statement : `NOT VERIFIED: ${result.problem}`);
 */
export async function verifyBundle(input: unknown, options: VerifyBundleOptions = {}): Promise<BundleVerification> {
  const parsed = EvidenceBundleSchema.safeParse(input);
  if (!parsed.success) return fail("bundle_malformed", `not an evidence bundle: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
  const bundle = parsed.data;
  const named = await parseVerifierKey(bundle.log.verifierKey);
  if (named === undefined) return fail("key_malformed", "the bundle's verifier key is malformed");
  let source: "supplied" | "bundle" = "bundle";
  if (options.publicKey !== undefined) {
    // Several keys (a line of rotated keys): the bundle's checkpoint must be signed by one of them.
    const inputs: readonly PublicKeyInput[] = typeof options.publicKey === "string" || options.publicKey instanceof Uint8Array ? [options.publicKey] : options.publicKey;
    const supplied: Uint8Array[] = [];
    for (const key of inputs) {
      const raw = await readPublicKey(key);
      if (typeof raw === "string") return fail("key_malformed", `cannot read the Ed25519 public key: ${raw}`);
      supplied.push(raw);
    }
    source = "supplied";
    if (!supplied.some((k) => equalBytes(k, named.publicKey))) return fail("key_mismatch", `the checkpoint key in the bundle is not the key supplied${supplied.length > 1 ? " (nor any of them)" : ""}`);
  }
  // A key signs the embedded ledger's log, or on a control plane one log per organization.
  const org = bundle.entries[0]!.org;
  const own = await ledgerOrigin(named.publicKey);
  const origin = bundle.log.origin === own ? own : await ledgerOrigin(named.publicKey, org);
  if (bundle.log.origin !== origin || named.name !== origin) return fail("origin_mismatch", `the bundle names log "${bundle.log.origin}", but the key's log is "${origin}"`);
  if (origin !== own && bundle.entries.some((entry) => entry.org !== org)) return fail("origin_mismatch", `the bundle mixes organizations, but its log holds only organization "${org}"`);
  const opened = await openCheckpoint(bundle.checkpoint, { name: origin, publicKey: named.publicKey });
  if ("problem" in opened) return fail(opened.code === "checkpoint_origin" ? "checkpoint_malformed" : opened.code, `the checkpoint ${opened.problem}`);
  const { head } = opened;
  // Each witness named must have cosigned this checkpoint: its head, outside the writer's reach, is then the same tree.
  const witnessKeys: NamedKey[] = [];
  for (const vkey of options.witnesses ?? []) {
    const key = await parseVerifierKey(vkey, COSIGNATURE_V1);
    if (key === undefined) return fail("key_malformed", `"${vkey}" is not a witness verifier key`);
    witnessKeys.push(key);
  }
  const { cosignatures: witnessed, invalid } = await openCosignatures(opened.text, opened.signatures, witnessKeys);
  if (invalid.length > 0) return fail("cosignature_invalid", `the checkpoint carries an invalid cosignature of witness ${invalid[0]}`);
  const missing = witnessKeys.find((k) => !witnessed.some((c) => c.witness === k.name));
  if (missing !== undefined) return fail("cosignature_missing", `the checkpoint is not cosigned by witness ${missing.name}`);

  // Entries: each checked on its own (all at once: WebCrypto answers asynchronously), then in order.
  const nodes: NodeCache = new Map();
  const checks = await Promise.all(bundle.entries.map((entry) => checkEntry(entry, head.size, head.root, nodes)));
  const failures: VerificationFailure[] = [];
  const subject = bundle.subject;
  let policy: { hash: string; text: string; seq: number } | null = null;
  const approvals: VerifiedApproval[] = [];
  const requests = new Map<string, { seq: number; toolCallId: string | null; policyId: string | undefined; argsDigest: string | undefined }>();
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let agentId: string | null = null;
  let count = 0;
  let previous: EvidenceEntry | undefined;
  for (const [i, entry] of bundle.entries.entries()) {
    const where = `entry ${entry.seq}`;
    const add = (code: VerificationFailureCode, problem: string, separator = " ") => failures.push({ code, problem: `${where}${separator}${problem}`, seq: entry.seq });
    if (previous !== undefined && entry.seq <= previous.seq) {
      add("entry_order", "is out of order or repeated");
      continue;
    }
    const check = checks[i]!;
    if (check !== undefined) add(check.code, check.problem);
    // Consecutive entries in the bundle show the chain itself; the first entry of the log links to genesis.
    else if (previous !== undefined && previous.seq === entry.seq - 1 && entry.prevHash !== previous.hash) add("entry_chain", `does not link to entry ${previous.seq} (its prevHash is not that entry's hash)`);
    else if (entry.seq === 1 && entry.prevHash !== GENESIS_HASH) add("entry_chain", "is the first entry but does not link to the genesis hash");
    previous = entry;
    if (check !== undefined && check.code !== "inclusion_failed" && check.code !== "entry_beyond_checkpoint") continue;
    const data = JSON.parse(entry.dataJson) as Record<string, unknown> | null;
    if (entry.type === POLICY_SET_ENTRY && entry.runId === null && entry.toolCallId === null) {
      const text = str(data?.text);
      const hash = str(data?.hash);
      if (text === undefined || hash === undefined || (await sha256Hex(utf8(text))) !== hash) add("policy_mismatch", "the policy set's text does not match its hash", ": ");
      else if (policy !== null || count > 0) add("policy_mismatch", "a bundle holds one policy set entry, before the subject's entries", ": ");
      else policy = { hash, text, seq: entry.seq };
      continue;
    }
    const belongs = subject.kind === "run" ? entry.runId === subject.id : entry.toolCallId === subject.id;
    if (!belongs) {
      add("entry_foreign", `does not belong to ${subject.kind} ${subject.id}`);
      continue;
    }
    if (entry.type === "approval.requested" && str(data?.approvalId) !== undefined) requests.set(str(data?.approvalId)!, { seq: entry.seq, toolCallId: entry.toolCallId, policyId: str(data?.policyId), argsDigest: str(data?.argsDigest) });
    if (entry.type === "approval.approved" || entry.type === "approval.rejected") {
      const approvalId = str(data?.approvalId);
      const asked = approvalId === undefined ? undefined : requests.get(approvalId);
      const request = asked !== undefined && asked.toolCallId === entry.toolCallId ? { seq: asked.seq, policyId: asked.policyId, argsDigest: asked.argsDigest } : undefined;
      approvals.push({ seq: entry.seq, status: entry.type.slice("approval.".length), approvalId, reviewer: str(data?.reviewer) ?? entry.actor, reason: str(data?.reason), ts: entry.ts, request });
    }
    agentId ??= entry.agentId;
    first = Math.min(first, entry.seq);
    last = Math.max(last, entry.seq);
    count++;
  }
  if (failures.length > 0) return failed(failures);
  if (count === 0) return fail("subject_empty", `the bundle holds no entry of ${subject.kind} ${subject.id}`);

  const root = toBase64(head.root);
  const approvalText = approvals.length === 0 ? "with no approval recorded" : approvals.map((a) => `${a.status} by ${a.reviewer ?? "unknown"} at ${new Date(a.ts).toISOString()}${a.reason ? ` ("${a.reason}")` : ""}`).join(", ");
  const statement = `${subject.kind === "run" ? "run" : "tool call"} ${subject.id}${agentId ? ` by agent ${agentId}` : ""} ${approvalText}${policy ? ` under policy set ${policy.hash.slice(0, 16)}…` : " (no policy set recorded before it)"}; entries ${first}..${last} (${count}) included in the checkpoint of size ${head.size} signed by ${bundle.log.verifierKey.split("+").slice(0, 2).join("+")}${source === "bundle" ? " (the bundle's own key: compare it with one obtained out of band)" : ""}${witnessed.length > 0 ? `, cosigned by witness${witnessed.length === 1 ? "" : "es"} ${witnessed.map((c) => `${c.witness} at ${new Date(c.time).toISOString()}`).join(", ")}` : ""}`;
  return { ok: true, statement, subject, entries: { from: first, to: last, count }, checkpoint: { origin, size: head.size, root, cosigners: opened.cosigners, witnessed }, key: { verifierKey: bundle.log.verifierKey, source }, policy, approvals, agentId };
}

/** One entry against its own hash and the checkpoint's tree. */
async function checkEntry(entry: EvidenceEntry, size: number, root: Uint8Array, nodes: NodeCache): Promise<{ code: VerificationFailureCode; problem: string } | undefined> {
  const problem = await entryProblem(entry);
  if (problem !== undefined) return problem;
  if (entry.seq > size) return { code: "entry_beyond_checkpoint", problem: `is beyond the checkpoint (size ${size})` };
  const proof = entry.inclusionProof.map((p) => fromBase64(p));
  const hash = fromHex(entry.hash)!;
  if (proof.some((p) => p === undefined || p.length !== 32) || !(await verifyInclusion(hash, entry.seq - 1, size, proof as Uint8Array[], root, nodes))) {
    return { code: "inclusion_failed", problem: `is not included in the signed checkpoint of size ${size} (its inclusion proof fails)` };
  }
  return undefined;
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
