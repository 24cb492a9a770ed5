import { AsyncLocalStorage } from "node:async_hooks";
import { createPublicKey, type KeyObject } from "node:crypto";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { createTokenAuthority, CurrencyConverter, InvalidInputError, isHalt, tokenDenial, WardenError, type Admission, type CurrencyTable, type Jwk, type Money, type TokenBlock, type VerifiedToken, type Warden } from "agent-warden";
import { AgentAuthError, sendProblem } from "./errors.js";

/**
 * Who the request acts for, set on `request.agent` once the token is verified and the permission granted.
 * @example
 * import type { AgentPrincipal } from "agent-warden/express";
 * app.post("/refunds", requireAgentPermission("payments:refund", { warden }), (request, response) => {
 *   const agent: AgentPrincipal = request.agent!;
 *   response.json({ refundedBy: agent.agentId, token: agent.tokenId });
 * });
 */
export interface AgentPrincipal {
  /** The agent the token is for. */
  agentId: string | undefined;
  scopes: string[];
  maxAmount: Money | undefined;
  /** The token's id (its root block's): what `warden token revoke` takes. */
  tokenId: string;
  /** Every block of the delegation chain, root first: who delegated to whom, with what. */
  chain: TokenBlock[];
  /** With a Warden client: the run and tool call recording this request. */
  runId?: string | undefined;
  toolCallId?: string | undefined;
  /**
   * With a Warden client: aborts when a halt stops this request (its reason is the `HaltedError`) or the
   * client goes away. Pass it to the work the handler does; whatever the handler sends after a halt is dropped.
   */
  signal?: AbortSignal | undefined;
}

declare global {
  // Declaration merging: Express's own Request type gains `agent`.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Set by `requireAgentPermission` when the request carries a token that grants the route's permission. */
      agent?: AgentPrincipal | undefined;
    }
  }
}

/**
 * An amount the request moves: minor units, in `currency` or the token cap's currency.
 * @example
 * import { requireAgentPermission, type RequestAmount } from "agent-warden/express";
 * const amount = (request: Request): RequestAmount => ({ amount: request.body.amount, currency: request.body.currency });
 * app.post("/refunds", express.json(), requireAgentPermission("payments:refund", { warden, amount }), refund);
 */
export type RequestAmount = number | { amount: number; currency?: string | undefined } | undefined;

interface Common {
  /** The amount the request moves, checked against the token's cap (and passed to policies as `args.amount`). */
  amount?: ((request: Request) => RequestAmount) | undefined;
  /** The currency of a bare number from `amount`. Default: the token cap's. */
  currency?: string | undefined;
  /**
   * How refusals are answered. `"problem"` (default): the guard answers them itself, as RFC 9457
   * `application/problem+json` with the `WWW-Authenticate` challenge; the app's error handlers never
   * see them. `"next"`: they go to `next(error)` as an `AgentAuthError`, for the app to render.
   */
  refusals?: "problem" | "next" | undefined;
}

/**
 * Verifies with the organization's Warden client: its key, revocations and halts; the request is
 * decided (token, then policies) and recorded as a run under the token, with the permission as the tool.
 * @example
 * import { requireAgentPermission } from "agent-warden/express";
 * app.post("/refunds", express.json(), requireAgentPermission("payments:refund", { warden, amount: (request) => request.body.amount }), refund);
 */
export interface WardenVerifier extends Common {
  warden: Warden;
  publicKey?: undefined;
}

/**
 * Verifies offline with only the organization's public key, for a service that holds no secrets.
 * Add `warden` (a client of the service's own) to also record each request and apply its policies.
 * @example
 * import { requireAgentPermission } from "agent-warden/express";
 * app.get("/balances", requireAgentPermission("payments:read", { publicKey: jwk, isRevoked: (id) => revoked.has(id) }), balances);
 */
export interface PublicKeyVerifier extends Common {
  publicKey: Jwk | KeyObject;
  /** Revocation list lookup, called with every block id of the chain. */
  isRevoked?: ((id: string) => boolean) | undefined;
  /** Halt lookup, called with every agent the chain is addressed to and the token's issue time. */
  isHalted?: ((info: { agentId: string | undefined; issuedAt: number }) => boolean) | undefined;
  /** Exchange rates for caps and amounts in different currencies. */
  currencies?: CurrencyTable | undefined;
  warden?: Warden | undefined;
}

