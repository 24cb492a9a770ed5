import { createWriteStream } from "node:fs";
import { verify as verifySignature, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { InvalidStateError, LedgerIntegrityError, NotFoundError } from "../errors.js";
import { dirname, relative, isAbsolute } from "node:path";
import { LINKED_LEDGER_COLUMNS, toLedgerEntry, type LedgerRow, type LinkedLedgerRow, type SqliteStore } from "../store/sqlite-store.js";
import { ledgerCallMatch, ledgerRunMatch } from "../store/schema.js";
import { checkpointMessage, checkStoredRow, GENESIS_HASH, rowWasAt, storedHash, storedHashHex, type LedgerEntry } from "./chain.js";
import { keyIdOf } from "./keys.js";
import { KEY_ROTATED_ENTRY, rotatedKeyOf, trustedKeys } from "./keyring.js";
import { equalBytes, MerkleFrontier, MerkleTree } from "./merkle.js";
import { evidenceEntryOf, ledgerVerifierKey, POLICY_SET_ENTRY, type EvidenceBundle } from "./evidence.js";
import { ledgerOrigin, openCheckpoint, parseNote } from "./note.js";
import { readVerifiedPosition, verifiedPositionPath, writeVerifiedPosition, type VerifiedPosition } from "./verified-position.js";
import { WitnessJudge, type WitnessCheck, type WitnessedHeads } from "./witnessed.js";

/**
 * What signed checkpoints cover: entries up to `coveredTo` are vouched for by a signature of the trusted
 * key; the `uncovered` entries after it by nothing but the hash chain, which anyone with write access to
 * the store file can recompute. Fewer than `interval` uncovered entries is the normal state between two
 * checkpoints; more means checkpoints are missing and the ledger does not verify.
 * @example
 * import type { LedgerCoverage } from "agent-warden";
 * const result = warden.ledger.verify();
 * if ("coverage" in result) console.log(`signed up to ${result.coverage.coveredTo}, ${result.coverage.uncovered} after it`);
 */
export interface LedgerCoverage {
  coveredTo: number;
  uncovered: number;
  interval: number;
}

/**
 * The key checkpoint signatures were checked against. `source: "supplied"` is a key given out of band
 * (`verify({ publicKey })`, `--public-key`); `"configured"` the client's configured signing key;
 * `"store"` a key read from beside the store, which whoever can rewrite the store can usually replace too.
 * @example
 * import type { TrustedLedgerKey } from "agent-warden";
 * const key: TrustedLedgerKey = warden.ledger.verify().key;
 * if (key.source === "store") console.warn("checkpoints checked against the store's own key");
 */
export interface TrustedLedgerKey {
  keyId: string;
  source: "supplied" | "configured" | "store";
  /** Earlier keys (rotated out) whose checkpoints verified too, oldest first; absent if none. */
  retired?: string[];
}

/**
 * The outcome of `ledger.verify()`: the verified head to publish or compare, or why it does not verify.
 * `reason: "tampered"` names the first bad entry; `reason: "uncovered"` means the chain holds but too
 * many entries at its end are covered by no signed checkpoint (a rewrite without the key looks like this).
 * @example
 * import type { LedgerVerification } from "agent-warden";
 * const result: LedgerVerification = warden.ledger.verify();
 * console.log(result.ok ? `intact up to ${result.head.hash}` : `${result.reason} at ${result.firstBadSeq}: ${result.problem}`);
 */
export type LedgerVerification =
  | { ok: true; entries: number; checkpoints: number; head: { seq: number; hash: string }; coverage: LedgerCoverage; key: TrustedLedgerKey; witnesses?: WitnessedHeads[] }
  | { ok: false; reason: "tampered"; entries: number; firstBadSeq: number; problem: string; key: TrustedLedgerKey; witnesses?: WitnessedHeads[] }
  | { ok: false; reason: "uncovered" | "unwitnessed"; entries: number; firstBadSeq: number; problem: string; checkpoints: number; head: { seq: number; hash: string }; coverage: LedgerCoverage; key: TrustedLedgerKey; witnesses?: WitnessedHeads[] };

/**
 * Options of `ledger.verify()`.
 * @example
 * import type { LedgerVerifyOptions } from "agent-warden";
 * const options: LedgerVerifyOptions = { publicKey: readFileSync("./ledger-public.pem", "utf8") };
 * warden.ledger.verify(options);
 */
export interface LedgerVerifyOptions {
  /**
   * The checkpoint key's public half, obtained out of band: PEM, a PEM file's path, base64 raw key, or a
   * KeyObject; or several (after rotations), current key last. Keys handed over to by a `ledger.key_rotated`
   * entry under a checkpoint of a trusted key are trusted too.
   */
  publicKey?: KeyObject | string | readonly (KeyObject | string)[] | undefined;
  /** Uncovered entries tolerated after the last checkpoint; default the store's checkpoint interval. */
  checkpointEvery?: number | undefined;
  /**
   * Re-hash every entry from the first. By default verification starts from the signed checkpoint where
   * the last one ended (kept in `<store>-verified`) once that checkpoint, its entry, the entries before it
   * and every earlier checkpoint still match: an entry before it edited in place, with its stored hash
   * left as it was, is found only by a full verification.
   */
  full?: boolean | undefined;
  /**
   * Witnesses whose cosigned heads the ledger must match (`reason: "tampered"` if a root differs or entries
   * they saw are gone, `"unwitnessed"` if a witness cosigned nothing here): verifier keys, each optionally
   * with the last checkpoint that witness cosigned (`fetchWitnessedCheckpoint`).
   */
  witnesses?: readonly WitnessCheck[] | undefined;
}

/** How many recent entry hashes verification remembers, to name an inserted entry rather than the one after it. */
const RECENT = 256;

/**
 * The append-only, hash-chained audit ledger, reached as `warden.ledger`, for proving what agents did.
 * Entries are written by the store's group commit; this is the read side: verify, export, query.
 * Nothing here writes to the store or signs.
 * @example
 * import type { Ledger } from "agent-warden";
 * const ledger: Ledger = warden.ledger;
 * ledger.assertIntact();
 * await ledger.exportJsonl("./audit.jsonl");
 */
export class Ledger {
  readonly #store: SqliteStore;
  readonly #publicKey: KeyObject;
  readonly #keySource: TrustedLedgerKey["source"];
  /** Where the last verification ended, by key id (also kept beside the store). */
  #position: VerifiedPosition | undefined;
  /** Public keys rotated out, by key id: their checkpoints stay verifiable. */
  readonly #retired: ReadonlyMap<string, KeyObject>;

  /** @internal */
  constructor(store: SqliteStore, publicKey: KeyObject, options: { keySource?: TrustedLedgerKey["source"]; retired?: ReadonlyMap<string, KeyObject> | undefined } = {}) {
    this.#store = store;
    this.#publicKey = publicKey;
    this.#keySource = options.keySource ?? keySourceOf(store, publicKey);
    this.#retired = options.retired ?? new Map();
  }

  /** The trusted keys by key id: the ledger's own (current and retired), or those supplied. */
  #trusted(supplied: LedgerVerifyOptions["publicKey"]): { keys: Map<string, KeyObject>; current: KeyObject } {
    if (supplied === undefined) return { keys: new Map([...this.#retired, [keyIdOf(this.#publicKey), this.#publicKey]]), current: this.#publicKey };
    const keys = trustedKeys(supplied);
    return { keys, current: [...keys.values()].at(-1)! };
  }

  /**
   * Recomputes every hash over the stored bytes and checks every signed checkpoint against the trusted
   * key. Names the first entry that was modified, deleted, inserted or moved; reports how much of the
   * ledger signed checkpoints cover, and refuses a ledger whose unsigned tail is longer than the
   * checkpoint interval. Read-only: it never signs anything. Starts from the signed checkpoint where the
   * last verification ended, unless `full` (see `LedgerVerifyOptions.full`).
   * @example
   * const result = warden.ledger.verify({ publicKey: process.env.WARDEN_LEDGER_PUBLIC_KEY });
   * if (!result.ok) console.error(`ledger ${result.reason} at entry ${result.firstBadSeq}: ${result.problem}`);
   */
  verify(options: LedgerVerifyOptions = {}): LedgerVerification {
    const { keys: trusted, current: publicKey } = this.#trusted(options.publicKey);
    const key: TrustedLedgerKey = { keyId: keyIdOf(publicKey), source: options.publicKey === undefined ? this.#keySource : "supplied" };
    const interval = options.checkpointEvery ?? this.#store.checkpointEvery;
    const judge = options.witnesses === undefined || options.witnesses.length === 0 ? undefined : new WitnessJudge(options.witnesses);
    const rotations: Array<{ seq: number; data: string }> = [];
    const rootSizes = new Set(judge?.sizes);
    const checkpoints = this.#checkpointRows();
    const origin = ledgerOrigin(publicKey);
    // Witnesses judge tree heads of any size, so their verification reads every entry.
    const from = options.full || judge !== undefined ? undefined : this.#resumable(key.keyId, publicKey, origin, checkpoints);
    let expectedSeq = (from?.seq ?? 0) + 1;
    let prevHash = from?.hash ?? GENESIS_HASH;
    let count = from?.seq ?? 0;
    const hashes = new Map<number, string>();
    const recent = new Map<string, number>();
    const checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
    const roots = new Map<number, Uint8Array>();
    const frontier = from?.frontier.clone() ?? new MerkleFrontier();
    const frontiers = new Map<number, MerkleFrontier>();
    // Each entry is hashed over the hash of the row before it: the chain link is read, not stored.
    for (const row of this.#store.iterate<LedgerRow>("SELECT * FROM ledger WHERE seq > ? ORDER BY seq", from?.seq ?? 0)) {
      const fail = (seq: number, problem: string, verified = count): LedgerVerification => ({ ok: false, reason: "tampered", entries: verified, firstBadSeq: seq, problem, key });
      if (row.seq !== expectedSeq) return fail(expectedSeq, row.seq > expectedSeq ? `missing (next entry found is ${row.seq})` : `out of order (found ${row.seq})`);
      const checked = checkStoredRow(row, prevHash);
      if ("problem" in checked) {
        // An entry that was written right after an earlier one and moved up: what sits between was put in.
        for (const [hash, earlier] of recent) {
          if (earlier < row.seq - 1 && rowWasAt(row, earlier + 1, hash)) return fail(earlier + 1, `inserted: entry ${row.seq} chains to entry ${earlier}, so ${earlier + 1 === row.seq - 1 ? `entry ${earlier + 1} was` : `entries ${earlier + 1}..${row.seq - 1} were`} put in between`, earlier);
        }
        return fail(row.seq, checked.problem);
      }
      frontier.push(checked.hash);
      if (row.type === KEY_ROTATED_ENTRY) rotations.push({ seq: row.seq, data: row.data });
      if (checkpointSeqs.has(row.seq)) {
        hashes.set(row.seq, checked.hex);
        frontiers.set(row.seq, frontier.clone());
      }
      if (checkpointSeqs.has(row.seq) || rootSizes.has(row.seq)) roots.set(row.seq, frontier.root());
      recent.set(checked.hex, row.seq);
      if (recent.size > RECENT) recent.delete(recent.keys().next().value!);
      prevHash = checked.hex;
      expectedSeq++;
      count++;
    }
    let previous = from?.seq ?? 0;
    const retired: string[] = [];
    for (const checkpoint of checkpoints) {
      // Checked when the verification this one resumes from ran, and still matching their entries (`#resumable`).
      if (checkpoint.seq <= previous) continue;
      const fail = (problem: string, verified = previous): LedgerVerification => ({ ok: false, reason: "tampered", entries: verified, firstBadSeq: Math.min(checkpoint.seq, count + 1), problem, key });
      if (checkpoint.seq > count) return fail(`entries after ${count} are missing (a signed checkpoint covers entry ${checkpoint.seq})`, count);
      if (hashes.get(checkpoint.seq) !== checkpoint.hash) return fail(`does not match the signed checkpoint at entry ${checkpoint.seq}: an entry in ${previous + 1}..${checkpoint.seq} was changed, inserted or deleted and the chain re-hashed`);
      let signerKey = trusted.get(checkpoint.key_id);
      if (signerKey === undefined) {
        // A key handed over to by an entry that a checkpoint of a trusted key already covers.
        for (const rotation of rotations) {
          const next = rotation.seq <= previous ? rotatedKeyOf(rotation.data) : undefined;
          if (next !== undefined) trusted.set(keyIdOf(next), next);
        }
        signerKey = trusted.get(checkpoint.key_id);
      }
      // A handover entry before where this verification resumed: read it again from the first entry.
      if (signerKey === undefined && from !== undefined) return this.verify({ ...options, full: true });
      if (signerKey === undefined) return fail(`checkpoint at entry ${checkpoint.seq} was signed by an unknown key (${checkpoint.key_id}, trusted: ${[...trusted.keys()].join(", ")})`);
      if (checkpoint.key_id !== key.keyId && !retired.includes(checkpoint.key_id)) retired.push(checkpoint.key_id);
      const origin = ledgerOrigin(signerKey);
      if (!verifySignature(null, checkpointMessage(checkpoint.seq, checkpoint.hash), signerKey, Buffer.from(checkpoint.signature, "base64url"))) {
        return fail(`checkpoint signature at entry ${checkpoint.seq} is invalid`);
      }
      if (checkpoint.note !== null) {
        const opened = openCheckpoint(checkpoint.note, { name: origin, publicKey: signerKey });
        if ("problem" in opened) return fail(`the tree head signed at entry ${checkpoint.seq} ${opened.problem}`);
        if (opened.head.size !== checkpoint.seq || !equalBytes(opened.head.root, roots.get(checkpoint.seq)!)) return fail(`does not match the signed tree head at entry ${checkpoint.seq}: an entry in ${previous + 1}..${checkpoint.seq} was changed, inserted or deleted`);
        judge?.noteStored(checkpoint.note, opened.head);
      }
      previous = checkpoint.seq;
    }
    const head = { seq: count, hash: prevHash };
    const coverage: LedgerCoverage = { coveredTo: previous, uncovered: count - previous, interval };
    const reached = frontiers.get(previous);
    if (reached !== undefined && judge === undefined) {
      this.#position = { keyId: key.keyId, seq: previous, hash: hashes.get(previous)!, frontier: reached };
      writeVerifiedPosition(verifiedPositionPath(this.#store.path), this.#position);
    }
    if (retired.length > 0) key.retired = retired;
    const witnesses = judge?.judge(count, roots, (origin) => [...trusted.values()].find((k) => ledgerOrigin(k) === origin));
    const broken = witnesses?.find((w) => w.failure === "rewritten" || w.failure === "truncated");
    if (broken !== undefined) return { ok: false, reason: "tampered", entries: count, firstBadSeq: broken.failure === "truncated" ? count + 1 : 1, problem: broken.problem!, key, witnesses: witnesses! };
    const unwitnessed = witnesses?.find((w) => !w.holds);
    if (unwitnessed !== undefined) return { ok: false, reason: "unwitnessed", entries: count, firstBadSeq: 1, problem: unwitnessed.problem!, checkpoints: checkpoints.length, head, coverage, key, witnesses: witnesses! };
    if (coverage.uncovered >= interval) {
      const problem = `${coverage.uncovered} entries after ${previous === 0 ? "the start" : `entry ${previous}`} are covered by no signed checkpoint (at most ${interval - 1} may be): anyone with write access to the store could have written them`;
      return { ok: false, reason: "uncovered", entries: count, firstBadSeq: previous + 1, problem, checkpoints: checkpoints.length, head, coverage, key, ...(witnesses ? { witnesses } : {}) };
    }
    return { ok: true, entries: count, checkpoints: checkpoints.length, head, coverage, key, ...(witnesses ? { witnesses } : {}) };
  }

  /**
   * The position the last verification ended at, if it still holds: its checkpoint is signed by the key
   * and names the entry as it is now, the tree head there matches the signed one, no entry up to it is
   * missing, and every earlier checkpoint still matches its entry. Undefined otherwise (verify in full).
   */
  #resumable(keyId: string, publicKey: KeyObject, origin: string, checkpoints: Array<{ seq: number; hash: string; key_id: string; signature: string; note: string | null }>): VerifiedPosition | undefined {
    const saved = this.#position?.keyId === keyId ? this.#position : readVerifiedPosition(verifiedPositionPath(this.#store.path), keyId);
    if (saved === undefined) return undefined;
    const checkpoint = checkpoints.find((c) => c.seq === saved.seq);
    if (checkpoint === undefined || checkpoint.hash !== saved.hash || checkpoint.key_id !== keyId || checkpoint.note === null) return undefined;
    if (!verifySignature(null, checkpointMessage(checkpoint.seq, checkpoint.hash), publicKey, Buffer.from(checkpoint.signature, "base64url"))) return undefined;
    const opened = openCheckpoint(checkpoint.note, { name: origin, publicKey });
    if ("problem" in opened || opened.head.size !== saved.seq || saved.frontier.size !== saved.seq || !equalBytes(opened.head.root, saved.frontier.root())) return undefined;
    const entry = this.#store.get<{ hash: unknown }>("SELECT hash FROM ledger WHERE seq = ?", saved.seq);
    if (entry === undefined || storedHashHex(entry.hash) !== saved.hash) return undefined;
    // Seq is the row id: as many rows as the highest seq means none is missing (a whole-table count is SQLite's fast path).
    const rows = this.#store.get<{ n: number }>("SELECT count(*) AS n FROM ledger")?.n;
    if (rows !== this.#store.get<{ last: number | null }>("SELECT max(seq) AS last FROM ledger")?.last) return undefined;
    const earlier = checkpoints.filter((c) => c.seq <= saved.seq).length;
    // Checkpoints first, each entry found by its row id.
    const matching = this.#store.get<{ n: number }>("SELECT count(*) AS n FROM checkpoints c CROSS JOIN ledger l ON l.seq = c.seq WHERE c.seq <= ? AND (l.hash = unhex(c.hash) OR l.hash = c.hash)", saved.seq)?.n;
    return matching === earlier ? saved : undefined;
  }

  /**
   * An evidence bundle for one run or tool call: its entries, the policy set recorded before them, the
   * approvals among them, an inclusion proof of each entry to the newest signed checkpoint, and the
   * verifier key. `await verifyEvidence(bundle)` (or `agent-warden/verify`, in a browser too) checks it offline. Refused (typed error) while the ledger does
   * not verify, or while the entries are not yet under a signed tree head.
   * @example
   * const bundle = warden.ledger.evidence(toolCallId);
   * writeFileSync("refund-1042.json", JSON.stringify(bundle, null, 2));
   */
  evidence(id: string): EvidenceBundle {
    const verified = this.verify();
    if (!verified.ok) throw new LedgerIntegrityError(verified.firstBadSeq, verified.problem);
    let kind: "run" | "toolCall" = "toolCall";
    let rows = this.#store.all<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l WHERE ${ledgerCallMatch("l.")} ORDER BY l.seq`, id);
    if (rows.length === 0) {
      kind = "run";
      rows = this.#store.all<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l WHERE ${ledgerRunMatch("l.")} ORDER BY l.seq`, id);
    }
    if (rows.length === 0) throw new NotFoundError("run or tool call in the ledger", id);
    const last = rows[rows.length - 1]!.seq;
    const covering = this.#checkpointRows().filter((c) => c.note !== null && c.seq >= last);
    // A witnessed checkpoint (one with cosignature lines beyond the log's own) proves more: preferred.
    const checkpoint = covering.filter((c) => (parseNote(c.note!)?.signatures.length ?? 0) > 1).at(-1) ?? covering.at(-1);
    if (checkpoint === undefined) throw new InvalidStateError(`entry ${last} is not yet under a signed tree head: a checkpoint follows within ${this.#store.checkpointEvery} entries, or when the writing client closes`);
    const policy = this.#store.get<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l WHERE l.type = ? AND l.run_id IS NULL AND l.tool_call_id IS NULL AND l.seq < ? ORDER BY l.seq DESC LIMIT 1`, POLICY_SET_ENTRY, rows[0]!.seq);
    // Verified above: every stored hash up to the checkpoint is 32 bytes (or 64 hex digits in a store from before).
    const hashes = this.#store.all<{ hash: unknown }>("SELECT hash FROM ledger WHERE seq <= ? ORDER BY seq", checkpoint.seq).map((r) => storedHash(r.hash)!);
    const tree = new MerkleTree(hashes);
    const entries = (policy ? [policy, ...rows] : rows).map((row) => evidenceEntryOf(row, tree));
    // The key that signed this checkpoint: the current one, a retired one, or one a verified rotation entry names.
    const keys = this.#trusted(undefined).keys;
    for (const row of this.#store.all<{ data: string }>("SELECT data FROM ledger WHERE type = ? ORDER BY seq", KEY_ROTATED_ENTRY)) {
      const next = rotatedKeyOf(row.data);
      if (next !== undefined) keys.set(keyIdOf(next), next);
    }
    const signerKey = keys.get(checkpoint.key_id) ?? this.#publicKey;
    return { format: "agent-warden.evidence/1", subject: { kind, id }, log: { origin: ledgerOrigin(signerKey), verifierKey: ledgerVerifierKey(signerKey) }, checkpoint: checkpoint.note!, entries, createdAt: Date.now() };
  }

  /** The origin (log name) of this ledger's checkpoints, as witnesses know it. */
  origin(): string {
    return ledgerOrigin(this.#publicKey);
  }

  /** The verifier key (golang.org/x/mod/sumdb/note form) of this ledger's checkpoints, to publish out of band. */
  verifierKey(): string {
    return ledgerVerifierKey(this.#publicKey);
  }

  /** Checkpoint rows, with their signed tree head where the store has one (stores from before tree heads have none). */
  #checkpointRows(): Array<{ seq: number; hash: string; key_id: string; signature: string; note: string | null }> {
    const hasNotes = this.#store.all<{ name: string }>("PRAGMA table_info(checkpoints)").some((c) => c.name === "note");
    return this.#store.all(`SELECT seq, hash, key_id, signature, ${hasNotes ? "note" : "NULL AS note"} FROM checkpoints ORDER BY seq`);
  }

  /** Like `verify()`, but throws `LedgerIntegrityError` naming the first bad entry. */
  assertIntact(): void {
    const result = this.verify();
    if (!result.ok) throw new LedgerIntegrityError(result.firstBadSeq, result.problem);
  }

  /** Entries in chain order, optionally of one run. */
  entries(filter: { runId?: string; afterSeq?: number; limit?: number } = {}): LedgerEntry[] {
    const rows = filter.runId
      ? this.#store.all<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l WHERE ${ledgerRunMatch("l.")} AND l.seq > ?2 ORDER BY l.seq LIMIT ?3`, filter.runId, filter.afterSeq ?? 0, filter.limit ?? -1)
      : this.#store.all<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l WHERE l.seq > ? ORDER BY l.seq LIMIT ?`, filter.afterSeq ?? 0, filter.limit ?? -1);
    return rows.map(toLedgerEntry);
  }

  /** The newest entry's sequence number and hash. */
  head(): { seq: number; hash: string } {
    const head = this.#store.get<{ seq: number; hash: unknown }>("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1");
    return head === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: head.seq, hash: storedHashHex(head.hash) };
  }

  /** Writes every entry as one JSON object per line. Returns the number written. */
  async exportJsonl(destination: string | NodeJS.WritableStream): Promise<number> {
    const stream = typeof destination === "string" ? createWriteStream(destination) : destination;
    let count = 0;
    for (const row of this.#store.iterate<LinkedLedgerRow>(`SELECT ${LINKED_LEDGER_COLUMNS} FROM ledger l ORDER BY l.seq`)) {
      if (!stream.write(`${JSON.stringify(toLedgerEntry(row))}\n`)) await once(stream, "drain");
      count++;
    }
    if (typeof destination === "string") {
      (stream as NodeJS.WritableStream).end();
      await once(stream, "finish");
    }
    return count;
  }
}

/** Where the trusted key came from, judged from the store's signer: a key file beside the store is the store's own. */
function keySourceOf(store: SqliteStore, publicKey: KeyObject): TrustedLedgerKey["source"] {
  const signer = store.signer;
  if (signer === undefined || !signer.publicKey.equals(publicKey)) return "supplied";
  if (store.isMemory) return "store";
  if (signer.path === undefined) return "configured";
  const inside = relative(dirname(store.path), signer.path);
  return !inside.startsWith("..") && !isAbsolute(inside) ? "store" : "configured";
}
