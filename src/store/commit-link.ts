import { createRequire } from "node:module";
import type { SQLInputValue } from "node:sqlite";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { StoreError } from "../errors.js";
import type { SigningKey } from "../ledger/keys.js";
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
  | { kind: "checkpoint" }
  | { kind: "close" };

export interface CommitLinkOptions extends Omit<WriterData, "shared"> {
  /** Writes and entries handed over but not yet committed before `send` waits for the writer (back-pressure). */
  maxPending: number;
  onError: (error: unknown) => void;
}

/** How long a wait for the writer may last before the link gives up on it and the store commits itself. */
const WRITER_TIMEOUT_MS = 60_000;

/**
 * The client thread's side of the writer thread: hands over queued writes and ledger drafts (the
 * thread commits them, chains and hashes the entries, signs checkpoints), and waits for it only when
 * asked to (`drain`, before a read, `flush()` and `close()`) or when more than `maxPending` are behind
 * (bounded back-pressure; `pending` shows how far behind it is). Started on the first write.
 */
export class CommitLink {
  readonly #options: CommitLinkOptions;
  readonly #counters = new Int32Array(new SharedArrayBuffer(8));
  readonly #sqlIds = new Map<string, number>();
  #worker: Worker | undefined;
  #sent = 0;
  #opsSent = 0;
  #failed = false;
  #waitedReported = false;

  constructor(options: CommitLinkOptions) {
    this.#options = options;
  }

  /** False once the writer could not be started or stopped answering: the store then commits on its own thread. */
  get usable(): boolean {
    return !this.#failed;
  }

  /** Whether the writer thread has been started (by the first hand-over). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /** Writes and ledger entries handed to the writer and not yet committed. */
  get pending(): number {
    return this.#opsSent - Atomics.load(this.#counters, ACK_OPS);
  }

  /** Hands writes and drafts to the writer; waits only while more than `maxPending` are behind. */
  send(writes: QueuedWrite[], drafts: LedgerDraft[]): void {
    const defs: string[] = [];
    const numbered: Array<[number, SQLInputValue[]]> = [];
    for (const write of writes) {
      let id = this.#sqlIds.get(write.sql);
      if (id === undefined) {
        id = this.#sqlIds.size;
        this.#sqlIds.set(write.sql, id);
        defs.push(write.sql);
      }
      numbered.push([id, write.params]);
    }
    this.#post({ kind: "commit", defs, writes: numbered, drafts }, writes.length + drafts.length);
    if (this.pending > this.#options.maxPending) {
      if (!this.#waitedReported) this.#options.onError(new StoreError(`the store's writer is ${this.pending} writes behind (at most ${this.#options.maxPending} may wait): recording waits for it`));
      this.#waitedReported = true;
      this.#waitUntil(() => this.pending <= this.#options.maxPending / 2);
    }
  }

  /** Returns once everything handed over so far has committed (or failed and been reported). */
  drain(): void {
    if (this.#worker !== undefined) this.#waitUntil(() => Atomics.load(this.#counters, ACK_MESSAGES) >= this.#sent);
  }

  /** Has the writer sign a checkpoint over its own appends, and waits for it. */
  checkpoint(): void {
    if (this.#worker === undefined) return;
    this.#post({ kind: "checkpoint" }, 0);
    this.drain();
  }

  /** Commits what is left, closes the writer's connection and lets the thread go. */
  close(): void {
    const worker = this.#worker;
    if (worker === undefined) return;
    this.#post({ kind: "close" }, 0);
    this.drain();
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
    const worker = new Worker(entry.url, { workerData: data, ...(entry.execArgv && { execArgv: entry.execArgv }) });
    worker.on("message", (message: { error?: { name: string; message: string } }) => {
      if (message.error !== undefined) this.#options.onError(new StoreError(message.error.message));
    });
    worker.on("error", (error) => this.#options.onError(new StoreError(`the store's writer failed: ${error.message}`, { cause: error })));
    // The writer never keeps the process alive: the exit hook and `close()` wait for what it holds.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  #waitUntil(done: () => boolean): void {
    const deadline = Date.now() + WRITER_TIMEOUT_MS;
    while (!done()) {
      const seen = Atomics.load(this.#counters, ACK_MESSAGES);
      if (done()) return;
      if (Date.now() > deadline) {
        this.#failed = true;
        this.#options.onError(new StoreError(`the store's writer did not answer within ${WRITER_TIMEOUT_MS / 1000} s: ${this.pending} writes may be lost; the store commits on its own thread from now on`));
        return;
      }
      Atomics.wait(this.#counters, ACK_MESSAGES, seen, 100);
    }
  }
}

/**
 * The writer's module: beside the built bundle (`dist/commit-worker.js`), or from source (tests,
 * benchmarks) through tsx, which resolves the source's `.js` imports to its `.ts` files.
 */
function writerEntry(): { url: URL; execArgv?: string[] } {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return { url: new URL("./commit-worker.js", here) };
  const tsx = pathToFileURL(createRequire(here).resolve("tsx")).href;
  return { url: new URL("./commit-worker.ts", here), execArgv: ["--import", tsx] };
}
