// Ledger key rotation. The old key signs a checkpoint over an entry that names the new key
// (`ledger.key_rotated`); from then on the new key signs. Checkpoints of retired keys stay verifiable:
// their public halves are kept (`<keys dir>/retired/<key id>.pub.pem`, or supplied out of band), and a
// verifier that trusts only the first key learns each next one from the chain, where a checkpoint of a
// key it already trusts vouches for the handover.
import { randomUUID, type KeyObject } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ConfigError, LedgerIntegrityError, StoreError } from "../errors.js";
import { canonicalJson } from "../internal/canonical.js";
import { SqliteStore } from "../store/sqlite-store.js";
import { keyIdOf, loadOrCreateKey, parsePublicKey, rawPublicKey, type SigningKey } from "./keys.js";
import { ledgerOrigin, verifierKey } from "./note.js";

/** The ledger entry type that hands checkpoint signing over to a new key. */
export const KEY_ROTATED_ENTRY = "ledger.key_rotated";

/** Public keys of retired ledger keys kept in `<keys dir>/retired/`, by key id. */
export function loadRetiredKeys(keysDir: string | undefined): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  if (keysDir === undefined) return keys;
  const dir = join(keysDir, "retired");
  if (!existsSync(dir)) return keys;
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith(".pub.pem")) continue;
    const key = parsePublicKey(readFileSync(join(dir, name), "utf8"), `retired ledger key ${name}`);
    keys.set(keyIdOf(key), key);
  }
  return keys;
}

/**
 * The ledger's signing key: `configured` as PEM or a file path (outside the store's folder, ideally), else
 * `<keys dir>/ledger.pem`; with the public keys it took over from (`retired/` beside its file, and `previous`).
 */
export function ledgerSigningKey(keysDir: string | undefined, configured: string | undefined, previous: readonly string[] = []): SigningKey {
  const key = configured !== undefined && !configured.includes("-----BEGIN") ? loadOrCreateKey(resolve(configured)) : loadOrCreateKey(keysDir && join(keysDir, "ledger.pem"), configured);
  const retired = loadRetiredKeys(key.path === undefined ? undefined : dirname(key.path));
  for (const item of previous) {
    const publicKey = parsePublicKey(item, "previous ledger key");
    retired.set(keyIdOf(publicKey), publicKey);
  }
  retired.delete(key.keyId);
  return { ...key, retired };
}

/** A set of trusted public keys by key id, from what a caller supplies (one key or several). */
export function trustedKeys(input: KeyObject | string | readonly (KeyObject | string)[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const item of Array.isArray(input) ? input : [input]) {
    const key = parsePublicKey(item as KeyObject | string, "ledger public key");
    keys.set(keyIdOf(key), key);
  }
  if (keys.size === 0) throw new ConfigError("no ledger public key given");
  return keys;
}

