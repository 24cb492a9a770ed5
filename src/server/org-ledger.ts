// The control plane's audit ledger: one hash chain per organization, so an organization's export
// verifies on its own and its sequence numbers say nothing of other organizations' activity.
// Appends take the organization's head row first (an UPDATE, which PostgreSQL locks until commit
// and SQLite runs inside its write transaction), so concurrent writers, even on several replicas,
// extend one chain without forks.
import { sign, verify as verifySignature } from "node:crypto";
import { canonicalJson } from "../internal/canonical.js";
import { checkpointMessage, GENESIS_HASH, hashEntry, type LedgerEntry } from "../ledger/chain.js";
import { LedgerIntegrityError, NotFoundError } from "../errors.js";
import { evidenceEntryOf, POLICY_SET_ENTRY, policySetDraft, type EvidenceBundle } from "../ledger/evidence.js";
import type { SigningKey } from "../ledger/keys.js";
import { decodeFrontier, encodeFrontier, equalBytes, MerkleFrontier, MerkleTree } from "../ledger/merkle.js";
import { WitnessJudge, type WitnessCheck } from "../ledger/witnessed.js";
import { cosignersOf, witnessNames } from "./org-witnessing.js";
import { checkpointText, openCheckpoint, orgLedgerOrigin, signNote, verifierKey } from "../ledger/note.js";
import { toLedgerEntry } from "../store/sqlite-store.js";
import { all, get, run, type Query, type SqlValue } from "./sql.js";
import type { LedgerReport } from "./store.js";

/**  A ledger entry before it has a place in its organization's chain; `dataJson` is canonical. */
export interface OrgLedgerDraft {
  id: string;
  ts: number;
  type: string;
  agentId: string | null;
  runId: string | null;
  stepId: string | null;
  toolCallId: string | null;
  actor: string | null;
  dataJson: string;
}

/**  */
export interface OrgLedgerRow {
  org: string;
  seq: number;
  id: string;
  ts: number;
  type: string;
  agent_id: string | null;
  run_id: string | null;
  step_id: string | null;
  tool_call_id: string | null;
  actor: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

/**  How often an organization's head is signed. */
export interface CheckpointPolicy {
  every: number;
  intervalMs: number;
}

const VERIFY_PAGE = 1000;

/**  */
export function toOrgLedgerEntry(row: OrgLedgerRow): LedgerEntry {
  // PostgreSQL hands bigint columns back as strings.
  return toLedgerEntry({ ...row, seq: Number(row.seq), ts: Number(row.ts) });
}

/**
 * Appends to organizations' chains and signs their checkpoints. Remembers which heads this
 * process wrote itself, so it never signs over entries it did not write or check.
 */
export class OrgLedger {
  readonly #signer: SigningKey;
  readonly #policy: CheckpointPolicy;
  readonly #trusted = new Map<string, { seq: number; hash: string }>();
  /** The Merkle frontier at a trusted head, extended as this process appends: a checkpoint then reads no entries. */
  readonly #frontiers = new Map<string, { hash: string; frontier: MerkleFrontier }>();
  readonly #onError: (error: unknown) => void;

  constructor(signer: SigningKey, policy: CheckpointPolicy, onError: (error: unknown) => void) {
    this.#signer = signer;
    this.#policy = policy;
    this.#onError = onError;
  }

  get publicKey() {
    return this.#signer.publicKey;
  }

