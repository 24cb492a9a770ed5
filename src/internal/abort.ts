/**
 * Runs `fn`, but settles as soon as `signal` aborts (rejecting with its reason): a halted tool call
 * does not wait for a tool that ignores its signal. Adapters use it rather than a copy of their own.
 * @example
 * import { raceAbort } from "agent-warden";
 * const output = await raceAbort(handle.signal, () => tool.invoke(input));
 */
export async function raceAbort<T>(signal: AbortSignal, fn: () => T | Promise<T>): Promise<T> {
  if (signal.aborted) throw signal.reason;
  const result = fn();
  // An abort during `fn` (it halted its own agent) wins, as it would over a pending result.
  if (signal.aborted) throw signal.reason;
  // A synchronous tool: nothing to race, and no listener to add and remove.
  if (!isThenable(result)) return result;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      signal.removeEventListener("abort", onAbort);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort);
    // Handled either way: a tool that rejects after the abort won is no unhandled rejection.
    Promise.resolve(result).then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Whether `value` is a promise or another thenable (what `await` would wait on). */
export function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function";
}
