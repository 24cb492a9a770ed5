// Witness cosignatures of checkpoints, in the C2SP tlog-cosignature (v1, Ed25519) form: a note signature
// line whose key ID is SHA-256(name || "\n" || 0x04 || public key)[:4] and whose signature is a 64-bit
// timestamp followed by an Ed25519 signature over "cosignature/v1\ntime <ts>\n" and the checkpoint text.
// Any tlog-witness speaks this, so the ledger's checkpoints can be cosigned by witnesses we do not run.
import { createHash, createPublicKey, sign as signBytes, verify as verifyBytes, type KeyObject } from "node:crypto";
import { rawPublicKey, SPKI_ED25519_PREFIX } from "./keys.js";
import { parseNote } from "./note.js";

const COSIGNATURE_V1 = 0x04;

/** A witness as a verifier knows it: its name and Ed25519 public key. */
export interface WitnessKey {
  name: string;
  publicKey: KeyObject;
}

/** One cosignature of a checkpoint that verified against a trusted witness key. */
export interface Cosignature {
  /** The witness's name. */
  witness: string;
  /** When the witness cosigned (ms since the epoch; the wire carries seconds). */
  time: number;
}

/** c2sp.org/tlog-cosignature: the key ID of an Ed25519 cosigner. */
export function cosignatureKeyId(name: string, publicKey: Uint8Array): number {
  return createHash("sha256").update(Buffer.concat([Buffer.from(`${name}\n`), Buffer.of(COSIGNATURE_V1), publicKey])).digest().readUInt32BE(0);
}

/** The witness's verifier key (`<name>+<hex key ID>+<base64(0x04 || public key)>`), to hand to whoever verifies. */
export function witnessVerifierKey(name: string, publicKey: KeyObject): string {
  const raw = rawPublicKey(publicKey);
  return `${name}+${cosignatureKeyId(name, raw).toString(16).padStart(8, "0")}+${Buffer.concat([Buffer.of(COSIGNATURE_V1), raw]).toString("base64")}`;
}

/** Parses a witness verifier key; undefined if it is not one (a log's key, of type 0x01, is not). */
export function parseWitnessKey(vkey: string): WitnessKey | undefined {
  const match = /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(vkey.trim());
  if (!match) return undefined;
  const [, name, hex, b64] = match as unknown as [string, string, string, string];
  const bytes = Buffer.from(b64, "base64");
  if (bytes.length !== 33 || bytes[0] !== COSIGNATURE_V1 || bytes.toString("base64") !== b64) return undefined;
  const raw = bytes.subarray(1);
  if (cosignatureKeyId(name, raw) !== Number.parseInt(hex, 16)) return undefined;
  return { name, publicKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" }) };
}

const signedMessage = (text: string, seconds: bigint): Buffer => Buffer.from(`cosignature/v1\ntime ${seconds}\n${text}`);

/** A cosignature line (ending in a newline) over checkpoint `text`, as the witness `name` at `time` (ms). */
export function cosignatureLine(text: string, name: string, privateKey: KeyObject, time = Date.now()): string {
  const seconds = BigInt(Math.floor(time / 1000));
  const id = Buffer.alloc(12);
  id.writeUInt32BE(cosignatureKeyId(name, rawPublicKey(createPublicKey(privateKey))), 0);
  id.writeBigUInt64BE(seconds, 4);
  const sig = signBytes(null, signedMessage(text, seconds), privateKey);
  return `— ${name} ${Buffer.concat([id, sig]).toString("base64")}\n`;
}

/**
 * The cosignatures on a signed note that verify against the given witness keys. Lines of other keys are
 * ignored; a line that claims a trusted key and fails is reported in `invalid`, never counted.
 */
export function openCosignatures(note: string, witnesses: readonly WitnessKey[]): { cosignatures: Cosignature[]; invalid: string[] } {
  const parsed = parseNote(note);
  const cosignatures: Cosignature[] = [];
  const invalid: string[] = [];
  if (parsed === undefined) return { cosignatures, invalid };
  for (const witness of witnesses) {
    const id = cosignatureKeyId(witness.name, rawPublicKey(witness.publicKey));
    for (const line of parsed.signatures) {
      if (line.name !== witness.name || line.keyId !== id) continue;
      const bytes = Buffer.from(line.signature);
      if (bytes.length !== 8 + 64) {
        invalid.push(witness.name);
        continue;
      }
      const seconds = bytes.readBigUInt64BE(0);
      if (seconds >= 2n ** 63n || !verifyBytes(null, signedMessage(parsed.text, seconds), witness.publicKey, bytes.subarray(8))) invalid.push(witness.name);
      else cosignatures.push({ witness: witness.name, time: Number(seconds) * 1000 });
    }
  }
  return { cosignatures, invalid };
}
