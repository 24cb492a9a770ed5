/**
 * Stable, machine-readable error codes, for branching on a failure without parsing messages. Closed
 * set: adding one is a minor release, renaming one is a breaking change.
 * @example
 * import { WardenError, type WardenErrorCode } from "agent-warden";
 * const code: WardenErrorCode | undefined = WardenError.isInstance(error) ? error.code : undefined;
 */
export type WardenErrorCode =
  | "config_invalid"
  | "policy_invalid"
  | "tool_blocked"
  | "approval_rejected"
  | "approval_timeout"
  | "approval_invalid"
  | "reviewer_not_allowed"
  | "halted"
  | "token_invalid"
  | "permission_denied"
  | "not_found"
  | "invalid_state"
  | "invalid_input"
  | "ledger_integrity"
  | "store_error"
  | "remote_error";

const marker = Symbol.for("agent-warden.error");

/**
 * Base class of every error Warden throws, so one check tells Warden's refusals from the tool's own
 * failures. `code` is stable; `message` names the subject. Each subclass below fixes one `code`.
 * @example
 * import { WardenError, ToolBlockedError } from "agent-warden";
 * if (error instanceof ToolBlockedError) console.warn(`refused by ${error.policyId}: ${error.reason}`);
 * else if (WardenError.isInstance(error)) console.warn(error.code, error.message);
 */
export class WardenError extends Error {
  readonly [marker] = true;
  readonly code: WardenErrorCode;

  constructor(code: WardenErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.startsWith("[warden] ") ? message : `[warden] ${message}`, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** True for any Warden error, even one thrown by a second copy of the package. */
  static isInstance(value: unknown): value is WardenError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** Bad options, environment or key material (`code: "config_invalid"`): a setup mistake to fix, not a refusal to handle. */
export class ConfigError extends WardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("config_invalid", message, options);
  }
}

/** A policy file or policy object that does not validate (`code: "policy_invalid"`). `file`, `line`, `policyId` and `field` say where. */
export class PolicyError extends WardenError {
  readonly file: string | undefined;
  readonly policyId: string | undefined;
  readonly field: string | undefined;
  /** The line of the first issue in the file, when known. */
  readonly line: number | undefined;
  readonly issues: readonly PolicyIssue[];

  constructor(issues: readonly PolicyIssue[], file?: string) {
    const lines = issues.map((issue) => formatPolicyIssue(issue, file));
    super("policy_invalid", lines.length === 1 ? `invalid policy: ${lines[0]}` : `invalid policy:\n  ${lines.join("\n  ")}`);
    this.file = file;
    this.issues = issues;
    this.policyId = issues[0]?.policyId;
    this.field = issues[0]?.field;
    this.line = issues[0]?.line;
  }
}

/**
 * One problem in a policy set, located precisely enough to point an editor or a CI annotation at it.
 * @example
 * import { PolicyError, type PolicyIssue } from "agent-warden";
 * if (error instanceof PolicyError) error.issues.forEach((issue: PolicyIssue) => console.error(`${error.file}:${issue.line ?? "?"} ${issue.message}`));
 */
export interface PolicyIssue {
  message: string;
  policyId?: string | undefined;
  field?: string | undefined;
  line?: number | undefined;
}

function formatPolicyIssue(issue: PolicyIssue, file?: string): string {
  const where = [file && (issue.line ? `${file}:${issue.line}` : file), issue.policyId && `policy "${issue.policyId}"`, issue.field && `field "${issue.field}"`]
    .filter(Boolean)
    .join(", ");
  return where ? `${where}: ${issue.message}` : issue.message;
}

/** A tool call that policy, a limit, a budget or a delegation token's scope refused (`code: "tool_blocked"`). */
export class ToolBlockedError extends WardenError {
  readonly toolName: string;
  readonly toolCallId: string | undefined;
  readonly policyId: string | undefined;
  readonly reason: string;

