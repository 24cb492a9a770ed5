import { AsyncLocalStorage } from "node:async_hooks";
import type { AgentContext } from "./enums.js";
import type { PendingRow, RunColumn } from "./store/run-store.js";
import type { VerifiedToken } from "./tokens/token.js";

/**  Where nested calls land: the current run and step of one Warden client. */
export interface Scope {
  owner: object;
  runId: string;
  stepId: string | undefined;
}

/**  */
export const scopeStorage = new AsyncLocalStorage<Scope>();

/**  A run open in this process, as the client tracks it. */
export interface ActiveRun {
  runId: string;
  agentId: string;
  traceId: string;
  implicit: boolean;
  /** The runs above this one in its tree, nearest first: a halt of any of them reaches this run. */
  ancestors: readonly string[];
  /** The delegation token the run acts under (its own, its parent run's, or the client's). */
  token: VerifiedToken | undefined;
  /** The run's agent context (redacted): tool calls and approval requests inherit what they do not set. */
  agentContext?: AgentContext | undefined;
  /** The queued insert of the run's row; patched in place if the run ends before it commits. */
  row?: PendingRow<RunColumn> | undefined;
  /** Taken over from the store under a token this process does not hold: its calls are refused. */
  tokenMissing?: string | undefined;
}
