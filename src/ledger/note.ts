// Checkpoints as C2SP signed notes (c2sp.org/signed-note) whose text is a C2SP tlog-checkpoint
// (c2sp.org/tlog-checkpoint): origin, tree size, base64 root hash. Existing transparency-log tooling and
// witnesses read them as they are.
import { createHash, createPublicKey, sign as signBytes, verify as verifyBytes, type KeyObject } from "node:crypto";
import { isKeyName, parseCheckpointText, parseNote, type TreeHead } from "../verify/note.js";
import { rawPublicKey, SPKI_ED25519_PREFIX } from "./keys.js";

// The signed-note and checkpoint text formats are read by one parser, the verifier's (no Node built-ins).
export { parseCheckpointText, parseNote } from "../verify/note.js";
export type { NoteSignature, TreeHead } from "../verify/note.js";

const ED25519 = 0x01;

/** The origin (and key name) of a ledger signed by `publicKey`: one log per signing key. */
export function ledgerOrigin(publicKey: KeyObject): string {
  return `agent-warden.dev/ledger/${createHash("sha256").update(rawPublicKey(publicKey)).digest("hex").slice(0, 16)}`;
}

/**
 * The origin of one organization's chain on a control plane signed by `publicKey`: a log of its own
 * under the key's log, so a checkpoint of one organization never passes for another's.
 */
export function orgLedgerOrigin(publicKey: KeyObject, org: string): string {
  return `${ledgerOrigin(publicKey)}/org/${encodeURIComponent(org)}`;
}

/** c2sp.org/signed-note: key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4], big-endian. */
export function noteKeyId(name: string, publicKey: Uint8Array): number {
  return createHash("sha256").update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.of(ED25519), publicKey])).digest().readUInt32BE(0);
}

/** The verifier key string of golang.org/x/mod/sumdb/note: `<name>+<hex key ID>+<base64(0x01 || public key)>`. */
export function verifierKey(name: string, publicKey: KeyObject): string {
  const raw = rawPublicKey(publicKey);
  return `${name}+${noteKeyId(name, raw).toString(16).padStart(8, "0")}+${Buffer.concat([Buffer.of(ED25519), raw]).toString("base64")}`;
}

/** Parses a verifier key string back into its name and Ed25519 public key; undefined if it is not one. */
export function parseVerifierKey(vkey: string): { name: string; publicKey: KeyObject } | undefined {
  // The base64 key may itself hold "+": split at the first two only (names never hold one).
  const match = /^([^+]+)\+([^+]+)\+(.+)$/s.exec(vkey);
  if (!match) return undefined;
  const [, name, hex, b64] = match as unknown as [string, string, string, string];
  const bytes = Buffer.from(b64, "base64");
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(hex) || bytes.length !== 33 || bytes[0] !== ED25519 || bytes.toString("base64") !== b64) return undefined;
  const raw = bytes.subarray(1);
  if (noteKeyId(name, raw) !== Number.parseInt(hex, 16)) return undefined;
  return { name, publicKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" }) };
}


/** c2sp.org/tlog-checkpoint note text: three lines, each ending in a newline. */
export function checkpointText(head: TreeHead): string {
  if (!isKeyName(head.origin)) throw new RangeError(`invalid checkpoint origin "${head.origin}"`);
  return `${head.origin}\n${head.size}\n${Buffer.from(head.root).toString("base64")}\n`;
}

/** Signs note text as `name`: the whole signed note (text, blank line, one signature line). */
export function signNote(text: string, name: string, privateKey: KeyObject): string {
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  const sig = signBytes(null, Buffer.from(text), privateKey);
  const id = Buffer.alloc(4);
  id.writeUInt32BE(noteKeyId(name, publicKey));
  return `${text}\n— ${name} ${Buffer.concat([id, sig]).toString("base64")}\n`;
}

/** Adds a signature line (a witness's cosignature, say) to a signed note. */
export function addNoteSignature(note: string, name: string, privateKey: KeyObject): string {
  const parsed = parseNote(note);
  if (parsed === undefined) throw new RangeError("not a signed note");
  return `${note}${signNote(parsed.text, name, privateKey).slice(parsed.text.length + 1)}`;
}

/**
 * Verifies a signed checkpoint against one trusted key (its name and Ed25519 public key). Per signed-note:
 * signatures of other keys are ignored; a failing signature of the trusted key rejects the note.
 */
export function openCheckpoint(note: string, trusted: { name: string; publicKey: KeyObject }): { head: TreeHead; cosigners: string[] } | { problem: string } {
  const parsed = parseNote(note);
  if (parsed === undefined) return { problem: "is not a well-formed signed note" };
  const head = parseCheckpointText(parsed.text);
  if (head === undefined) return { problem: "is not a tlog-checkpoint" };
  if (head.origin !== trusted.name) return { problem: `is for log "${head.origin}", not "${trusted.name}"` };
  const id = noteKeyId(trusted.name, rawPublicKey(trusted.publicKey));
  const mine = parsed.signatures.filter((s) => s.name === trusted.name && s.keyId === id);
  if (mine.length === 0) return { problem: `carries no signature of the trusted key (${trusted.name}+${id.toString(16).padStart(8, "0")})` };
  for (const s of mine) if (!verifyBytes(null, Buffer.from(parsed.text), trusted.publicKey, s.signature)) return { problem: "signature of the trusted key is invalid" };
  return { head, cosigners: parsed.signatures.filter((s) => s.name !== trusted.name).map((s) => s.name) };
}
