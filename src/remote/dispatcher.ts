import { RemoteError } from "../errors.js";
import type { WardenEvent } from "../events.js";
import { checkWireEvent, plainWireEvent, type EventRefusal, type IngestResponse } from "../wire/event.js";
import { MAX_EVENT_BYTES, MAX_INGEST_BYTES } from "../wire/limits.js";
import type { DeadLetterFile, Refusal } from "./dead-letters.js";
import type { Spool } from "./spool.js";

export interface DispatcherOptions {
  /** Sends one batch (`body` is its JSON, `{"events":[…]}`); resolves with the parsed answer, rejects with `RemoteError`. */
  send: (batch: WardenEvent[], body: string) => Promise<IngestResponse>;
  flushInterval: number;
  maxQueue: number;
  maxBatch: number;
  /** Batches from the queue sent at once, each awaiting its own answer; default 1. Spooled events are replayed one batch at a time. */
  maxInflight?: number | undefined;
  /** Largest request body. Default: the wire's `MAX_INGEST_BYTES`. */
  maxBatchBytes?: number | undefined;
  /** Where events wait while the server is unreachable; without it they wait in memory, up to `maxQueue`. */
  spool: Spool | undefined;
  /** Where refused events are set aside; without it they are counted and reported only. */
  deadLetters: DeadLetterFile | undefined;
  /** Why an event would be refused by the server (default: the wire's own check). */
  check?: ((event: WardenEvent, json: string) => EventRefusal | undefined) | undefined;
  /** Events the dispatcher is done with: the server has them, they were dead-lettered, or they are in the spool. */
  onSettled?: ((events: readonly WardenEvent[]) => void) | undefined;
  /** Events lost (a full queue without a spool, a closed client). */
  onDropped?: ((count: number) => void) | undefined;
  /** Events that will never reach the control plane (dropped, or set aside as refused), and why: the ledger records the gap. */
  onLost?: ((events: readonly WardenEvent[], why: string, kind: "dropped" | "refused") => void) | undefined;
  onError: (error: unknown) => void;
}

/** What the dispatcher has done so far. */
export interface DispatcherStats {
  queued: number;
  spooledBytes: number;
  sent: number;
  dropped: number;
  /** Events refused (before sending or by the server) and set aside in the dead-letter file. */
  deadLettered: number;
  offline: boolean;
}

