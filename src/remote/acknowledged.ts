import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { z } from "zod";
import { once } from "../internal/once.js";
import type { WardenEvent } from "../events.js";
import type { LedgerEntry } from "../ledger/chain.js";

/** The part of the public `Ledger` API the watermark reads. */
export interface LedgerReader {
  head(): { seq: number };
  entries(filter: { afterSeq?: number; limit?: number }): LedgerEntry[];
}

// Remote mode only: built on first use, not at import.
const WatermarkFileSchema = once(() => z.object({ store: z.string(), seq: z.int().min(0), closed: z.boolean().optional() }));
const PAGE = 500;
const ADVANCE_DELAY = 50;

let instances = 0;

/**
 * How far the control plane has acknowledged this store's ledger, kept on disk beside the
 * spool so that a client killed with events still in memory loses none of them.
 *
 * Each client writes its own file, `acked-<store>-<pid>-<start>-<n>.json`, holding a ledger
 * sequence number: every entry at or below it that this client handed to remote mode is settled
 * (the server answered 2xx, it was dead-lettered, or it is in the spool, which outlives the
 * process). Entries of other clients on the same store are passed over: their own files answer
 * for them. On start, a client adopts the files of clients that are gone (killed, or closed) and
 * sends again every ledger entry after the lowest of them; the server drops the ones it already
 * has (ingest is idempotent by event id). A client that dropped events stops advancing, so the
 * next start sends them again.
 */
export class AcknowledgedWatermark {
  readonly #dir: string;
  readonly #store: string;
  readonly #prefix: string;
  readonly #path: string;
  readonly #ledger: LedgerReader;
  readonly #onError: (error: unknown) => void;
  /** Events handed over and not yet settled, by id. */
  readonly #pending = new Set<string>();
  #seq = 0;
  #written = -1;
  #recovering = true;
  #frozen = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(dir: string, store: string, ledger: LedgerReader, onError: (error: unknown) => void) {
    this.#dir = dir;
    this.#store = resolve(store);
    this.#prefix = `acked-${createHash("sha256").update(this.#store).digest("hex").slice(0, 12)}-`;
    this.#path = join(dir, `${this.#prefix}${process.pid}-${Date.now()}-${++instances}.json`);
    this.#ledger = ledger;
    this.#onError = onError;
  }

  /** The sequence number acknowledged so far. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * Writes this client's file, adopts those of clients that are gone and hands `resend` every
   * ledger entry after the lowest of theirs (up to the ledger's head at start), oldest first.
   * Resolves with the number handed over.
   */
  async recover(resend: (event: WardenEvent) => void): Promise<number> {
    const head = this.#ledger.head().seq;
    const adopted = this.#adopt();
    const from = Math.min(head, ...adopted.map((a) => a.seq));
    this.#seq = from;
    this.#write();
    for (const { path } of adopted) remove(path);
    let count = 0;
    try {
      for (let cursor = from; cursor < head && !this.#closed; ) {
        const page = this.#ledger.entries({ afterSeq: cursor, limit: PAGE });
        if (page.length === 0) break;
        for (const entry of page) {
          if (entry.seq > head) break;
          const event = toEvent(entry);
          this.track(event);
          resend(event);
          count++;
        }
        cursor = page[page.length - 1]!.seq;
        await yieldToLoop();
      }
    } finally {
      this.#recovering = false;
    }
    this.#schedule();
    return count;
  }

  /** An event handed to remote mode: the watermark stays below it until it is settled. */
  track(event: WardenEvent): void {
    if (!this.#closed && !this.#frozen) this.#pending.add(event.id);
  }

  /** Events delivered, dead-lettered or spooled. */
  settled(events: readonly WardenEvent[]): void {
    for (const event of events) this.#pending.delete(event.id);
    this.#schedule();
  }

  /** Events were lost in memory: the watermark stops here, and the next start sends everything after it again. */
  dropped(): void {
    this.#frozen = true;
    // Nothing is tracked past this point: the set would only grow.
    this.#pending.clear();
  }

  /** Advances as far as it can and marks the file closed (the next client adopts it). Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#advance();
    this.#closed = true;
    this.#write(true);
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#advance();
    }, ADVANCE_DELAY);
    this.#timer.unref();
  }

  /** Moves past every entry not waiting on this client, up to the first that is. */
  #advance(): void {
    if (this.#frozen || this.#recovering || this.#closed) return;
    try {
      for (;;) {
        const page = this.#ledger.entries({ afterSeq: this.#seq, limit: PAGE });
        let blocked = false;
        for (const entry of page) {
          if (this.#pending.has(entry.id)) {
            blocked = true;
            break;
          }
          this.#seq = entry.seq;
        }
        if (blocked || page.length < PAGE) break;
      }
      this.#write();
    } catch (error) {
      this.#onError(error);
    }
  }

  #write(closed = false): void {
    if (this.#seq === this.#written && !closed) return;
    try {
      mkdirSync(this.#dir, { recursive: true });
      const temp = `${this.#path}.tmp`;
      writeFileSync(temp, JSON.stringify({ store: this.#store, seq: this.#seq, ...(closed && { closed }) }), { mode: 0o600 });
      renameSync(temp, this.#path);
      this.#written = this.#seq;
    } catch (error) {
      this.#onError(error);
    }
  }

  /** Claims the files of this store's clients that are gone: killed (their process is dead) or closed. */
  #adopt(): Array<{ path: string; seq: number }> {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return [];
    }
    const adopted: Array<{ path: string; seq: number }> = [];
    const pattern = /^(\d+)-\d+-\d+\.json(?:\.adopting-(\d+)-\d+)?$/;
    for (const name of names) {
      if (!name.startsWith(this.#prefix)) continue;
      const match = pattern.exec(name.slice(this.#prefix.length));
      if (match === null) continue;
      const owner = Number(match[2] ?? match[1]);
      const path = join(this.#dir, name);
      if (path === this.#path) continue;
      const ownerAlive = owner === process.pid || alive(owner);
      let parsed: z.output<ReturnType<typeof WatermarkFileSchema>> | undefined;
      try {
        const result = WatermarkFileSchema().safeParse(JSON.parse(readFileSync(path, "utf8")));
        parsed = result.success && result.data.store === this.#store ? result.data : undefined;
      } catch {
        parsed = undefined;
      }
      if (ownerAlive && parsed?.closed !== true) continue;
      if (parsed === undefined) continue;
      // Renaming claims it: of two clients starting at once, one adopts it.
      const claimed = `${join(this.#dir, this.#prefix)}${match[1]}-0-0.json.adopting-${process.pid}-${instances}`;
      try {
        renameSync(path, claimed);
      } catch {
        continue;
      }
      adopted.push({ path: claimed, seq: parsed.seq });
    }
    return adopted;
  }
}

function toEvent(entry: LedgerEntry): WardenEvent {
  const { id, type, ts, org, agentId, runId, stepId, toolCallId, actor, data } = entry;
  return { id, type: type as WardenEvent["type"], ts, org, agentId, runId, stepId, toolCallId, actor, data: data as Record<string, unknown> };
}

function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