/**
 * How `requireAgentPermission` verifies tokens: with the organization's Warden client, or offline with its public key.
 * @example
 * import { requireAgentPermission, type RequireAgentPermissionOptions } from "agent-warden/express";
 * const options: RequireAgentPermissionOptions = process.env.WARDEN_PUBLIC_KEY ? { publicKey: JSON.parse(process.env.WARDEN_PUBLIC_KEY) } : { warden };
 * app.post("/refunds", requireAgentPermission("payments:refund", options), refund);
 */
export type RequireAgentPermissionOptions = WardenVerifier | PublicKeyVerifier;

/**
 * Guards a route with a Warden delegation token: `Authorization: Bearer <token>` is verified, the
 * token must grant `permission` and, with `amount`, cover the amount. Refusals are answered as RFC 9457
 * problems (`application/problem+json`, or `next(error)` with `refusals: "next"`): 401 `invalid_token`
 * (missing, tampered, expired, revoked), 403 `insufficient_scope`, 403 `agent_halted`. On success
 * `request.agent` says who is acting.
 * @example
 * import { requireAgentPermission } from "agent-warden/express";
 * app.post("/refunds", express.json(), requireAgentPermission("payments:refund", { publicKey: jwk, amount: (request) => request.body.amount }), refund);
 */
export function requireAgentPermission(permission: string, options: RequireAgentPermissionOptions): RequestHandler {
  if (typeof permission !== "string" || permission === "") throw new InvalidInputError("requireAgentPermission needs a permission, e.g. \"payments:refund\"");
  const offline = options.publicKey === undefined ? undefined : offlineVerifier(options);
  const problems = (options.refusals ?? "problem") === "problem";
  if (!problems && options.refusals !== "next") throw new InvalidInputError(`requireAgentPermission: refusals must be "problem" or "next", got ${JSON.stringify(options.refusals)}`);
  return async function requireAgentPermissionMiddleware(request: Request, response: Response, next: NextFunction): Promise<void> {
    const exchange: Exchange = { permission, request, response, next, refuse: (error) => refuse(error, response, next, problems) };
    let token: string;
    let money: Partial<Money> | undefined;
    try {
      token = bearerToken(request);
      money = amountOf(options, request);
    } catch (error) {
      exchange.refuse(error);
      return;
    }
    if (offline === undefined) {
      governWithWarden(options.warden!, token, money, exchange);
      return;
    }
    let verified: VerifiedToken;
    try {
      verified = offline.verify(token);
      checkAuthority(permission, verified, money, offline.converter);
    } catch (error) {
      exchange.refuse(refusalOf(error, permission));
      return;
    }
    if (options.warden === undefined) {
      request.agent = principal(verified);
      next();
      return;
    }
    const agentId = verified.authority.agentId;
    const warden = options.warden;
    record(warden, (answered) => warden.run({ http: describe(request), tokenId: verified.id }, (run) => gate(warden, verified, money, answered, run.runId), { agentId }), exchange);
  };
}

/** One guarded request: what it asks for, and how a refusal of it is answered. */
interface Exchange {
  permission: string;
  request: Request;
  response: Response;
  next: NextFunction;
  /** Answers an `AgentAuthError` (as a problem, or through `next`); anything else goes to `next`. */
  refuse: (error: unknown) => void;
}

/** A refusal as a problem the guard sends itself, or passed on; the app's own errors always go to `next`. */
function refuse(error: unknown, response: Response, next: NextFunction, problems: boolean): void {
  if (!problems || !AgentAuthError.isInstance(error)) {
    next(error);
    return;
  }
  if (response.headersSent) response.destroy(error);
  else sendProblem(response, error);
}

/** The organization's Warden verifies (a token a halt invalidated is refused and recorded there); the request becomes a run under the token. */
function governWithWarden(warden: Warden, token: string, money: Partial<Money> | undefined, exchange: Exchange): void {
  let task;
  try {
    task = warden.beginDelegatedTask(token);
  } catch (error) {
    exchange.refuse(refusalOf(error, exchange.permission));
    return;
  }
  record(warden, (answered) => task.run({ http: describe(exchange.request) }, (run) => gate(warden, task.verified, money, answered, run.runId)), exchange);
}

