import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { KeyObject } from "node:crypto";
import { ConfigError, StoreError } from "../errors.js";
import { SqliteStore } from "../store/sqlite-store.js";
import { keyIdOf, loadOrCreateKey } from "./keys.js";
import { loadRetiredKeys, trustedKeys } from "./keyring.js";
import { Ledger } from "./ledger.js";

/**
 * Options of `openLedger(path, options)`.
 * @example
 * import type { OpenLedgerOptions } from "agent-warden";
 * const options: OpenLedgerOptions = { publicKey: "./ledger-public.pem", checkpointEvery: 1000 };
 */
export interface OpenLedgerOptions {
  /**
   * The checkpoint key's public half, from outside the store (PEM, a PEM file, base64 raw key); after
   * rotations, several, current last. Default: the key beside the store and the retired ones kept with it.
   */
  publicKey?: KeyObject | string | readonly (KeyObject | string)[] | undefined;
  /** Uncovered entries tolerated after the last checkpoint (default 1000, the client's default). */
  checkpointEvery?: number | undefined;
}

/**
 * Opens a store file read-only, for an auditor: verify, export, take evidence. Nothing is written to the
 * store and nothing is signed, whatever the file holds (verification saves where it ended in `<store>-verified`). Without `publicKey`, checkpoints are checked against the
 * key in `<store dir>/keys/ledger.pem`, and the result says so (`key.source: "store"`).
 * @example
 * import { openLedger } from "agent-warden";
 * const { ledger, close } = openLedger("./.warden/warden.db", { publicKey: "./ledger-public.pem" });
 * try { console.log(ledger.verify()); } finally { close(); }
 */
export function openLedger(path: string, options: OpenLedgerOptions = {}): { ledger: Ledger; close: () => void } {
  const file = resolve(path);
  if (!existsSync(file)) throw new StoreError(`no store at "${path}"`);
  let publicKey: KeyObject;
  let source: "supplied" | "store";
  let retired: Map<string, KeyObject>;
  if (options.publicKey !== undefined) {
    retired = trustedKeys(options.publicKey);
    publicKey = [...retired.values()].at(-1)!;
    retired.delete(keyIdOf(publicKey));
    source = "supplied";
  } else {
    const keyFile = join(dirname(file), "keys", "ledger.pem");
    if (!existsSync(keyFile)) throw new ConfigError(`no ledger key beside the store (${keyFile}): give the checkpoint key's public half`);
    publicKey = loadOrCreateKey(keyFile).publicKey;
    retired = loadRetiredKeys(dirname(keyFile));
    source = "store";
  }
  const store = new SqliteStore({ path: file, readOnly: true, checkpointEvery: options.checkpointEvery ?? 1000, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, onError: () => {} });
  return { ledger: new Ledger(store, publicKey, { keySource: source, retired }), close: () => store.close() };
}
