// C2SP signed notes (c2sp.org/signed-note) carrying a tlog-checkpoint (c2sp.org/tlog-checkpoint), and
// their Ed25519 signatures and tlog-cosignature/v1 witness cosignatures, read without Node built-ins.
import { concat, fromBase64, readUint32, readUint64, utf8 } from "./bytes.js";
import { ed25519Verify, sha256, sha256Hex } from "./crypto.js";

/** A tree head: the log's origin, its size (entries), and the RFC 9162 root over their hashes. */
export interface TreeHead {
  origin: string;
  size: number;
  /** 32 bytes. */
  root: Uint8Array;
}

export interface NoteSignature {
  name: string;
  /** The 4-byte key ID (big-endian uint32). */
  keyId: number;
  signature: Uint8Array;
}

/** A key as a verifier knows it: its name (the log's origin, or the witness's name) and raw Ed25519 public key. */
export interface NamedKey {
  name: string;
  publicKey: Uint8Array;
}

/** Signature types of signed-note key IDs: a log's Ed25519 key, a witness's cosignature/v1 key. */
export const ED25519 = 0x01;
export const COSIGNATURE_V1 = 0x04;
const MAX_SIGNATURES = 64;

export const isKeyName = (name: string): boolean => name.length > 0 && !/[\s+]/u.test(name) && !/[\u0000-\u001f]/.test(name);

/** c2sp.org/signed-note: key ID = SHA-256(key name || 0x0A || type || 32-byte public key)[:4], big-endian. */
export async function noteKeyId(name: string, publicKey: Uint8Array, type = ED25519): Promise<number> {
  return readUint32(await sha256(concat(utf8(`${name}\n`), Uint8Array.of(type), publicKey)));
}

/** The origin of a ledger signed by `publicKey` (one log per key); a control plane keeps one log per organization under it. */
export async function ledgerOrigin(publicKey: Uint8Array, org?: string): Promise<string> {
  const base = `agent-warden.dev/ledger/${(await sha256Hex(publicKey)).slice(0, 16)}`;
  return org === undefined ? base : `${base}/org/${encodeURIComponent(org)}`;
}

/** Parses a verifier key `<name>+<hex key ID>+<base64(type || public key)>`; undefined if it is not one of `type`. */
export async function parseVerifierKey(vkey: string, type = ED25519): Promise<NamedKey | undefined> {
  // The base64 key may itself hold "+": split at the first two only (names never hold one).
  const match = /^([^+]+)\+([^+]+)\+(.+)$/s.exec(vkey.trim());
  if (!match) return undefined;
  const [, name, hex, b64] = match as unknown as [string, string, string, string];
  const bytes = fromBase64(b64);
  if (!isKeyName(name) || !/^[0-9a-f]{8}$/.test(hex) || bytes === undefined || bytes.length !== 33 || bytes[0] !== type) return undefined;
  const publicKey = bytes.subarray(1);
  if ((await noteKeyId(name, publicKey, type)) !== Number.parseInt(hex, 16)) return undefined;
  return { name, publicKey };
}

/** Splits a signed note into its text and signature lines; undefined if it is malformed. */
export function parseNote(note: string): { text: string; signatures: NoteSignature[] } | undefined {
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note) || !note.endsWith("\n")) return undefined;
  // The text is separated from the signatures by the last blank line.
  const split = note.lastIndexOf("\n\n");
  if (split < 0) return undefined;
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length === 0 || lines.length > MAX_SIGNATURES) return undefined;
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    const match = /^— (\S+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (!match || !isKeyName(match[1]!)) return undefined;
    const bytes = fromBase64(match[2]!);
    if (bytes === undefined || bytes.length < 5) return undefined;
    signatures.push({ name: match[1]!, keyId: readUint32(bytes), signature: bytes.subarray(4) });
  }
  return { text, signatures };
}

/** Parses tlog-checkpoint text; undefined if it is not one. Extension lines are allowed and ignored. */
export function parseCheckpointText(text: string): TreeHead | undefined {
  const lines = text.split("\n");
  if (lines.length < 4 || lines.at(-1) !== "") return undefined;
  const [origin, size, root] = lines as [string, string, string];
  if (!isKeyName(origin) || !/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) return undefined;
  const rootBytes = fromBase64(root);
  if (rootBytes === undefined || rootBytes.length !== 32) return undefined;
  if (lines.slice(3, -1).some((line) => line === "")) return undefined;
  return { origin, size: Number(size), root: rootBytes };
}

export type CheckpointProblem = "checkpoint_malformed" | "checkpoint_origin" | "signature_missing" | "signature_invalid";

/**
 * Verifies a signed checkpoint against one trusted key. Per signed-note: signatures of other keys are
 * ignored; a failing signature of the trusted key rejects the note.
 */
export async function openCheckpoint(note: string, trusted: NamedKey): Promise<{ head: TreeHead; text: string; signatures: NoteSignature[]; cosigners: string[] } | { code: CheckpointProblem; problem: string }> {
  const parsed = parseNote(note);
  if (parsed === undefined) return { code: "checkpoint_malformed", problem: "is not a well-formed signed note" };
  const head = parseCheckpointText(parsed.text);
  if (head === undefined) return { code: "checkpoint_malformed", problem: "is not a tlog-checkpoint" };
  if (head.origin !== trusted.name) return { code: "checkpoint_origin", problem: `is for log "${head.origin}", not "${trusted.name}"` };
  const id = await noteKeyId(trusted.name, trusted.publicKey);
  const mine = parsed.signatures.filter((s) => s.name === trusted.name && s.keyId === id);
  if (mine.length === 0) return { code: "signature_missing", problem: `carries no signature of the trusted key (${trusted.name}+${id.toString(16).padStart(8, "0")})` };
  for (const s of mine) if (!(await ed25519Verify(trusted.publicKey, s.signature, utf8(parsed.text)))) return { code: "signature_invalid", problem: "signature of the trusted key is invalid" };
  return { head, text: parsed.text, signatures: parsed.signatures, cosigners: parsed.signatures.filter((s) => s.name !== trusted.name).map((s) => s.name) };
}

/** One cosignature of a checkpoint that verified against a trusted witness key. */
export interface Cosignature {
  /** The witness's name. */
  witness: string;
  /** When the witness cosigned (ms since the epoch; the wire carries seconds). */
  time: number;
}

/**
 * The cosignatures (c2sp.org/tlog-cosignature, v1) among `signatures` over checkpoint `text` that verify
 * against the given witness keys. Lines of other keys are ignored; a line that claims a trusted key and
 * fails is reported in `invalid`, never counted.
 */
export async function openCosignatures(text: string, signatures: readonly NoteSignature[], witnesses: readonly NamedKey[]): Promise<{ cosignatures: Cosignature[]; invalid: string[] }> {
  const cosignatures: Cosignature[] = [];
  const invalid: string[] = [];
  for (const witness of witnesses) {
    const id = await noteKeyId(witness.name, witness.publicKey, COSIGNATURE_V1);
    for (const line of signatures) {
      if (line.name !== witness.name || line.keyId !== id) continue;
      if (line.signature.length !== 8 + 64) {
        invalid.push(witness.name);
        continue;
      }
      const seconds = readUint64(line.signature);
      const message = utf8(`cosignature/v1\ntime ${seconds}\n${text}`);
      if (seconds >= 2n ** 63n || !(await ed25519Verify(witness.publicKey, line.signature.subarray(8), message))) invalid.push(witness.name);
      else cosignatures.push({ witness: witness.name, time: Number(seconds) * 1000 });
    }
  }
  return { cosignatures, invalid };
}