/**
 * Runs the recorded part of a request. What it throws before the request was passed on or refused (a
 * halt refusing the run) is refused; after that, recording fails open (to the client's error sink) and the response stands.
 */
function record(warden: Warden, work: (answered: Exchange) => Promise<unknown>, exchange: Exchange): void {
  let answered = false;
  const once: Exchange = {
    ...exchange,
    next: (error?: unknown) => {
      answered = true;
      exchange.next(error);
    },
    refuse: (error) => {
      answered = true;
      exchange.refuse(error);
    },
  };
  work(once).catch((error: unknown) => {
    if (!answered) exchange.refuse(refusalOf(error, exchange.permission));
    else warden.reportError(error, "express");
  });
}

/**
 * Decides and records the request as a tool call named by the permission, inside the current run;
 * passes it on when allowed (after an approval, if policy asks) and records the response status.
 */
async function gate(warden: Warden, verified: VerifiedToken, money: Partial<Money> | undefined, exchange: Exchange, runId: string): Promise<void> {
  const { permission, request, response, next } = exchange;
  const gone = new AbortController();
  const ended = new Promise<{ status: number; finished: boolean }>((resolve) => {
    response.once("finish", () => resolve({ status: response.statusCode, finished: true }));
    response.once("close", () => {
      if (!response.writableFinished) gone.abort(new Error("the client closed the connection"));
      resolve({ status: response.statusCode, finished: response.writableFinished });
    });
  });
  const handle = warden.beginToolCall({
    tool: permission,
    permission,
    args: { ...describe(request), ...(money?.amount !== undefined && { amount: money.amount }), ...(money?.currency !== undefined && { currency: money.currency }) },
    runId,
    signal: gone.signal,
  });
  // What else the approval wait throws (the client closing the connection) is passed on as it is.
  let admission: Admission;
  try {
    admission = await handle.admit();
  } catch (error) {
    next(error);
    await ended;
    return;
  }
  if (!admission.ok) {
    exchange.refuse(httpRefusal(admission, permission));
    await ended;
    return;
  }
  request.agent = { ...principal(verified), runId, toolCallId: handle.toolCallId, signal: handle.signal };
  const stop = () => {
    const outcome = handle.outcome;
    if (outcome.outcome === "halted" && !response.writableEnded) interruptByHalt(outcome, exchange);
  };
  handle.signal.addEventListener("abort", stop, { once: true });
  // The handler, and everything it goes on to do, runs in this context: what it sends after a halt is told apart by it.
  handlerContext.run(true, next);
  const { status, finished } = await ended;
  handle.signal.removeEventListener("abort", stop);
  // Nothing a halt interrupted is recorded as a success, whatever the handler went on to do.
  const outcome = handle.outcome;
  if (outcome.outcome === "halted") handle.fail(outcome.error);
  else if (!finished) handle.fail(new Error("the client closed the connection before the response was sent"));
  // A server error is the handler failing; any other status is its answer.
  else if (status >= 500) handle.fail(new Error(`the handler answered ${status}`));
  else handle.complete({ status });
}

/** True inside a guarded route's handler (and what it started), outside the guard's own answers. */
const handlerContext = new AsyncLocalStorage<boolean>();

/**
 * A halt landed while the handler was running. Before the response has started, the request is answered
 * 403 `agent_halted` like a halt before the handler; once it has started, the status is gone, so the
 * response is cut off. Either way the handler's later writes are dropped.
 */
function interruptByHalt(halted: Admission & { outcome: "halted" }, exchange: Exchange): void {
  const { response } = exchange;
  dropHandlerWrites(response);
  if (response.headersSent) {
    response.destroy(halted.error);
    return;
  }
  handlerContext.exit(() => exchange.refuse(httpRefusal(halted, exchange.permission)));
}

