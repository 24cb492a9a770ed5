import { createWriteStream } from "node:fs";
import { verify as verifySignature, type KeyObject } from "node:crypto";
import { once } from "node:events";
import { LedgerIntegrityError } from "../errors.js";
import { canonicalJson } from "../internal/canonical.js";
import { toLedgerEntry, type LedgerRow, type SqliteStore } from "../store/sqlite-store.js";
import { checkpointMessage, GENESIS_HASH, hashEntry, type LedgerEntry } from "./chain.js";
import { keyIdOf } from "./keys.js";

/**
 * The outcome of `ledger.verify()`: the verified head to publish or compare, or the first bad entry.
 * @example
 * import type { LedgerVerification } from "agent-warden";
 * const result: LedgerVerification = warden.ledger.verify();
 * console.log(result.ok ? `intact up to ${result.head.hash}` : `broken at ${result.firstBadSeq}`);
 */
export type LedgerVerification =
  | { ok: true; entries: number; checkpoints: number; head: { seq: number; hash: string } }
  | { ok: false; entries: number; firstBadSeq: number; problem: string };

/**
 * The append-only, hash-chained audit ledger, reached as `warden.ledger`, for proving what agents did.
 * Entries are written by the store's group commit; this is the read side: verify, export, query.
 * @example
 * import type { Ledger } from "agent-warden";
 * const ledger: Ledger = warden.ledger;
 * ledger.assertIntact();
 * await ledger.exportJsonl("./audit.jsonl");
 */
export class Ledger {
  readonly #store: SqliteStore;
  readonly #publicKey: KeyObject;

  /** @internal */
  constructor(store: SqliteStore, publicKey: KeyObject) {
    this.#store = store;
    this.#publicKey = publicKey;
  }

  /**
   * Recomputes every hash and checks every signed checkpoint. Names the first entry that was
   * modified, deleted, inserted or moved.
   * @example
   * const result = warden.ledger.verify();
   * if (!result.ok) console.error(`ledger broken at entry ${result.firstBadSeq}: ${result.problem}`);
   */
  verify(): LedgerVerification {
    let expectedSeq = 1;
    let prevHash = GENESIS_HASH;
    let count = 0;
    const hashes = new Map<number, string>();
    const checkpoints = this.#store.all<{ seq: number; hash: string; key_id: string; signature: string }>("SELECT seq, hash, key_id, signature FROM checkpoints ORDER BY seq");
    const checkpointSeqs = new Set(checkpoints.map((c) => c.seq));
    for (const row of this.#store.iterate<LedgerRow>("SELECT * FROM ledger ORDER BY seq")) {
      const fail = (seq: number, problem: string): LedgerVerification => ({ ok: false, entries: count, firstBadSeq: seq, problem });
      if (row.seq !== expectedSeq) return fail(expectedSeq, row.seq > expectedSeq ? `missing (next entry found is ${row.seq})` : `out of order (found ${row.seq})`);
      if (row.prev_hash !== prevHash) return fail(row.seq, "does not chain to the previous entry (entry before it deleted, inserted or changed)");
      let dataJson: string;
      try {
        dataJson = canonicalJson(JSON.parse(row.data));
      } catch {
        return fail(row.seq, "data is not valid JSON");
      }
      const entry = { seq: row.seq, id: row.id, ts: row.ts, type: row.type, org: row.org, agentId: row.agent_id, runId: row.run_id, stepId: row.step_id, toolCallId: row.tool_call_id, actor: row.actor, prevHash: row.prev_hash };
      if (hashEntry(entry, dataJson) !== row.hash) return fail(row.seq, "content does not match its hash (modified)");
      if (checkpointSeqs.has(row.seq)) hashes.set(row.seq, row.hash);
      prevHash = row.hash;
      expectedSeq++;
      count++;
    }
    const trustedKeyId = keyIdOf(this.#publicKey);
    for (const checkpoint of checkpoints) {
      const fail = (problem: string): LedgerVerification => ({ ok: false, entries: count, firstBadSeq: Math.min(checkpoint.seq, count + 1), problem });
      if (checkpoint.seq > count) return fail(`entries after ${count} are missing (a signed checkpoint covers entry ${checkpoint.seq})`);
      if (hashes.get(checkpoint.seq) !== checkpoint.hash) return fail(`does not match the signed checkpoint at entry ${checkpoint.seq}`);
      if (checkpoint.key_id !== trustedKeyId) return fail(`checkpoint at entry ${checkpoint.seq} was signed by an unknown key`);
      if (!verifySignature(null, checkpointMessage(checkpoint.seq, checkpoint.hash), this.#publicKey, Buffer.from(checkpoint.signature, "base64url"))) {
        return fail(`checkpoint signature at entry ${checkpoint.seq} is invalid`);
      }
    }
    return { ok: true, entries: count, checkpoints: checkpoints.length, head: { seq: count, hash: prevHash } };
  }

  /** Like `verify()`, but throws `LedgerIntegrityError` naming the first bad entry. */
  assertIntact(): void {
    const result = this.verify();
    if (!result.ok) throw new LedgerIntegrityError(result.firstBadSeq, result.problem);
  }

  /** Entries in chain order, optionally of one run. */
  entries(filter: { runId?: string; afterSeq?: number; limit?: number } = {}): LedgerEntry[] {
    const rows = filter.runId
      ? this.#store.all<LedgerRow>("SELECT * FROM ledger WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?", filter.runId, filter.afterSeq ?? 0, filter.limit ?? -1)
      : this.#store.all<LedgerRow>("SELECT * FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?", filter.afterSeq ?? 0, filter.limit ?? -1);
    return rows.map(toLedgerEntry);
  }

  /** The newest entry's sequence number and hash. */
  head(): { seq: number; hash: string } {
    return this.#store.get<{ seq: number; hash: string }>("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1") ?? { seq: 0, hash: GENESIS_HASH };
  }

  /** Writes every entry as one JSON object per line. Returns the number written. */
  async exportJsonl(destination: string | NodeJS.WritableStream): Promise<number> {
    const stream = typeof destination === "string" ? createWriteStream(destination) : destination;
    let count = 0;
    for (const row of this.#store.iterate<LedgerRow>("SELECT * FROM ledger ORDER BY seq")) {
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
