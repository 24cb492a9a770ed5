import type { Decision } from "./decision.js";
import { ApprovalRejectedError, ApprovalTimeoutError, WardenError } from "./errors.js";
import type { ApprovalRecord } from "./records.js";

/** Why a call was refused without a halt. */
export type RefusalCause = "policy" | "token" | "limit" | "budget" | "rejected" | "expired" | "aborted";

/**
 * Whether a governed tool call may run, in a closed set of outcomes: what `await handle.admit()`
 * answers and every adapter maps onto its framework (run the tool; tell the model; stop the run).
 * - `allowed` / `warned`: run it.
 * - `refused`: do not run it, tell the caller or model `reason`; `cause` says what refused it
 *   (a policy, the token's scope, a rate limit, a budget, a reviewer, an approval that expired, the
 *   caller's own signal).
 * - `halted`: do not run it and stop the whole run; `cause` is `halt`, or `token` when the token the
 *   run acts under was invalidated by a halt of an agent that delegated it.
 * `halted` mirrors `outcome === "halted"`, for callers written against the earlier `admit()`.
 * @example
 * import type { Admission } from "agent-warden";
 * const admission: Admission = await warden.beginToolCall({ tool: "deploy", args }).admit();
 * if (admission.outcome === "halted") throw admission.error;
 * if (!admission.ok) return `refused: ${admission.reason}`;
 */
export type Admission =
  | { ok: true; outcome: "allowed" | "warned"; reason: string }
  | { ok: false; outcome: "refused"; cause: RefusalCause; reason: string; error: WardenError; halted: false }
  | { ok: false; outcome: "halted"; cause: "halt" | "token"; reason: string; error: WardenError; halted: true };

/**
 * What `handle.outcome` says at once, without waiting: an `Admission`, or `needs_approval` while a
 * reviewer has not answered (the request is `approval`). Toolkits that pause for approval in the
 * framework (AI SDK `toolApproval`, OpenAI Agents `needsApproval`) surface `needs_approval` there.
 * @example
 * import type { Outcome } from "agent-warden";
 * const outcome: Outcome = warden.beginToolCall({ tool: "deploy", args, externalId: callId }).outcome;
 * const needsApproval = outcome.outcome === "needs_approval";
 */
export type Outcome = Admission | { ok: false; outcome: "needs_approval"; reason: string; approval: ApprovalRecord | undefined; halted: false };

/** Approval waits ended by the caller's own signal (not a reviewer, not a halt). */
const abortedWaits = new WeakSet<object>();

/**  The refusal of an approval wait the caller's signal ended: `reason` is the signal's reason. */
export function abortedWait(approvalId: string, toolName: string, reason: unknown): ApprovalRejectedError {
  const error = new ApprovalRejectedError({ approvalId, toolName, reason: "aborted" });
  error.cause = reason;
  abortedWaits.add(error);
  return error;
}

/**  The admission a decision gives before anything is waited for. */
export function admissionOf(decision: Decision, error: () => WardenError): Outcome {
  switch (decision.action) {
    case "allow":
      return { ok: true, outcome: "allowed", reason: decision.reason };
    case "warn":
      return { ok: true, outcome: "warned", reason: decision.reason };
    case "require_approval":
      return { ok: false, outcome: "needs_approval", reason: decision.reason, approval: undefined, halted: false };
    case "block":
      if (decision.halted) return { ok: false, outcome: "halted", cause: decision.cause === "token" ? "token" : "halt", reason: decision.reason, error: error(), halted: true };
      return { ok: false, outcome: "refused", cause: decision.cause === "halt" || decision.cause === undefined ? "policy" : decision.cause, reason: decision.reason, error: error(), halted: false };
  }
}

/**  The admission an error that ended a wait (or a run) gives. */
export function refusalOf(error: WardenError): Admission & { ok: false } {
  if (isHalt(error)) return { ok: false, outcome: "halted", cause: error.code === "token_invalid" ? "token" : "halt", reason: reasonOf(error), error, halted: true };
  const cause: RefusalCause = abortedWaits.has(error) ? "aborted" : error instanceof ApprovalTimeoutError || error.code === "approval_timeout" ? "expired" : error instanceof ApprovalRejectedError || error.code === "approval_rejected" ? "rejected" : error.code === "token_invalid" ? "token" : "policy";
  return { ok: false, outcome: "refused", cause, reason: reasonOf(error), error, halted: false };
}

function reasonOf(error: WardenError): string {
  const reason = (error as WardenError & { reason?: unknown }).reason;
  return typeof reason === "string" && reason.length > 0 && error.code !== "token_invalid" ? reason : error.message;
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
