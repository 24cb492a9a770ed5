// The log's side of witnessing: send each new signed checkpoint to the configured witnesses with a
// consistency proof from the last head each one cosigned, check the cosignatures that come back, and keep
// them on the checkpoint note (so evidence bundles carry them). Fails open: an unreachable witness is
// reported and retried later, never thrown into agent code.
import { ConfigError, LedgerIntegrityError, RemoteError } from "../errors.js";
import type { SqliteStore } from "../store/sqlite-store.js";
import { openCosignatures, parseWitnessKey, type WitnessKey } from "./cosignature.js";
import { storedHash } from "./chain.js";
import { consistencyProofFrom, decodeFrontier, MerkleTree } from "./merkle.js";
import { parseCheckpointText, parseNote } from "./note.js";
import { submissionBody, type CheckpointSubmission } from "./witness.js";
import { WitnessConfigSchema, type WitnessConfig } from "./witness-config.js";

// The configuration's shape lives apart, so the options schema does not load the witnessing client.
export { WitnessConfigSchema, type WitnessConfig } from "./witness-config.js";

/**
 * What one witness did with the newest checkpoint.
 * @example
 * import type { WitnessResult } from "agent-warden";
 * const results: WitnessResult[] = await warden.witness();
 */
export interface WitnessResult {
  witness: string;
  url: string;
  /** The checkpoint's size (entries), or 0 when there is no signed checkpoint yet. */
  size: number;
  /**
   * `cosigned` now; `already` cosigned before; `none`: no checkpoint to send; `refused`: the witness refused
   * it (a rewritten or rolled-back history, or a key it does not trust); `unreachable`: try again later.
   */
  status: "cosigned" | "already" | "none" | "refused" | "unreachable";
  problem?: string;
}

/** A log whose checkpoints can be witnessed: the embedded store's (answers at once), or a control plane organization's (answers from its database). */
export interface WitnessedLog {
  /** The newest signed checkpoint note and its size. */
  newest(): { size: number; note: string } | undefined | Promise<{ size: number; note: string } | undefined>;
  /** Checkpoint notes from the newest down, for finding the last one a witness cosigned. */
  notes(): Iterable<{ size: number; note: string }> | AsyncIterable<{ size: number; note: string }>;
  /** RFC 9162 consistency proof from `oldSize` to `size` over the log's entries. */
  proof(oldSize: number, size: number): Uint8Array[] | Promise<Uint8Array[]>;
  /** Appends verified cosignature lines to the stored note of `size`, if it is still `note`. */
  addCosignatures(size: number, note: string, lines: string): void | Promise<void>;
}

/** Sends checkpoints to witnesses; one round at a time. */
export class Witnessing {
  readonly #log: WitnessedLog;
  readonly #witnesses: Array<WitnessConfig & { parsed: WitnessKey; headers?: Record<string, string> | undefined }>;
  readonly #onError: (error: unknown) => void;
  readonly #timeoutMs: number;
  /** Per witness: the size of the last head it cosigned, as far as this process knows. */
  readonly #cosignedSize = new Map<string, number>();
  #round: Promise<WitnessResult[]> = Promise.resolve([]);
  #closed = false;

