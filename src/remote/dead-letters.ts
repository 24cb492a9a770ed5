import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { once } from "../internal/once.js";
import type { WardenEvent } from "../events.js";

/** Event data larger than this is left out of a dead letter: the local ledger keeps it under the event's id. */
const MAX_KEPT_DATA_BYTES = 64 * 1024;
const FILE = "dead-letters.jsonl";
const OLDER = "dead-letters.1.jsonl";

/** A dead letter as written on disk and read back (built on first use: remote mode only). */
export const DeadLetterSchema = once(() =>
  z.object({
    /** When it was set aside (ms). */
    at: z.int().min(0),
    /** Who refused it: this client before sending (it could never be accepted), or the control plane. */
    by: z.enum(["client", "server"]),
    /** `invalid_event`, `event_too_large`, or the control plane's error code. */
    code: z.string().min(1),
    reason: z.string(),
    /** The HTTP status of the refusal, when the control plane answered with one. */
    status: z.int().optional(),
    /** The event, its `data` left out (`dataBytes` says how large it was) when over 64 KB. */
    event: z.object({
      id: z.string(),
      type: z.string(),
      ts: z.number(),
      agentId: z.string().nullable(),
      runId: z.string().nullable(),
      stepId: z.string().nullable(),
      toolCallId: z.string().nullable(),
      actor: z.string().nullable(),
      data: z.record(z.string(), z.unknown()).optional(),
      dataBytes: z.int().min(0).optional(),
    }),
  }),
);

/**
 * An event the control plane will never accept (nested too deep, an id too long, too large, or
 * refused by the server), set aside with the reason instead of sinking its whole batch. Read them
 * with `warden.remote.deadLetters()`; the full event stays in the local ledger under its id.
 * @example
 * import type { DeadLetter } from "agent-warden";
 * for (const letter of warden.remote?.deadLetters() ?? []) console.warn(letter.event.id, letter.code, letter.reason);
 */
export type DeadLetter = z.output<ReturnType<typeof DeadLetterSchema>>;

/** Why an event was refused, as the dispatcher reports it. */
export interface Refusal {
  by: DeadLetter["by"];
  code: string;
  reason: string;
  status?: number | undefined;
}

/**
 * Dead letters on disk, as JSON Lines beside the spool: the newest in `dead-letters.jsonl`,
 * the one before in `dead-letters.1.jsonl`; when the newest reaches half the bound it replaces the
 * older one, so the two never hold much more than `maxBytes`.
 */
export class DeadLetterFile {
  readonly #dir: string;
  readonly #maxBytes: number;
  #bytes: number | undefined;

  constructor(dir: string, maxBytes: number) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
  }

  /** Writes one dead letter per event. Throws when the disk refuses. */
  record(items: ReadonlyArray<{ event: WardenEvent; refusal: Refusal }>): void {
    if (items.length === 0) return;
    let text = "";
    const at = Date.now();
    for (const { event, refusal } of items) {
      const dataJson = JSON.stringify(event.data) ?? "null";
      const dataBytes = Buffer.byteLength(dataJson);
      const kept = dataBytes <= MAX_KEPT_DATA_BYTES && typeof event.data === "object" && event.data !== null;
      const letter: DeadLetter = {
        at,
        by: refusal.by,
        code: refusal.code,
        reason: refusal.reason.slice(0, 4000),
        ...(refusal.status !== undefined && { status: refusal.status }),
        event: {
          id: String(event.id).slice(0, 1024),
          type: String(event.type).slice(0, 256),
          ts: typeof event.ts === "number" ? event.ts : 0,
          agentId: clip(event.agentId),
          runId: clip(event.runId),
          stepId: clip(event.stepId),
          toolCallId: clip(event.toolCallId),
          actor: clip(event.actor),
          ...(kept ? { data: event.data } : { dataBytes }),
        },
      };
      text += `${JSON.stringify(letter)}\n`;
    }
    mkdirSync(this.#dir, { recursive: true });
    const path = join(this.#dir, FILE);
    this.#bytes ??= sizeOf(path);
    if (this.#bytes > 0 && this.#bytes + text.length > this.#maxBytes / 2) {
      renameSync(path, join(this.#dir, OLDER));
      this.#bytes = 0;
    }
    appendFileSync(path, text, { mode: 0o600 });
    this.#bytes += Buffer.byteLength(text);
  }

  /** Every dead letter still on disk, oldest first. Lines that do not parse (cut by a crash) are skipped. */
  read(): DeadLetter[] {
    return [...readLetters(join(this.#dir, OLDER)), ...readLetters(join(this.#dir, FILE))];
  }
}

function clip(value: string | null | undefined): string | null {
  return typeof value === "string" ? value.slice(0, 1024) : null;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function readLetters(path: string): DeadLetter[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const letters: DeadLetter[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      const parsed = DeadLetterSchema().safeParse(JSON.parse(line));
      if (parsed.success) letters.push(parsed.data);
    } catch {
      // A line cut short by a crash mid-write.
    }
  }
  return letters;
}
