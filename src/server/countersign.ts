// The control plane as a witness of its agents' local ledgers: an agent sends each signed checkpoint of
// its own ledger with a consistency proof from the last one countersigned here (C2SP tlog-witness body,
// `POST /v1/ledger/witness/add-checkpoint`), and gets back the control plane's cosignature. The last
// countersigned head of each agent log lives in the control plane's database, out of the agent's reach:
// an agent machine whose ledger is rewritten and re-signed no longer matches it.
import type { KeyObject } from "node:crypto";
import { ledgerOrigin, openCheckpoint, parseCheckpointText, parseNote, parseVerifierKey } from "../ledger/note.js";
import { judgeCheckpoint, parseSubmissionBody, type WitnessAnswer } from "../ledger/witness.js";
import { get, run, type Query } from "./sql.js";

/** The name the control plane cosigns agents' checkpoints under: its ledger key's log, `/witness`. */
export function controlPlaneWitnessName(publicKey: KeyObject): string {
  return `${ledgerOrigin(publicKey)}/witness`;
}

/**
 * Judges one agent checkpoint submission of organization `org`: the log's verifier key (`logKey`) must
 * name the checkpoint's origin and sign it; the checkpoint must extend the head last countersigned for
 * that log. Runs inside the caller's transaction; taking the head row first serializes two submissions.
 */
export function* countersignCheckpoint(org: string, agentId: string | undefined, logKey: string, body: string, cosigner: { publicKey: KeyObject; privateKey: KeyObject }): Query<WitnessAnswer> {
  const submission = parseSubmissionBody(body);
  if ("problem" in submission) return { status: 400, problem: submission.problem };
  const log = parseVerifierKey(logKey.trim());
  if (log === undefined) return { status: 400, problem: "x-warden-log-key is not a log verifier key" };
  // A ledger's origin names its key: a key cannot speak for another log.
  if (log.name !== ledgerOrigin(log.publicKey)) return { status: 403, problem: `the log key does not match its origin "${log.name}"` };
  const parsed = parseNote(submission.checkpoint);
  const text = parsed && parseCheckpointText(parsed.text);
  if (!text) return { status: 400, problem: "not a signed tlog-checkpoint note" };
  if (text.origin !== log.name) return { status: 404, problem: `the checkpoint is of log "${text.origin}", not of the key given` };
  const opened = openCheckpoint(submission.checkpoint, log);
  if ("problem" in opened) return { status: 403, problem: `the checkpoint ${opened.problem}` };
  yield* run("INSERT INTO agent_log_heads (org, origin, agent_id, size, root, note, ts) VALUES (?,?,?,0,?,?,?) ON CONFLICT (org, origin) DO NOTHING", org, log.name, agentId ?? null, "", "", Date.now());
  // Taking the row (an UPDATE) serializes submissions for this log until the transaction ends.
  const row = (yield* get<{ size: number | string; root: string }>("UPDATE agent_log_heads SET ts = ts WHERE org = ? AND origin = ? RETURNING size, root", org, log.name))!;
  const size = Number(row.size);
  const known = size === 0 ? undefined : { size, root: Buffer.from(row.root, "base64") };
  const answer = judgeCheckpoint(known, opened.head, submission, { name: controlPlaneWitnessName(cosigner.publicKey), privateKey: cosigner.privateKey });
  if (answer.status === 200) {
    yield* run("UPDATE agent_log_heads SET size = ?, root = ?, note = ?, agent_id = ?, ts = ? WHERE org = ? AND origin = ?", opened.head.size, Buffer.from(opened.head.root).toString("base64"), `${submission.checkpoint}${answer.cosignature}`, agentId ?? null, Date.now(), org, log.name);
  }
  return answer;
}

/** The last checkpoint the control plane countersigned for an agent log of `org` (with its cosignature). */
export function* countersignedCheckpoint(org: string, origin: string): Query<string | undefined> {
  const row = yield* get<{ note: string }>("SELECT note FROM agent_log_heads WHERE org = ? AND origin = ? AND size > 0", org, origin);
  return row?.note;
}
