import type { Decision } from "./decision.js";
import { ToolCallStatus } from "./enums.js";
import { WardenError } from "./errors.js";
import { raceAbort } from "./internal/abort.js";
import type { ApprovalRecord } from "./records.js";
import type { QueuedWrite } from "./store/sqlite-store.js";

/**
 * What a governed tool function receives: the ids to correlate with, and the signal to stop on a halt.
 * @example
 * import type { ToolContext } from "agent-warden";
 * await run.tool("fetch_page", { url }, ({ signal }: ToolContext) => fetch(url, { signal }));
 */
export interface ToolContext {
  /** Aborts when the agent, its group, its run or the organization is halted. Pass it on. */
  signal: AbortSignal;
  toolCallId: string;
  runId: string;
}

/** @internal A tool call in flight, as the client tracks it. */
export interface ActiveToolCall {
  toolCallId: string;
  externalId?: string | undefined;
  runId: string;
  stepId: string | undefined;
  agentId: string;
  toolName: string;
  status: ToolCallStatus;
  startedAt: number;
  controller: AbortController;
  cleanup: (() => void) | undefined;
  approvalId: string | undefined;
  decision: Decision;
  /** The queued insert of the call's row, patched in place if the call finishes before it commits. */
  row?: QueuedWrite | undefined;
}

/**
 * One governed tool call in flight: its decision, the signal to pass on, and how to finish it.
 * Adapters use it to map a framework's hook onto Warden.
 * @example
 * import type { ToolCallHandle } from "agent-warden";
 * const handle: ToolCallHandle = warden.beginToolCall({ tool: "deploy", args: { env: "prod" } });
 * const admitted = await handle.admit();
 * if (admitted.ok) handle.complete(await deploy("prod")); else console.warn(admitted.error.message);
 */
export class ToolCallHandle {
  readonly toolCallId: string;
  readonly runId: string;
  readonly toolName: string;
  readonly decision: Decision;
  /** Aborts on a halt (and when the framework's own signal aborts). */
  readonly signal: AbortSignal;
  /** The pending approval request when the decision is `require_approval`. */
  readonly approval: ApprovalRecord | undefined;
  readonly #owner: WardenInternals;

  /** @internal */
  constructor(owner: WardenInternals, state: ActiveToolCall, approval: ApprovalRecord | undefined) {
    this.#owner = owner;
    this.toolCallId = state.toolCallId;
    this.runId = state.runId;
    this.toolName = state.toolName;
    this.decision = state.decision;
    this.signal = state.controller.signal;
    this.approval = approval;
  }

  /** True when the tool may run now (allow or warn). */
  get allowed(): boolean {
    return this.decision.action === "allow" || this.decision.action === "warn";
  }

  /** The error to surface for a blocked call: `HaltedError` for a halt, else `ToolBlockedError`. */
  get error(): WardenError | undefined {
    if (this.decision.action !== "block") return undefined;
    return this.#owner.blockError(this.decision, this.toolName, this.toolCallId);
  }

  /** Waits for the reviewer. Resolves when approved; throws `ApprovalRejectedError`, `ApprovalTimeoutError` or `HaltedError`. */
  waitForApproval(): Promise<void> {
    return this.#owner.waitForApproval(this.toolCallId);
  }

  /**
   * Whether the tool may run, waiting for the reviewer first if the decision asks for one. Never
   * throws for a refusal: a block, a rejection, a timeout or a halt comes back as `{ ok: false, error }`,
   * for adapters that turn refusals into the framework's own answer (an error message, a denied result).
   */
  async admit(): Promise<{ ok: true } | { ok: false; halted: boolean; error: WardenError }> {
    if (this.decision.action === "block") {
      const error = this.error!;
      return { ok: false, halted: isHalt(error), error };
    }
    if (this.decision.action === "require_approval") {
      try {
        await this.waitForApproval();
      } catch (error) {
        if (!WardenError.isInstance(error)) throw error;
        return { ok: false, halted: isHalt(error), error };
      }
    }
    return { ok: true };
  }

  /**
   * Runs the tool once admitted: waits for approval if needed, runs `fn` with the call's signal, settles
   * as soon as a halt aborts it (even if `fn` ignores the signal), and records the output or the
   * failure. A refusal throws its `WardenError`; the tool's own error is rethrown as it was.
   * @example
   * const handle = warden.beginToolCall({ tool: "deploy", args });
   * const result = await handle.run((signal) => ci.deploy(args, { signal }));
   */
  async run<T>(fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    const admitted = await this.admit();
    if (!admitted.ok) throw admitted.error;
    try {
      const output = await raceAbort(this.signal, () => fn(this.signal));
      this.complete(output);
      return output;
    } catch (error) {
      this.fail(error);
      throw error;
    }
  }

  /** Aborts this call when `signal` does too (the framework's own cancellation). */
  link(signal: AbortSignal): void {
    this.#owner.link(this.toolCallId, signal);
  }

  /** Records the tool's output (redacted) and duration. */
  complete(output?: unknown): void {
    this.#owner.finishToolCall(this.toolCallId, ToolCallStatus.COMPLETED, output, undefined);
  }

  /** Records the tool's failure. */
  fail(error: unknown): void {
    this.#owner.finishToolCall(this.toolCallId, ToolCallStatus.FAILED, undefined, error);
  }
}

/** @internal What a handle asks of the client that made it. */
export interface WardenInternals {
  blockError(decision: Decision, toolName: string, toolCallId: string): WardenError;
  link(toolCallId: string, signal: AbortSignal): void;
  waitForApproval(toolCallId: string): Promise<void>;
  finishToolCall(toolCallId: string, status: ToolCallStatus, output: unknown, error: unknown): void;
}

/**
 * True for a refusal caused by a halt: a `HaltedError`, or a `TokenError` because a halt invalidated
 * the token. Works across copies of the package (it reads codes, not classes).
 * @example
 * import { isHalt } from "agent-warden";
 * if (isHalt(error)) stopTheLoop();
 */
export function isHalt(error: unknown): boolean {
  if (!WardenError.isInstance(error)) return false;
  return error.code === "halted" || (error.code === "token_invalid" && (error as WardenError & { reason?: string }).reason === "halted");
}

