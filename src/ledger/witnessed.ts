// Checking a ledger against the heads its witnesses cosigned. A witness's head (size, root) is outside the
// writer's reach: whoever rewrites the store and re-signs with the stolen key cannot make the rewritten
// tree's root at that size match, and whoever cuts the history short leaves fewer entries than it saw.
import type { KeyObject } from "node:crypto";
import { ConfigError } from "../errors.js";
import { openCosignatures, parseWitnessKey, type WitnessKey } from "./cosignature.js";
import { equalBytes } from "./merkle.js";
import { openCheckpoint, parseCheckpointText, parseNote } from "./note.js";

/**
 * A witness to check the ledger against: its verifier key, and optionally the last checkpoint it cosigned
 * (from `fetchWitnessedCheckpoint`, or `GET <witness>/checkpoint?origin=…`). Without a checkpoint, the
 * cosignatures kept on the ledger's own checkpoints are checked.
 */
export type WitnessCheck = string | { key: string; checkpoint?: string | undefined };

/**
 * What one witness's cosigned heads say about the ledger.
 * @example
 * import type { WitnessedHeads } from "agent-warden";
 * const result = warden.ledger.verify({ witnesses: [witnessKey] });
 * for (const w of result.witnesses ?? []) console.log(w.witness, w.holds ? `holds up to ${w.newest}` : w.problem);
 */
export interface WitnessedHeads {
  witness: string;
  /** Cosigned heads found: on the ledger's checkpoints, and the one the witness itself gave. */
  heads: number;
  /** The size of the largest cosigned head (0 if none). */
  newest: number;
  /** Every cosigned head matches the ledger, and there is at least one. */
  holds: boolean;
  problem?: string;
  /** With `holds: false`: `rewritten` (a root differs), `truncated` (entries the witness saw are gone), `unwitnessed` (no head). */
  failure?: "rewritten" | "truncated" | "unwitnessed";
}

interface Head {
  size: number;
  root: Uint8Array;
  from: "store" | "witness";
}

/** Parsed witness checks: the tree sizes whose roots verification must compute, and how to judge them after. */
export class WitnessJudge {
  readonly #witnesses: Array<{ key: WitnessKey; note: string | undefined }>;
  readonly #stored = new Map<string, Head[]>();

  constructor(checks: readonly WitnessCheck[]) {
    this.#witnesses = checks.map((check) => {
      const vkey = typeof check === "string" ? check : check.key;
      const key = parseWitnessKey(vkey);
      if (key === undefined) throw new ConfigError(`"${vkey}" is not a witness verifier key (<name>+<key id>+<base64 key>)`);
      return { key, note: typeof check === "string" ? undefined : check.checkpoint };
    });
  }

  /** Sizes whose tree roots the judge needs (read before any signature is checked; judged later). */
  get sizes(): number[] {
    return this.#witnesses.flatMap((w) => {
      const parsed = w.note === undefined ? undefined : parseNote(w.note);
      const head = parsed && parseCheckpointText(parsed.text);
      return head ? [head.size] : [];
    });
  }

  /** The witness's own checkpoint, checked: signed by the ledger key of its origin, cosigned by the witness. */
  #given(key: WitnessKey, note: string | undefined, keyOf: (origin: string) => KeyObject | undefined): Head | { problem: string } | undefined {
    if (note === undefined) return undefined;
    const parsed = parseNote(note);
    const text = parsed && parseCheckpointText(parsed.text);
    if (!text) return { problem: `the checkpoint witness ${key.name} gave is not a signed tlog-checkpoint` };
    const publicKey = keyOf(text.origin);
    if (publicKey === undefined) return { problem: `the checkpoint witness ${key.name} gave is of log "${text.origin}", not signed by a trusted ledger key` };
    const opened = openCheckpoint(note, { name: text.origin, publicKey });
    if ("problem" in opened) return { problem: `the checkpoint witness ${key.name} gave ${opened.problem}` };
    if (openCosignatures(note, [key]).cosignatures.length === 0) return { problem: `the checkpoint witness ${key.name} gave carries no valid cosignature of it` };
    return { size: opened.head.size, root: opened.head.root, from: "witness" };
  }

  /** Notes a stored checkpoint whose head already matched the ledger: its cosignatures count as held heads. */
  noteStored(note: string, head: { size: number; root: Uint8Array }): void {
    for (const w of this.#witnesses) {
      if (!note.includes(`\n— ${w.key.name} `) || openCosignatures(note, [w.key]).cosignatures.length === 0) continue;
      const list = this.#stored.get(w.key.name) ?? [];
      list.push({ ...head, from: "store" });
      this.#stored.set(w.key.name, list);
    }
  }

  /** Judges every witness against the ledger of `count` entries, whose roots at `sizes` are in `roots`. */
  judge(count: number, roots: ReadonlyMap<number, Uint8Array>, keyOf: (origin: string) => KeyObject | undefined): WitnessedHeads[] {
    return this.#witnesses.map(({ key, note }) => {
      const given = this.#given(key, note, keyOf);
      const heads = [...(this.#stored.get(key.name) ?? [])];
      const base = { witness: key.name };
      if (given !== undefined && "problem" in given) return { ...base, heads: heads.length, newest: Math.max(0, ...heads.map((h) => h.size)), holds: false, problem: given.problem, failure: "unwitnessed" as const };
      if (given !== undefined) heads.push(given);
      const newest = Math.max(0, ...heads.map((h) => h.size));
      if (heads.length === 0) return { ...base, heads: 0, newest, holds: false, failure: "unwitnessed" as const, problem: `no head cosigned by witness ${key.name}: the ledger was never witnessed by it, or its cosignatures were removed` };
      for (const head of heads) {
        if (head.size > count) return { ...base, heads: heads.length, newest, holds: false, failure: "truncated" as const, problem: `witness ${key.name} cosigned a head of ${head.size} entries, but the ledger holds ${count}: entries ${count + 1}..${head.size} were removed` };
        const root = roots.get(head.size);
        if (root === undefined || !equalBytes(root, head.root)) return { ...base, heads: heads.length, newest, holds: false, failure: "rewritten" as const, problem: `witness ${key.name} cosigned a different tree of ${head.size} entries: the history up to entry ${head.size} was rewritten (and re-signed) after the witness saw it` };
      }
      return { ...base, heads: heads.length, newest, holds: true };
    });
  }
}