  constructor(init: { toolName: string; reason: string; policyId?: string | undefined; toolCallId?: string | undefined }) {
    const by = init.policyId ? ` by policy "${init.policyId}"` : "";
    super("tool_blocked", `tool "${init.toolName}" blocked${by}: ${init.reason}`);
    this.toolName = init.toolName;
    this.toolCallId = init.toolCallId;
    this.policyId = init.policyId;
    this.reason = init.reason;
  }
}

/** A reviewer rejected the approval a tool call waited for, or a halt cancelled it (`code: "approval_rejected"`). */
export class ApprovalRejectedError extends WardenError {
  readonly approvalId: string;
  readonly toolName: string;
  readonly reviewer: string | undefined;

  constructor(init: { approvalId: string; toolName: string; reviewer?: string | undefined; reason?: string | undefined }) {
    const by = init.reviewer ? ` by ${init.reviewer}` : "";
    super("approval_rejected", `tool "${init.toolName}" rejected${by}${init.reason ? `: ${init.reason}` : ""} (approval ${init.approvalId})`);
    this.approvalId = init.approvalId;
    this.toolName = init.toolName;
    this.reviewer = init.reviewer;
  }
}

/** Nobody answered an approval request in time, so the call is refused rather than run unreviewed (`code: "approval_timeout"`). */
export class ApprovalTimeoutError extends WardenError {
  readonly approvalId: string;
  readonly toolName: string;

  constructor(init: { approvalId: string; toolName: string; timeoutMs: number }) {
    super("approval_timeout", `tool "${init.toolName}" not approved within ${init.timeoutMs} ms (approval ${init.approvalId})`);
    this.approvalId = init.approvalId;
    this.toolName = init.toolName;
  }
}

/**
 * Why an approval no longer admits the call presented to it: the arguments, tool, agent or run differ
 * from what the reviewer saw; the policy set changed so that it no longer asks for this approval (or
 * now blocks); the approval expired; it was already used; it was never approved.
 */
export type ApprovalInvalidReason = "args_changed" | "tool_changed" | "agent_changed" | "run_changed" | "policy_changed" | "policy_blocks" | "expired" | "used" | "not_approved";

/**
 * An approval presented for a call it does not cover (`code: "approval_invalid"`): an approval admits
 * the exact call the reviewer saw, under the policy that asked for it, once, before it expires. `reason` says which part failed.
 * @example
 * import { ApprovalInvalidError } from "agent-warden";
 * if (error instanceof ApprovalInvalidError && error.reason === "args_changed") console.warn("the call changed after it was approved");
 */
export class ApprovalInvalidError extends WardenError {
  readonly approvalId: string;
  readonly toolName: string;
  readonly reason: ApprovalInvalidReason;

  constructor(init: { approvalId: string; toolName: string; reason: ApprovalInvalidReason; detail?: string | undefined }) {
    super("approval_invalid", `tool "${init.toolName}" not run: ${init.detail ?? APPROVAL_INVALID[init.reason]} (approval ${init.approvalId})`);
    this.approvalId = init.approvalId;
    this.toolName = init.toolName;
    this.reason = init.reason;
  }
}

const APPROVAL_INVALID: Record<ApprovalInvalidReason, string> = {
  args_changed: "its arguments differ from those the reviewer approved",
  tool_changed: "the approval was given for another tool",
  agent_changed: "the approval was given for another agent",
  run_changed: "the approval was given in another run",
  policy_changed: "the policy set changed and no longer asks for this approval",
  policy_blocks: "the policy set now blocks this call",
  expired: "the approval expired",
  used: "the approval was already used",
  not_approved: "the approval was not given",
};

/**
 * A reviewer the policy does not let answer this request (`code: "reviewer_not_allowed"`): outside the
 * policy's `approval.from` (and its escalation set, once due), the requesting agent itself, or a second
 * vote by the same reviewer. The control plane answers 403.
 * @example
 * import { ReviewerNotAllowedError } from "agent-warden";
 * try { warden.approvals.approve(id, { reviewer: "mallory@example.com" }); } catch (error) { if (error instanceof ReviewerNotAllowedError) console.warn(error.message); }
 */
