import { AsyncLocalStorage } from "node:async_hooks";

/** @internal Where nested calls land: the current run and step of one Warden client. */
export interface Scope {
  owner: object;
  runId: string;
  stepId: string | undefined;
}

/** @internal */
export const scopeStorage = new AsyncLocalStorage<Scope>();
