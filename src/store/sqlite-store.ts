import { sign, verify } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { loadSqlite } from "../internal/runtime.js";
import { StoreError } from "../errors.js";
import { checkpointMessage, checkStoredRow, GENESIS_HASH, hashPlacedEntry, storedHash, storedHashHex, type LedgerEntry } from "../ledger/chain.js";
import { foldDrafts } from "../ledger/fold.js";
import type { SigningKey } from "../ledger/keys.js";
import { extendFrontier } from "../ledger/frontier-hex.js";
import { decodeFrontier, encodeFrontier, equalBytes, MerkleFrontier } from "../ledger/merkle.js";
import { checkpointText, ledgerOrigin, openCheckpoint, signNote } from "../ledger/note.js";
import { readVerifiedPosition, verifiedPositionPath } from "../ledger/verified-position.js";
import type { HashedFields } from "../verify/entry.js";
import { CommitLink } from "./commit-link.js";
import { MIGRATIONS, SCHEMA_SQL, SCHEMA_VERSION } from "./schema.js";

/** A ledger entry before it has a place in the chain. `dataJson` is its canonical data. */
export interface LedgerDraft extends Omit<HashedFields, "seq" | "prevHash"> {
  dataJson: string;
}

/** A queued write. Until `done`, its params may still be changed: a row finished within one group commits once. */
export interface QueuedWrite {
  sql: string;
  params: SQLInputValue[];
  done?: boolean;
  /**
   * The tool call whose entries hold all this row does, once they fold into one (`foldDrafts`): if the
   * row is still queued then, it is not written (`dropped`).
   */
  foldsWith?: string | undefined;
  /** Not written: the folded ledger entry of its call is its record. */
  dropped?: boolean;
}

type WriteOp = QueuedWrite | { ledger: LedgerDraft };

/*
 * What the queue holds is made by constructors, not object literals. V8 moves a literal's allocation site
 * to old space once scavenges find most of its objects alive, which queued writes are while the young
 * generation is small (a process's first seconds); from then on every queued write sits in old space and
 * keeps the young strings and arrays it names alive through each scavenge until a full GC: megabytes
 * copied per scavenge, stalls of tens of milliseconds. Objects made by `new` have no allocation site.
 */
class Write implements QueuedWrite {
  done = false;
  dropped = false;
  constructor(
    readonly sql: string,
    readonly params: SQLInputValue[],
    readonly foldsWith: string | undefined,
  ) {}
}

class LedgerOp {
  constructor(
    public ledger: LedgerDraft,
    /** The row its call's fold makes redundant (queued just before it), if any. */
    readonly row: Write | undefined,
  ) {}
}

export interface StoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  /** Signs ledger checkpoints; without one (or read-only), nothing is ever signed. */
  signer?: SigningKey | undefined;
  /** Opens the file read-only: no schema migration, no writes, no signatures (verification, evidence). */
  readOnly?: boolean;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  /** Flush once this many writes are queued, without waiting for the commit window. */
  maxBatch?: number;
  /** How long queued writes wait for company before they commit (default 2 ms). */
  commitWindowMs?: number;
  /**
   * Who commits: `"worker"`, a thread that owns the write connection (chaining, hashing and signing
   * there, so commits never hold the event loop), or `"inline"`, this thread (default; always for
   * `:memory:` and read-only stores).
   */
  writer?: "worker" | "inline" | undefined;
  /**
   * Whether a tool call's end folds into its start while both are queued here (default true). The writer
   * thread's store does not fold: what the client handed over is what it commits.
   */
  fold?: boolean | undefined;
  /** Worker: writes handed over and not yet committed before recording waits for the writer (default 65,536). */
  maxPending?: number | undefined;
  onError: (error: unknown) => void;
}

const openStores = new Set<SqliteStore>();
const LEDGER_INSERT = "INSERT INTO ledger (seq, id, ts, type, org, agent_id, run_id, step_id, tool_call_id, actor, data, hash) VALUES";
// The hash is bound as its hex digest and stored as its 32 bytes by SQLite (unhex): no buffer per entry here.
const LEDGER_ROW = "(?,?,?,?,?,?,?,?,?,?,?,unhex(?))";
const LEDGER_COLUMNS = 12;
/**
 * The columns of ledger rows with their chain link: the hash of the row before (read, not stored).
 * For readers that take rows one by one (entries, export, evidence); verification walks the chain instead.
 */
