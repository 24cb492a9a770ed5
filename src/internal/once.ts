/**
 * A value built on its first use, then kept. For the zod schemas of paths that a process may never take
 * (delegation tokens, remote mode, ledger verification): building them at import costs every process that
 * loads Warden, and the first `new Warden()` + `check()` needs none of them.
 */
export function once<T>(build: () => T): () => T {
  let value: T | undefined;
  let built = false;
  return () => {
    if (!built) {
      value = build();
      built = true;
    }
    return value as T;
  };
}
