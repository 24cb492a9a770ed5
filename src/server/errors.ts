import { InvalidStateError } from "agent-warden";

/**
 * One problem with a request: where (a dotted path into the body or query) and what.
 * @example
 * import type { Problem } from "agent-warden/server";
 * const problem: Problem = { path: "events.3.id", message: "required" };
 */
export interface Problem {
  path: string;
  message: string;
  /** Policy problems: the policy, field and line they point at. */
  policyId?: string;
  field?: string;
  line?: number;
}

/**
 * Stable error codes of the HTTP API: `{ error: { code, message, problems? } }`.
 * @example
 * import type { ApiErrorCode } from "agent-warden/server";
 * const retryLater = (code: ApiErrorCode) => code === "unavailable";
 */
export type ApiErrorCode =
  | "invalid_request"
  | "invalid_policy"
  | "unauthorized"
  | "invalid_token"
  | "insufficient_scope"
  | "agent_halted"
  | "reviewer_not_allowed"
  | "not_found"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "unavailable"
  | "internal";

/**
 * An error with an HTTP status, a stable code and, for validation, the list of problems. Thrown
 * from a route, it becomes the API's error body.
 * @example
 * import { HttpError } from "agent-warden/server";
 * throw new HttpError(404, "not_found", `run "${runId}" not found`);
 */
export class HttpError extends Error {
  readonly status: number;
  readonly code: ApiErrorCode;
  readonly problems: readonly Problem[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: ApiErrorCode, message: string, options: { problems?: readonly Problem[]; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.problems = options.problems;
    this.headers = options.headers;
  }
}

/** The version the caller edited is no longer the current one (`If-Match`). */
export class PreconditionFailedError extends InvalidStateError {
  readonly current: string;

  constructor(message: string, current: string) {
    super(message);
    this.current = current;
  }
}

/** The agent (or its run) is halted: it may not ask for approvals, and its requests may not be approved. */
export class AgentHaltedError extends InvalidStateError {}

/** A core error's message without its `[warden] ` prefix, for an API body or a CLI line. */
export function bareMessage(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/^\[warden\] /, "");
}
