import type { Response } from "express";

/**
 * Why a request was refused: RFC 6750's `invalid_token` and `insufficient_scope`, and `agent_halted`.
 * @example
 * import { AgentAuthError, type AgentAuthErrorCode } from "agent-warden/express";
 * const hints: Record<AgentAuthErrorCode, string> = { invalid_token: "mint a new token", insufficient_scope: "ask for a wider scope", agent_halted: "wait for a resume" };
 * app.use((error, request, response, next) => (AgentAuthError.isInstance(error) ? response.status(error.status).json({ error: error.code, hint: hints[error.code] }) : next(error)));
 */
export type AgentAuthErrorCode = "invalid_token" | "insufficient_scope" | "agent_halted";

const marker = Symbol.for("agent-warden.express.agent-auth-error");

/**
 * An RFC 9457 problem, as `requireAgentPermission` answers a refusal (`application/problem+json`):
 * `type` identifies the refusal, `code` is the same as a short stable string, `detail` says why.
 * @example
 * import type { AgentAuthProblem } from "agent-warden/express";
 * const problem = (await response.json()) as AgentAuthProblem;
 * if (problem.code === "agent_halted") stopTheAgent(problem.detail);
 */
export interface AgentAuthProblem {
  type: string;
  title: string;
  status: 401 | 403;
  detail: string;
  code: AgentAuthErrorCode;
  /** The permission the route needs (for `insufficient_scope`). */
  scope?: string;
}

const titles: Record<AgentAuthErrorCode, string> = {
  invalid_token: "Invalid token",
  insufficient_scope: "Insufficient scope",
  agent_halted: "Agent halted",
};

/**
 * The refusal `requireAgentPermission` answers as a problem (or, with `refusals: "next"`, passes to
 * `next(error)`): `status` (401 or 403), `headers` (`WWW-Authenticate`), `code`, and `toProblem()`
 * for an app that renders it itself.
 * @example
 * import { AgentAuthError } from "agent-warden/express";
 * app.use((error, request, response, next) => {
 *   if (!AgentAuthError.isInstance(error)) return next(error);
 *   response.status(error.status).set(error.headers).type("application/problem+json").json(error.toProblem());
 * });
 */
export class AgentAuthError extends Error {
  readonly [marker] = true;
  readonly code: AgentAuthErrorCode;
  readonly status: 401 | 403;
  readonly headers: Record<string, string>;
  /** The permission the route needs (for `insufficient_scope`). */
  readonly scope: string | undefined;
  /** Safe to show the caller (http-errors convention). */
  readonly expose = true;

  constructor(code: AgentAuthErrorCode, message: string, options: { scope?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AgentAuthError";
    this.code = code;
    this.status = code === "invalid_token" ? 401 : 403;
    this.scope = options.scope;
    const attributes = [`error="${code}"`];
    if (options.scope !== undefined) attributes.push(`scope="${quotable(options.scope)}"`);
    attributes.push(`error_description="${quotable(message)}"`);
    this.headers = { "WWW-Authenticate": `Bearer ${attributes.join(", ")}` };
  }

  /** The RFC 9457 body: no stack, no cause, only what the caller may see. */
  toProblem(): AgentAuthProblem {
    return { type: `tag:agent-warden,2026:problem/${this.code}`, title: titles[this.code], status: this.status, detail: this.message, code: this.code, ...(this.scope !== undefined && { scope: this.scope }) };
  }

  /** True for any `AgentAuthError`, even one from a second copy of the package. */
  static isInstance(value: unknown): value is AgentAuthError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** RFC 6750 allows only printable ASCII without `"` and `\` inside the quoted attributes. */
function quotable(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, " ").slice(0, 300);
}

/** Answers a refusal as `application/problem+json`, with its challenge. */
export function sendProblem(response: Response, error: AgentAuthError): void {
  response.status(error.status).set(error.headers).set("Content-Type", "application/problem+json; charset=utf-8").send(JSON.stringify(error.toProblem()));
}