  constructor(log: WitnessedLog, witnesses: readonly WitnessConfig[], options: { onError: (error: unknown) => void; timeoutMs?: number }) {
    this.#log = log;
    this.#witnesses = witnesses.map((w) => {
      const parsed = WitnessConfigSchema.safeParse(w);
      if (!parsed.success) throw new ConfigError(`ledger witness: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
      return { ...parsed.data, url: parsed.data.url.replace(/\/+$/, ""), parsed: parseWitnessKey(parsed.data.key)! };
    });
    this.#onError = options.onError;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get configured(): boolean {
    return this.#witnesses.length > 0;
  }

  /** Adds a witness known only later (the control plane's, once its key is fetched), with headers for its requests. */
  add(witness: WitnessConfig, headers: Record<string, string>): void {
    const parsed = parseWitnessKey(witness.key);
    if (parsed === undefined) throw new ConfigError(`"${witness.key}" is not a witness verifier key`);
    if (this.#witnesses.some((w) => w.key === witness.key)) return;
    this.#witnesses.push({ url: witness.url.replace(/\/+$/, ""), key: witness.key, parsed, headers });
  }

  /** Stops: a round in flight ends without touching the (closing) store or reporting. */
  close(): void {
    this.#closed = true;
  }

  /** Asks every witness to cosign the newest checkpoint (rounds run one after another). */
  sync(): Promise<WitnessResult[]> {
    const round = this.#round.then(() => Promise.all(this.#witnesses.map((w) => this.#one(w))));
    this.#round = round.catch(() => []);
    return round;
  }

  async #one(w: WitnessConfig & { parsed: WitnessKey; headers?: Record<string, string> | undefined }): Promise<WitnessResult> {
    const base = { witness: w.parsed.name, url: w.url };
    if (this.#closed) return { ...base, size: 0, status: "none" };
    let size = 0;
    try {
      const newest = await this.#log.newest();
      if (newest === undefined) return { ...base, size: 0, status: "none" };
      size = newest.size;
      const note = newest.note;
      if (openCosignatures(note, [w.parsed]).cosignatures.length > 0) {
        this.#cosignedSize.set(w.key, size);
        return { ...base, size, status: "already" };
      }
      let oldSize = this.#cosignedSize.get(w.key) ?? (await this.#lastCosigned(w.parsed));
      // At most twice: a 409 names the size the witness holds, and the second try proves from there.
      for (let attempt = 0; attempt < 2; attempt++) {
        if (oldSize > size) {
          const problem = `witness ${w.parsed.name} cosigned a head of size ${oldSize}, beyond this ledger's newest checkpoint (size ${size}): entries or checkpoints were removed`;
          this.#onError(new LedgerIntegrityError(size + 1, problem));
          return { ...base, size, status: "refused", problem };
        }
        const submission: CheckpointSubmission = { oldSize, proof: oldSize > 0 && oldSize < size ? await this.#log.proof(oldSize, size) : [], checkpoint: note };
        const answer = await requestCosignature(w.url, submission, this.#timeoutMs, w.headers);
        if (this.#closed) return { ...base, size, status: "unreachable", problem: "the client closed before the witness answered" };
        if (answer.status === 409 && answer.size !== undefined && attempt === 0 && answer.size !== oldSize) {
          oldSize = answer.size;
          continue;
        }
        if (!("body" in answer)) {
          const problem = `witness ${w.parsed.name} refused the checkpoint of size ${size} (${answer.status}): ${answer.problem}`;
          this.#onError(answer.status === 409 || answer.status === 422 ? new LedgerIntegrityError(Math.min(oldSize, size) + 1, problem) : new RemoteError(problem, { status: answer.status, retryable: false }));
          return { ...base, size, status: "refused", problem };
        }
        // Keep only lines that verify against the configured key over this very checkpoint.
        const lines = answer.body.split(/(?<=\n)/).filter((line) => openCosignatures(`${note}${line}`, [w.parsed]).cosignatures.length > 0).join("");
        if (lines === "") {
          const problem = `witness ${w.parsed.name} answered without a cosignature that verifies against its configured key`;
          this.#onError(new RemoteError(problem, { status: 200, retryable: false }));
          return { ...base, size, status: "refused", problem };
        }
        await this.#log.addCosignatures(size, note, lines);
        this.#cosignedSize.set(w.key, size);
        return { ...base, size, status: "cosigned" };
      }
      return { ...base, size, status: "refused", problem: `witness ${w.parsed.name} keeps answering 409` };
    } catch (error) {
      if (this.#closed) return { ...base, size, status: "unreachable", problem: "the client closed before the witness answered" };
      const problem = `witness ${w.parsed.name} at ${w.url} did not answer: ${(error as Error).message}`;
      this.#onError(new RemoteError(problem, { retryable: true, cause: error }));
      return { ...base, size, status: "unreachable", problem };
    }
  }

  /** The size of the newest stored checkpoint that carries a valid cosignature of `witness` (0: none). */
  async #lastCosigned(witness: WitnessKey): Promise<number> {
    for await (const { size, note } of this.#log.notes()) if (note.includes(`\n— ${witness.name} `) && openCosignatures(note, [witness]).cosignatures.length > 0) return size;
    return 0;
  }
}

/** One tlog-witness `add-checkpoint` round trip. */
export async function requestCosignature(url: string, submission: CheckpointSubmission, timeoutMs = 10_000, headers: Record<string, string> = {}): Promise<{ status: 200; body: string } | { status: number; problem: string; size?: number | undefined }> {
  const response = await fetch(`${url.replace(/\/+$/, "")}/add-checkpoint`, { method: "POST", body: submissionBody(submission), headers: { "content-type": "text/plain; charset=utf-8", ...headers }, signal: AbortSignal.timeout(timeoutMs) });
  const body = await response.text();
  if (response.status === 200) return { status: 200, body };
  if (response.status === 409 && response.headers.get("content-type")?.startsWith("text/x.tlog.size")) {
    const size = /^(0|[1-9][0-9]*)\n?$/.exec(body) ? Number(body.trim()) : undefined;
    return { status: 409, problem: response.headers.get("x-warden-problem") ?? `the witness holds a head of size ${body.trim()}`, ...(size !== undefined && Number.isSafeInteger(size) ? { size } : {}) };
  }
  return { status: response.status, problem: body.trim().slice(0, 500) || response.statusText };
}

export { fetchWitnessedCheckpoint } from "./witnessed-checkpoint.js";

/** The embedded store's log, for witnessing. */
export function storeWitnessedLog(store: SqliteStore): WitnessedLog {
  return {
    newest: () => {
      const row = store.peek<{ seq: number; note: string }>("SELECT seq, note FROM checkpoints WHERE note IS NOT NULL ORDER BY seq DESC LIMIT 1");
      return row && { size: row.seq, note: row.note };
    },
    *notes() {
      for (const row of store.iterate<{ seq: number; note: string }>("SELECT seq, note FROM checkpoints WHERE note IS NOT NULL ORDER BY seq DESC")) yield { size: row.seq, note: row.note };
    },
    proof: (oldSize, size) => {
      // From the tree's right edge kept with the checkpoint the witness last cosigned: the entries since, not the whole log.
      const from = store.peek<{ note: string | null; frontier: string | null }>("SELECT note, frontier FROM checkpoints WHERE seq = ?", oldSize);
      const head = from?.note == null ? undefined : parseCheckpointText(parseNote(from.note)?.text ?? "");
      const frontier = head?.size === oldSize ? decodeFrontier(oldSize, from!.frontier, head.root) : undefined;
      if (frontier !== undefined) {
        const leaves = store.all<{ hash: unknown }>("SELECT hash FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq", oldSize, size).map((r) => storedHash(r.hash) ?? Buffer.alloc(0));
        if (leaves.length === size - oldSize) return consistencyProofFrom(frontier, leaves);
      }
      const hashes = store.all<{ hash: unknown }>("SELECT hash FROM ledger WHERE seq <= ? ORDER BY seq", size).map((r) => storedHash(r.hash) ?? Buffer.alloc(0));
      return new MerkleTree(hashes).consistencyProof(oldSize, size);
    },
    addCosignatures: (size, note, lines) => {
      store.db.prepare("UPDATE checkpoints SET note = note || ? WHERE seq = ? AND note = ?").run(lines, size, note);
    },
  };
}
