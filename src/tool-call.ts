import type { Decision } from "./decision.js";
import { ToolCallStatus } from "./enums.js";
import { WardenError } from "./errors.js";
import { abortedWait, admissionOf, isHalt, refusalOf, type Admission, type Outcome } from "./admission.js";
import { isThenable, raceAbort } from "./internal/abort.js";
import type { ApprovalRecord } from "./records.js";
import type { PolicyInputCall } from "./policy/engine.js";
import type { PendingRow, ToolCallColumn } from "./store/run-store.js";

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

/**  A tool call in flight, as the client tracks it. */
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
  row?: PendingRow<ToolCallColumn> | undefined;
  /** The call opened a run of its own (no run was open): a later hook for the same framework id finds it without one. */
  implicitRun?: boolean | undefined;
  /** The approval request, while the call waits for it. */
  approval?: ApprovalRecord | undefined;
  /** How the call ended when a wait for its approval refused it. */
  admission?: Admission | undefined;
  /** The arguments this handle presents (memory only): an approval admits the call only if they are the ones approved. */
  presented?: { args: unknown } | undefined;
  /** What the policies were asked about the call (memory only), to ask again if the policy set changes before an approval is used. */
  policyCall?: PolicyInputCall | undefined;
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
  #admission: Admission | undefined;
  readonly #presented: { args: unknown } | undefined;
  readonly #approvalId: string | undefined;

  /** @internal */
  constructor(owner: WardenInternals, state: ActiveToolCall, approval: ApprovalRecord | undefined) {
    this.#owner = owner;
    this.toolCallId = state.toolCallId;
    this.runId = state.runId;
    this.toolName = state.toolName;
    this.decision = state.decision;
    this.signal = state.controller.signal;
    this.approval = approval;
    this.#admission = state.admission;
    this.#presented = state.presented;
    this.#approvalId = state.approvalId;
  }

  /** True when the tool may run now (allow or warn). */
  get allowed(): boolean {
    return this.decision.action === "allow" || this.decision.action === "warn";
  }

  /** The error to surface for a blocked call: `HaltedError` for a halt, a `TokenError` for a token a halt invalidated, else `ToolBlockedError`. */
  get error(): WardenError | undefined {
    if (this.#admission !== undefined && !this.#admission.ok) return this.#admission.error;
    if (this.decision.action !== "block") return undefined;
    return this.#owner.blockError(this.decision, this.toolName, this.toolCallId);
  }

  /**
   * The outcome known now, without waiting: `needs_approval` while a reviewer has not answered,
   * `halted` once a halt has aborted the call, else what `admit()` would answer.
   * @example
   * const handle = warden.beginToolCall({ tool: "deploy", args, externalId: callId });
   * if (handle.outcome.outcome === "needs_approval") return "user-approval";
   */
  get outcome(): Outcome {
    if (this.#admission !== undefined && !this.#admission.ok) return this.#admission;
    const halt = this.#haltedNow();
    if (halt !== undefined) return halt;
    if (this.#admission !== undefined) return this.#admission;
    const outcome = admissionOf(this.decision, () => this.error!);
    return outcome.outcome === "needs_approval" ? { ...outcome, approval: this.approval } : outcome;
  }

  /**
   * Headers that continue this call's trace where the call goes (`traceparent`, `tracestate`), from the
   * tracing integration set with `warden.useTracing`; empty without one. Adapters that send the call on
   * (HTTP, MCP) add them to the request.
   * @example
   * const response = await fetch(url, { headers: { ...handle.traceHeaders(), accept: "application/json" } });
   */
  traceHeaders(): Record<string, string> {
    return this.#owner.traceHeaders(this.toolCallId);
  }

  /** Waits for the reviewer. Resolves when approved; throws `ApprovalRejectedError`, `ApprovalTimeoutError` or `HaltedError`. */
  waitForApproval(): Promise<void> {
    return this.#owner.waitForApproval(this.toolCallId);
  }

  /**
   * Whether the tool may run, waiting for the reviewer first if the decision asks for one: the call's
   * `Admission` (never `needs_approval`). Never throws for a refusal: a block, a rejection, a timeout,
   * a wait aborted by the caller's signal or a halt comes back as `{ ok: false, outcome, cause, error }`,
   * and a refused call is already recorded as such (the adapter finishes only admitted calls).
   * @example
   * const admission = await warden.beginToolCall({ tool: "deploy", args, signal }).admit();
   * if (admission.outcome === "halted") throw admission.error; // stop the run
   * if (!admission.ok) return { denied: admission.reason };    // tell the model
   */
  async admit(): Promise<Admission> {
    if (this.#admission !== undefined) return this.#admission;
    // The store's writer is behind: the call waits its turn here, asynchronously, never holding the event loop.
    const behind = this.#owner.backpressure();
    if (behind !== undefined) await behind;
    if (this.decision.action === "require_approval") {
      try {
        await this.waitForApproval();
      } catch (error) {
        if (WardenError.isInstance(error)) return (this.#admission = refusalOf(error));
        // The caller's own signal ended the wait: the call is already recorded as rejected (aborted).
        if (this.signal.aborted && error === this.signal.reason) return (this.#admission = refusalOf(abortedWait(this.approval?.approvalId ?? "", this.toolName, error)));
        throw error;
      }
    }
    const halted = this.#haltedNow();
    if (halted !== undefined) {
      // Decided before the halt landed: the halt wins, and the call is recorded as stopped by it.
      this.#owner.stop(this.toolCallId, halted.error);
      return (this.#admission = halted);
    }
    const outcome = admissionOf(this.decision, () => this.error!);
    if (outcome.ok || outcome.outcome === "needs_approval") {
      // An approved call runs only as the call the reviewer saw, once (the core checks the binding).
      const invalid = this.#approvalId === undefined ? undefined : this.#owner.admitApproved(this.toolCallId, this.#presented);
      if (invalid !== undefined) return (this.#admission = refusalOf(invalid));
    }
    if (outcome.outcome === "needs_approval") return (this.#admission = { ok: true, outcome: "allowed", reason: this.#owner.approvedReason(this.toolCallId) ?? "approved" });
    return (this.#admission = outcome);
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
    // Most calls are admitted with nothing to wait for, and most tools answer without awaiting: those
    // take no extra promise or microtask turn (the same steps as `admit()` and `raceAbort`, in line).
    const admitted = this.#admittedNow() ?? (await this.admit());
    if (!admitted.ok) throw admitted.error;
    const signal = this.signal;
    let output: T;
    try {
      if (signal.aborted) throw signal.reason;
      const result = fn(signal);
      // An abort during `fn` (it halted its own agent) wins, as it would over a pending result.
      output = isThenable(result) || signal.aborted ? await raceAbort(signal, () => result) : result;
    } catch (error) {
      this.fail(error);
      throw error;
    }
    this.complete(output);
    return output;
  }

  /**
   * `admit()`'s answer when it can be had without waiting: an allowed or warned call, no approval to
   * use, no halt on it and the store's writer not behind. Undefined when `admit()` must decide.
   */
  #admittedNow(): Admission | undefined {
    if (this.#admission !== undefined) return this.#admission;
    const action = this.decision.action;
    if ((action !== "allow" && action !== "warn") || this.#approvalId !== undefined || this.signal.aborted || this.#owner.backpressure() !== undefined) return undefined;
    return (this.#admission = action === "allow" ? { ok: true, outcome: "allowed", reason: this.decision.reason } : { ok: true, outcome: "warned", reason: this.decision.reason });
  }

  /**
   * Runs `fn` and settles as soon as this call's signal aborts (a halt, or the framework's signal),
   * even if `fn` ignores it. Records nothing: for adapters that finish the call themselves.
   * @example
   * const output = await handle.race(() => tool.invoke(input, { signal: handle.signal }));
   */
  race<T>(fn: () => T | Promise<T>): Promise<T> {
    return raceAbort(this.signal, fn);
  }

  /** Aborts this call when `signal` does too (the framework's own cancellation). */
  link(signal: AbortSignal): void {
    this.#owner.link(this.toolCallId, signal);
  }

  /**
   * Records the tool's output (redacted) and duration. When a halt landed while the tool ran, the
   * call is recorded as `failed` with the halt instead, and this throws that `HaltedError`: nothing
   * a halt interrupted is recorded as a success, and the caller learns it must not report one.
   */
  complete(output?: unknown): void {
    this.#owner.finishToolCall(this.toolCallId, ToolCallStatus.COMPLETED, output, undefined);
  }

  /** Records the tool's failure. */
  fail(error: unknown): void {
    this.#owner.finishToolCall(this.toolCallId, ToolCallStatus.FAILED, undefined, error);
  }

  /**
   * Records how the tool ended, never throwing: `complete(output)`, or `fail(error)` given `{ error }`.
   * For adapters, to whom recording is telemetry: a call a halt already finished is no news (read
   * `outcome` to learn a halt landed, it says `halted`), and any other failure goes to the client's one
   * error sink (`warden.reportError`, `report` naming the surface in its warning), or to `report` if it is a function.
   * @example
   * const output = await handle.race(() => tool.invoke(input));
   * handle.settle({ output }, "my-framework");
   * if (handle.outcome.outcome === "halted") throw handle.outcome.error;
   */
  settle(ending: { output?: unknown } | { error: unknown }, report?: string | ((error: unknown) => void)): void {
    try {
      if ("error" in ending) this.fail(ending.error);
      else this.complete(ending.output);
    } catch (error) {
      if (isHalt(error) || (WardenError.isInstance(error) && error.code === "invalid_state")) return;
      if (typeof report === "function") report(error);
      else this.#owner.reportError(error, report);
    }
  }

  #haltedNow(): (Admission & { outcome: "halted" }) | undefined {
    if (!this.signal.aborted || !isHalt(this.signal.reason)) return undefined;
    const refusal = refusalOf(this.signal.reason as WardenError);
    return refusal.outcome === "halted" ? refusal : undefined;
  }
}

/**  What a handle asks of the client that made it. */
export interface WardenInternals {
  blockError(decision: Decision, toolName: string, toolCallId: string): WardenError;
  link(toolCallId: string, signal: AbortSignal): void;
  waitForApproval(toolCallId: string): Promise<void>;
  /** While the store's writer is behind, a promise that settles once it has caught up; else undefined. */
  backpressure(): Promise<void> | undefined;
  finishToolCall(toolCallId: string, status: ToolCallStatus, output: unknown, error: unknown): void;
  /** Records a call a halt stopped before it ran as failed with the halt; nothing if it is already finished. */
  stop(toolCallId: string, error: WardenError): void;
  /** The reason of the approval that admitted the call, if one did. */
  approvedReason(toolCallId: string): string | undefined;
  /** The client's error sink (`warden.reportError`); `source` names the surface. */
  reportError(error: unknown, source?: string): void;
  /** Headers carrying the call's trace context onward (from `warden.useTracing`); empty without one. */
  traceHeaders(toolCallId: string): Record<string, string>;
  /** Checks an approved call against its approval's binding and uses the approval; the refusal (already recorded) if it does not hold. */
  admitApproved(toolCallId: string, presented: { args: unknown } | undefined): WardenError | undefined;
}

export { isHalt };
