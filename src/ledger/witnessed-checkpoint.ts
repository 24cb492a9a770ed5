// Reading a witness's view of a log, apart from the witnessing client: a light module the package's
// entry can load without the client.
import { ConfigError, RemoteError } from "../errors.js";
import { parseWitnessKey } from "./cosignature.js";

/**
 * The last checkpoint a witness cosigned for a log (`GET <url>/checkpoint?origin=…`), or undefined if it has
 * none; with the witness's verifier key from `GET <url>/key` when `key` is not given.
 * @example
 * import { fetchWitnessedCheckpoint } from "agent-warden";
 * const head = await fetchWitnessedCheckpoint("https://witness.example.com", warden.ledger.origin());
 */
export async function fetchWitnessedCheckpoint(url: string, origin: string, options: { key?: string; timeoutMs?: number } = {}): Promise<{ key: string; checkpoint: string | undefined }> {
  const base = url.replace(/\/+$/, "");
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  let key = options.key;
  if (key === undefined) {
    const response = await fetch(`${base}/key`, { signal });
    if (!response.ok) throw new RemoteError(`witness ${base} did not give its key (${response.status})`, { status: response.status, retryable: false });
    key = (await response.text()).trim();
  }
  if (parseWitnessKey(key) === undefined) throw new ConfigError(`witness ${base}: "${key}" is not a witness verifier key`);
  const response = await fetch(`${base}/checkpoint?origin=${encodeURIComponent(origin)}`, { signal });
  if (response.status === 404) return { key, checkpoint: undefined };
  if (!response.ok) throw new RemoteError(`witness ${base} did not give its checkpoint of ${origin} (${response.status})`, { status: response.status, retryable: response.status >= 500 });
  return { key, checkpoint: await response.text() };
}
