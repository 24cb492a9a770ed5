import { createRequire } from "node:module";
import type { SQLInputValue } from "node:sqlite";
import { pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { StoreError } from "../errors.js";
import type { SigningKey } from "../ledger/keys.js";
import { Draft } from "./draft.js";
import type { LedgerDraft, QueuedWrite } from "./sqlite-store.js";

/** Slots of the shared counters: messages the writer has finished, and the writes and entries in them. */
export const ACK_MESSAGES = 0;
export const ACK_OPS = 1;

/** What the writer thread starts with. */
export interface WriterData {
  path: string;
  signer: SigningKey | undefined;
  checkpointEvery: number;
  checkpointIntervalMs: number;
  shared: SharedArrayBuffer;
}

/** One message to the writer. A statement's text crosses once; later writes name it by number. */
export type CommitMessage =
  | { kind: "commit"; defs: string[]; writes: Array<[number, SQLInputValue[]]>; drafts: LedgerDraft[] }
  /** The same as batch parts (`encodeBatch`): one string and two arrays of numbers cross instead of thousands of small objects. */
  | ({ kind: "batch"; defs: string[] } & BatchParts)
  | { kind: "checkpoint" }
  | { kind: "close" };

export interface CommitLinkOptions extends Omit<WriterData, "shared"> {
  /** Writes and entries handed over but not yet committed before governed calls wait for the writer (back-pressure). */
  maxPending: number;
  onError: (error: unknown) => void;
}

/** How long a wait for the writer may last before the link gives up on it and the store commits itself. */
const WRITER_TIMEOUT_MS = 60_000;
/** `Atomics.waitAsync` (ES2024; Node has it): typed here, the project's lib is older. */
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number, timeout: number): { async: false; value: string } | { async: true; value: Promise<string> } }).waitAsync;

/** How far past `maxPending` a path that never awaits may push the writer before a hand-over waits. */
const HARD_LIMIT_FACTOR = 4;

/**
 * The client thread's side of the writer thread: hands over queued writes and ledger drafts (the
 * thread commits them, chains and hashes the entries, signs checkpoints), and waits for it only when
 * asked to (`drain`, before a read, `flush()` and `close()`). When more than `maxPending` are behind,
 * governed calls await `backpressure()` (bounded, and the event loop keeps running; `pending` shows how
 * far behind it is). The thread is started in the turn after the store's first write (`prepare`), so
 * its boot is off the path of any call and a store never written starts none; until something has been
 * handed over, the store commits on its own thread and nothing waits for the thread to boot.
 */
export class CommitLink {
  readonly #options: CommitLinkOptions;
  readonly #counters = new Int32Array(new SharedArrayBuffer(8));
  readonly #sqlIds = new Map<string, number>();
  #worker: Worker | undefined;
  /** The turn that starts the thread, once asked for (`prepare`). */
  #starting: NodeJS.Immediate | undefined;
  #closed = false;
  /** Whether any write has been handed over (then reads and `flush()` wait for the thread). */
  #inUse = false;
  #sent = 0;
  #opsSent = 0;
  #failed = false;
  #behindReported = false;
  /** The one wait for the writer to catch up that every governed call arriving meanwhile shares. */
  #drained: Promise<void> | undefined;

  constructor(options: CommitLinkOptions) {
    this.#options = options;
  }

  /** False once the writer could not be started or stopped answering: the store then commits on its own thread. */
  get usable(): boolean {
    return !this.#failed;
  }

  /** Whether the writer thread has been started (`prepare`, or the first hand-over). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /** Whether writes have been handed to the thread: from then on, commits are its alone. */
  get inUse(): boolean {
    return this.#inUse;
  }

