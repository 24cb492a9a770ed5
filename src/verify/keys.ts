// Public keys given to the verifier out of band, read without Node's KeyObject.
import { equalBytes, fromBase64 } from "./bytes.js";
import { parseVerifierKey } from "./note.js";

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 raw key bytes follow. */
const SPKI_ED25519_PREFIX = Uint8Array.of(0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00);

/**
 * A public key as the verifier takes it: the 32 raw Ed25519 bytes, or text: an Ed25519 public key in
 * PEM (SPKI), a log's verifier key (`<name>+<id>+<base64>`), or base64/base64url of the 32 raw bytes.
 */
export type PublicKeyInput = Uint8Array | string;

/** The raw Ed25519 key in `input`; a message saying why not otherwise. */
export async function readPublicKey(input: PublicKeyInput): Promise<Uint8Array | string> {
  if (typeof input !== "string") return input.length === 32 ? input : `a raw Ed25519 public key is 32 bytes, not ${input.length}`;
  const text = input.trim();
  const pem = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$/.exec(text);
  if (pem) {
    const der = fromBase64(pem[1]!.replace(/\s+/g, ""));
    if (der === undefined || der.length !== 44 || !equalBytes(der.subarray(0, 12), SPKI_ED25519_PREFIX)) return "the PEM public key is not an Ed25519 key";
    return der.subarray(12);
  }
  if (text.includes("-----BEGIN")) return "only PEM public keys (BEGIN PUBLIC KEY) are read here";
  if (/^[^+]+\+[0-9a-f]{8}\+/.test(text)) {
    const named = await parseVerifierKey(text);
    return named === undefined ? "the verifier key is malformed or its key ID does not match" : named.publicKey;
  }
  const standard = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = fromBase64(standard.padEnd(Math.ceil(standard.length / 4) * 4, "="));
  return raw?.length === 32 ? raw : "not PEM, not a verifier key and not 32 base64 bytes";
}

