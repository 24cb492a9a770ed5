/** Rejects when `signal` aborts, with its reason. */
export function abortPromise(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let dispose = () => {};
  const promise = new Promise<never>((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    dispose = () => signal.removeEventListener("abort", onAbort);
  });
  promise.catch(() => {});
  return { promise, dispose };
}

/**
 * Runs `fn`, but settles as soon as `signal` aborts (rejecting with its reason): a halted tool call
 * does not wait for a tool that ignores its signal. Adapters use it rather than a copy of their own.
 * @example
 * import { raceAbort } from "agent-warden";
 * const output = await raceAbort(handle.signal, () => tool.invoke(input));
 */
export async function raceAbort<T>(signal: AbortSignal, fn: () => T | Promise<T>): Promise<T> {
  if (signal.aborted) throw signal.reason;
  const abort = abortPromise(signal);
  try {
    return await Promise.race([Promise.resolve().then(fn), abort.promise]);
  } finally {
    abort.dispose();
  }
}
