// Telemetry gaps: events that will never reach the control plane (dropped for want of room, or refused
// and set aside) are summed up per burst and handed to the host, which records a ledger entry and signs
// a checkpoint over it, so the missing range is visible in the signed local ledger rather than silent.
import type { WardenEvent } from "../events.js";

/** The ledger entry type of a telemetry gap. */
export const TELEMETRY_GAP_ENTRY = "telemetry.gap";

/** How many event ids a gap record names; the rest are counted. */
const MAX_IDS = 100;

/**
 * One gap: how many events of which kind were lost, why, the first and last of them, and their ids.
 * @example
 * import type { TelemetryGap } from "agent-warden";
 * const gap: TelemetryGap = warden.ledger.entries().find((e) => e.type === "telemetry.gap")!.data as TelemetryGap;
 */
export interface TelemetryGap {
  kind: "dropped" | "refused";
  reason: string;
  count: number;
  first: { id: string; ts: number };
  last: { id: string; ts: number };
  /** Up to 100 ids, oldest first. */
  eventIds: string[];
}

/** Collects lost events for one tick, then reports one gap per kind and reason. */
export class TelemetryGaps {
  readonly #record: (gap: TelemetryGap) => void;
  readonly #pending = new Map<string, TelemetryGap>();
  #timer: NodeJS.Timeout | undefined;

  constructor(record: (gap: TelemetryGap) => void) {
    this.#record = record;
  }

  lost(events: readonly WardenEvent[], reason: string, kind: TelemetryGap["kind"]): void {
    const key = `${kind}\u0000${reason}`;
    let gap = this.#pending.get(key);
    for (const event of events) {
      const at = { id: String(event.id), ts: Number(event.ts) };
      if (gap === undefined) {
        gap = { kind, reason: reason.slice(0, 500), count: 0, first: at, last: at, eventIds: [] };
        this.#pending.set(key, gap);
      }
      gap.count++;
      gap.last = at;
      if (gap.eventIds.length < MAX_IDS) gap.eventIds.push(at.id);
    }
    // A full queue drops event after event: one record per burst, not one per event.
    this.#timer ??= setTimeout(() => this.flush(), 0).unref();
  }

  /** Reports what is pending now (on close, before the store goes). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const gaps = [...this.#pending.values()];
    this.#pending.clear();
    for (const gap of gaps) this.#record(gap);
  }
}
