import { RemoteError } from "../errors.js";
import type { WardenEvent } from "../events.js";
import type { Spool } from "./spool.js";

export interface DispatcherOptions {
  /** Sends one batch; rejects with `RemoteError`. */
  send: (batch: WardenEvent[]) => Promise<void>;
  flushInterval: number;
  maxQueue: number;
  maxBatch: number;
  /** Where events wait while the server is unreachable; without it they wait in memory, up to `maxQueue`. */
  spool: Spool | undefined;
  onError: (error: unknown) => void;
}

/** What the dispatcher has done so far. */
export interface DispatcherStats {
  queued: number;
  spooledBytes: number;
  sent: number;
  dropped: number;
  offline: boolean;
}

const MAX_BACKOFF = 10_000;

/**
 * Sends events in the background, in the manner of OpenTelemetry's batch processor: a bounded
 * queue, batches, an unref'd timer. Only 429/502/503/504 and no answer at all are retried,
 * honouring `Retry-After`, else after an exponential backoff with jitter; meanwhile events go to
 * the spool and are replayed, oldest first, once the server answers again. Nothing here throws
 * into the agent or makes it wait.
 */
export class EventDispatcher {
  readonly #options: DispatcherOptions;
  readonly #timer: NodeJS.Timeout;
  #queue: WardenEvent[] = [];
  #inflight: { batch: WardenEvent[]; fromSpool: boolean } | undefined;
  #pumping: Promise<void> | undefined;
  #offline = false;
  #retryAt = 0;
  #attempt = 0;
  #sent = 0;
  #dropped = 0;
  #warnedFull = false;
  #immediate: NodeJS.Immediate | undefined;
  #shutdown: Promise<void> | undefined;
  #closed = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#timer = setInterval(() => this.#tick(), options.flushInterval);
    this.#timer.unref();
  }

  get stats(): DispatcherStats {
    return { queued: this.#queue.length, spooledBytes: this.#options.spool?.bytes ?? 0, sent: this.#sent, dropped: this.#dropped, offline: this.#offline };
  }

  /** Queues one event. O(1) unless the queue is full, when it spills to the spool in one write. */
  enqueue(event: WardenEvent): void {
    if (this.#closed) {
      this.#drop(1, "the client is closed");
      return;
    }
    if (this.#queue.length >= this.#options.maxQueue) {
      this.#spill();
      if (this.#queue.length >= this.#options.maxQueue) {
        this.#drop(1, `the event queue is full (${this.#options.maxQueue})`);
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
    if (this.#inflight && !this.#inflight.fromSpool) this.#queue.unshift(...this.#inflight.batch);
    this.#spill();
    if (this.#queue.length > 0) this.#drop(this.#queue.length, "the client closed with events unsent and no spool");
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

  async #pump(untilEmpty: boolean): Promise<void> {
    for (;;) {
      if (this.#closed) return;
      const spool = this.#options.spool;
      const fromSpool = spool?.hasData ?? false;
      const batch = fromSpool ? spool!.peek(this.#options.maxBatch) : this.#queue.splice(0, this.#options.maxBatch);
      if (batch.length === 0) return;
      this.#inflight = { batch, fromSpool };
      try {
        await this.#options.send(batch);
        this.#inflight = undefined;
        if (fromSpool) spool!.ack(batch.length);
        this.#sent += batch.length;
        this.#offline = false;
        this.#attempt = 0;
      } catch (error) {
        this.#inflight = undefined;
        if (this.#closed) {
          if (!fromSpool) this.#keep(batch);
          return;
        }
        if (error instanceof RemoteError && error.retryable) {
          if (!fromSpool) this.#keep(batch);
          this.#goOffline(error);
          return;
        }
        // Refused for good (malformed, unauthorized): retrying cannot help.
        this.#options.onError(error);
        if (fromSpool) spool!.ack(batch.length);
        this.#dropped += batch.length;
      }
      // Between batches, new work waits for the timer unless the queue holds a full batch.
      if (!untilEmpty && !(spool?.hasData ?? false) && this.#queue.length < this.#options.maxBatch) return;
    }
  }

  /** A batch that could not be sent goes back in front of the queue (then to the spool). */
  #keep(batch: WardenEvent[]): void {
    this.#queue.unshift(...batch);
    this.#spill();
    if (this.#queue.length > this.#options.maxQueue) this.#drop(this.#queue.splice(this.#options.maxQueue).length, `the event queue is full (${this.#options.maxQueue})`);
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
    this.#queue = written === this.#queue.length ? [] : this.#queue.slice(written);
  }

  #drop(count: number, why: string): void {
    this.#dropped += count;
    if (this.#warnedFull) return;
    this.#warnedFull = true;
    this.#options.onError(new RemoteError(`events dropped: ${why} (further drops are counted, not reported)`, { retryable: false }));
  }
}
