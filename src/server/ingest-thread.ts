// `POST /v1/events` on SQLite, off the event loop: a worker thread owns a second connection to the
// database file and writes each batch in one transaction there (admission, rows, ledger hashing and
// checkpoints), while this thread parses and validates the next requests. A batch is answered once its
// transaction has committed, so what was acknowledged is durable whatever happens to the thread after.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { WardenEvent } from "agent-warden";
import { StoreError } from "agent-warden";
import { HttpError } from "./errors.js";
import type { RejectedEvent } from "./ingest.js";
import type { Changes, IngestResult, Principal } from "./store.js";

/** What the writer thread opens: the control plane's file and ledger settings. */
export interface IngestThreadData {
  path: string;
  ledgerSigningKey: string | undefined;
  checkpointEvery: number | undefined;
  checkpointIntervalMs: number | undefined;
}

export type IngestAnswer = IngestResult & { rejected: RejectedEvent[]; changes: Changes };

/** Messages to the writer thread. */
export type IngestRequest = { kind: "ingest"; id: number; principal: Principal; events: readonly WardenEvent[] | Uint8Array } | { kind: "close"; id: number };
/** Its answers: a batch's outcome, a failure (by request), or a background error of its store. */
export type IngestReply = { id: number; answer?: IngestAnswer; error?: { message: string } } | { id: 0; report: string } | { id: 0; ready: true };

/** Batches handed to the writer and not answered yet before `POST /v1/events` answers 503 (back-pressure). */
export const DEFAULT_MAX_PENDING_BATCHES = 64;

/**
 * This thread's side of the ingest writer. Started on the first batch; `usable` turns false when the
 * thread cannot start or dies, and the store then writes on its own thread again.
 */
export class IngestThread {
  readonly #data: IngestThreadData;
  readonly #maxPending: number;
  readonly #onError: (error: unknown) => void;
  readonly #pending = new Map<number, { resolve: (answer: IngestAnswer) => void; reject: (error: unknown) => void }>();
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #next = 0;
  #failed = false;
  #closed: Promise<void> | undefined;

  constructor(data: IngestThreadData, options: { maxPending?: number | undefined; onError: (error: unknown) => void }) {
    this.#data = data;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING_BATCHES;
    this.#onError = options.onError;
  }

  get usable(): boolean {
    return !this.#failed && this.#closed === undefined;
  }

  /** Batches handed over and not answered yet. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Boots the thread now rather than on the first batch; settles once its connection is open (or it failed). */
  start(): Promise<void> {
    if (this.usable) this.#spawn();
    return this.#ready ?? Promise.resolve();
  }

  /**
   * Writes one batch on the writer thread; settles once it has committed. The batch goes as the request's
   * JSON text when there is one: bytes cross as one copy, where objects are serialized and rebuilt one by one.
   */
  ingest(principal: Principal, events: readonly WardenEvent[] | Uint8Array): Promise<IngestAnswer> {
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(new HttpError(503, "unavailable", `the control plane is ${this.#pending.size} batches behind on writing events; send again shortly`, { headers: { "Retry-After": "1" } }));
    }
    const worker = this.#spawn();
    const id = ++this.#next;
    return new Promise<IngestAnswer>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ kind: "ingest", id, principal: { ...principal }, events } satisfies IngestRequest);
    });
  }

  /** Lets every batch handed over commit, closes the writer's connection and ends the thread. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const worker = this.#worker;
      if (worker === undefined || this.#failed) return;
      const id = ++this.#next;
      // Batches are written in the order they were handed over: the close comes after every one of them.
      await new Promise<void>((resolve) => {
        this.#pending.set(id, { resolve: () => resolve(), reject: () => resolve() });
        worker.ref();
        worker.postMessage({ kind: "close", id } satisfies IngestRequest);
      });
      await worker.terminate();
    })();
    return this.#closed;
  }

  #spawn(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const entry = workerEntry();
    const worker = new Worker(entry.url, { workerData: this.#data, ...(entry.execArgv && { execArgv: entry.execArgv }) });
    let booted = false;
    let ready!: () => void;
    this.#ready = new Promise<void>((resolve) => (ready = resolve));
    worker.on("message", (reply: IngestReply) => {
      if ("ready" in reply) {
        booted = true;
        if (this.#pending.size === 0) worker.unref();
        return ready();
      }
      if ("report" in reply) return this.#onError(new StoreError(reply.report));
      const waiting = this.#pending.get(reply.id);
      if (waiting === undefined) return;
      this.#pending.delete(reply.id);
      // The thread keeps the process alive while it holds a batch (or boots), never when idle.
      if (this.#pending.size === 0 && booted) worker.unref();
      if (reply.error !== undefined) waiting.reject(new StoreError(reply.error.message));
      else waiting.resolve(reply.answer!);
    });
    const fail = (error: Error) => {
      ready();
      if (this.#failed) return;
      this.#failed = true;
      this.#worker = undefined;
      // A batch that was not answered was not acknowledged: the client sends it again, and ids keep it single.
      for (const waiting of this.#pending.values()) waiting.reject(new HttpError(503, "unavailable", "the event writer stopped; send again", { headers: { "Retry-After": "1" }, cause: error }));
      this.#pending.clear();
      this.#onError(new StoreError(`the event writer thread failed, events are written on the main thread from now on: ${error.message}`, { cause: error }));
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (this.#closed === undefined) fail(new Error(`the thread exited (code ${code})`));
    });
    this.#worker = worker;
    return worker;
  }
}

/**
 * The writer's module: beside the built bundle (`dist/ingest-worker.js`, next to or one folder above the
 * chunk that starts it), or from source (tests, benchmarks) through tsx.
 */
function workerEntry(): { url: URL; execArgv?: string[] } {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) {
    const url = [new URL("./ingest-worker.js", here), new URL("../ingest-worker.js", here)].find((candidate) => existsSync(fileURLToPath(candidate)));
    return { url: url ?? new URL("./ingest-worker.js", here) };
  }
  const tsx = pathToFileURL(createRequire(here).resolve("tsx")).href;
  return { url: new URL("./ingest-worker.ts", here), execArgv: ["--import", tsx] };
}
