import { InvalidStateError } from "../errors.js";

/** One problem with a request: where (a dotted path into the body or query) and what. */
export interface Problem {
  path: string;
  message: string;
  /** Policy problems: the policy, field and line they point at. */
  policyId?: string;
  field?: string;
  line?: number;
}

/** Stable error codes of the HTTP API. */
export type ApiErrorCode =
  | "invalid_request"
  | "invalid_policy"
  | "unauthorized"
  | "invalid_token"
  | "insufficient_scope"
  | "not_found"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  | "unsupported_media_type"
  | "internal";

/** An error with an HTTP status, a stable code and, for validation, the list of problems. */
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
