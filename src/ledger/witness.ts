// A witness (C2SP tlog-witness): keeps the last tree head it cosigned for each log, checks that every
// new checkpoint of that log is signed by the log's key and extends that head (an RFC 9162 consistency
// proof), and only then cosigns it. Whoever later holds a ledger can compare it with the witness's head:
// a history rewritten and re-signed with a stolen key, or cut short, no longer matches.
import type { KeyObject } from "node:crypto";
import type { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../errors.js";
import { loadSqlite } from "../internal/runtime.js";
import { cosignatureLine, witnessVerifierKey } from "./cosignature.js";
import { loadOrCreateKey, type SigningKey } from "./keys.js";
import { equalBytes, verifyConsistency } from "./merkle.js";
import { openCheckpoint, parseCheckpointText, parseNote, parseVerifierKey, type TreeHead } from "./note.js";

/**
 * Options of `new Witness(options)` and `startWitness(options)`.
 * @example
 * import type { WitnessOptions } from "agent-warden/witness";
 * const options: WitnessOptions = { name: "witness.example.com/w1", keyFile: "/etc/warden-witness/key.pem", logs: [ledgerVerifierKey], state: "/var/lib/warden-witness/heads.db" };
 */
export interface WitnessOptions {
  /** The witness's name, a schema-less URL (`witness.example.com/w1`); it names the cosignature lines. */
  name: string;
  /** Ed25519 private key file (PEM), created with 0600 permissions if absent. */
  keyFile?: string | undefined;
  /** Ed25519 private key (PEM), instead of `keyFile`. Without either, a key lives in memory only. */
  key?: string | undefined;
  /**
   * The logs this witness cosigns, as verifier keys (`warden.ledger.verifierKey()`, `GET /v1/ledger/key`).
   * A control plane's key also covers its organizations' logs (`<origin>/org/<org>`).
   */
  logs: readonly string[];
  /** SQLite file holding the last cosigned head of each log. Default `:memory:`: forgotten on restart. */
  state?: string | undefined;
}

/** What the witness answered: the cosignature line, or the tlog-witness status and why. */
export type WitnessAnswer =
  | { status: 200; cosignature: string; head: { origin: string; size: number } }
  | { status: 400 | 403 | 404 | 422; problem: string }
  | { status: 409; problem: string; size: number };

/** A checkpoint submission: the size the log last had cosigned, the consistency proof from it, the signed checkpoint. */
export interface CheckpointSubmission {
  oldSize: number;
  proof: readonly Uint8Array[];
  checkpoint: string;
}

const MAX_PROOF = 63;

/**
 * The witness's state and rules, without HTTP (`startWitness` serves it). One head per log origin; checking
 * and recording a new head happen in one transaction, so two submissions racing cannot roll a log back.
 * @example
 * import { Witness } from "agent-warden/witness";
 * const witness = new Witness({ name: "witness.example.com/w1", logs: [warden.ledger.verifierKey()] });
 * const answer = witness.addCheckpoint(requestBody);
 */
export class Witness {
  readonly name: string;
  readonly #key: SigningKey;
  readonly #logs: Array<{ name: string; publicKey: KeyObject }>;
  readonly #db: DatabaseSync;
  #closed = false;

  constructor(options: WitnessOptions) {
    if (!/^[^\s+]+$/.test(options.name)) throw new ConfigError(`witness name "${options.name}" must be non-empty, without spaces or "+"`);
    this.name = options.name;
    this.#key = loadOrCreateKey(options.keyFile, options.key);
    this.#logs = options.logs.map((vkey) => {
      const parsed = parseVerifierKey(vkey.trim());
      if (parsed === undefined) throw new ConfigError(`"${vkey}" is not a log verifier key (<origin>+<key id>+<base64 key>)`);
      return parsed;
    });
    if (this.#logs.length === 0) throw new ConfigError("a witness needs at least one log to cosign (its verifier key)");
    const { DatabaseSync } = loadSqlite();
    this.#db = new DatabaseSync(options.state ?? ":memory:", { timeout: 10_000 });
    if (options.state !== undefined) this.#db.exec("PRAGMA journal_mode = WAL");
    this.#db.exec(`CREATE TABLE IF NOT EXISTS witness_heads (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL, ts INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS witness_refusals (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, ts INTEGER NOT NULL, status INTEGER NOT NULL, problem TEXT NOT NULL, old_size INTEGER NOT NULL, checkpoint TEXT NOT NULL)`);
  }

  /** The verifier key of this witness's cosignatures, to configure where cosignatures are checked. */
  verifierKey(): string {
    return witnessVerifierKey(this.name, this.#key.publicKey);
  }

  /** The tlog-witness `add-checkpoint` request body, parsed and judged. */
  addCheckpointBody(body: string): WitnessAnswer {
    const parsed = parseSubmission(body);
    return "problem" in parsed ? { status: 400, problem: parsed.problem } : this.addCheckpoint(parsed);
  }

  /**
   * Cosigns `checkpoint` if it is signed by the key of a log this witness follows and extends the last head
   * it cosigned for that log (`oldSize` must be that head's size; 409 says which it is).
   */
  addCheckpoint(submission: CheckpointSubmission): WitnessAnswer {
    const parsed = parseNote(submission.checkpoint);
    const text = parsed && parseCheckpointText(parsed.text);
    if (!parsed || !text) return { status: 400, problem: "not a signed tlog-checkpoint note" };
    const log = this.#logs.find((l) => text.origin === l.name || text.origin.startsWith(`${l.name}/org/`));
    if (log === undefined) return { status: 404, problem: `unknown log "${text.origin}"` };
    const opened = openCheckpoint(submission.checkpoint, { name: text.origin, publicKey: log.publicKey });
    if ("problem" in opened) return { status: 403, problem: `the checkpoint ${opened.problem}` };
    const head = opened.head;
    const { oldSize } = submission;
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const answer = this.#judge(head, submission);
      if (answer.status === 200) {
        const note = `${submission.checkpoint}${answer.cosignature}`;
        this.#db.prepare("INSERT OR REPLACE INTO witness_heads (origin, size, root, note, ts) VALUES (?,?,?,?,?)").run(head.origin, head.size, head.root, note, Date.now());
      } else if (answer.status === 422 || answer.status === 409) {
        // A validly signed checkpoint that does not extend what was cosigned may be proof of a rewritten log: kept.
        this.#db.prepare("INSERT INTO witness_refusals (origin, ts, status, problem, old_size, checkpoint) VALUES (?,?,?,?,?,?)").run(head.origin, Date.now(), answer.status, answer.problem, oldSize, submission.checkpoint);
      }
      this.#db.exec("COMMIT");
      return answer;
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  #judge(head: TreeHead, submission: CheckpointSubmission): WitnessAnswer {
    const known = this.#db.prepare("SELECT size, root FROM witness_heads WHERE origin = ?").get(head.origin) as { size: number; root: Uint8Array } | undefined;
    return judgeCheckpoint(known, head, submission, { name: this.name, privateKey: this.#key.privateKey });
  }

  /** The last checkpoint cosigned for a log (with this witness's cosignature line), for monitors and auditors. */
  latest(origin: string): string | undefined {
    return (this.#db.prepare("SELECT note FROM witness_heads WHERE origin = ?").get(origin) as { note: string } | undefined)?.note;
  }

  /** Signed checkpoints this witness refused as inconsistent with what it had cosigned, newest first. */
  refusals(limit = 100): Array<{ origin: string; ts: number; status: number; problem: string; oldSize: number; checkpoint: string }> {
    const rows = this.#db.prepare("SELECT origin, ts, status, problem, old_size, checkpoint FROM witness_refusals ORDER BY id DESC LIMIT ?").all(limit) as Array<{ origin: string; ts: number; status: number; problem: string; old_size: number; checkpoint: string }>;
    return rows.map((r) => ({ origin: r.origin, ts: r.ts, status: r.status, problem: r.problem, oldSize: r.old_size, checkpoint: r.checkpoint }));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}

/**
 * The witness's rule, apart from where heads are kept: does `submission` (whose checkpoint `head` has been
 * opened against the log's key) extend `known`, the last head cosigned for its log? If so, the cosignature.
 */
export function judgeCheckpoint(known: { size: number; root: Uint8Array } | undefined, head: TreeHead, { oldSize, proof, checkpoint }: CheckpointSubmission, cosigner: { name: string; privateKey: KeyObject }): WitnessAnswer {
  const knownSize = known?.size ?? 0;
  if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > head.size) return { status: 400, problem: `old size ${oldSize} is beyond the checkpoint's size ${head.size}` };
  if (proof.length > MAX_PROOF || proof.some((p) => p.length !== 32)) return { status: 400, problem: "the consistency proof is malformed" };
  if (oldSize !== knownSize) return { status: 409, problem: `the last head cosigned for this log has size ${knownSize}, not ${oldSize}`, size: knownSize };
  if (known !== undefined && knownSize > 0 && head.size === knownSize) {
    if (!equalBytes(head.root, known.root)) return { status: 409, problem: `a different tree of size ${head.size} was cosigned for this log: its history was rewritten`, size: knownSize };
    if (proof.length !== 0) return { status: 400, problem: "a checkpoint of the cosigned size takes no consistency proof" };
  } else if (known === undefined || knownSize === 0) {
    if (proof.length !== 0) return { status: 400, problem: "the first checkpoint of a log takes no consistency proof" };
  } else if (!verifyConsistency(knownSize, head.size, known.root, head.root, proof)) {
    return { status: 422, problem: `the checkpoint of size ${head.size} does not extend the cosigned head of size ${knownSize}: the log's history was rewritten or the proof is wrong` };
  }
  return { status: 200, cosignature: cosignatureLine(parseNote(checkpoint)!.text, cosigner.name, cosigner.privateKey), head: { origin: head.origin, size: head.size } };
}

/** Parses a tlog-witness `add-checkpoint` body. */
export function parseSubmissionBody(body: string): CheckpointSubmission | { problem: string } {
  return parseSubmission(body);
}

/** The tlog-witness request body: `old <size>`, proof lines, a blank line, the checkpoint. */
export function submissionBody(submission: CheckpointSubmission): string {
  return `old ${submission.oldSize}\n${submission.proof.map((p) => `${Buffer.from(p).toString("base64")}\n`).join("")}\n${submission.checkpoint}`;
}

function parseSubmission(body: string): CheckpointSubmission | { problem: string } {
  const blank = body.indexOf("\n\n");
  if (blank < 0) return { problem: "no blank line before the checkpoint" };
  const [first, ...proofLines] = body.slice(0, blank).split("\n");
  const old = /^old (0|[1-9][0-9]*)$/.exec(first ?? "");
  if (!old || !Number.isSafeInteger(Number(old[1]))) return { problem: 'the first line must be "old <size>"' };
  if (proofLines.length > MAX_PROOF) return { problem: `more than ${MAX_PROOF} consistency proof lines` };
  const proof: Uint8Array[] = [];
  for (const line of proofLines) {
    const bytes = Buffer.from(line, "base64");
    if (bytes.length !== 32 || bytes.toString("base64") !== line) return { problem: "a consistency proof line is not one base64 hash" };
    proof.push(bytes);
  }
  return { oldSize: Number(old[1]), proof, checkpoint: body.slice(blank + 2) };
}