export const LINKED_LEDGER_COLUMNS = "l.seq, l.id, l.ts, l.type, l.org, l.agent_id, l.run_id, l.step_id, l.tool_call_id, l.actor, l.data, l.hash, (SELECT p.hash FROM ledger p WHERE p.seq = l.seq - 1) AS prev_hash";
// Rows per INSERT: fewer statement executions, well under SQLite's parameter limit.
const LEDGER_CHUNK = 16;
const LEDGER_INSERT_ONE = `${LEDGER_INSERT} ${LEDGER_ROW}`;
const LEDGER_INSERT_CHUNK = `${LEDGER_INSERT} ${Array<string>(LEDGER_CHUNK).fill(LEDGER_ROW).join(",")}`;
const INSERT_CHUNK = 16;
const SQLITE_MAX_PARAMS = 32_766;
const PLAIN_INSERT = /^INSERT INTO \w+ \([\w, ]+\) VALUES (\((?:\?,)*\?\))$/;
const plainInserts = new Map<string, string | undefined>();

/** The `(?,…,?)` of an insert that can take more rows as it is (no conflict clause, no RETURNING); undefined otherwise. */
function plainInsertValues(sql: string): string | undefined {
  if (plainInserts.has(sql)) return plainInserts.get(sql);
  const values = PLAIN_INSERT.exec(sql)?.[1];
  if (plainInserts.size < 256) plainInserts.set(sql, values);
  return values;
}
let exitHookInstalled = false;

/**
 * The embedded store: one SQLite file in WAL mode. Writes are queued and committed together in one
 * transaction per tick (group commit), so the agent's hot path never waits on a disk write; every
 * read flushes first, and the process's exit flushes whatever is left.
 */
export class SqliteStore {
  readonly path: string;
  readonly db: DatabaseSync;
  readonly #options: StoreOptions;
  readonly #statements = new Map<string, StatementSync>();
  #queue: WriteOp[] = [];
  /** The last ledger draft queued, and the queue it went into (a call's end may fold into it). */
  #lastDraft: LedgerOp | undefined;
  /** The queue `#lastDraft` went into. */
  #lastQueue: WriteOp[] | undefined;
  #scheduled: NodeJS.Timeout | undefined;
  #closed = false;
  #lastCheckpoint: { seq: number; ts: number } | undefined;
  /**
   * The head as this process left it after its own append, on a chain it verified from the last signed
   * checkpoint: checkpoints are signed only here. Undefined until this process appends on a chain that holds.
   */
  #trusted: { seq: number; hash: string } | undefined;
  /** The newest checkpoint whose signature this process has checked (saves a signature check per commit). */
  #checkedCheckpoint: { seq: number; hash: string; signature: string } | undefined;
  /** The Merkle tree's right edge over the entries up to `#trusted` (built when the first checkpoint is due, then extended on append). */
  #frontier: MerkleFrontier | undefined;
  #untrustedReported = false;
  /** The parameters of one multi-row ledger insert, reused (the writer inserts thousands of rows a second). */
  #ledgerParams: SQLInputValue[] | undefined;
  #origin: { key: SigningKey["publicKey"]; name: string } | undefined;
  /** The writer thread, when it commits (file stores with `writer: "worker"`). */
  readonly #link: CommitLink | undefined;

  constructor(options: StoreOptions) {
    this.#options = options;
    this.path = options.path === ":memory:" ? ":memory:" : resolve(options.path);
    // Outside the try: a Node too old for node:sqlite is a setup error to fix, not a broken store.
    const { DatabaseSync } = loadSqlite();
    try {
      if (options.readOnly) {
        this.db = new DatabaseSync(this.path, { timeout: 10_000, readOnly: true });
        this.#checkSchema();
      } else {
        if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
        this.db = new DatabaseSync(this.path, { timeout: 10_000 });
        if (this.path !== ":memory:") this.db.exec("PRAGMA journal_mode = WAL");
        this.db.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;");
        this.#migrate();
        this.#migrateCheckpointNotes();
        if (options.writer === "worker" && this.path !== ":memory:") {
          this.#link = new CommitLink({ path: this.path, signer: options.signer, checkpointEvery: options.checkpointEvery, checkpointIntervalMs: options.checkpointIntervalMs, maxPending: options.maxPending ?? 65_536, onError: options.onError });
        }
      }
    } catch (cause) {
      if (cause instanceof StoreError) throw cause;
      throw new StoreError(`cannot open store "${options.path}": ${(cause as Error).message}`, { cause });
    }
    openStores.add(this);
    installExitHook();
  }

  get isMemory(): boolean {
    return this.path === ":memory:";
  }

