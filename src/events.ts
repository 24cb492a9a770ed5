import type { EventType } from "./enums.js";

/**
 * What subscribers receive and the ledger records for every lifecycle step, for alerting, metrics or
 * forwarding to another log.
 * @example
 * import type { WardenEvent } from "agent-warden";
 * warden.on("*", (event: WardenEvent) => console.log(event.type, event.runId, event.data));
 */
export interface WardenEvent {
  id: string;
  type: EventType;
  ts: number;
  org: string;
  agentId: string | null;
  runId: string | null;
  stepId: string | null;
  toolCallId: string | null;
  actor: string | null;
  data: Record<string, unknown>;
}

/**
 * A subscriber to `warden.on`; what it throws (or rejects with) is reported, never passed to the agent.
 * @example
 * import type { EventListener } from "agent-warden";
 * const audit: EventListener = (event) => siem.send(event);
 * const unsubscribe = warden.on("*", audit);
 */
export type EventListener = (event: WardenEvent) => void;

/** Synchronous fan-out. A listener that throws is reported and skipped: telemetry fails open. */
export class EventBus {
  readonly #listeners = new Map<string, Set<EventListener>>();
  readonly #onError: (error: unknown) => void;
  #count = 0;

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  get hasListeners(): boolean {
    return this.#count > 0;
  }

  on(type: EventType | "*", listener: EventListener): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    if (!set.has(listener)) {
      set.add(listener);
      this.#count++;
    }
    return () => {
      if (set.delete(listener)) this.#count--;
    };
  }

  emit(event: WardenEvent): void {
    if (this.#count === 0) return;
    this.#deliver(this.#listeners.get(event.type), event);
    this.#deliver(this.#listeners.get("*"), event);
  }

  #deliver(set: Set<EventListener> | undefined, event: WardenEvent): void {
    if (!set) return;
    for (const listener of set) {
      try {
        const result = listener(event) as unknown;
        if (result instanceof Promise) result.catch(this.#onError);
      } catch (error) {
        this.#onError(error);
      }
    }
  }
}