/** The public key a `ledger.key_rotated` entry hands over to, if its data names one well. */
export function rotatedKeyOf(dataJson: string): KeyObject | undefined {
  try {
    const data = JSON.parse(dataJson) as { publicKey?: unknown; keyId?: unknown };
    if (typeof data.publicKey !== "string") return undefined;
    const key = parsePublicKey(data.publicKey, "rotated ledger key");
    return keyIdOf(key) === data.keyId ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What `rotateLedgerKey` did.
 * @example
 * import type { LedgerKeyRotation } from "agent-warden";
 * const rotation: LedgerKeyRotation = rotateLedgerKey("./.warden/warden.db");
 */
export interface LedgerKeyRotation {
  previousKeyId: string;
  keyId: string;
  /** The new key's verifier key: publish it, and give it to witnesses (a new log origin). */
  verifierKey: string;
  /** The entry that names the new key, under a checkpoint the old key signed. */
  seq: number;
  /** Where the new private key is, and where the retired public key was kept. */
  keyFile: string;
  retiredFile: string;
}

/**
 * Rotates the ledger's signing key: the current key (`keyFile`, default `<store dir>/keys/ledger.pem`)
 * signs a checkpoint over a `ledger.key_rotated` entry naming the new key; the new private key replaces
 * it (or is written to `newKeyFile`, created if absent), and the old public half is kept in
 * `<keys dir>/retired/`. Run it while no process writes the store. Refused (typed error) if the old key
 * will not sign over the ledger as it stands.
 * @example
 * import { rotateLedgerKey } from "agent-warden";
 * const { keyId, verifierKey } = rotateLedgerKey("./.warden/warden.db");
 */
export function rotateLedgerKey(storePath: string, options: { keyFile?: string | undefined; newKeyFile?: string | undefined; org?: string | undefined; actor?: string | undefined; checkpointEvery?: number | undefined } = {}): LedgerKeyRotation {
  const file = resolve(storePath);
  if (!existsSync(file)) throw new StoreError(`no store at "${storePath}"`);
  const keyFile = resolve(options.keyFile ?? join(dirname(file), "keys", "ledger.pem"));
  if (!existsSync(keyFile)) throw new ConfigError(`no ledger key at ${keyFile}: give the current key with keyFile`);
  const current = loadOrCreateKey(keyFile);
  const retired = loadRetiredKeys(dirname(keyFile));
  const next = options.newKeyFile === undefined ? loadOrCreateKey(undefined) : loadOrCreateKey(resolve(options.newKeyFile));
  if (next.keyId === current.keyId) throw new ConfigError("the new ledger key is the current one");
  const errors: unknown[] = [];
  const store = new SqliteStore({ path: file, signer: { ...current, retired }, checkpointEvery: options.checkpointEvery ?? 1000, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, onError: (error) => errors.push(error) });
  let seq: number;
  try {
    const publicKey = rawPublicKey(next.publicKey).toString("base64");
    store.append({ id: `evt_${randomUUID().replaceAll("-", "")}`, ts: Date.now(), type: KEY_ROTATED_ENTRY, org: options.org ?? "default", agentId: null, runId: null, stepId: null, toolCallId: null, actor: options.actor ?? null, dataJson: canonicalJson({ previousKeyId: current.keyId, keyId: next.keyId, publicKey, verifierKey: verifierKey(ledgerOrigin(next.publicKey), next.publicKey) }) });
    store.flush();
    store.checkpointNow();
    const head = store.get<{ seq: number }>("SELECT seq FROM ledger ORDER BY seq DESC LIMIT 1")!;
    const signed = store.get<{ seq: number; key_id: string }>("SELECT seq, key_id FROM checkpoints ORDER BY seq DESC LIMIT 1");
    if (signed?.seq !== head.seq || signed.key_id !== current.keyId) {
      throw new LedgerIntegrityError(head.seq, `the current key would not sign over the ledger, so the new key was not taken into use${errors.length > 0 ? `: ${(errors[0] as Error).message}` : ""}`);
    }
    seq = head.seq;
  } finally {
    store.close();
  }
  const retiredDir = join(dirname(options.newKeyFile === undefined ? keyFile : resolve(options.newKeyFile)), "retired");
  mkdirSync(retiredDir, { recursive: true });
  const retiredFile = join(retiredDir, `${current.keyId}.pub.pem`);
  writeFileSync(retiredFile, current.publicKey.export({ type: "spki", format: "pem" }));
  // Copies what the old key had taken over too, so one folder holds the whole line of keys.
  for (const [id, key] of retired) if (!existsSync(join(retiredDir, `${id}.pub.pem`))) writeFileSync(join(retiredDir, `${id}.pub.pem`), key.export({ type: "spki", format: "pem" }));
  let newKeyFile = options.newKeyFile === undefined ? keyFile : resolve(options.newKeyFile);
  if (options.newKeyFile === undefined) replaceKeyFile(keyFile, next);
  else newKeyFile = next.path ?? newKeyFile;
  return { previousKeyId: current.keyId, keyId: next.keyId, verifierKey: verifierKey(ledgerOrigin(next.publicKey), next.publicKey), seq, keyFile: newKeyFile, retiredFile };
}

function replaceKeyFile(path: string, key: SigningKey): void {
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  writeFileSync(temp, key.privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600, flag: "wx" });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}