/** Turns the response's writes into no-ops when the handler makes them; the guard's own answer goes through. */
function dropHandlerWrites(response: Response): void {
  const inHandler = () => handlerContext.getStore() === true;
  const { setHeader, writeHead, write, end } = response;
  response.setHeader = function (this: Response, ...args: Parameters<Response["setHeader"]>) {
    return inHandler() ? this : setHeader.apply(this, args);
  } as Response["setHeader"];
  response.writeHead = function (this: Response, ...args: unknown[]) {
    return inHandler() ? this : (writeHead as (...a: unknown[]) => Response).apply(this, args);
  } as Response["writeHead"];
  response.write = function (this: Response, ...args: unknown[]) {
    return inHandler() ? true : (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Response["write"];
  response.end = function (this: Response, ...args: unknown[]) {
    return inHandler() ? this : (end as (...a: unknown[]) => Response).apply(this, args);
  } as Response["end"];
}

/**
 * The core's refusal as HTTP: a halt (or a token a halt invalidated) is 403 `agent_halted`, a token that
 * no longer verifies 401 `invalid_token`, any other refusal (scope, cap, policy, limit, budget, reviewer) 403 `insufficient_scope`.
 */
function httpRefusal(admission: Admission & { ok: false }, permission: string): AgentAuthError {
  if (admission.outcome === "halted") return new AgentAuthError("agent_halted", admission.reason, { cause: admission.error });
  if (admission.cause === "token" && admission.error.code === "token_invalid") return new AgentAuthError("invalid_token", admission.reason, { cause: admission.error });
  return new AgentAuthError("insufficient_scope", admission.reason, { scope: permission, cause: admission.error });
}

/** Maps what Warden threw before a call was begun (verifying the token, opening the run) to the HTTP refusal. */
function refusalOf(error: unknown, permission: string): unknown {
  if (AgentAuthError.isInstance(error) || !WardenError.isInstance(error)) return error;
  if (isHalt(error)) return new AgentAuthError("agent_halted", error.message, { cause: error });
  if (error.code === "token_invalid") return new AgentAuthError("invalid_token", error.message, { cause: error });
  if (error.code === "approval_rejected" || error.code === "approval_timeout" || error.code === "approval_invalid" || error.code === "tool_blocked" || error.code === "permission_denied") {
    return new AgentAuthError("insufficient_scope", error.message, { scope: permission, cause: error });
  }
  return error;
}

function bearerToken(request: Request): string {
  const header = request.headers.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new AgentAuthError("invalid_token", header === undefined ? "missing bearer token" : "the Authorization header is not a bearer token");
  return match[1]!;
}

function amountOf(options: RequireAgentPermissionOptions, request: Request): Partial<Money> | undefined {
  const value = options.amount?.(request);
  if (value === undefined) return undefined;
  const money = typeof value === "number" ? { amount: value, currency: options.currency } : { amount: value.amount, currency: value.currency ?? options.currency };
  return money.currency === undefined ? { amount: money.amount } : (money as Money);
}

/** Offline: the token alone must grant the permission and cover the amount (the core's one rule for tokens). */
function checkAuthority(permission: string, verified: VerifiedToken, money: Partial<Money> | undefined, converter: CurrencyConverter): void {
  const denial = tokenDenial(verified, { permission, amount: money?.amount, currency: money?.currency }, converter);
  if (denial !== undefined) throw new AgentAuthError("insufficient_scope", denial, { scope: permission });
}

/**
 * Verifies offline against the public key, parsed once. A token seen before costs no signature
 * checks (the core keeps verified signatures); expiry, revocation and halts are checked every time.
 */
function offlineVerifier(options: PublicKeyVerifier): { verify: (token: string) => VerifiedToken; converter: CurrencyConverter } {
  const converter = new CurrencyConverter(options.currencies ?? {});
  const rootPublicKey = isKeyObject(options.publicKey) ? options.publicKey : createPublicKey({ key: options.publicKey as Extract<Parameters<typeof createPublicKey>[0], { format: "jwk" }>["key"], format: "jwk" });
  const authority = createTokenAuthority({ rootPublicKey, isRevoked: options.isRevoked, isHalted: options.isHalted, currency: converter });
  return { verify: (token) => authority.verify(token), converter };
}

function isKeyObject(key: Jwk | KeyObject): key is KeyObject {
  return typeof (key as KeyObject).export === "function";
}

function principal(verified: VerifiedToken): AgentPrincipal {
  const { authority } = verified;
  return { agentId: authority.agentId, scopes: authority.scopes, maxAmount: authority.maxAmount, tokenId: verified.id, chain: verified.chain };
}

function describe(request: Request): { method: string; path: string } {
  return { method: request.method, path: request.originalUrl.split("?")[0]! };
}
