// The two primitives the verifier needs, from WebCrypto (globalThis.crypto.subtle): Node 22+ and every
// current browser have SHA-256 and Ed25519 there.
import { toHex } from "./bytes.js";

function subtle(): typeof globalThis.crypto.subtle {
  const found = globalThis.crypto?.subtle;
  if (found === undefined) throw new Error("WebCrypto (crypto.subtle) is not available here: a browser page needs a secure context (https or localhost)");
  return found;
}

// A copy into a fresh ArrayBuffer: WebCrypto takes BufferSource, and views over shared memory are refused.
const source = (bytes: Uint8Array): ArrayBuffer => bytes.slice().buffer;

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest("SHA-256", source(bytes)));
}

export const sha256Hex = async (bytes: Uint8Array): Promise<string> => toHex(await sha256(bytes));

/** An Ed25519 signature check over `message` with a 32-byte raw public key; false on any malformed input. */
export async function ed25519Verify(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    const key = await subtle().importKey("raw", source(publicKey), { name: "Ed25519" }, false, ["verify"]);
    return await subtle().verify({ name: "Ed25519" }, key, source(signature), source(message));
  } catch {
    return false;
  }
}