  /** How many entries may follow the last signed checkpoint before one is due. */
  get checkpointEvery(): number {
    return this.#options.checkpointEvery;
  }

  /** The key this store signs checkpoints with, if any. */
  get signer(): SigningKey | undefined {
    return this.#options.signer;
  }

  /** @internal Whether the writer thread has been started (it is, in the turn after the first write). */
  get writerStarted(): boolean {
    return this.#link?.started ?? false;
  }

  /** Writes queued or handed to the writer thread and not yet committed. */
  get pendingWrites(): number {
    return this.#queue.length + (this.#link?.pending ?? 0);
  }

  /**
   * While the writer thread is more than `maxPending` writes behind, a promise that settles once it has
   * caught up (to half of that); undefined otherwise. Governed calls await it, so back-pressure slows
   * the agent without holding its event loop. What `flush()` guarantees is unchanged.
   */
  backpressure(): Promise<void> | undefined {
    return this.#link?.usable ? this.#link.backpressure() : undefined;
  }

  /**
   * Queues a write; it commits with the next group. With `foldsWith` (a tool call's id), the write is
   * that call's row and holds nothing its entries do not: it is dropped if the call's `tool.called`,
   * appended right after it, folds with the event that ends the call while the row is still queued.
   */
  write(sql: string, params: SQLInputValue[], foldsWith?: string): QueuedWrite {
    const op = new Write(sql, params, foldsWith);
    this.#push(op);
    return op;
  }

  /**
   * Queues a ledger entry; it is hashed into the chain when its group commits. The event that ends a
   * tool call folds into that call's `tool.called` while it is still queued and the last entry queued
   * (so no entry changes place): a call that ends within its commit window is one entry.
   */
  append(draft: LedgerDraft): void {
    if (this.#options.readOnly) throw new StoreError(`store "${this.path}" is open read-only`);
    const last = this.#lastDraft;
    if (last !== undefined && this.#lastQueue === this.#queue && !this.#closed && this.#options.fold !== false) {
      const folded = foldDrafts(last.ledger, draft);
      if (folded !== undefined) {
        last.ledger = folded;
        this.#lastDraft = undefined;
        const row = last.row;
        if (row !== undefined && !row.done) {
          row.done = true;
          row.dropped = true;
        }
        return;
      }
    }
    // The queue it joins: once handed over or committed, the queue is another array and nothing folds into it.
    const queue = this.#queue;
    const before = queue.length > 0 ? queue[queue.length - 1] : undefined;
    const row = before instanceof Write && before.foldsWith !== undefined && before.foldsWith === draft.toolCallId && !before.done ? before : undefined;
    const op = new LedgerOp(draft, row);
    this.#push(op);
    this.#lastDraft = op;
    this.#lastQueue = queue;
  }

  /** The data (canonical JSON) of the newest ledger entry of a type, if any. */
  latestEntryData(type: string): string | undefined {
    return this.get<{ data: string }>("SELECT data FROM ledger WHERE type = ? ORDER BY seq DESC LIMIT 1", type)?.data;
  }

  /** Runs a read after committing every queued write, so reads see this process's own writes. */
  all<T>(sql: string, ...params: SQLInputValue[]): T[] {
    this.#assertOpen();
    this.flush();
    return this.#statement(sql).all(...params) as T[];
  }

  get<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    this.#assertOpen();
    this.flush();
    return this.#statement(sql).get(...params) as T | undefined;
  }

  /** A read that does not flush: for polling state other processes write. */
  peek<T>(sql: string, ...params: SQLInputValue[]): T | undefined {
    return this.#statement(sql).get(...params) as T | undefined;
  }

  /** Iterates rows lazily (ledger verification and export). */
  iterate<T>(sql: string, ...params: SQLInputValue[]): IterableIterator<T> {
    this.#assertOpen();
    this.flush();
    return this.#statement(sql).iterate(...params) as IterableIterator<T>;
  }

