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
  /** The same as one text (`encodeBatch`): one string crosses instead of thousands of small objects. */
  | { kind: "batch"; defs: string[]; text: string }
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
 * far behind it is). Started on the first write.
 */
export class CommitLink {
  readonly #options: CommitLinkOptions;
  readonly #counters = new Int32Array(new SharedArrayBuffer(8));
  readonly #sqlIds = new Map<string, number>();
  #worker: Worker | undefined;
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

  /** Whether the writer thread has been started (by the first hand-over). */
  get started(): boolean {
    return this.#worker !== undefined;
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
    // Structured cloning costs per object; one text is one copy. Bytes and big integers keep the clone.
    const text = encodeBatch(ids, writes, drafts);
    const message: CommitMessage = text !== undefined ? { kind: "batch", defs, text } : { kind: "commit", defs, writes: writes.map((write, i) => [ids[i]!, write.params]), drafts };
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
 * The batch text: each write as `w<statement>,<count>;` and its parameters, each ledger draft as `e` and
 * its ten fields (id, ts, type, org, agentId, runId, stepId, toolCallId, actor, dataJson); each value as
 * `n` (null), `s<length>:<text>` (length in UTF-16 units) or `d<number>;`. Built by concatenation: no
 * character is scanned or escaped on the agent's thread (JSON.stringify escaped every quote of every
 * entry's data), and reading it back takes slices, not a parse.
 */
const NULL = 110; // n
const TEXT = 115; // s
const NUMBER = 100; // d
const WRITE = 119; // w
const ENTRY = 101; // e

/** A value as the batch text carries it; undefined for one it cannot (bytes, big integers, NaN). */
function field(value: unknown): string | undefined {
  if (value === null) return "n";
  if (typeof value === "string") return `s${value.length}:${value}`;
  if (typeof value === "number" && Number.isFinite(value)) return `d${value};`;
  return undefined;
}

/** The writes (by statement number) and drafts as one text; undefined when a value needs the structured clone. */
export function encodeBatch(ids: readonly number[], writes: readonly QueuedWrite[], drafts: readonly LedgerDraft[]): string | undefined {
  let text = "";
  for (let i = 0; i < writes.length; i++) {
    const params = writes[i]!.params;
    text += `w${ids[i]},${params.length};`;
    for (let j = 0; j < params.length; j++) {
      const value = field(params[j]);
      if (value === undefined) return undefined;
      text += value;
    }
  }
  for (const draft of drafts) {
    const ts = field(draft.ts);
    const id = field(draft.id);
    const type = field(draft.type);
    const org = field(draft.org);
    const dataJson = field(draft.dataJson);
    if (ts === undefined || id === undefined || type === undefined || org === undefined || dataJson === undefined) return undefined;
    const agentId = field(draft.agentId);
    const runId = field(draft.runId);
    const stepId = field(draft.stepId);
    const toolCallId = field(draft.toolCallId);
    const actor = field(draft.actor);
    if (agentId === undefined || runId === undefined || stepId === undefined || toolCallId === undefined || actor === undefined) return undefined;
    text += `e${id}${ts}${type}${org}${agentId}${runId}${stepId}${toolCallId}${actor}${dataJson}`;
  }
  return text;
}


/** Reads `encodeBatch`'s text back into writes (by statement number) and drafts. Throws `StoreError` on text it did not write. */
export function decodeBatch(text: string): [Array<[number, SQLInputValue[]]>, LedgerDraft[]] {
  const reader = new BatchReader(text);
  const writes: Array<[number, SQLInputValue[]]> = [];
  const drafts: LedgerDraft[] = [];
  while (!reader.done) {
    const tag = reader.tag();
    if (tag === WRITE) {
      const id = reader.integer(",");
      const count = reader.integer(";");
      const params: SQLInputValue[] = new Array(count);
      for (let i = 0; i < count; i++) params[i] = reader.value();
      // Not a literal: these stay alive for the writer's whole transaction, and a literal's allocation site
      // would be moved to old space for it (see the store's queue).
      writes.push(Array.of<number | SQLInputValue[]>(id, params) as [number, SQLInputValue[]]);
    } else if (tag === ENTRY) {
      drafts.push(new Draft(reader.text(), reader.number(), reader.text(), reader.text(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.textOrNull(), reader.text()));
    } else throw reader.broken();
  }
  return [writes, drafts];
}

class BatchReader {
  #at = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  get done(): boolean {
    return this.#at >= this.#text.length;
  }

  tag(): number {
    return this.#text.charCodeAt(this.#at++);
  }

  /** A non-negative integer up to the character `stop`. */
  integer(stop: string): number {
    const end = this.#text.indexOf(stop, this.#at);
    // Number("") is 0: an empty field is broken, not zero.
    const value = end <= this.#at ? NaN : Number(this.#text.slice(this.#at, end));
    if (!Number.isSafeInteger(value) || value < 0) throw this.broken();
    this.#at = end + 1;
    return value;
  }

  value(): string | number | null {
    const tag = this.tag();
    if (tag === NULL) return null;
    if (tag === TEXT) {
      const length = this.integer(":");
      const start = this.#at;
      if (start + length > this.#text.length) throw this.broken();
      this.#at = start + length;
      return this.#text.slice(start, start + length);
    }
    if (tag === NUMBER) {
      const end = this.#text.indexOf(";", this.#at);
      const value = end <= this.#at ? NaN : Number(this.#text.slice(this.#at, end));
      if (!Number.isFinite(value)) throw this.broken();
      this.#at = end + 1;
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

  broken(): StoreError {
    return new StoreError(`the store's writer received a batch it cannot read (at character ${this.#at})`);
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
