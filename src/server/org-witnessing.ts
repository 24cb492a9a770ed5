// The control plane's own checkpoints, witnessed: each organization's signed tree heads (org_checkpoints.note)
// go to the configured outside witnesses with a consistency proof from the last head each cosigned, and the
// cosignatures come back onto the stored note, so evidence bundles and verification carry them. Fails open:
// a witness that does not answer is reported and asked again next round; the write path never waits for one.
import { openCosignatures, parseWitnessKey } from "../ledger/cosignature.js";
import { consistencyProofFrom, decodeFrontier, MerkleTree } from "../ledger/merkle.js";
import { parseCheckpointText, parseNote } from "../ledger/note.js";
import { Witnessing, type WitnessConfig, type WitnessedLog, type WitnessResult } from "../ledger/witnessing.js";
import { all, get, run, type Query } from "./sql.js";

const NOTES_PAGE = 100;

/** Runs a shared routine on the store's database. */
export type QueryRunner = <T>(query: Query<T>) => Promise<T>;

/** One organization's log as its witnesses see it, over the store's database. */
export function orgWitnessedLog(org: string, read: QueryRunner, write: QueryRunner): WitnessedLog {
  return {
    newest: async () => {
      const row = await read(get<{ seq: number; note: string }>("SELECT seq, note FROM org_checkpoints WHERE org = ? AND note IS NOT NULL ORDER BY seq DESC LIMIT 1", org));
      return row && { size: Number(row.seq), note: row.note };
    },
    async *notes() {
      for (let below = Number.MAX_SAFE_INTEGER; ; ) {
        const rows = await read(all<{ seq: number; note: string }>("SELECT seq, note FROM org_checkpoints WHERE org = ? AND note IS NOT NULL AND seq < ? ORDER BY seq DESC LIMIT ?", org, below, NOTES_PAGE));
        for (const row of rows) yield { size: Number(row.seq), note: row.note };
        if (rows.length < NOTES_PAGE) return;
        below = Number(rows[rows.length - 1]!.seq);
      }
    },
    proof: (oldSize, size) => read(orgConsistencyProof(org, oldSize, size)),
    addCosignatures: async (size, note, lines) => {
      // Only onto the note as it was read: a note replaced meanwhile keeps what it has.
      await write(run("UPDATE org_checkpoints SET note = note || ? WHERE org = ? AND seq = ? AND note = ?", lines, org, size, note));
    },
  };
}

/**
 * The consistency proof from `oldSize` to `size` of an organization's log: from the tree's right edge kept
 * with the checkpoint at `oldSize` and the entry hashes since (the witness judges the proof against the
 * head it holds, so a stored edge that is not the tree's own gets a refusal, never a cosignature). Without
 * a usable edge (a checkpoint from before schema 4), from the whole tree.
 */
export function* orgConsistencyProof(org: string, oldSize: number, size: number): Query<Uint8Array[]> {
  const from = yield* get<{ note: string | null; frontier: string | null }>("SELECT note, frontier FROM org_checkpoints WHERE org = ? AND seq = ?", org, oldSize);
  const head = from?.note == null ? undefined : parseCheckpointText(parseNote(from.note)?.text ?? "");
  const frontier = head?.size === oldSize ? decodeFrontier(oldSize, from!.frontier, head.root) : undefined;
  const leaves = (after: number) => all<{ hash: string }>("SELECT hash FROM org_ledger WHERE org = ? AND seq > ? AND seq <= ? ORDER BY seq", org, after, size);
  if (frontier !== undefined) {
    const since = (yield* leaves(oldSize)).map((row) => Buffer.from(row.hash, "hex"));
    if (since.length === size - oldSize) return consistencyProofFrom(frontier, since);
  }
  const every = (yield* leaves(0)).map((row) => Buffer.from(row.hash, "hex"));
  return new MerkleTree(every).consistencyProof(oldSize, size);
}

/** The organizations with a ledger. */
export function* ledgerOrgs(): Query<string[]> {
  return (yield* all<{ org: string }>("SELECT org FROM org_ledger_heads ORDER BY org")).map((row) => row.org);
}