  /** Runs `fn` in one immediate transaction, after the queue is flushed; for read-modify-write across processes. */
  transaction<T>(fn: () => T): T {
    this.flush();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#commitQueue();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      this.#queue = [];
      throw error;
    }
  }

  /** Commits every queued write now. A failed commit keeps the writes queued and reports the error. */
  flush(): void {
    // Until the writer has been handed anything (a client's first writes and reads), this thread commits: nothing waits for a thread to boot.
    if (this.#link?.usable && this.#link.inUse) {
      this.#handOver();
      this.#link.drain();
      return;
    }
    if (this.#scheduled) {
      clearTimeout(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (this.#queue.length === 0 || this.#closed) return;
    const pending = this.#queue;
    try {
      this.db.exec("BEGIN IMMEDIATE");
      try {
        this.#commitQueue();
        this.db.exec("COMMIT");
      } catch (error) {
        this.db.exec("ROLLBACK");
        this.#queue = pending;
        // What this process believed about the chain may have been rolled back with it.
        this.#trusted = undefined;
        this.#frontier = undefined;
        this.#lastCheckpoint = undefined;
        throw error;
      }
    } catch (error) {
      this.#options.onError(new StoreError(`cannot write to store "${this.path}": ${(error as Error).message}`, { cause: error }));
      // One bad write must not hold back the rest: commit them one by one and drop only what fails.
      if (this.#queue === pending && !isBusy(error)) this.#commitOneByOne();
      // Busy (another process holds the lock past the timeout): try again soon rather than at the next write.
      else this.#schedule();
    }
  }

  /** Hands the queue to the writer thread without waiting for the commit. */
  #handOver(): void {
    if (this.#scheduled) {
      clearTimeout(this.#scheduled);
      this.#scheduled = undefined;
    }
    if (this.#queue.length === 0 || this.#closed) return;
    const ops = this.#queue;
    this.#queue = [];
    const writes: QueuedWrite[] = [];
    const drafts: LedgerDraft[] = [];
    for (const op of ops) {
      if ("sql" in op) {
        if (op.dropped) continue;
        // Its params are copied now: a later change to the row becomes an update.
        op.done = true;
        writes.push(op);
      } else drafts.push(op.ledger);
    }
    this.#link!.send(writes, drafts);
  }

  #commitOneByOne(): void {
    const ops = this.#queue;
    this.#queue = [];
    for (const op of ops) {
      this.#queue = [op];
      try {
        this.db.exec("BEGIN IMMEDIATE");
        this.#commitQueue();
        this.db.exec("COMMIT");
      } catch (error) {
        try {
          this.db.exec("ROLLBACK");
        } catch {
          // Already rolled back.
        }
        this.#queue = [];
        this.#options.onError(new StoreError(`dropped a write that the store refused: ${(error as Error).message}`, { cause: error }));
      }
    }
  }

  /**
   * Signs a checkpoint over the current head if there are entries since the last one, and only if that
   * head is where this process's own last append left a chain it verified: a process that only read
   * the store (or whose entries another writer has since extended) vouches for nothing.
   */
  checkpointNow(): void {
    if (this.#options.readOnly || this.#options.signer === undefined) return;
    if (this.#link?.usable) {
      this.flush();
      this.#link.checkpoint();
    }
    // This thread's own appends (in `transaction()`), when they are the head.
    if (this.#trusted === undefined) return;
    this.flush();
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const head = this.#head();
      this.#lastCheckpoint = this.#readLastCheckpoint();
      if (head.seq > (this.#lastCheckpoint?.seq ?? 0) && this.#trusted !== undefined && head.seq === this.#trusted.seq && head.hash === this.#trusted.hash) this.#checkpoint(head, Date.now());
      this.db.exec("COMMIT");
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.flush();
      if (this.#queue.length === 0) this.checkpointNow();
      this.#link?.close();
    } catch (error) {
      this.#options.onError(error);
    } finally {
      this.#closed = true;
      openStores.delete(this);
      this.db.close();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError(`store "${this.path}" is closed`);
  }

  #commitQueue(): void {
    const ops = this.#queue;
    this.#queue = [];
    const drafts: LedgerDraft[] = [];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if ("sql" in op) {
        if (op.dropped) continue;
        // A run of the same plain insert (a tool call's row after another's) goes in several rows per statement.
        const values = plainInsertValues(op.sql);
        let end = i + 1;
        if (values !== undefined) while (end < ops.length && (ops[end] as QueuedWrite).sql === op.sql && !(ops[end] as QueuedWrite).dropped) end++;
        if (end - i >= 2) {
          this.#insertRows(op.sql, values!, ops.slice(i, end) as QueuedWrite[]);
          i = end - 1;
          continue;
        }
        this.#statement(op.sql).run(...op.params);
        op.done = true;
      } else drafts.push(op.ledger);
    }
    if (drafts.length > 0) this.#appendDrafts(drafts);
  }

  /** Inserts the rows of one plain `INSERT … VALUES (…)`, `INSERT_CHUNK` rows per statement where they fill one. */
  #insertRows(sql: string, values: string, writes: QueuedWrite[]): void {
    const perRow = writes[0]!.params.length;
    const chunk = Math.max(1, Math.min(INSERT_CHUNK, Math.floor(SQLITE_MAX_PARAMS / perRow)));
    let offset = 0;
    if (chunk > 1 && writes.length >= chunk) {
      const insert = this.#statement(`${sql}${`,${values}`.repeat(chunk - 1)}`);
      const params: SQLInputValue[] = new Array(chunk * perRow);
      for (; offset + chunk <= writes.length; offset += chunk) {
        for (let r = 0; r < chunk; r++) {
          const row = writes[offset + r]!.params;
          for (let c = 0; c < perRow; c++) params[r * perRow + c] = row[c]!;
        }
        insert.run(...params);
      }
    }
    const single = this.#statement(sql);
    for (; offset < writes.length; offset++) single.run(...writes[offset]!.params);
    for (const write of writes) write.done = true;
  }

  /** Chains and inserts ledger drafts, several rows per statement; signs a checkpoint when one is due. */
  #appendDrafts(drafts: LedgerDraft[]): void {
    // The head is read inside the transaction, so processes sharing the file extend one chain.
    let head = this.#head();
    const extendsTrusted = (this.#trusted !== undefined && this.#trusted.seq === head.seq && this.#trusted.hash === head.hash) || this.#establishTrust(head);
    // The tree's right edge follows the chain as it grows, so a checkpoint never reads hashes back.
    const frontier = extendsTrusted && this.#frontier?.size === head.seq ? this.#frontier : undefined;
    const leaves: string[] | undefined = frontier && [];
    let seq = head.seq;
    let prevHash = head.hash;
    // LEDGER_CHUNK rows per statement, the rest one by one; each statement's parameters are one array, refilled.
    const chunk = this.#ledgerParams ??= new Array<SQLInputValue>(LEDGER_CHUNK * LEDGER_COLUMNS);
    const chunked = this.#statement(LEDGER_INSERT_CHUNK);
    let filled = 0;
    for (let i = 0; i < drafts.length; i++) {
      const d = drafts[i]!;
      seq++;
      prevHash = hashPlacedEntry(d, seq, prevHash, d.dataJson);
      // Stored as 32 bytes; the link to the entry before is its hash, so it is not stored again.
      const hash = prevHash;
      leaves?.push(hash);
      if (drafts.length - i + filled < LEDGER_CHUNK) {
        this.#statement(LEDGER_INSERT_ONE).run(seq, d.id, d.ts, d.type, d.org, d.agentId, d.runId, d.stepId, d.toolCallId, d.actor, d.dataJson, hash);
        continue;
      }
      const at = filled * LEDGER_COLUMNS;
      chunk[at] = seq;
      chunk[at + 1] = d.id;
      chunk[at + 2] = d.ts;
      chunk[at + 3] = d.type;
      chunk[at + 4] = d.org;
      chunk[at + 5] = d.agentId;
      chunk[at + 6] = d.runId;
      chunk[at + 7] = d.stepId;
      chunk[at + 8] = d.toolCallId;
      chunk[at + 9] = d.actor;
      chunk[at + 10] = d.dataJson;
      chunk[at + 11] = hash;
      if (++filled === LEDGER_CHUNK) {
        chunked.run(...chunk);
        filled = 0;
      }
    }
    head = { seq, hash: prevHash };
    if (frontier !== undefined) this.#frontier = extendFrontier(frontier, leaves!);
    if (extendsTrusted) {
      this.#trusted = head;
      this.#lastCheckpoint ??= this.#readLastCheckpoint();
      const now = Date.now();
      const last = this.#lastCheckpoint ?? { seq: 0, ts: 0 };
      if (head.seq - last.seq >= this.#options.checkpointEvery || now - last.ts >= this.#options.checkpointIntervalMs) this.#checkpoint(head, now);
    } else this.#trusted = undefined;
  }

  /**
   * Signs `head`; called only where `head` is this process's own append on a chain it verified. Two
   * signatures: the chain head (as before), and the Merkle tree head as a C2SP tlog-checkpoint note.
   */
  #checkpoint(head: { seq: number; hash: string }, now: number): void {
    const signer = this.#options.signer;
    if (signer === undefined) return;
    const signature = sign(null, checkpointMessage(head.seq, head.hash), signer.privateKey).toString("base64url");
    // The origin names the key: worked out once per key, not at every checkpoint.
    const origin = this.#origin?.key === signer.publicKey ? this.#origin.name : (this.#origin = { key: signer.publicKey, name: ledgerOrigin(signer.publicKey) }).name;
    const note = signNote(checkpointText({ origin, size: head.seq, root: this.#treeRoot(head.seq) }), origin, signer.privateKey);
    // The tree's right edge at this size, kept beside it: a witness round proves from here without rebuilding the tree.
    this.#statement("INSERT OR REPLACE INTO checkpoints (seq, hash, ts, key_id, signature, note, frontier) VALUES (?,?,?,?,?,?,?)").run(head.seq, head.hash, now, signer.keyId, signature, note, encodeFrontier(this.#frontier!));
    this.#checkedCheckpoint = { seq: head.seq, hash: head.hash, signature };
    this.#lastCheckpoint = { seq: head.seq, ts: now };
  }

  /**
   * Before this process appends to a chain it did not itself leave at `head`: may it sign over what is
   * there? Only if the chain verifies from the newest checkpoint its key signed (or from this process's
   * own last position) up to `head`, and what follows that checkpoint is shorter than the checkpoint
   * interval. A longer unsigned tail is what someone who rewrote the file without the key leaves behind
   * (or a writer that could not sign): this process then appends without signing, and `verify()` reports
   * the tail as uncovered.
   */
  #establishTrust(head: { seq: number; hash: string }): boolean {
    if (this.#options.signer === undefined) return false;
    const checkpoint = this.#signedCheckpoint();
    const problem = checkpoint === undefined
      ? "the newest checkpoint is not signed by this store's key"
      : head.seq - checkpoint.seq >= this.#options.checkpointEvery
        ? `${head.seq - checkpoint.seq} entries after entry ${checkpoint.seq} are not covered by a signed checkpoint (at most ${this.#options.checkpointEvery - 1} may be)`
        : this.#verifyTo(this.#trusted !== undefined && this.#trusted.seq > checkpoint.seq && this.#trusted.seq <= head.seq ? this.#trusted : checkpoint, head);
    if (problem === undefined) {
      this.#untrustedReported = false;
      return true;
    }
    if (!this.#untrustedReported) this.#options.onError(new StoreError(`ledger checkpoint not signed: ${problem}`));
    this.#untrustedReported = true;
    return false;
  }

  /** The RFC 9162 root over the first `size` entry hashes, extending the in-memory frontier from where it was. */
  #treeRoot(size: number): Uint8Array {
    if (this.#frontier === undefined || this.#frontier.size > size) this.#frontier = this.#savedFrontier(size) ?? this.#checkpointFrontier(size) ?? new MerkleFrontier();
    const frontier = this.#frontier;
    if (frontier.size < size) {
      for (const row of this.#statement("SELECT hash FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq").iterate(frontier.size, size) as IterableIterator<{ hash: unknown }>) frontier.push(storedHash(row.hash) ?? Buffer.alloc(0));
    }
    return frontier.root();
  }

  /**
   * The tree's right edge where the last verification of this store ended (`<store>-verified`), so a
   * process opening a long ledger does not re-read every hash before its first checkpoint. Used only if
   * it still holds: at or before `size`, the entry it names unchanged, and its root the one this key
   * signed at that entry. Undefined otherwise (the frontier is built from the first entry).
   */
  #savedFrontier(size: number): MerkleFrontier | undefined {
    const signer = this.#options.signer;
    if (signer === undefined) return undefined;
    const saved = readVerifiedPosition(verifiedPositionPath(this.path), signer.keyId);
    if (saved === undefined || saved.seq > size) return undefined;
    const entry = this.#statement("SELECT hash FROM ledger WHERE seq = ?").get(saved.seq) as { hash: unknown } | undefined;
    const checkpoint = this.#statement("SELECT hash, key_id, note FROM checkpoints WHERE seq = ?").get(saved.seq) as { hash: string; key_id: string; note: string | null } | undefined;
    if (entry === undefined || storedHashHex(entry.hash) !== saved.hash || checkpoint?.hash !== saved.hash || checkpoint.key_id !== signer.keyId || checkpoint.note === null) return undefined;
    const opened = openCheckpoint(checkpoint.note, { name: ledgerOrigin(signer.publicKey), publicKey: signer.publicKey });
    return "problem" in opened || opened.head.size !== saved.seq || !equalBytes(opened.head.root, saved.frontier.root()) ? undefined : saved.frontier;
  }

  /**
   * The tree's right edge kept beside the newest checkpoint this key signed at or before `size`, so a
   * process (or the writer thread) signing its first checkpoint on a long ledger reads the hashes since
   * that checkpoint, not every hash from the first. Used only if its nodes fold to the root the note
   * signs and the entry it names is unchanged; undefined otherwise.
   */
  #checkpointFrontier(size: number): MerkleFrontier | undefined {
    const signer = this.#options.signer;
    if (signer === undefined) return undefined;
    const row = this.#statement("SELECT seq, hash, note, frontier FROM checkpoints WHERE key_id = ? AND seq <= ? AND note IS NOT NULL AND frontier IS NOT NULL ORDER BY seq DESC LIMIT 1").get(signer.keyId, size) as { seq: number; hash: string; note: string; frontier: string } | undefined;
    if (row === undefined) return undefined;
    const entry = this.#statement("SELECT hash FROM ledger WHERE seq = ?").get(row.seq) as { hash: unknown } | undefined;
    if (entry === undefined || storedHashHex(entry.hash) !== row.hash) return undefined;
    const opened = openCheckpoint(row.note, { name: ledgerOrigin(signer.publicKey), publicKey: signer.publicKey });
    return "problem" in opened || opened.head.size !== row.seq ? undefined : decodeFrontier(row.seq, row.frontier, opened.head.root);
  }

  /**
   * Stores from before tree-head checkpoints gain the columns for them (the signed note, and the tree's
   * right edge at its size); the chain and its checkpoints stay as they are.
   */
  #migrateCheckpointNotes(): void {
    const columns = this.db.prepare("PRAGMA table_info(checkpoints)").all() as Array<{ name: string }>;
    for (const column of ["note", "frontier"]) {
      if (columns.some((c) => c.name === column)) continue;
      try {
        this.db.exec(`ALTER TABLE checkpoints ADD COLUMN ${column} TEXT`);
      } catch (error) {
        // Another process added it first.
        if (!/duplicate column/i.test((error as Error).message)) throw error;
      }
    }
  }

  /** Re-hashes the entries after `from` up to `head`; a problem, or undefined. */
  #verifyTo(from: { seq: number; hash: string }, head: { seq: number; hash: string }): string | undefined {
    let at = from;
    if (at.seq === head.seq) return at.hash === head.hash ? undefined : `entry ${head.seq} differs from the one this process trusted`;
    const rows = this.#statement("SELECT * FROM ledger WHERE seq > ? AND seq <= ? ORDER BY seq").iterate(at.seq, head.seq) as IterableIterator<LedgerRow>;
    for (const row of rows) {
      if (row.seq !== at.seq + 1) return `entry ${at.seq + 1} is missing`;
      const checked = checkStoredRow(row, at.hash);
      if ("problem" in checked) return `entry ${row.seq} ${checked.problem.replace(/^content /, "")}`;
      at = { seq: row.seq, hash: checked.hex };
    }
    return at.seq === head.seq && at.hash === head.hash ? undefined : `the chain does not reach entry ${head.seq}`;
  }

  /**
   * The newest checkpoint signed by this store's key, if its signature holds and the entry it names
   * still has the hash it signed; the genesis position when there is no checkpoint at all.
   */
  #signedCheckpoint(): { seq: number; hash: string } | undefined {
    const signer = this.#options.signer!;
    const newest = this.#statement("SELECT seq FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as { seq: number } | undefined;
    if (newest === undefined) return { seq: 0, hash: GENESIS_HASH };
    // The newest checkpoint of this key, or of a key it took over from (rotation).
    const keyIds = [signer.keyId, ...(signer.retired?.keys() ?? [])];
    const row = this.#statement(`SELECT seq, hash, key_id, signature FROM checkpoints WHERE key_id IN (${keyIds.map(() => "?").join(",")}) ORDER BY seq DESC LIMIT 1`).get(...keyIds) as { seq: number; hash: string; key_id: string; signature: string } | undefined;
    if (row === undefined) return undefined;
    const cached = this.#checkedCheckpoint;
    const keyOfRow = row.key_id === signer.keyId ? signer.publicKey : signer.retired!.get(row.key_id)!;
    const valid = (cached !== undefined && cached.seq === row.seq && cached.hash === row.hash && cached.signature === row.signature) || verify(null, checkpointMessage(row.seq, row.hash), keyOfRow, Buffer.from(row.signature, "base64url"));
    if (!valid) return undefined;
    this.#checkedCheckpoint = { seq: row.seq, hash: row.hash, signature: row.signature };
    const entry = this.#statement("SELECT hash FROM ledger WHERE seq = ?").get(row.seq) as { hash: unknown } | undefined;
    return entry !== undefined && storedHashHex(entry.hash) === row.hash ? { seq: row.seq, hash: row.hash } : undefined;
  }

  #head(): { seq: number; hash: string } {
    const row = this.#statement("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").get() as { seq: number; hash: unknown } | undefined;
    return row === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: row.seq, hash: storedHashHex(row.hash) };
  }

  #readLastCheckpoint(): { seq: number; ts: number } | undefined {
    return this.#statement("SELECT seq, ts FROM checkpoints ORDER BY seq DESC LIMIT 1").get() as { seq: number; ts: number } | undefined;
  }

  #push(op: WriteOp): void {
    if (this.#closed) {
      this.#options.onError(new StoreError(`store "${this.path}" is closed; write dropped`));
      return;
    }
    this.#queue.push(op);
    // The writer thread boots in the next turn, before the first group is handed to it.
    if (this.#link !== undefined && !this.#link.started) this.#link.prepare();
    if (this.#queue.length >= (this.#options.maxBatch ?? 4096)) this.#commitSoon();
    else this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled !== undefined || this.#closed) return;
    // A short window gathers the writes of several ticks (a tool call's start and end, its events) into one commit.
    this.#scheduled = setTimeout(() => {
      this.#scheduled = undefined;
      this.#commitSoon();
    }, this.#options.commitWindowMs ?? 2);
    this.#scheduled.unref();
  }

  /** The group's window closed (or the batch is full): hand it to the writer thread, or commit it here. */
  #commitSoon(): void {
    if (this.#link?.start()) this.#handOver();
    else this.flush();
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** Read-only: refuses a file that is not a store of a schema this version reads. */
  #checkSchema(): void {
    let version: number;
    try {
      version = (this.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    } catch (cause) {
      throw new StoreError(`"${this.path}" is not a Warden store (${(cause as Error).message})`, { cause });
    }
    if (version === 0) throw new StoreError(`"${this.path}" is not a Warden store (no schema)`);
    if (version > SCHEMA_VERSION) throw new StoreError(`store "${this.path}" has schema ${version}; this version of Warden reads up to ${SCHEMA_VERSION}`);
  }

  #migrate(): void {
    let version: number;
    try {
      version = (this.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    } catch (cause) {
      throw new StoreError(`"${this.path}" is not a Warden store (${(cause as Error).message})`, { cause });
    }
    if (version > SCHEMA_VERSION) throw new StoreError(`store "${this.path}" has schema ${version}; this version of Warden reads up to ${SCHEMA_VERSION}`);
    if (version === SCHEMA_VERSION) return;
    this.db.exec("BEGIN IMMEDIATE");
    try {
      // Another process may have migrated while this one waited for the lock.
      const current = (this.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
      if (current === 0) this.db.exec(SCHEMA_SQL);
      else for (let next = current + 1; next <= SCHEMA_VERSION; next++) this.db.exec(MIGRATIONS[next] ?? "");
      this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      this.db.exec("COMMIT");
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }
}

/** A ledger row read with its chain link (`LINKED_LEDGER_COLUMNS`), hashes as hex or as stored. */
export interface LinkedLedgerRow extends Omit<LedgerRow, "hash"> {
  hash: unknown;
  /** The hash of the row before; null for the first (and for a row whose predecessor is gone). */
  prev_hash: unknown;
}

/** An entry from a row read with its chain link. */
export function toLedgerEntry(row: LinkedLedgerRow): LedgerEntry {
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
    data: JSON.parse(row.data),
    prevHash: linkOf(row),
    hash: storedHashHex(row.hash),
  };
}

/** The hex hash a row chains to: the row before's, the genesis hash for the first. */
export function linkOf(row: LinkedLedgerRow): string {
  return row.prev_hash === null || row.prev_hash === undefined ? (row.seq === 1 ? GENESIS_HASH : "") : storedHashHex(row.prev_hash);
}

export interface LedgerRow {
  seq: number;
  id: string;
  ts: number;
  type: string;
  org: string;
  agent_id: string | null;
  run_id: string | null;
  step_id: string | null;
  tool_call_id: string | null;
  actor: string | null;
  data: string;
  /** 32 bytes (schema 6 on; 64 hex digits in a store from before, read without migrating). */
  hash: Uint8Array | string;
}

function isBusy(error: unknown): boolean {
  return /SQLITE_BUSY|database is locked/i.test(String((error as Error)?.message ?? error));
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // node:sqlite is synchronous, so the last queued writes can still commit inside 'exit'.
  process.on("exit", () => {
    for (const store of openStores) {
      try {
        store.flush();
      } catch {
        // Nothing left to report to.
      }
    }
  });
}