export class ReviewerNotAllowedError extends WardenError {
  readonly approvalId: string;
  readonly reviewer: string | undefined;
  readonly status = 403;

  constructor(init: { approvalId: string; reviewer: string | undefined; detail: string }) {
    super("reviewer_not_allowed", `reviewer ${init.reviewer ? `"${init.reviewer}"` : "(anonymous)"} may not answer approval ${init.approvalId}: ${init.detail}`);
    this.approvalId = init.approvalId;
    this.reviewer = init.reviewer;
  }
}

/** The organization, agent, group or run is halted (`code: "halted"`); the agent should stop, not retry. */
export class HaltedError extends WardenError {
  readonly reason: string;
  readonly scope: string;

  constructor(init: { reason: string; scope: string }, options?: { cause?: unknown }) {
    // An unknown halt state has no scope to name: its reason says what is unknown.
    super("halted", init.scope === "unknown" && init.reason.startsWith("halt state unknown") ? init.reason : `halted (${init.scope}): ${init.reason}`, options);
    this.reason = init.reason;
    this.scope = init.scope;
  }
}

/**
 * Stable reasons a delegation token does not verify, so a service can tell "ask for a fresh token"
 * (`expired`) from "this token was never valid" (`bad_signature`, `widened`).
 * @example
 * import { TokenError, type TokenErrorReason } from "agent-warden";
 * const reason: TokenErrorReason | undefined = error instanceof TokenError ? error.reason : undefined;
 */
export type TokenErrorReason =
  | "bad_signature"
  | "wrong_root_key"
  | "expired"
  | "widened"
  | "wrong_audience"
  | "revoked"
  | "halted"
  | "malformed"
  | "sealed";

/** A delegation token that does not verify or cannot be attenuated (`code: "token_invalid"`); `reason` says why. */
export class TokenError extends WardenError {
  readonly reason: TokenErrorReason;

  constructor(reason: TokenErrorReason, message: string, options?: { cause?: unknown }) {
    super("token_invalid", `token ${reason}: ${message}`, options);
    this.reason = reason;
  }
}

/** A permission the current token or policy does not grant (`code: "permission_denied"`), thrown by `ensureAuthorized`. */
export class PermissionDeniedError extends WardenError {
  readonly permission: string;

  constructor(permission: string, reason: string) {
    super("permission_denied", `permission "${permission}" denied: ${reason}`);
    this.permission = permission;
  }
}

/** A run, step, tool call or approval that does not exist (`code: "not_found"`). */
export class NotFoundError extends WardenError {
  constructor(kind: string, id: string) {
    super("not_found", `${kind} "${id}" not found`);
  }
}

/** An operation that is not valid in the subject's current state, such as completing a blocked call (`code: "invalid_state"`). */
export class InvalidStateError extends WardenError {
  constructor(message: string) {
    super("invalid_state", message);
  }
}

/** Input that does not have the expected shape (`code: "invalid_input"`). */
export class InvalidInputError extends WardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid_input", message, options);
  }
}

/** The ledger failed verification (`code: "ledger_integrity"`): evidence of tampering or loss. `seq` is the first bad entry. */
export class LedgerIntegrityError extends WardenError {
  readonly seq: number;

  constructor(seq: number, problem: string) {
    super("ledger_integrity", `ledger entry ${seq}: ${problem}`);
    this.seq = seq;
  }
}

/** The store could not be opened or read, such as a corrupt file or a wrong schema (`code: "store_error"`). */
export class StoreError extends WardenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("store_error", message, options);
  }
}

/** The control plane could not be reached or refused a request (`code: "remote_error"`). `retryable`: 429, 502, 503, 504 or no answer at all. */
export class RemoteError extends WardenError {
  /** The HTTP status, or undefined when there was no answer. */
  readonly status: number | undefined;
  readonly retryable: boolean;
  /** From `Retry-After`, in ms. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, init: { status?: number | undefined; retryable: boolean; retryAfterMs?: number | undefined; cause?: unknown }) {
    super("remote_error", message, { cause: init.cause });
    this.status = init.status;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs;
  }
}