  /** Appends one entry inside the caller's transaction; signs a checkpoint when one is due. */
  *append(org: string, draft: OrgLedgerDraft): Query<{ seq: number; hash: string }> {
    yield* run("INSERT INTO org_ledger_heads (org, seq, hash, checkpoint_seq, checkpoint_ts) VALUES (?, 0, ?, 0, 0) ON CONFLICT (org) DO NOTHING", org, GENESIS_HASH);
    // Taking the head row serializes appenders of this organization until the transaction ends.
    const head = (yield* get<{ seq: number; hash: string; checkpoint_seq: number; checkpoint_ts: number }>(
      "UPDATE org_ledger_heads SET seq = seq + 1 WHERE org = ? RETURNING seq, hash, checkpoint_seq, checkpoint_ts",
      org,
    ))!;
    const seq = Number(head.seq);
    const previous = { seq: seq - 1, hash: head.hash };
    const entry = { seq, id: draft.id, ts: draft.ts, type: draft.type, org, agentId: draft.agentId, runId: draft.runId, stepId: draft.stepId, toolCallId: draft.toolCallId, actor: draft.actor, prevHash: head.hash };
    const hash = hashEntry(entry, draft.dataJson);
    yield* run(
      "INSERT INTO org_ledger (org, seq, id, ts, type, agent_id, run_id, step_id, tool_call_id, actor, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
      org,
      seq,
      draft.id,
      draft.ts,
      draft.type,
      draft.agentId,
      draft.runId,
      draft.stepId,
      draft.toolCallId,
      draft.actor,
      draft.dataJson,
      head.hash,
      hash,
    );
    yield* run("UPDATE org_ledger_heads SET hash = ? WHERE org = ?", hash, org);
    const trusted = this.#trusted.get(org);
    const extendsTrusted = seq === 1 || (trusted !== undefined && trusted.seq === previous.seq && trusted.hash === previous.hash);
    this.#extend(org, extendsTrusted, previous.seq, [hash]);
    if (extendsTrusted) this.#trusted.set(org, { seq, hash });
    else this.#trusted.delete(org);
    const now = Date.now();
    if (seq - Number(head.checkpoint_seq) >= this.#policy.every || now - Number(head.checkpoint_ts) >= this.#policy.intervalMs) yield* this.#checkpoint(org, { seq, hash }, now);
    return { seq, hash };
  }

  /**
   * Appends entries in order inside the caller's transaction, with a fixed number of statements: the
   * head row is taken once for all of them, the rows go in as one array per column (PostgreSQL's
   * `unnest`; with `each`, for SQLite, one prepared insert per entry, the cheap way there), and a
   * checkpoint that falls due is signed over the last one.
   */
  *appendMany(org: string, drafts: readonly OrgLedgerDraft[], each = false): Query<void> {
    if (drafts.length === 0) return;
    // Taking the head row (inserted at the chain's start) serializes appenders of this organization until the transaction ends.
    const head = (yield* get<{ seq: number; hash: string; checkpoint_seq: number; checkpoint_ts: number }>(
      "INSERT INTO org_ledger_heads (org, seq, hash, checkpoint_seq, checkpoint_ts) VALUES (?, ?, ?, 0, 0) ON CONFLICT (org) DO UPDATE SET seq = org_ledger_heads.seq + excluded.seq RETURNING seq, hash, checkpoint_seq, checkpoint_ts",
      org,
      drafts.length,
      GENESIS_HASH,
    ))!;
    const last = Number(head.seq);
    const first = last - drafts.length + 1;
    let prevHash = head.hash;
    const rows: SqlValue[][] = [];
    const hashes: string[] = [];
    for (const [offset, draft] of drafts.entries()) {
      const seq = first + offset;
      const entry = { seq, id: draft.id, ts: draft.ts, type: draft.type, org, agentId: draft.agentId, runId: draft.runId, stepId: draft.stepId, toolCallId: draft.toolCallId, actor: draft.actor, prevHash };
      const hash = hashEntry(entry, draft.dataJson);
      rows.push([seq, draft.id, draft.ts, draft.type, draft.agentId, draft.runId, draft.stepId, draft.toolCallId, draft.actor, draft.dataJson, prevHash, hash]);
      hashes.push(hash);
      prevHash = hash;
    }
    if (each) {
      for (const row of rows) yield* run("INSERT INTO org_ledger (org, seq, id, ts, type, agent_id, run_id, step_id, tool_call_id, actor, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", org, ...row);
      yield* run("UPDATE org_ledger_heads SET hash = ? WHERE org = ?", prevHash, org);
    }
    const columns = each ? [] : (rows[0]!.map((_, column) => rows.map((row) => row[column] ?? null)) as unknown as SqlValue[]);
    if (!each) yield* run(
      `WITH entries AS (
         INSERT INTO org_ledger (org, seq, id, ts, type, agent_id, run_id, step_id, tool_call_id, actor, data, prev_hash, hash)
         SELECT ?1::text, u.* FROM unnest(?2::bigint[], ?3::text[], ?4::bigint[], ?5::text[], ?6::text[], ?7::text[], ?8::text[], ?9::text[], ?10::text[], ?11::text[], ?12::text[], ?13::text[])
           AS u(seq, id, ts, type, agent_id, run_id, step_id, tool_call_id, actor, data, prev_hash, hash)
       ) UPDATE org_ledger_heads SET hash = ?14 WHERE org = ?1`,
      org,
      ...columns,
      prevHash,
    );
    const trusted = this.#trusted.get(org);
    const extendsTrusted = first === 1 || (trusted !== undefined && trusted.seq === first - 1 && trusted.hash === head.hash);
    this.#extend(org, extendsTrusted, first - 1, hashes);
    if (extendsTrusted) this.#trusted.set(org, { seq: last, hash: prevHash });
    else this.#trusted.delete(org);
    const now = Date.now();
    if (last - Number(head.checkpoint_seq) >= this.#policy.every || now - Number(head.checkpoint_ts) >= this.#policy.intervalMs) yield* this.#checkpoint(org, { seq: last, hash: prevHash }, now);
  }

  /** Keeps the organization's frontier at its trusted head: extended by entries that extend it, dropped otherwise. */
  #extend(org: string, extendsTrusted: boolean, before: number, hashes: readonly string[]): void {
    const frontier = before === 0 ? new MerkleFrontier() : this.#frontiers.get(org)?.frontier;
    if (!extendsTrusted || frontier === undefined || frontier.size !== before || hashes.length === 0) {
      this.#frontiers.delete(org);
      return;
    }
    for (const hash of hashes) frontier.push(Buffer.from(hash, "hex"));
    this.#frontiers.set(org, { hash: hashes[hashes.length - 1]!, frontier });
  }

  /** Signs the organization's current head if entries were added since its last checkpoint. */
  *checkpointNow(org: string): Query<void> {
    const head = yield* get<{ seq: number; hash: string; checkpoint_seq: number }>("SELECT seq, hash, checkpoint_seq FROM org_ledger_heads WHERE org = ?", org);
    if (head === undefined || Number(head.seq) <= Number(head.checkpoint_seq)) return;
    yield* this.#checkpoint(org, { seq: Number(head.seq), hash: head.hash }, Date.now());
  }

  *#checkpoint(org: string, head: { seq: number; hash: string }, now: number): Query<void> {
    const trusted = this.#trusted.get(org);
    if (trusted === undefined || trusted.seq !== head.seq || trusted.hash !== head.hash) {
      // Never vouch for entries nobody checked: another writer of the database (another replica, or a
      // forger) wrote since. What the newest checkpoint signed with this key covers was checked by
      // whoever signed it; the entries after it are checked here, so a checkpoint costs the entries
      // since the last one, not the whole chain, while several replicas take turns appending.
      const problem = yield* verifySince(org, head, this.#signer.publicKey, this.#signer.keyId);
      if (problem !== undefined) {
        this.#onError(new Error(`ledger checkpoint of organization "${org}" not signed: ${problem}`));
        return;
      }
      this.#trusted.set(org, head);
    }
    const signature = sign(null, checkpointMessage(head.seq, head.hash), this.#signer.privateKey).toString("base64url");
    // The tree head too, as a C2SP checkpoint witnesses can cosign, and the tree's right edge for the next one.
    const held = this.#frontiers.get(org);
    // Held only while every entry since came from this process: the same head, by size and hash, is the same tree.
    const frontier = held !== undefined && held.frontier.size === head.seq && held.hash === head.hash ? held.frontier : yield* orgFrontier(org, head.seq, this.#signer);
    this.#frontiers.set(org, { hash: head.hash, frontier });
    const origin = orgLedgerOrigin(this.#signer.publicKey, org);
    const note = signNote(checkpointText({ origin, size: head.seq, root: frontier.root() }), origin, this.#signer.privateKey);
    yield* run(
      "INSERT INTO org_checkpoints (org, seq, hash, ts, key_id, signature, note, frontier) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (org, seq) DO UPDATE SET hash = excluded.hash, ts = excluded.ts, key_id = excluded.key_id, signature = excluded.signature, note = excluded.note, frontier = excluded.frontier",
      org,
      head.seq,
      head.hash,
      now,
      this.#signer.keyId,
      signature,
      note,
      encodeFrontier(frontier),
    );
    yield* run("UPDATE org_ledger_heads SET checkpoint_seq = ?, checkpoint_ts = ? WHERE org = ?", head.seq, now, org);
  }
}

/**
 * The organization's tree head at `size` as a frontier: from the newest stored frontier at or below `size`
 * whose fold matches the root its signed note carries (this key's), extended by the entry hashes since.
 * Without one, from the first entry. Reads the entries since that checkpoint, never the whole log twice.
 */
export function* orgFrontier(org: string, size: number, signer: Pick<SigningKey, "publicKey">): Query<MerkleFrontier> {
  let frontier = new MerkleFrontier();
  const origin = orgLedgerOrigin(signer.publicKey, org);
  const base = yield* get<{ seq: number; note: string | null; frontier: string | null }>("SELECT seq, note, frontier FROM org_checkpoints WHERE org = ? AND seq <= ? AND frontier IS NOT NULL ORDER BY seq DESC LIMIT 1", org, size);
  if (base?.note != null) {
    const opened = openCheckpoint(base.note, { name: origin, publicKey: signer.publicKey });
    const resumed = "head" in opened && opened.head.size === Number(base.seq) ? decodeFrontier(Number(base.seq), base.frontier, opened.head.root) : undefined;
    if (resumed !== undefined) frontier = resumed;
  }
  while (frontier.size < size) {
    const page = yield* all<{ seq: number; hash: string }>("SELECT seq, hash FROM org_ledger WHERE org = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?", org, frontier.size, size, VERIFY_PAGE * 10);
    if (page.length === 0 || Number(page[0]!.seq) !== frontier.size + 1) throw new LedgerIntegrityError(frontier.size + 1, `entry ${frontier.size + 1} of organization "${org}" is missing`);
    for (const row of page) {
      if (Number(row.seq) !== frontier.size + 1) throw new LedgerIntegrityError(frontier.size + 1, `entry ${frontier.size + 1} of organization "${org}" is missing`);
      frontier.push(Buffer.from(row.hash, "hex"));
    }
  }
  return frontier;
}

/**  Appends a server-made entry (a decision, a key change) with canonical data. */
export function draftOf(type: string, ids: { agentId?: string | null | undefined; runId?: string | null | undefined; toolCallId?: string | null | undefined }, data: Record<string, unknown>, actor: string | null, id: string, ts = Date.now()): OrgLedgerDraft {
  return { id, ts, type, agentId: ids.agentId ?? null, runId: ids.runId ?? null, stepId: null, toolCallId: ids.toolCallId ?? null, actor, dataJson: canonicalJson(data) };
}

/**
 * The ledger entry recording a policy set version as it takes effect (its hash and text), so evidence
 * bundles show which policy a decision was made under.
 */
export function policySetOrgDraft(policySet: unknown, actor: string | null, id: string, ts = Date.now()): OrgLedgerDraft {
  const draft = policySetDraft({ org: "", policySet, actor, id, ts });
  return { id, ts, type: draft.type, agentId: null, runId: null, stepId: null, toolCallId: null, actor, dataJson: draft.dataJson };
}

/**
 * An evidence bundle for one run or tool call of an organization: its entries, the policy set entry in
 * force before them, inclusion proofs, and a tree head of the organization's log signed now, over a
 * chain verified first (the control plane never vouches for entries it has not checked). With `witnesses`
 * (verifier keys), under the stored checkpoint most of them cosigned, and `warnings` naming any that did not.
 */
export function* orgEvidence(org: string, id: string, signer: SigningKey, options: { witnesses?: readonly string[] | undefined } = {}): Query<EvidenceBundle> {
  const report = yield* verifyChain(org, signer.publicKey, signer.keyId);
  if (!report.ok) throw new LedgerIntegrityError(report.firstBadSeq ?? report.entries + 1, report.problem);
  let kind: "run" | "toolCall" = "toolCall";
  let rows = yield* all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND tool_call_id = ? ORDER BY seq", org, id);
  if (rows.length === 0) {
    kind = "run";
    rows = yield* all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND run_id = ? ORDER BY seq", org, id);
  }
  if (rows.length === 0 || report.head === null) throw new NotFoundError("run or tool call in the ledger", id);
  const policy = yield* get<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND type = ? AND run_id IS NULL AND tool_call_id IS NULL AND seq < ? ORDER BY seq DESC LIMIT 1", org, POLICY_SET_ENTRY, Number(rows[0]!.seq));
  const hashes: Buffer[] = [];
  for (let after = 0; after < report.head.seq; ) {
    const page = yield* all<{ seq: number; hash: string }>("SELECT seq, hash FROM org_ledger WHERE org = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?", org, after, report.head.seq, VERIFY_PAGE * 10);
    if (page.length === 0) break;
    for (const row of page) hashes.push(Buffer.from(row.hash, "hex"));
    after = Number(page[page.length - 1]!.seq);
  }
  const tree = new MerkleTree(hashes);
  const origin = orgLedgerOrigin(signer.publicKey, org);
  // A stored checkpoint covering the entries, cosigned by the configured witnesses where one is: it proves
  // more than a head signed now. Its root must be the tree's at its size.
  const last = Number(rows[rows.length - 1]!.seq);
  const stored = (yield* all<{ seq: number; note: string }>("SELECT seq, note FROM org_checkpoints WHERE org = ? AND seq >= ? AND seq <= ? AND note IS NOT NULL ORDER BY seq DESC LIMIT 64", org, last, report.head.seq))
    .map((row) => ({ size: Number(row.seq), note: row.note }))
    .filter(({ size, note }) => {
      const opened = openCheckpoint(note, { name: origin, publicKey: signer.publicKey });
      return "head" in opened && opened.head.size === size && equalBytes(opened.head.root, tree.root(size));
    });
  const witnesses = options.witnesses ?? [];
  const cosigned = (note: string) => cosignersOf(note, witnesses).length;
  const chosen = witnesses.length === 0 ? undefined : stored.reduce<{ size: number; note: string } | undefined>((best, c) => (best === undefined || cosigned(c.note) > cosigned(best.note) ? c : best), undefined);
  const size = chosen?.size ?? report.head.seq;
  const checkpoint = chosen?.note ?? signNote(checkpointText({ origin, size, root: tree.root(size) }), origin, signer.privateKey);
  const missing = witnessNames(witnesses).filter((name) => !cosignersOf(checkpoint, witnesses).includes(name));
  const warnings = missing.map((name) => `the checkpoint (size ${size}) is not cosigned by witness ${name}: these entries are not witnessed yet, or the witness did not answer`);
  // PostgreSQL hands bigint columns back as strings.
  const entries = (policy ? [policy, ...rows] : rows).map((raw) => evidenceEntryOf({ ...raw, seq: Number(raw.seq), ts: Number(raw.ts) }, tree, size));
  return { format: "agent-warden.evidence/1", subject: { kind, id }, log: { origin, verifierKey: verifierKey(origin, signer.publicKey) }, checkpoint, entries, createdAt: Date.now(), ...(warnings.length > 0 && { warnings }) };
}

/**
 * Checks the entries of an organization's chain after its newest checkpoint signed with this key, up to
 * `head`: each chains to the one before, matches its hash, and the last is `head`. Gives the problem
 * found, or undefined.
 */
function* verifySince(org: string, head: { seq: number; hash: string }, publicKey: SigningKey["publicKey"], keyId: string): Query<string | undefined> {
  let expected = 1;
  let prevHash = GENESIS_HASH;
  const checkpoint = yield* get<{ seq: number; hash: string; signature: string }>("SELECT seq, hash, signature FROM org_checkpoints WHERE org = ? AND key_id = ? AND seq <= ? ORDER BY seq DESC LIMIT 1", org, keyId, head.seq);
  if (checkpoint !== undefined && verifySignature(null, checkpointMessage(Number(checkpoint.seq), checkpoint.hash), publicKey, Buffer.from(checkpoint.signature, "base64url"))) {
    const entry = yield* get<{ hash: string }>("SELECT hash FROM org_ledger WHERE org = ? AND seq = ?", org, Number(checkpoint.seq));
    if (entry?.hash !== checkpoint.hash) return `entry ${Number(checkpoint.seq)} does not match its signed checkpoint`;
    expected = Number(checkpoint.seq) + 1;
    prevHash = checkpoint.hash;
  }
  while (expected <= head.seq) {
    const rows = yield* all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND seq >= ? AND seq <= ? ORDER BY seq LIMIT ?", org, expected, head.seq, VERIFY_PAGE);
    if (rows.length === 0) return `entry ${expected} is missing`;
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expected) return `entry ${expected} is missing`;
      if (row.prev_hash !== prevHash) return `entry ${seq} does not chain to the previous entry`;
      let dataJson: string;
      try {
        dataJson = canonicalJson(JSON.parse(row.data));
      } catch {
        return `entry ${seq}: data is not valid JSON`;
      }
      const entry = { seq, id: row.id, ts: Number(row.ts), type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash: row.prev_hash };
      if (dataJson !== row.data || row.org !== org || hashEntry(entry, dataJson) !== row.hash) return `entry ${seq} does not match its hash`;
      prevHash = row.hash;
      expected++;
    }
  }
  return prevHash === head.hash ? undefined : "the head moved";
}

/**
 * Re-hashes one organization's chain and checks its signed checkpoints. Names the first
 * entry that was modified, deleted, inserted or moved, by its place in this organization's chain.
 */
export function* verifyChain(org: string, publicKey: SigningKey["publicKey"], keyId: string, options: { witnesses?: readonly WitnessCheck[] | undefined } = {}): Query<LedgerReport> {
  let expected = 1;
  let prevHash = GENESIS_HASH;
  const hashes = new Map<number, string>();
  const judge = options.witnesses === undefined || options.witnesses.length === 0 ? undefined : new WitnessJudge(options.witnesses);
  const checkpoints = (yield* all<{ seq: number; hash: string; key_id: string; signature: string; note: string | null }>(`SELECT seq, hash, key_id, signature, ${judge ? "note" : "NULL AS note"} FROM org_checkpoints WHERE org = ? ORDER BY seq`, org)).map((c) => ({ ...c, seq: Number(c.seq) }));
  const checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
  // Witnesses judge tree heads: the roots at the sizes their heads and the stored notes name.
  const frontier = judge ? new MerkleFrontier() : undefined;
  const rootSizes = new Set([...(judge?.sizes ?? []), ...checkpoints.filter((c) => c.note !== null).map((c) => c.seq)]);
  const roots = new Map<number, Uint8Array>();
  const fail = (seq: number, problem: string): LedgerReport => ({ ok: false, entries: expected - 1, firstBadSeq: seq, problem });
  for (;;) {
    const rows = yield* all<OrgLedgerRow>("SELECT * FROM org_ledger WHERE org = ? AND seq >= ? ORDER BY seq LIMIT ?", org, expected, VERIFY_PAGE);
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expected) return fail(expected, `missing (next entry found is ${seq})`);
      if (row.prev_hash !== prevHash) return fail(seq, "does not chain to the previous entry (entry before it deleted, inserted or changed)");
      let dataJson: string;
      try {
        dataJson = canonicalJson(JSON.parse(row.data));
      } catch {
        return fail(seq, "data is not valid JSON");
      }
      // The stored bytes are what the hash covers: a text that parses to the same value but differs is a rewrite.
      if (dataJson !== row.data) return fail(seq, "content does not match its hash (modified)");
      const entry = { seq, id: row.id, ts: Number(row.ts), type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash: row.prev_hash };
      if (row.org !== org || hashEntry(entry, dataJson) !== row.hash) return fail(seq, "content does not match its hash (modified)");
      if (checkpointSeqs.has(seq)) hashes.set(seq, row.hash);
      if (frontier !== undefined) {
        frontier.push(Buffer.from(row.hash, "hex"));
        if (rootSizes.has(seq)) roots.set(seq, frontier.root());
      }
      prevHash = row.hash;
      expected++;
    }
    if (rows.length < VERIFY_PAGE) break;
  }
  const count = expected - 1;
  const head = yield* get<{ seq: number; hash: string }>("SELECT seq, hash FROM org_ledger_heads WHERE org = ?", org);
  if (head !== undefined && (Number(head.seq) !== count || head.hash !== prevHash)) return fail(count + 1, `entries after ${count} are missing (the chain's head is entry ${Number(head.seq)})`);
  for (const checkpoint of checkpoints) {
    const bad = (problem: string): LedgerReport => ({ ok: false, entries: count, firstBadSeq: Math.min(checkpoint.seq, count + 1), problem });
    if (checkpoint.seq > count) return bad(`entries after ${count} are missing (a signed checkpoint covers entry ${checkpoint.seq})`);
    if (hashes.get(checkpoint.seq) !== checkpoint.hash) return bad(`does not match the signed checkpoint at entry ${checkpoint.seq}`);
    if (checkpoint.key_id !== keyId) return bad(`checkpoint at entry ${checkpoint.seq} was signed by an unknown key`);
    if (!verifySignature(null, checkpointMessage(checkpoint.seq, checkpoint.hash), publicKey, Buffer.from(checkpoint.signature, "base64url"))) return bad(`checkpoint signature at entry ${checkpoint.seq} is invalid`);
  }
  const tip = count === 0 ? null : { seq: count, hash: prevHash };
  if (judge === undefined) return { ok: true, entries: count, checkpoints: checkpoints.length, head: tip };
  const origin = orgLedgerOrigin(publicKey, org);
  for (const checkpoint of checkpoints) {
    if (checkpoint.note === null) continue;
    const opened = openCheckpoint(checkpoint.note, { name: origin, publicKey });
    const root = roots.get(checkpoint.seq);
    if ("problem" in opened || opened.head.size !== checkpoint.seq || root === undefined || !equalBytes(root, opened.head.root)) {
      return { ok: false, entries: count, firstBadSeq: Math.min(checkpoint.seq, count + 1), problem: `the signed tree head at entry ${checkpoint.seq} does not match the entries` };
    }
    judge.noteStored(checkpoint.note, opened.head);
  }
  const witnesses = judge.judge(count, roots, (name) => (name === origin ? publicKey : undefined));
  const broken = witnesses.find((w) => w.failure === "rewritten" || w.failure === "truncated");
  if (broken !== undefined) return { ok: false, entries: count, firstBadSeq: broken.failure === "truncated" ? count + 1 : 1, problem: broken.problem!, witnesses };
  // The head is witnessed once every witness holds a head of all the entries.
  const upTo = Math.min(...witnesses.map((w) => (w.holds ? w.newest : 0)));
  return { ok: true, entries: count, checkpoints: checkpoints.length, head: tip, witnesses, witnessed: { upTo, head: upTo === count } };
}

/**  Tables of the per-organization ledger, in SQL both databases accept. */
export function orgLedgerSchema(types: { int: string; text: string }): string {
  const { int, text } = types;
  return `
CREATE TABLE IF NOT EXISTS org_ledger (
  org ${text} NOT NULL, seq ${int} NOT NULL, id ${text} NOT NULL, ts ${int} NOT NULL, type ${text} NOT NULL, agent_id ${text}, run_id ${text},
  step_id ${text}, tool_call_id ${text}, actor ${text}, data ${text} NOT NULL, prev_hash ${text} NOT NULL, hash ${text} NOT NULL, PRIMARY KEY (org, seq)
);
CREATE INDEX IF NOT EXISTS org_ledger_by_run ON org_ledger (org, run_id, seq);
CREATE TABLE IF NOT EXISTS org_ledger_heads (
  org ${text} PRIMARY KEY, seq ${int} NOT NULL, hash ${text} NOT NULL, checkpoint_seq ${int} NOT NULL, checkpoint_ts ${int} NOT NULL
);
CREATE TABLE IF NOT EXISTS org_checkpoints (
  org ${text} NOT NULL, seq ${int} NOT NULL, hash ${text} NOT NULL, ts ${int} NOT NULL, key_id ${text} NOT NULL, signature ${text} NOT NULL, PRIMARY KEY (org, seq)
);
`;
}