const MAX_BACKOFF = 10_000;
/** `{"events":[` and `]}`. */
const ENVELOPE_BYTES = 13;
/** Statuses that refuse what a batch holds, not the caller: splitting the batch finds the event to blame. */
const REFUSES_CONTENT = new Set([400, 413, 422]);
/** The API's error code for a status, when the answer names none (`ApiErrorCode` in src/server/errors.ts). */
const CODE_OF_STATUS: Record<number, string> = { 400: "invalid_request", 401: "unauthorized", 403: "insufficient_scope", 404: "not_found", 413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request" };
/** Ids of recent dead letters: a batch retried after an outage does not set the same event aside twice. */
const RECENT_DEAD_LETTERS = 4096;

/**
 * A key bound to one agent is refused (403) a request that reports for another: splitting helps only
 * when the batch names several agents; otherwise the key itself is refused and splitting cannot help.
 */
function speaksForSeveral(items: readonly Packed[]): boolean {
  const agents = new Set<string>();
  for (const { event } of items) if (typeof event.agentId === "string") agents.add(event.agentId);
  return agents.size > 1;
}

interface Packed {
  event: WardenEvent;
  /** The event's JSON; undefined when the batch was serialized whole (made again if the batch is split). */
  json: string | undefined;
}

/**
 * Sends events in the background, in the manner of OpenTelemetry's batch processor: a bounded
 * queue, batches, an unref'd timer. Only 429/502/503/504 and no answer at all are retried,
 * honouring `Retry-After`, else after an exponential backoff with jitter; meanwhile events go to
 * the spool and are replayed, oldest first, once the server answers again. Each event is checked
 * against the wire's schema and size before it is sent: one the server could never accept is set
 * aside in the dead-letter file at once. A batch the server refuses (400, 413, 422, and 403 when it
 * reports for several agents) is split until
 * the refused events are found; they are set aside with the server's reason and the rest is
 * delivered, as are the events a 2xx answer lists in `refused`. Nothing here throws into the agent or makes it wait.
 */
export class EventDispatcher {
  readonly #options: DispatcherOptions;
  readonly #timer: NodeJS.Timeout;
  readonly #maxBatchBytes: number;
  readonly #check: (event: WardenEvent, json: string) => EventRefusal | undefined;
  #queue: WardenEvent[] = [];
  readonly #maxInflight: number;
  /** Batches sent and not answered yet. */
  readonly #inflight = new Set<{ batch: WardenEvent[]; fromSpool: boolean }>();
  #pumping: Promise<void> | undefined;
  #offline = false;
  #retryAt = 0;
  #attempt = 0;
  #sent = 0;
  #dropped = 0;
  #deadLettered = 0;
  readonly #recentDeadLetters = new Set<string>();
  #warnedFull = false;
  #warnedDeadLetter = false;
  #immediate: NodeJS.Immediate | undefined;
  #shutdown: Promise<void> | undefined;
  #closed = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#maxBatchBytes = options.maxBatchBytes ?? MAX_INGEST_BYTES;
    this.#maxInflight = Math.max(1, options.maxInflight ?? 1);
    this.#check = options.check ?? ((event, json) => checkWireEvent(event, json));
    this.#timer = setInterval(() => this.#tick(), options.flushInterval);
    this.#timer.unref();
  }

  get stats(): DispatcherStats {
    return { queued: this.#queue.length, spooledBytes: this.#options.spool?.bytes ?? 0, sent: this.#sent, dropped: this.#dropped, deadLettered: this.#deadLettered, offline: this.#offline };
  }

  /** Queues one event. O(1) unless the queue is full, when it spills to the spool in one write. */
  enqueue(event: WardenEvent): void {
    if (this.#closed) {
      this.#drop([event], "the client is closed");
      return;
    }
    if (this.#queue.length >= this.#options.maxQueue) {
      this.#spill();
      if (this.#queue.length >= this.#options.maxQueue) {
        this.#drop([event], `the event queue is full (${this.#options.maxQueue})`);
        return;
      }
    }
    this.#queue.push(event);
    if (!this.#offline && this.#queue.length >= this.#options.maxBatch && this.#immediate === undefined) {
      this.#immediate = setImmediate(() => {
        this.#immediate = undefined;
        this.#kick();
      });
      this.#immediate.unref();
    }
  }

  /**
   * Sends what is queued and spooled now, even during a backoff (one attempt). If the server does
   * not take it, moves the queue to the spool and returns. Never rejects.
   */
  async flush(): Promise<void> {
    // Bounded, so an agent that never stops producing cannot keep a flush running forever.
    for (let rounds = 0; rounds < 1_000_000 && !this.#closed; rounds++) {
      if (this.#pumping) await this.#pumping;
      if (this.#queue.length === 0 && !(this.#options.spool?.hasData ?? false)) return;
      await this.#kick(true);
      if (this.#offline) {
        this.#spill();
        return;
      }
    }
  }

  /** The server is known to be back (its stream reconnected): retry now instead of after the backoff. */
  nudge(): void {
    if (!this.#offline || this.#closed) return;
    this.#retryAt = 0;
    void this.#kick();
  }

  /** Flushes, then stops. Safe to call twice; later events are dropped. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      await this.flush();
      this.close();
    })();
    return this.#shutdown;
  }

  /** Stops at once: what is in memory (the batch in flight too) goes to the spool. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    clearInterval(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    for (const inflight of [...this.#inflight].reverse()) if (!inflight.fromSpool) this.#queue.unshift(...inflight.batch);
    this.#spill();
    if (this.#queue.length > 0) this.#drop(this.#queue, "the client closed with events unsent and no spool");
    this.#queue = [];
    this.#closed = true;
  }

  #tick(): void {
    if (this.#offline) this.#spill();
    if (this.#offline && Date.now() < this.#retryAt) return;
    void this.#kick();
  }

  /** Runs the pump unless it is running. */
  #kick(untilEmpty = false): Promise<void> {
    this.#pumping ??= this.#pump(untilEmpty).finally(() => {
      this.#pumping = undefined;
    });
    return this.#pumping;
  }

  /**
   * Sends batches until the queue (and the spool) is empty, or holds less than a batch when not
   * `untilEmpty`. Up to `maxInflight` batches of the queue are out at once; the spool is replayed
   * one batch at a time, since it is acknowledged oldest first. After a failure no batch is started.
   */
  async #pump(untilEmpty: boolean): Promise<void> {
    const sending = new Set<Promise<void>>();
    let stopped = false;
    let first = true;
    try {
      for (;;) {
        if (this.#closed || stopped) return;
        const spool = this.#options.spool;
        const fromSpool = spool?.hasData ?? false;
        // After the first batch, new work waits for the timer unless the queue holds a full batch.
        const more = first || untilEmpty || fromSpool || this.#queue.length >= this.#options.maxBatch;
        const candidates = !more || sending.size >= this.#maxInflight || (fromSpool && sending.size > 0) ? [] : fromSpool ? spool!.peek(this.#options.maxBatch) : this.#queue.splice(0, this.#options.maxBatch);
        if (candidates.length === 0) {
          if (sending.size === 0) return;
          await Promise.race(sending);
          continue;
        }
        first = false;
        const { items, consumed, refused, body } = this.#pack(candidates);
        if (!fromSpool && consumed < candidates.length) this.#queue.unshift(...candidates.slice(consumed));
        this.#setAside(refused);
        if (items.length === 0) {
          if (fromSpool) spool!.ack(consumed);
          continue;
        }
        // Any failure stops the pump, whichever batch answers first.
        const sent: Promise<void> = this.#send(items, fromSpool, consumed, body)
          .then((ok) => void (stopped ||= !ok))
          .finally(() => sending.delete(sent));
        sending.add(sent);
      }
    } finally {
      await Promise.all(sending);
    }
  }

  /** Delivers one packed batch; false when the pump should stop (the server could not take it). */
  async #send(items: Packed[], fromSpool: boolean, consumed: number, body: string | undefined): Promise<boolean> {
    const batch = items.map((item) => item.event);
    const inflight = { batch, fromSpool };
    this.#inflight.add(inflight);
    const settled = new Set<Packed>();
    try {
      await this.#deliver(items, settled, body);
      this.#inflight.delete(inflight);
      if (fromSpool) this.#options.spool!.ack(consumed);
      this.#offline = false;
      this.#attempt = 0;
      return true;
    } catch (error) {
      this.#inflight.delete(inflight);
      // What the server took (or refused for good) before the failure is not sent again.
      const rest = settled.size === 0 ? batch : items.filter((item) => !settled.has(item)).map((item) => item.event);
      if (this.#closed) {
        if (!fromSpool) this.#keep(rest);
        return false;
      }
      if (error instanceof RemoteError && error.retryable) {
        if (!fromSpool) this.#keep(rest);
        this.#goOffline(error);
        return false;
      }
      // Not an answer of the server's (a bug): keep the events, report, try again later.
      if (!fromSpool) this.#keep(rest);
      this.#options.onError(error);
      return false;
    }
  }

  /**
   * The longest run of candidates that fits one request, each checked as the server will check it:
   * those refused are returned apart (and count as consumed), the first that does not fit ends the batch.
   */
  #pack(candidates: readonly WardenEvent[]): { items: Packed[]; consumed: number; refused: Array<{ event: WardenEvent; refusal: Refusal }>; body?: string } {
    const whole = this.#packWhole(candidates);
    if (whole !== undefined) return whole;
    const items: Packed[] = [];
    const refused: Array<{ event: WardenEvent; refusal: Refusal }> = [];
    let bytes = ENVELOPE_BYTES;
    let consumed = 0;
    for (const event of candidates) {
      let json: string;
      try {
        json = JSON.stringify(event);
      } catch (error) {
        refused.push({ event, refusal: { by: "client", code: "invalid_event", reason: `not serializable as JSON: ${error instanceof Error ? error.message : String(error)}` } });
        consumed++;
        continue;
      }
      const refusal = this.#check(event, json);
      if (refusal !== undefined) {
        refused.push({ event, refusal: { by: "client", ...refusal } });
        consumed++;
        continue;
      }
      const size = Buffer.byteLength(json) + 1;
      if (items.length > 0 && bytes + size > this.#maxBatchBytes) break;
      items.push({ event, json });
      bytes += size;
      consumed++;
    }
    return { items, consumed, refused };
  }

  /**
   * `#pack` of candidates that all pass the wire check and fit one request together, the common case:
   * the batch serialized in one `JSON.stringify` (the same text as the events' JSON joined), each event
   * read field by field instead of through the schema, and sized by the whole (an event is no larger than
   * its batch). Undefined when any candidate needs `#pack`'s event-by-event reading, or a custom check is set.
   */
  #packWhole(candidates: readonly WardenEvent[]): { items: Packed[]; consumed: number; refused: []; body: string } | undefined {
    if (this.#options.check !== undefined || candidates.length === 0) return undefined;
    for (const event of candidates) if (!plainWireEvent(event)) return undefined;
    let events: string;
    try {
      events = JSON.stringify(candidates);
    } catch {
      return undefined;
    }
    const body = `{"events":${events}}`;
    if (Buffer.byteLength(body) > Math.min(this.#maxBatchBytes, MAX_EVENT_BYTES)) return undefined;
    return { items: candidates.map((event) => ({ event, json: undefined })), consumed: candidates.length, refused: [], body };
  }

  /**
   * Sends `items` (`body` is their request when the caller has it); a batch refused for its content is
   * split in halves until each refused event stands alone. Resolves once every item is delivered or set
   * aside (each then in `settled`); rejects only when the server could not be reached or asked to retry.
   */
  async #deliver(items: Packed[], settled: Set<Packed>, body?: string): Promise<void> {
    let response: IngestResponse;
    try {
      response = await this.#options.send(
        items.map((item) => item.event),
        body ?? `{"events":[${items.map((item) => item.json ?? JSON.stringify(item.event)).join(",")}]}`,
      );
    } catch (error) {
      if (!(error instanceof RemoteError) || error.retryable || error.status === undefined) throw error;
      if (items.length > 1 && (REFUSES_CONTENT.has(error.status) || (error.status === 403 && speaksForSeveral(items)))) {
        const half = Math.ceil(items.length / 2);
        await this.#deliver(items.slice(0, half), settled);
        await this.#deliver(items.slice(half), settled);
        return;
      }
      // One event refused, or the whole request refused for a reason no split can fix (the key).
      const refusal: Refusal = { by: "server", code: CODE_OF_STATUS[error.status] ?? `http_${error.status}`, reason: error.message.replace(/^\[warden\] \[\w+\] "[^"]*": /, ""), status: error.status };
      if (items.length > 1) this.#options.onError(error);
      this.#setAside(items.map(({ event }) => ({ event, refusal })));
      for (const item of items) settled.add(item);
      this.#options.onSettled?.(items.map((item) => item.event));
      return;
    }
    const rejected: Array<{ event: WardenEvent; refusal: Refusal }> = [];
    for (const r of response.rejected ?? []) {
      const item = items[r.index];
      // An index that names another event than it claims is not trusted to name any (empty: the server could not read the id).
      if (item === undefined || (r.id !== "" && item.event.id !== r.id)) continue;
      rejected.push({ event: item.event, refusal: { by: "server", code: r.code, reason: r.reason } });
    }
    this.#setAside(rejected);
    this.#sent += items.length - rejected.length;
    for (const item of items) settled.add(item);
    this.#options.onSettled?.(items.map((item) => item.event));
  }

  /** Writes dead letters (each event once), counts them, and reports the first. */
  #setAside(items: ReadonlyArray<{ event: WardenEvent; refusal: Refusal }>): void {
    const fresh = items.filter(({ event }) => !this.#recentDeadLetters.has(String(event.id)));
    if (fresh.length === 0) return;
    for (const { event } of fresh) {
      this.#recentDeadLetters.add(String(event.id));
      if (this.#recentDeadLetters.size > RECENT_DEAD_LETTERS) this.#recentDeadLetters.delete(this.#recentDeadLetters.values().next().value!);
    }
    this.#deadLettered += fresh.length;
    try {
      this.#options.deadLetters?.record(fresh);
    } catch (error) {
      this.#options.onError(error);
    }
    this.#options.onSettled?.(fresh.map(({ event }) => event));
    this.#lost(fresh.map(({ event }) => event), fresh[0]!.refusal.reason, "refused");
    if (this.#warnedDeadLetter) return;
    this.#warnedDeadLetter = true;
    const first = fresh[0]!;
    this.#options.onError(
      new RemoteError(`event "${String(first.event.id).slice(0, 64)}" (${String(first.event.type).slice(0, 64)}) set aside, the control plane will not accept it: ${first.refusal.reason} (see warden.remote.deadLetters(); further ones are counted, not reported)`, {
        retryable: false,
        ...(first.refusal.status !== undefined && { status: first.refusal.status }),
      }),
    );
  }

  #lost(events: readonly WardenEvent[], why: string, kind: "dropped" | "refused"): void {
    if (events.length === 0 || this.#options.onLost === undefined) return;
    try {
      this.#options.onLost(events, why, kind);
    } catch (error) {
      this.#options.onError(error);
    }
  }

  /** A batch that could not be sent goes back in front of the queue (then to the spool). */
  #keep(batch: WardenEvent[]): void {
    this.#queue.unshift(...batch);
    this.#spill();
    if (this.#queue.length > this.#options.maxQueue) this.#drop(this.#queue.splice(this.#options.maxQueue), `the event queue is full (${this.#options.maxQueue})`);
  }

  #goOffline(error: RemoteError): void {
    if (!this.#offline) this.#options.onError(error);
    this.#offline = true;
    this.#attempt++;
    const backoff = Math.min(MAX_BACKOFF, 250 * 2 ** (this.#attempt - 1));
    const delay = error.retryAfterMs ?? backoff / 2 + Math.random() * (backoff / 2);
    this.#retryAt = Date.now() + delay;
  }

  /** Moves the queue to the spool (oldest first), if there is one. */
  #spill(): void {
    const spool = this.#options.spool;
    if (spool === undefined || this.#queue.length === 0) return;
    let written: number;
    try {
      written = spool.append(this.#queue);
    } catch (error) {
      this.#options.onError(error);
      return;
    }
    if (written > 0) this.#options.onSettled?.(written === this.#queue.length ? this.#queue : this.#queue.slice(0, written));
    this.#queue = written === this.#queue.length ? [] : this.#queue.slice(written);
  }

  #drop(events: readonly WardenEvent[], why: string): void {
    const count = events.length;
    this.#dropped += count;
    this.#options.onDropped?.(count);
    this.#lost(events, why, "dropped");
    if (this.#warnedFull) return;
    this.#warnedFull = true;
    this.#options.onError(new RemoteError(`events dropped: ${why} (further drops are counted, not reported)`, { retryable: false }));
  }
}