  /**
   * Starts the thread in the next turn of the event loop, off the path of the call that asked: by the
   * time the first group is handed over it is booting or ready. Unref'd: a process that ends first
   * never starts it.
   */
  prepare(): void {
    if (this.#worker !== undefined || this.#starting !== undefined || this.#closed || this.#failed) return;
    this.#starting = setImmediate(() => {
      this.#starting = undefined;
      this.start();
    });
    this.#starting.unref();
  }

  /**
   * Starts the thread now if it is not running: true when there is one to hand writes to. False once it
   * could not start (a process that may not start threads, such as Node's permission model without
   * `--allow-worker`): said once through `onError`, and the store commits on its own thread.
   */
  start(): boolean {
    if (this.#worker !== undefined) return true;
    if (this.#closed || this.#failed) return false;
    try {
      this.#spawn();
      return true;
    } catch (error) {
      this.#failed = true;
      this.#options.onError(new StoreError(`the store's writer thread could not start, so the store commits on its own thread: ${(error as Error).message}`, { cause: error }));
      return false;
    }
  }

  /** Writes and ledger entries handed to the writer and not yet committed. */
  get pending(): number {
    return this.#opsSent - Atomics.load(this.#counters, ACK_OPS);
  }

  /**
   * Hands writes and drafts to the writer without waiting for it. Only a recorder that never awaits
   * `backpressure()` (a synchronous path) can push the writer `HARD_LIMIT_FACTOR` times past
   * `maxPending`: then this waits, so memory stays bounded whatever the caller does.
   */
  send(writes: QueuedWrite[], drafts: LedgerDraft[]): void {
    const defs: string[] = [];
    const ids: number[] = new Array(writes.length);
    for (let i = 0; i < writes.length; i++) {
      const sql = writes[i]!.sql;
      let id = this.#sqlIds.get(sql);
      if (id === undefined) {
        id = this.#sqlIds.size;
        this.#sqlIds.set(sql, id);
        defs.push(sql);
      }
      ids[i] = id;
    }
    // Structured cloning costs per object; one text and two arrays of numbers are three copies. Bytes and big integers keep the clone.
    const parts = encodeBatch(ids, writes, drafts);
    const message: CommitMessage = parts !== undefined ? { kind: "batch", defs, text: parts.text, layout: parts.layout, numbers: parts.numbers } : { kind: "commit", defs, writes: writes.map((write, i) => [ids[i]!, write.params]), drafts };
    this.#inUse = true;
    this.#post(message, writes.length + drafts.length);
    if (this.pending > this.#options.maxPending) this.#reportBehind();
    if (this.pending > this.#options.maxPending * HARD_LIMIT_FACTOR) this.#waitUntil(() => this.pending <= this.#options.maxPending);
  }

  /**
   * While more than `maxPending` writes are behind, a promise that settles once the writer is back
   * under half of that: governed calls await it before they run, so a producer faster than the disk
   * slows to the writer's pace without ever holding the event loop. Undefined when nothing is behind.
   */
  backpressure(): Promise<void> | undefined {
    if (this.#worker === undefined || this.#failed || this.pending <= this.#options.maxPending) return undefined;
    this.#reportBehind();
    this.#drained ??= this.#waitAsync(() => this.pending <= this.#options.maxPending / 2).finally(() => {
      this.#drained = undefined;
    });
    return this.#drained;
  }

  /** Returns once everything handed over so far has committed (or failed and been reported). */
  drain(): void {
    if (this.#worker !== undefined) this.#waitUntil(() => Atomics.load(this.#counters, ACK_MESSAGES) >= this.#sent);
  }

  /** Has the writer sign a checkpoint over its own appends, and waits for it. */
  checkpoint(): void {
    // A thread given nothing has appended nothing to sign.
    if (!this.#inUse) return;
    this.#post({ kind: "checkpoint" }, 0);
    this.drain();
  }

  /** Commits what is left, closes the writer's connection and lets the thread go. */
  close(): void {
    this.#closed = true;
    if (this.#starting !== undefined) clearImmediate(this.#starting);
    this.#starting = undefined;
    const worker = this.#worker;
    if (worker === undefined) return;
    // A thread given nothing holds nothing: it is let go at once, booted or not.
    if (this.#inUse) {
      this.#post({ kind: "close" }, 0);
      this.drain();
    }
    this.#worker = undefined;
    void worker.terminate();
  }

  #post(message: CommitMessage, ops: number): void {
    const worker = this.#spawn();
    this.#sent++;
    this.#opsSent += ops;
    worker.postMessage(message);
  }

  #spawn(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const { maxPending: _maxPending, onError: _onError, ...rest } = this.#options;
    const data: WriterData = { ...rest, shared: this.#counters.buffer as SharedArrayBuffer };
    const entry = writerEntry();
    // Read when the first write goes out, not at import: a client on `:memory:` never starts a writer.
    const { Worker: WriterThread } = process.getBuiltinModule("node:worker_threads");
    const worker = new WriterThread(entry.url, { workerData: data, ...(entry.execArgv && { execArgv: entry.execArgv }) });
    worker.on("message", (message: { error?: { name: string; message: string } }) => {
      if (message.error !== undefined) this.#options.onError(new StoreError(message.error.message));
    });
    worker.on("error", (error) => this.#options.onError(new StoreError(`the store's writer failed: ${error.message}`, { cause: error })));
    // The writer never keeps the process alive: the exit hook and `close()` wait for what it holds.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #reportBehind(): void {
    if (this.#behindReported) return;
    this.#behindReported = true;
    this.#options.onError(new StoreError(`the store's writer is ${this.pending} writes behind (at most ${this.#options.maxPending} may wait): governed calls wait for it to catch up`));
  }

  #giveUp(): void {
    this.#failed = true;
    this.#options.onError(new StoreError(`the store's writer did not answer within ${WRITER_TIMEOUT_MS / 1000} s: ${this.pending} writes may be lost; the store commits on its own thread from now on`));
  }

  #waitUntil(done: () => boolean): void {
    const deadline = Date.now() + WRITER_TIMEOUT_MS;
    while (!done()) {
      const seen = Atomics.load(this.#counters, ACK_MESSAGES);
      if (done()) return;
      if (Date.now() > deadline) return this.#giveUp();
      Atomics.wait(this.#counters, ACK_MESSAGES, seen, 100);
    }
  }

  /** As `#waitUntil`, without blocking: the event loop runs while the writer commits. */
  async #waitAsync(done: () => boolean): Promise<void> {
    const deadline = Date.now() + WRITER_TIMEOUT_MS;
    while (!done() && !this.#failed) {
      const seen = Atomics.load(this.#counters, ACK_MESSAGES);
      if (done()) return;
      if (Date.now() > deadline) return this.#giveUp();
      const waited = waitAsync(this.#counters, ACK_MESSAGES, seen, 100);
      if (!waited.async) continue;
      // A waitAsync alone does not keep the process alive (the writer is unref'd): a timer does.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([waited.value, new Promise<void>((resolve) => (timer = setTimeout(resolve, 50)))]);
      clearTimeout(timer);
    }
  }
}

/*
 * A batch as it crosses: the text values of its writes and drafts concatenated in `text`, the numbers in
 * `numbers`, and in `layout` what reads them back: each write as WRITE, its statement, its count of
 * parameters and one code per parameter; each ledger draft as ENTRY and one code per field (id, ts, type,
 * org, agentId, runId, stepId, toolCallId, actor, dataJson). A code is a text's length (UTF-16 units),
 * NULL or NUMBER. Built by concatenation and pushes: no value is copied, scanned or escaped on the agent's
 * thread (each value in its own `s<length>:` envelope was a copy and a number written out), and reading it
 * back takes slices, not a parse. Two arrays of numbers cross the port as cheaply as one string.
 */
const NULL = -1;
const NUMBER = -2;
const WRITE = -3;
const ENTRY = -4;

/** The parts of a batch (`encodeBatch`), as a `batch` message carries them. */
export interface BatchParts {
  text: string;
  layout: number[];
  numbers: number[];
}

/** The writes (by statement number) and drafts as batch parts; undefined when a value needs the structured clone. */
export function encodeBatch(ids: readonly number[], writes: readonly QueuedWrite[], drafts: readonly LedgerDraft[]): BatchParts | undefined {
  const parts: BatchParts = { text: "", layout: [], numbers: [] };
  for (let i = 0; i < writes.length; i++) {
    const params = writes[i]!.params;
    parts.layout.push(WRITE, ids[i]!, params.length);
    for (let j = 0; j < params.length; j++) if (!put(parts, params[j])) return undefined;
  }
  for (let i = 0; i < drafts.length; i++) {
    const draft = drafts[i]!;
    parts.layout.push(ENTRY);
    if (!put(parts, draft.id) || !put(parts, draft.ts) || !put(parts, draft.type) || !put(parts, draft.org) || !put(parts, draft.agentId) || !put(parts, draft.runId) || !put(parts, draft.stepId) || !put(parts, draft.toolCallId) || !put(parts, draft.actor) || !put(parts, draft.dataJson)) return undefined;
  }
  return parts;
}

/** Adds one value; false for one the parts cannot carry (bytes, big integers, NaN, infinities). */
function put(parts: BatchParts, value: unknown): boolean {
  if (typeof value === "string") {
    parts.layout.push(value.length);
    parts.text += value;
  } else if (value === null) parts.layout.push(NULL);
  else if (typeof value === "number" && Number.isFinite(value)) {
    parts.layout.push(NUMBER);
    // -0 crosses as 0, as the JSON and the text that carried batches before did.
    parts.numbers.push(value + 0);
  } else return false;
  return true;
}

/** Reads `encodeBatch`'s parts back into writes (by statement number) and drafts. Throws `StoreError` on parts it did not write. */
export function decodeBatch(batch: BatchParts): [Array<[number, SQLInputValue[]]>, LedgerDraft[]] {
  const reader = new BatchReader(batch);
  const writes: Array<[number, SQLInputValue[]]> = [];
  const drafts: LedgerDraft[] = [];
  while (!reader.done) {
    const tag = reader.code();
    if (tag === WRITE) {
      const id = reader.count();
      const count = reader.count();
      const params: SQLInputValue[] = new Array(count);
      for (let i = 0; i < count; i++) params[i] = reader.value();
      // Not a literal: these stay alive for the writer's whole transaction, and a literal's allocation site
      // would be moved to old space for it (see the store's queue).
      writes.push(Array.of<number | SQLInputValue[]>(id, params) as [number, SQLInputValue[]]);
    } else if (tag === ENTRY) {
      drafts.push(new Draft(reader.text(), reader.number(), reader.text(), reader.text(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.text()));
    } else throw reader.broken();
  }
  reader.end();
  return [writes, drafts];
}

class BatchReader {
  readonly #text: string;
  readonly #layout: readonly number[];
  readonly #numbers: readonly number[];
  #at = 0;
  #char = 0;
  #number = 0;

  constructor(batch: BatchParts) {
    if (typeof batch?.text !== "string" || !Array.isArray(batch.layout) || !Array.isArray(batch.numbers)) throw new StoreError("the store's writer received a batch it cannot read (not a batch)");
    this.#text = batch.text;
    this.#layout = batch.layout;
    this.#numbers = batch.numbers;
  }

  get done(): boolean {
    return this.#at >= this.#layout.length;
  }

  code(): number {
    if (this.#at >= this.#layout.length) throw this.broken();
    const code = this.#layout[this.#at++];
    if (!Number.isSafeInteger(code)) throw this.broken();
    return code!;
  }

  /** A count or a statement number: a non-negative integer. */
  count(): number {
    const value = this.code();
    if (value < 0) throw this.broken();
    return value;
  }

  value(): string | number | null {
    const code = this.code();
    if (code >= 0) {
      const start = this.#char;
      if (start + code > this.#text.length) throw this.broken();
      this.#char = start + code;
      return this.#text.slice(start, start + code);
    }
    if (code === NULL) return null;
    if (code === NUMBER) {
      const value = this.#numbers[this.#number++];
      if (typeof value !== "number" || !Number.isFinite(value)) throw this.broken();
      return value;
    }
    throw this.broken();
  }

  text(): string {
    const value = this.value();
    if (typeof value !== "string") throw this.broken();
    return value;
  }

  textOrNull(): string | null {
    const value = this.value();
    if (value !== null && typeof value !== "string") throw this.broken();
    return value;
  }

  number(): number {
    const value = this.value();
    if (typeof value !== "number") throw this.broken();
    return value;
  }

  /** Every character and number was read: anything left over was not written by `encodeBatch`. */
  end(): void {
    if (this.#char !== this.#text.length || this.#number !== this.#numbers.length) throw this.broken();
  }

  broken(): StoreError {
    return new StoreError(`the store's writer received a batch it cannot read (at code ${this.#at}, character ${this.#char})`);
  }
}

/**
 * The writer's module: beside the built bundle (`dist/commit-worker.js`), or from source (tests,
 * benchmarks) through tsx, which resolves the source's `.js` imports to its `.ts` files.
 */
function writerEntry(): { url: URL; execArgv?: string[] } {
  if (entry !== undefined) return entry;
  const here = import.meta.url;
  if (!here.endsWith(".ts")) entry = { url: new URL("./commit-worker.js", here) };
  else entry = { url: new URL("./commit-worker.ts", here), execArgv: ["--import", pathToFileURL(createRequire(here).resolve("tsx")).href] };
  return entry;
}
/** Found once a process: resolving it is a few milliseconds of the thread that spawns the writer. */
let entry: { url: URL; execArgv?: string[] } | undefined;
