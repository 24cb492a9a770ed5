import { newId } from "../internal/ids.js";
import { HttpError } from "./errors.js";
import type { Principal, StreamSlotTable } from "./store.js";
import type { StreamHub } from "./stream.js";

/** How long a replica's stream slots count without renewal: a killed replica's slots are free after it. */
const SLOT_TTL = 30_000;

/**
 * The per-organization and per-key stream limits. With a store that counts slots (PostgreSQL) they
 * hold across every replica; otherwise this server's open streams are counted.
 */
export class StreamLimits {
  readonly #hub: StreamHub;
  readonly #table: StreamSlotTable | undefined;
  readonly #limits: { streams: number; perKey: number };
  readonly #replica = newId("replica");
  readonly #renewal: NodeJS.Timeout | undefined;

  constructor(hub: StreamHub, table: StreamSlotTable | undefined, limits: { streams: number; perKey: number }, onError: (error: unknown) => void) {
    this.#hub = hub;
    this.#table = table;
    this.#limits = limits;
    if (table !== undefined) {
      this.#renewal = setInterval(() => void table.renew(this.#replica, SLOT_TTL).catch(onError), SLOT_TTL / 3);
      this.#renewal.unref();
    }
  }

  /** Takes a slot for one stream of `principal`, or throws 503 with `Retry-After`; resolves with its release (safe to call twice). */
  async admit(principal: Principal): Promise<() => void> {
    let full: "ok" | "org" | "key";
    if (this.#table === undefined) {
      full = this.#hub.countKey(principal.org, principal.keyId) >= this.#limits.perKey ? "key" : this.#hub.count(principal.org) >= this.#limits.streams ? "org" : "ok";
    } else {
      full = await this.#table.acquire(this.#replica, principal.org, principal.keyId, { ...this.#limits, ttl: SLOT_TTL });
    }
    if (full === "key") throw new HttpError(503, "unavailable", `this key has ${this.#limits.perKey} streams open, the most one key may hold; close one, or poll`, { headers: { "Retry-After": "5" } });
    if (full === "org") throw new HttpError(503, "unavailable", `this organization has ${this.#limits.streams} streams open, the most this server keeps; poll, or try again later`, { headers: { "Retry-After": "5" } });
    let released = this.#table === undefined;
    return () => {
      if (released) return;
      released = true;
      void this.#table!.release(this.#replica, principal.org, principal.keyId).catch(() => {});
    };
  }

  close(): void {
    clearInterval(this.#renewal);
  }
}
