import { createPrivateKey, createPublicKey, generateKeyPairSync, hash, randomUUID, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ConfigError } from "../errors.js";

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** base64url SHA-256 of the raw public key. */
  keyId: string;
  /** The file the key was read from or created in; absent for a key given as PEM or generated in memory. */
  path?: string | undefined;
  /** Public keys this key took over from (rotation), by key id: their checkpoints stay trusted. */
  retired?: ReadonlyMap<string, KeyObject> | undefined;
}

/** Loads an Ed25519 private key (PEM) from `path`, creating it with 0600 permissions on first use. */
export function loadOrCreateKey(path: string | undefined, pem?: string): SigningKey {
  if (pem !== undefined) return fromPrivate(parsePem(pem, "configured key"));
  if (path === undefined) return fromPrivate(generateKeyPairSync("ed25519").privateKey);
  if (existsSync(path)) return { ...fromPrivate(parsePem(readFileSync(path, "utf8"), path)), path };
  const { privateKey } = generateKeyPairSync("ed25519");
  mkdirSync(dirname(path), { recursive: true });
  // Written under a temporary name, then linked into place: processes that open a fresh store at the
  // same moment all end up with the one key that won, and none can read a half-written file.
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(temp, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  try {
    chmodSync(temp, 0o600);
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return { ...fromPrivate(parsePem(readFileSync(path, "utf8"), path)), path };
  } finally {
    rmSync(temp, { force: true });
  }
  return { ...fromPrivate(privateKey), path };
}

export function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ format: "der", type: "spki" });
  // One-shot: a client's first call reaches no Hash object (their machinery costs a cold start more than the hash).
  return hash("sha256", raw, "base64url").slice(0, 22);
}

function fromPrivate(privateKey: KeyObject): SigningKey {
  if (privateKey.asymmetricKeyType !== "ed25519") throw new ConfigError(`signing key must be Ed25519, got ${privateKey.asymmetricKeyType}`);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

function parsePem(pem: string, where: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (cause) {
    throw new ConfigError(`cannot read Ed25519 private key from ${where}`, { cause });
  }
}

/**
 * Reads an Ed25519 public key given out of band: a KeyObject, PEM (public or private; only the public
 * half is kept), a file holding PEM, or base64/base64url of the 32 raw key bytes.
 */
export function parsePublicKey(input: KeyObject | string, where = "public key"): KeyObject {
  let key: KeyObject;
  try {
    if (typeof input !== "string") key = input.type === "private" ? createPublicKey(input) : input;
    else {
      const text = input.includes("-----BEGIN") ? input : existsSync(input) ? readFileSync(input, "utf8") : undefined;
      if (text !== undefined) key = createPublicKey(text);
      else {
        const raw = Buffer.from(input.trim(), "base64");
        if (raw.length !== 32) throw new Error("not PEM, not a file and not 32 base64 bytes");
        key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" });
      }
    }
  } catch (cause) {
    throw new ConfigError(`cannot read the Ed25519 ${where}: ${(cause as Error).message}`, { cause });
  }
  if (key.asymmetricKeyType !== "ed25519") throw new ConfigError(`${where} must be Ed25519, got ${key.asymmetricKeyType}`);
  return key;
}

/** The 32 raw bytes of an Ed25519 public key. */
export function rawPublicKey(publicKey: KeyObject): Buffer {
  return publicKey.export({ format: "der", type: "spki" }).subarray(SPKI_ED25519_PREFIX.length);
}

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows. */
export const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