/** What a store offers for witnessing its organizations' checkpoints. */
export interface WitnessableStore {
  ledgerOrgs(): Promise<string[]>;
  checkpointLedger(org: string): Promise<void>;
  orgWitnessedLog(org: string): WitnessedLog;
}

/**
 * Rounds of witnessing over every organization: sign a checkpoint of what is new, then ask each witness to
 * cosign the organization's newest checkpoint. One round at a time; each organization keeps what its
 * witnesses last cosigned in memory (and finds it again on the stored notes after a restart).
 */
export class ServerWitnessing {
  readonly #store: WitnessableStore;
  readonly #witnesses: readonly WitnessConfig[];
  readonly #onError: (error: unknown) => void;
  readonly #timeoutMs: number | undefined;
  readonly #orgs = new Map<string, Witnessing>();
  #round: Promise<Record<string, WitnessResult[]>> = Promise.resolve({});
  #closed = false;

  constructor(store: WitnessableStore, witnesses: readonly WitnessConfig[], options: { onError: (error: unknown) => void; timeoutMs?: number | undefined }) {
    this.#store = store;
    this.#witnesses = witnesses;
    this.#onError = options.onError;
    this.#timeoutMs = options.timeoutMs;
    checkWitnesses(witnesses);
  }

  /** The configured witnesses' verifier keys. */
  get keys(): string[] {
    return this.#witnesses.map((w) => w.key);
  }

  /** One round over every organization; resolves with each organization's results. Never rejects. */
  sync(): Promise<Record<string, WitnessResult[]>> {
    const round = this.#round.then(() => this.#sync());
    this.#round = round.catch(() => ({}));
    return round;
  }

  async #sync(): Promise<Record<string, WitnessResult[]>> {
    const results: Record<string, WitnessResult[]> = {};
    let orgs: string[];
    try {
      orgs = await this.#store.ledgerOrgs();
    } catch (error) {
      if (!this.#closed) this.#onError(error);
      return results;
    }
    for (const org of orgs) {
      if (this.#closed) break;
      try {
        await this.#store.checkpointLedger(org);
        let witnessing = this.#orgs.get(org);
        if (witnessing === undefined) {
          witnessing = new Witnessing(this.#store.orgWitnessedLog(org), this.#witnesses, { onError: (error) => this.#onError(withOrg(error, org)), ...(this.#timeoutMs !== undefined && { timeoutMs: this.#timeoutMs }) });
          this.#orgs.set(org, witnessing);
        }
        results[org] = await witnessing.sync();
      } catch (error) {
        if (!this.#closed) this.#onError(withOrg(error, org));
      }
    }
    return results;
  }

  /** Stops: a round in flight ends without reporting. */
  close(): void {
    this.#closed = true;
    for (const witnessing of this.#orgs.values()) witnessing.close();
  }
}

/** Throws `ConfigError` for a witness configuration that does not parse: a setup error, not a warning later. */
export function checkWitnesses(witnesses: readonly WitnessConfig[]): void {
  new Witnessing({ newest: () => undefined, notes: () => [], proof: () => [], addCosignatures: () => {} }, witnesses, { onError: () => {} });
}

/** Names the organization in a witnessing failure's message. */
function withOrg(error: unknown, org: string): unknown {
  if (error instanceof Error && !error.message.includes(`organization "${org}"`)) error.message = `organization "${org}": ${error.message}`;
  return error;
}

/** The witnesses that cosigned a note, among the keys given (unparseable keys are skipped: checked at configuration). */
export function cosignersOf(note: string, keys: readonly string[]): string[] {
  const parsed = keys.flatMap((key) => {
    const witness = parseWitnessKey(key);
    return witness ? [witness] : [];
  });
  return openCosignatures(note, parsed).cosignatures.map((c) => c.witness);
}

/** The names of the configured witnesses. */
export function witnessNames(keys: readonly string[]): string[] {
  return keys.flatMap((key) => parseWitnessKey(key)?.name ?? []);
}
