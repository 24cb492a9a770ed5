import type { Decision } from "./decision.js";
import { subAgentId } from "./policy/identity.js";
import type { Money } from "./money.js";
import type { VerifiedToken } from "./tokens/token.js";
import type { RunOptions } from "./inputs.js";
import type { RunScope } from "./run-scope.js";
import type { Tokens } from "./tokens/tokens.js";

/**  What a delegated task asks of the client. */
export interface DelegationHost {
  readonly agentId: string;
  readonly tokens: Tokens;
  run<T>(metadata: unknown, fn: (run: RunScope) => T | Promise<T>, options?: RunOptions): Promise<T>;
  hasPermission(permission: string, token?: VerifiedToken): boolean;
  authorize(permission: string, money?: Partial<Money>, token?: VerifiedToken): Decision;
  ensureAuthorized(permission: string, money?: Partial<Money>, token?: VerifiedToken): void;
  currentRun(): { runId: string; traceId: string } | undefined;
}

/**
 * Work done under a delegation token, so a sub-agent can do no more than it was handed: runs act as
 * the token's agent, record the run that delegated as their parent, and every tool call is checked
 * against the token's scopes and tools before policy.
 * @example
 * import type { DelegatedTask } from "agent-warden";
 * const task: DelegatedTask = warden.beginDelegatedTask(token);
 * await task.run({ task: "book flight" }, (run) => run.tool("flights.book", { amount: 18000, currency: "EUR" }, book));
 * const child = task.attenuateForCall("seat-agent", ["flights:seat"], { ttl: "10m" });
 */
export class DelegatedTask {
  readonly token: string;
  readonly verified: VerifiedToken;
  /** The agent the token is for. */
  readonly agentId: string;
  readonly #warden: DelegationHost;

  /** @internal */
  constructor(warden: DelegationHost, token: string, verified: VerifiedToken) {
    this.#warden = warden;
    this.token = token;
    this.verified = verified;
    this.agentId = verified.authority.agentId ?? warden.agentId;
  }

  get authority(): VerifiedToken["authority"] {
    return this.verified.authority;
  }

  /** A run acting under the token; a child of the run that minted or attenuated it. */
  run<T>(metadata: unknown, fn: (run: RunScope) => T | Promise<T>, options: Omit<RunOptions, "agentId"> = {}): Promise<T> {
    const last = this.verified.chain.findLast((block) => block.runId !== undefined);
    return this.#warden.run(metadata, fn, { parentRunId: last?.runId, traceId: last?.traceId, ...options, agentId: this.agentId, delegation: { token: this.token, verified: this.verified } } as RunOptions);
  }

  /** From the token alone: does it grant `permission`? */
  hasPermission(permission: string): boolean {
    return this.#warden.hasPermission(permission, this.verified);
  }

  /** The token, then policy: a decision for `permission` (with an amount, checked against the token's cap). */
  authorize(permission: string, money?: Partial<Money>): Decision {
    return this.#warden.authorize(permission, money, this.verified);
  }

  /** Like `authorize`, but throws `PermissionDeniedError` unless allowed. */
  ensureAuthorized(permission: string, money?: Partial<Money>): void {
    this.#warden.ensureAuthorized(permission, money, this.verified);
  }

  /**
   * Mints the narrower child token to hand another agent for one call. The child acts as a
   * sub-identity of this task's agent (`travel-agent/seat-agent`), bound by every rule for it.
   */
  attenuateForCall(agentId: string, scopes: string[], options: { maxAmount?: Money | undefined; ttl?: number | string | undefined; tools?: string[] | undefined } = {}): string {
    const current = this.#warden.currentRun();
    return this.#warden.tokens.attenuate(this.token, { audience: subAgentId(this.agentId, agentId), scopes, maxAmount: options.maxAmount, ttl: options.ttl, tools: options.tools, issuer: this.agentId, runId: current?.runId, traceId: current?.traceId });
  }
}
