import { dirname, join, resolve } from "node:path";
import { Approvals } from "./approvals/approvals.js";
import { optionsFromEnv, parseOptions, type ResolvedOptions, type WardenOptions } from "./config.js";
import type { Decision } from "./decision.js";
import { ActionType, ApprovalStatus, EventType, RunStatus, ToolCallStatus, type AgentContext } from "./enums.js";
import { ApprovalRejectedError, ApprovalTimeoutError, HaltedError, InvalidInputError, InvalidStateError, NotFoundError, ToolBlockedError, WardenError } from "./errors.js";
import { EventBus, type EventListener, type WardenEvent } from "./events.js";
import { describeScope, HaltState, haltMatches, type HaltRecord, type HaltTarget } from "./halt/halt.js";
import { raceAbort } from "./internal/abort.js";
import { canonicalJson } from "./internal/canonical.js";
import { newId } from "./internal/ids.js";
import { loadOrCreateKey, type SigningKey } from "./ledger/keys.js";
import { Ledger } from "./ledger/ledger.js";
import { CurrencyConverter } from "./money.js";
import { classifyTool } from "./policy/classify.js";
import { PolicyEngine, strictness, type PolicyInputCall, type PolicyMatch } from "./policy/engine.js";
import { BudgetTracker, RateLimiter } from "./policy/limits.js";
import { loadPolicyFile, parsePolicySet } from "./policy/load.js";
import type { PolicySet, PolicySetInput } from "./policy/schema.js";
import { toApprovalRecord, toRunSummary, toStepRecord, toToolCallRecord, type ApprovalRecord, type ApprovalRow, type LlmUsage, type RunRecord, type RunRow, type RunSummary, type StepRow, type ToolCallRow } from "./records.js";
import { createRedactor, type Redactor } from "./redaction/redact.js";
import { createRemoteLink, type RemoteLink } from "./remote/remote.js";
import { scopeStorage, type Scope } from "./scope.js";
import { SqliteStore, type QueuedWrite } from "./store/sqlite-store.js";
import { RunScope } from "./run-scope.js";
import { ToolCallHandle, type ActiveToolCall, type ToolContext, type WardenInternals } from "./tool-call.js";
import { DelegatedTask } from "./delegation.js";
import { PermissionDeniedError, TokenError } from "./errors.js";
import { abortedWait, isHalt, refusalOf } from "./admission.js";
import type { Money } from "./money.js";
import { hasPermission as tokenHasPermission, tokenDenial, toolAllowed, type VerifiedToken } from "./tokens/token.js";
import { stillValid, Tokens } from "./tokens/tokens.js";

/**
 * A call to decide on with `warden.check`, for asking before acting without recording anything.
 * Everything but `tool` is optional.
 * @example
 * import type { CheckInput } from "agent-warden";
 * const call: CheckInput = { tool: "payments.refund", args: { amount: 2800, currency: "EUR" } };
 * if (warden.check(call).action === "block") hideRefundButton();
 */
export interface CheckInput {
  tool: string;
  args?: unknown;
  runId?: string | undefined;
  /** Defaults to the run's agent, else the client's. */
  agentId?: string | undefined;
  actionHint?: ActionType | undefined;
  metadata?: Record<string, unknown> | undefined;
  environment?: string | undefined;
  /**
   * The permission a delegation token must grant for this call. Default: the tool name with dots
   * read as colons (`flights.book` needs `flights:book` or `flights:*`).
   */
  permission?: string | undefined;
}

/**
 * A tool call to decide on and record with `warden.beginToolCall`, as a framework adapter sees it.
 * @example
 * import type { ToolCallInit } from "agent-warden";
 * const init: ToolCallInit = { tool: "search", args: { query }, externalId: toolCall.id, signal };
 * const handle = warden.beginToolCall(init);
 */
export interface ToolCallInit extends CheckInput {
  /** The framework's own id for the call, so records line up with its traces and a paused call can be resumed by it. */
  externalId?: string | undefined;
  stepId?: string | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  /** The framework's abort signal; merged with the halt signal. */
  signal?: AbortSignal | undefined;
  /**
   * Records the decision without enforcing it, as if every policy were in shadow mode: a would-be
   * block or approval is recorded as `warn` with a reason naming it. Halts still block.
   */
  shadow?: boolean | undefined;
}

/**
 * Options of `run.tool`, `warden.guard` and `trackToolCall`: what policies and reviewers learn about
 * a call beyond its name and arguments.
 * @example
 * import type { ToolOptions } from "agent-warden";
 * const options: ToolOptions = { actionHint: "deploy", reason: "release 1.4 after green CI" };
 * await run.tool("ship", { env: "prod" }, () => ci.ship("prod"), options);
 */
export interface ToolOptions {
  actionHint?: ActionType | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  stepId?: string | undefined;
  metadata?: Record<string, unknown> | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Options of `warden.run` and `beginRun`: the run's id, why it runs, and where it sits in a tree of
 * sub-agents.
 * @example
 * import type { RunOptions } from "agent-warden";
 * const options: RunOptions = { agentId: "research-subagent", reason: "summarise the sources" };
 * await warden.run({ task: "research" }, async (run) => research(run), options);
 */
export interface RunOptions {
  runId?: string | undefined;
  reason?: string | undefined;
  agentContext?: AgentContext | undefined;
  /** Makes this run a child in another run's tree (a sub-agent). Defaults to the enclosing run. */
  parentRunId?: string | undefined;
  traceId?: string | undefined;
  /** Acts as another agent (a sub-agent sharing this client). */
  agentId?: string | undefined;
}

/** @internal */
export interface ActiveRun {
  runId: string;
  agentId: string;
  traceId: string;
  implicit: boolean;
  /** The delegation token the run acts under. */
  token: VerifiedToken | undefined;
  /** The run's agent context (redacted): tool calls and approval requests inherit what they do not set. */
  agentContext?: AgentContext | undefined;
  /** The queued insert of the run's row; patched in place if the run ends before it commits. */
  row?: QueuedWrite | undefined;
  /** Taken over from the store under a token this process does not hold: its calls are refused. */
  tokenMissing?: string | undefined;
}

interface Delegation {
  token: string;
  verified: VerifiedToken;
}

/** What a token invalidated by a halt says, as `stillValid` words it. */
const TOKEN_HALTED = "a halt since this token was issued invalidates it";

// Column order matters: #finishToolCall patches a queued insert by index (status 9, output 11, error 12, blocked_reason 13, ended_at 18, duration_ms 19).
const TOOL_CALL_INSERT =
  "INSERT INTO tool_calls (id, external_id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, output, error, blocked_reason, decision, agent_context, reason, started_at, ended_at, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

// Column order matters: closeRun patches a queued insert by index (status 5, ended_at 11, error 12, after org).
const runColumns = "id, agent_id, trace_id, parent_run_id, status, metadata, reason, agent_context, token_id, started_at, ended_at, error";

/**
 * The Warden client: decides on every tool call before it runs, waits for humans where policy
 * asks, records everything in a hash-chained ledger, and stops on a halt.
 * @example
 * import { Warden } from "agent-warden";
 * const warden = new Warden({ agentId: "billing-agent", policies: "./warden.yaml" });
 * await warden.run({ task: "refund order 1042" }, async (run) => {
 *   await run.tool("refund", { amount: 2800, currency: "EUR" }, () => payments.refund(1042));
 * });
 */
export class Warden {
  readonly agentId: string;
  readonly group: string | undefined;
  readonly organization: string;
  readonly environment: string | undefined;
  /** Approval requests: list, approve, reject. */
  readonly approvals: Approvals;
  /** The audit ledger: verify, export, entries. */
  readonly ledger: Ledger;
  /** Delegation tokens: mint, attenuate, seal, verify, revoke. */
  readonly tokens: Tokens;

  readonly #options: ResolvedOptions;
  readonly #store: SqliteStore;
  readonly #bus: EventBus;
  readonly #redact: Redactor;
  readonly #halts: HaltState;
  readonly #ledgerKey: SigningKey;
  readonly #converter: CurrencyConverter;
  readonly #runs = new Map<string, ActiveRun>();
  readonly #calls = new Map<string, ActiveToolCall>();
  /** In-flight calls by the framework's id, for resuming without a store read. */
  readonly #byExternalId = new Map<string, string>();
  /** Calls refused (blocked, rejected) by their framework id, for the hooks that follow; bounded. */
  readonly #refusedByExternalId = new Map<string, ActiveToolCall>();
  readonly #actionTypes = new Map<string, ActionType>();
  readonly #groups = new Map<string, string | undefined>();
  readonly #internals: WardenInternals;
  /** Remote mode: the control plane link; undefined in embedded mode. */
  readonly #remote: RemoteLink | undefined;
  #engine!: PolicyEngine;
  /** The constructor's currency table with the policy set's on top: caps and budgets convert with it. */
  #policyConverter!: CurrencyConverter;
  #limits!: RateLimiter;
  #budgets!: BudgetTracker;
  #signal = new AbortController();
  #haltPoller: NodeJS.Timeout | undefined;
  #reportedErrors = new Set<string>();
  #clientTokenText: string | undefined;
  #clientTokenVerified: VerifiedToken | undefined;
  #closed = false;

  constructor(options: WardenOptions) {
    const resolved = parseOptions(options);
    this.#options = resolved;
    this.agentId = resolved.agentId;
    this.group = resolved.group;
    this.organization = resolved.organization;
    this.environment = resolved.environment;
    this.#converter = new CurrencyConverter(resolved.currencies ?? {});
    this.#setPolicies(resolved.policies ?? { version: 1, default: "allow", policies: [] });
    this.#redact = createRedactor(resolved.redaction ?? {});
    this.#bus = new EventBus((error) => this.#reportError(error));
    const keyDir = resolved.store === ":memory:" ? undefined : join(dirname(resolve(resolved.store)), "keys");
    this.#ledgerKey = loadOrCreateKey(keyDir && join(keyDir, "ledger.pem"), resolved.ledger.signingKey);
    this.#store = new SqliteStore({
      path: resolved.store,
      signer: this.#ledgerKey,
      checkpointEvery: resolved.ledger.checkpointEvery,
      checkpointIntervalMs: resolved.ledger.checkpointInterval,
      onError: (error) => this.#reportError(error),
    });
    this.ledger = new Ledger(this.#store, this.#ledgerKey.publicKey);
    this.#halts = new HaltState(this.#store, this.organization);
    this.approvals = new Approvals({
      store: this.#store,
      org: this.organization,
      record: (type, ids, data, actor) => this.#record(type, ids.agentId, ids.runId, undefined, ids.toolCallId, data, actor),
      onRequest: resolved.onApprovalRequest,
      onError: (error) => this.#reportError(error),
      pollIntervalMs: resolved.approvalPollInterval,
    });
    this.tokens = new Tokens({
      store: this.#store,
      org: this.organization,
      // Remote mode: the control plane holds the organization key; its public half arrives by sync.
      key: resolved.url !== undefined && resolved.tokens.signingKey === undefined ? undefined : loadOrCreateKey(keyDir && join(keyDir, "organization.pem"), resolved.tokens.signingKey),
      converter: this.#converter,
      isHalted: (info) => this.#halts.haltedSince(info.agentId, info.agentId === undefined ? undefined : this.#groupOf(info.agentId), info.issuedAt),
      onRevoke: (tokenId, reason, actor) => this.#record(EventType.TOKEN_REVOKED, null, null, undefined, undefined, { tokenId, reason }, actor ?? null),
    });
    this.#clientTokenText = resolved.token;
    // Embedded mode knows the organization key now, so a bad token fails at startup; remote mode learns it by sync.
    if (resolved.token !== undefined && resolved.url === undefined) this.#clientToken();
    this.#store.write("INSERT INTO agents (org, id, grp, created_at) VALUES (?,?,?,?) ON CONFLICT(org, id) DO UPDATE SET grp = excluded.grp", [this.organization, this.agentId, this.group ?? null, Date.now()]);
    this.#groups.set(this.agentId, this.group);
    this.#internals = {
      blockError: (decision, toolName, toolCallId) => this.#blockError(decision, toolName, toolCallId),
      waitForApproval: (toolCallId) => this.#waitForApproval(toolCallId),
      link: (toolCallId, signal) => {
        const state = this.#calls.get(toolCallId);
        if (state) this.#link(state, signal);
      },
      finishToolCall: (toolCallId, status, output, error) => this.#finishToolCall(toolCallId, status, output, error),
      stop: (toolCallId, error) => {
        if (this.#calls.get(toolCallId)?.status === ToolCallStatus.PENDING) this.#finishToolCall(toolCallId, ToolCallStatus.FAILED, undefined, error);
      },
      approvedReason: (toolCallId) => {
        const approvalId = this.#calls.get(toolCallId)?.approvalId;
        const approval = approvalId === undefined ? undefined : this.approvals.get(approvalId);
        return approval?.status === ApprovalStatus.APPROVED ? `approved${approval.reviewer ? ` by ${approval.reviewer}` : ""}` : undefined;
      },
    };
    this.#remote = createRemoteLink(resolved, { agentId: this.agentId, group: this.group }, {
      applyPolicies: (policies) => this.#setPolicies(policies as PolicySetInput),
      applyHalts: (halts) => {
        if (this.#halts.mirror(halts)) this.#applyHalts();
      },
      applyApproval: (record) => this.approvals.applyRemote(record),
      applyOrganizationKey: (jwk) => this.tokens.useOrganizationKey(jwk),
      applyRevocation: (tokenId, reason) => this.tokens.noteRevoked(tokenId, reason),
      ledger: this.ledger,
      reportError: (error) => this.#reportError(error),
    });
    this.#applyHalts();
    if (!this.#store.isMemory) {
      this.#haltPoller = setInterval(() => this.#pollHalts(), resolved.halt.pollInterval);
      this.#haltPoller.unref();
    }
  }

  /**
   * A client configured from `WARDEN_AGENT_ID`, `WARDEN_POLICY_FILE`, `WARDEN_STORE`, `WARDEN_ENVIRONMENT`,
   * `WARDEN_GROUP` and `WARDEN_ORGANIZATION`, with `overrides` on top.
   */
  static fromEnv(overrides: Partial<WardenOptions> = {}, env: NodeJS.ProcessEnv = process.env): Warden {
    return new Warden({ ...optionsFromEnv(env), ...overrides } as WardenOptions);
  }

  /** The policy set in force. */
  get policies(): PolicySet {
    return this.#engine.set;
  }

  /** Aborts when this client's agent, its group or the organization is halted; renewed on resume. */
  get signal(): AbortSignal {
    return this.#signal.signal;
  }

  /** Halts currently in force for this organization. */
  get activeHalts(): readonly HaltRecord[] {
    return this.#halts.active;
  }

  /** Replaces the policy set (a file path or an object); the next decision uses it. */
  setPolicies(policies: string | PolicySetInput): void {
    this.#setPolicies(policies);
  }

  /** Subscribes to one event type, or `"*"` for all. Returns the unsubscribe function. Listeners that throw are reported, never propagated. */
  on(type: EventType | "*", listener: EventListener): () => void {
    return this.#bus.on(type, listener);
  }

  // ── decisions ─────────────────────────────────────────────────────────────────────────────

  /**
   * Decides on a call without recording it: halt state, then policies (strictest wins), then rate
   * limits and budgets. The single decision every adapter uses.
   */
  check(input: CheckInput): Decision {
    const run = input.runId === undefined ? undefined : this.#runs.get(input.runId);
    const call = this.#policyInput(input, input.agentId ?? run?.agentId ?? this.agentId);
    return this.#decide(call, input.runId ?? "", false, input.permission).decision;
  }

  #policyInput(input: CheckInput, agentId: string): PolicyInputCall {
    return {
      tool: input.tool,
      action: input.actionHint ?? this.#actionTypeOf(input.tool),
      agent: agentId,
      environment: input.environment ?? this.environment,
      args: input.args ?? {},
      metadata: input.metadata,
    };
  }

  #decide(call: PolicyInputCall, runId: string, consume: boolean, permission?: string): { decision: Decision; charges: Array<[string, number]> } {
    const halt = this.#haltFor(call.agent, runId || undefined);
    if (halt !== undefined) return { decision: this.#haltDecision(call, halt), charges: [] };
    let token: VerifiedToken | undefined;
    try {
      // A run this process did not open (adopted, or unknown) still acts under the client's token.
      const run = runId ? this.#runs.get(runId) : undefined;
      if (run?.tokenMissing !== undefined) {
        return { decision: { action: "block", cause: "token", reason: `run "${run.runId}" acts under delegation token ${run.tokenMissing}, which this process does not hold`, matches: [], actionType: call.action, complete: false }, charges: [] };
      }
      token = run?.token ?? (run === undefined || run.agentId === this.agentId ? this.#clientToken() : undefined);
    } catch (error) {
      // Fail closed: a client token that does not verify blocks every call.
      return { decision: { action: "block", cause: "token", halted: isHalt(error) || undefined, reason: (error as Error).message, matches: [], actionType: call.action, complete: false }, charges: [] };
    }
    if (token !== undefined) {
      const denial = this.#tokenDenial(token, call, permission);
      // A token a halt of a delegating agent invalidated is a halt for the caller: it stops the run.
      if (denial !== undefined) return { decision: { action: "block", cause: "token", halted: denial.halted || undefined, reason: denial.reason, matches: [], actionType: call.action, complete: true }, charges: [] };
    }
    let evaluation;
    try {
      evaluation = this.#engine.evaluate(call);
    } catch (error) {
      // Enforcement fails closed: a condition that throws blocks the call.
      this.#reportError(error);
      return { decision: { action: "block", cause: "policy", reason: `policy evaluation failed: ${(error as Error).message}`, matches: [], actionType: call.action, complete: false }, charges: [] };
    }
    let action = evaluation.action;
    let decidedBy = evaluation.decidedBy;
    let matches = evaluation.matches;
    let charges: Array<[string, number]> = [];
    if (action !== "block" && (this.#limits.size > 0 || this.#budgets.size > 0)) {
      const now = Date.now();
      const extra: PolicyMatch[] = this.#limits.size > 0 ? this.#limits.check(call, { runId }, now) : [];
      if (this.#budgets.size > 0) {
        const spend = this.#budgets.checkSpend(call, runId);
        extra.push(...spend.matches);
        charges = spend.charges;
      }
      for (const match of extra) {
        if (decidedBy === undefined || strictness[match.action] > strictness[action]) {
          action = match.action;
          decidedBy = match;
        }
      }
      if (extra.length > 0) matches = [...matches, ...extra];
      // A call that waits for approval counts now: once approved it runs without another check, so
      // approvals granted together can never add up to more than the limit or budget allows.
      if (consume && action !== "block") {
        this.#limits.record(call, { runId }, now);
        this.#budgets.commitSpend(charges);
      }
    }
    const base = { reason: decidedBy?.reason ?? (action === "allow" ? "allowed" : `default action: ${action}`), matches, policyId: decidedBy?.policyId, severity: decidedBy?.severity, actionType: call.action, complete: true };
    const decision: Decision =
      action === "require_approval"
        ? { ...base, action, timeoutMs: decidedBy?.timeoutMs ?? this.#options.approvalTimeout }
        : action === "block"
          ? { ...base, action, cause: decidedBy?.kind ?? "policy" }
          : ({ ...base, action } as Decision);
    return { decision, charges };
  }

  #haltFor(agentId: string, runId: string | undefined): HaltRecord | "unknown" | undefined {
    if (this.#remote?.haltStateUnknown() && this.#options.halt.whenUnknown === "block") return "unknown";
    if (!this.#store.isMemory && Date.now() - this.#halts.syncedAt > this.#options.halt.staleAfter) {
      try {
        if (this.#halts.refresh()) this.#applyHalts();
      } catch (error) {
        this.#reportError(error);
        return this.#options.halt.whenUnknown === "block" ? "unknown" : undefined;
      }
    }
    return this.#halts.find({ agentId, group: this.#groupOf(agentId), runId });
  }

  #haltDecision(call: PolicyInputCall, halt: HaltRecord | "unknown"): Decision {
    const reason = halt === "unknown" ? "halt state unknown (store unreachable beyond the staleness bound)" : `halted (${describeScope(halt)}): ${halt.reason}`;
    return { action: "block", halted: true, cause: "halt", reason, matches: [], actionType: call.action, complete: halt !== "unknown" };
  }

  // ── tool calls ────────────────────────────────────────────────────────────────────────────

  /**
   * Decides on a tool call and records it (`pending` once allowed, `blocked`, `awaiting_approval`),
   * without waiting. Adapters finish it with `complete`/`fail` on the returned handle.
   */
  beginToolCall(init: ToolCallInit): ToolCallHandle {
    this.#assertOpen();
    if (typeof init.tool !== "string" || init.tool.length === 0) throw new InvalidInputError("a tool call needs a tool name");
    if (init.externalId !== undefined) {
      const decided = this.#decidedCall(init);
      if (decided !== undefined) return decided;
    }
    const run = this.#resolveRun(init.runId, init.agentId);
    const agentId = init.agentId ?? run.agentId;
    const toolCallId = newId("tc");
    const call = this.#policyInput(init, agentId);
    const decided = this.#decide(call, run.runId, true, init.permission).decision;
    const decision = init.shadow ? shadowed(decided) : decided;
    const stepId = init.stepId ?? this.#currentScope()?.stepId;
    const agentContext = init.agentContext === undefined ? run.agentContext : (this.#safeRedact({ ...run.agentContext, ...init.agentContext }) as AgentContext);
    const input = this.#safeRedact(init.args ?? {});
    // Free text too: an agent's stated reason can quote a secret.
    const reason = init.reason === undefined ? undefined : (this.#safeRedact(init.reason) as string);
    const status = decision.action === "block" ? ToolCallStatus.BLOCKED : decision.action === "require_approval" ? ToolCallStatus.AWAITING_APPROVAL : ToolCallStatus.PENDING;
    const controller = new AbortController();
    const state: ActiveToolCall = { toolCallId, externalId: init.externalId, runId: run.runId, stepId, agentId, toolName: init.tool, status, startedAt: performance.now(), controller, cleanup: undefined, approvalId: undefined, decision };
    const now = Date.now();
    const blockedReason = decision.action === "block" ? decision.reason : null;
    state.implicitRun = run.implicit || undefined;
    state.row = this.#store.write(
      TOOL_CALL_INSERT,
      [toolCallId, init.externalId ?? null, run.runId, stepId ?? null, this.organization, agentId, "tool", init.tool, call.action, status, JSON.stringify(input ?? null), null, null, blockedReason, JSON.stringify(decision), agentContext ? JSON.stringify(agentContext) : null, reason ?? null, now, null, null],
    );
    this.#record(EventType.TOOL_CALLED, agentId, run.runId, stepId, toolCallId, { toolName: init.tool, actionType: call.action, input, decision: decision.action, reason, agentContext });
    if (decision.matches.length > 0) {
      this.#record(EventType.POLICY_MATCHED, agentId, run.runId, stepId, toolCallId, { toolName: init.tool, decision: decision.action, policyId: decision.policyId, matches: decision.matches });
    }
    // A risk: a warning, a policy with a severity, or a shadow policy that would have acted.
    const flagged = decision.matches.length === 0 ? [] : decision.matches.filter((m) => m.action !== "allow" || m.severity !== undefined);
    if (flagged.length > 0 && (decision.action === "warn" || flagged.some((m) => m.severity !== undefined || m.mode === "shadow"))) {
      this.#record(EventType.RISK_DETECTED, agentId, run.runId, stepId, toolCallId, { toolName: init.tool, decision: decision.action, severity: decision.severity ?? flagged.find((m) => m.severity)?.severity ?? "medium", policies: flagged.map((m) => ({ policyId: m.policyId, action: m.action, mode: m.mode, severity: m.severity })) });
    }
    let approval: ApprovalRecord | undefined;
    if (decision.action === "block") {
      this.#record(EventType.TOOL_BLOCKED, agentId, run.runId, stepId, toolCallId, { toolName: init.tool, reason: decision.reason, policyId: decision.policyId, halted: decision.halted === true });
      this.#endImplicitRun(run, false);
      if (init.externalId !== undefined) this.#rememberRefused(state);
      return new ToolCallHandle(this.#internals, state, undefined);
    }
    this.#track(state);
    if (init.signal) this.#link(state, init.signal);
    if (decision.action === "require_approval") {
      approval = this.approvals.create({ toolCallId, runId: run.runId, agentId, toolName: init.tool, payload: input, agentContext, policyId: decision.policyId, reason: decision.reason, timeoutMs: decision.timeoutMs });
      state.approvalId = approval.approvalId;
      state.approval = approval;
      this.approvals.notify(approval);
    }
    return new ToolCallHandle(this.#internals, state, approval);
  }

  /**
   * The call a framework hook already decided on, by the framework's id, from memory: a later hook for
   * the same call (the AI SDK's `execute` after `toolApproval`, the OpenAI Agents guardrail after
   * `needsApproval`) gets the same decision, with no second policy evaluation and no second record.
   * Unfinished calls, and calls refused (blocked or rejected) in a run still open or a run of their own.
   * Undefined otherwise, or when the id was used for another tool, agent or run.
   */
  #decidedCall(init: ToolCallInit): ToolCallHandle | undefined {
    const externalId = init.externalId!;
    const open = this.#byExternalId.get(externalId);
    const state = (open === undefined ? undefined : this.#calls.get(open)) ?? this.#refusedByExternalId.get(externalId);
    if (state === undefined || state.toolName !== init.tool || (init.agentId !== undefined && init.agentId !== state.agentId)) return undefined;
    const runId = init.runId ?? this.#currentScope()?.runId;
    if (runId === undefined ? state.implicitRun !== true : runId !== state.runId) return undefined;
    if (init.signal && this.#calls.has(state.toolCallId)) this.#link(state, init.signal);
    // Approved while in memory: the handle says so, as `resumeToolCall` would.
    const decision: Decision = state.decision.action === "require_approval" && state.status === ToolCallStatus.PENDING ? ({ ...state.decision, action: "allow", reason: this.#internals.approvedReason(state.toolCallId) ?? "approved" } as Decision) : state.decision;
    return new ToolCallHandle(this.#internals, { ...state, decision }, state.approval);
  }

  /** Remembers why a call waiting for approval was refused, for later hooks with its framework id; returns `error`. */
  #refused(state: ActiveToolCall, error: WardenError): WardenError {
    if (state.externalId === undefined) return error;
    const admission = refusalOf(error);
    const { timeoutMs: _timeoutMs, ...rest } = state.decision as Decision & { timeoutMs?: number };
    const decision: Decision = { ...rest, action: "block", halted: admission.halted || undefined, cause: admission.outcome === "halted" ? admission.cause : "policy", reason: admission.reason };
    this.#rememberRefused({ ...state, status: ToolCallStatus.REJECTED, decision, admission });
    return error;
  }

  /** Keeps a refused call findable by its framework id for the hooks that follow (bounded: oldest forgotten first). */
  #rememberRefused(state: ActiveToolCall): void {
    if (state.externalId === undefined) return;
    this.#refusedByExternalId.delete(state.externalId);
    if (this.#refusedByExternalId.size >= 1024) this.#refusedByExternalId.delete(this.#refusedByExternalId.keys().next().value!);
    this.#refusedByExternalId.set(state.externalId, state);
  }

  /**
   * The unfinished (or refused) call with this framework id that a hook of this process already
   * decided on, from memory (no store read, no policy evaluation); undefined when there is none.
   * `beginToolCall` with the same `externalId` answers the same handle: use either.
   * @example
   * const handle = warden.toolCall(toolCallId) ?? warden.beginToolCall({ tool, args, externalId: toolCallId });
   */
  toolCall(externalId: string, options: { tool?: string | undefined; runId?: string | undefined } = {}): ToolCallHandle | undefined {
    const open = this.#byExternalId.get(externalId);
    const state = (open === undefined ? undefined : this.#calls.get(open)) ?? this.#refusedByExternalId.get(externalId);
    if (state === undefined) return undefined;
    return this.#decidedCall({ tool: options.tool ?? state.toolName, externalId, runId: options.runId ?? state.runId });
  }

  /** @internal The governed flow behind `run.tool` and `guard`: check → approval → execute → record. */
  async execute<T>(init: ToolCallInit, fn: (context: ToolContext) => T | Promise<T>): Promise<T> {
    const handle = this.beginToolCall(init);
    return handle.run((signal) => fn({ signal, toolCallId: handle.toolCallId, runId: handle.runId }));
  }

  /**
   * Picks up an unfinished tool call, possibly made in another process: one that paused for approval (a LangGraph
   * `interrupt()`, an AI SDK `tool-approval-request`, an OpenAI Agents interruption), by Warden id or
   * the framework's id. The handle's decision is `allow` once approved, `block` once rejected or
   * expired, and still `require_approval` while the reviewer has not answered; an allowed call that
   * has not finished yet (a coding-agent hook records the call before the tool runs) keeps its decision.
   * Undefined when no unfinished call has that id.
   */
  findToolCall(id: string, options: { signal?: AbortSignal | undefined } = {}): ToolCallHandle | undefined {
    try {
      return this.resumeToolCall(id, options);
    } catch (error) {
      if (WardenError.isInstance(error) && (error.code === "not_found" || error.code === "invalid_state")) return undefined;
      throw error;
    }
  }

  /** Like `findToolCall`, but an unknown call is a `NotFoundError` and a finished one an `InvalidStateError`. */
  resumeToolCall(id: string, options: { signal?: AbortSignal | undefined } = {}): ToolCallHandle {
    this.#assertOpen();
    let state = this.#calls.get(id) ?? this.#calls.get(this.#byExternalId.get(id) ?? "");
    if (state === undefined) {
      const row = this.#store.get<ToolCallRow>("SELECT * FROM tool_calls WHERE (id = ?1 OR external_id = ?1) AND org = ?2 AND kind = 'tool' ORDER BY started_at DESC, rowid DESC LIMIT 1", id, this.organization);
      if (!row) throw new NotFoundError("tool call", id);
      const decision = JSON.parse(row.decision ?? "null") as Decision | null;
      const approvalId = this.approvals.forToolCall(row.id)?.approvalId;
      // Unfinished: awaiting a reviewer, or allowed (perhaps approved by another process) and not yet completed.
      const resumable = row.status === ToolCallStatus.AWAITING_APPROVAL || row.status === ToolCallStatus.PENDING;
      if (!resumable || decision === null) throw new InvalidStateError(`tool call "${id}" is ${row.status}; only an unfinished call can be resumed`);
      // The run may have ended while the call waited (an SDK pauses a call across two requests): the call can still finish.
      if (this.#store.get<{ status: string }>("SELECT status FROM runs WHERE id = ?", row.run_id)?.status === RunStatus.RUNNING) this.#adoptRun(row.run_id);
      state = { toolCallId: row.id, externalId: row.external_id ?? undefined, runId: row.run_id, stepId: row.step_id ?? undefined, agentId: row.agent_id, toolName: row.tool_name, status: row.status as ToolCallStatus, startedAt: performance.now(), controller: new AbortController(), cleanup: undefined, approvalId, decision };
      this.#track(state);
    }
    if (options.signal) this.#link(state, options.signal);
    const approval = state.approvalId === undefined ? undefined : this.approvals.get(state.approvalId);
    if (state.status === ToolCallStatus.AWAITING_APPROVAL && approval && approval.status !== ApprovalStatus.PENDING) {
      if (approval.status === ApprovalStatus.APPROVED) this.#markApproved(state);
      else this.#finishToolCall(state.toolCallId, ToolCallStatus.REJECTED, undefined, undefined, approval.decisionReason ?? approval.status);
    }
    const halt = this.#haltFor(state.agentId, state.runId);
    let decision: Decision = state.decision;
    if (halt !== undefined) decision = this.#haltDecision({ tool: state.toolName, action: state.decision.actionType, agent: state.agentId, args: {} }, halt);
    else if (approval?.status === ApprovalStatus.APPROVED) decision = { ...state.decision, action: "allow", reason: `approved${approval.reviewer ? ` by ${approval.reviewer}` : ""}` } as Decision;
    else if (approval && approval.status !== ApprovalStatus.PENDING) decision = { ...state.decision, action: "block", reason: `approval ${approval.status}${approval.decisionReason ? `: ${approval.decisionReason}` : ""}` } as Decision;
    return new ToolCallHandle(this.#internals, { ...state, decision }, approval);
  }

  async #waitForApproval(toolCallId: string): Promise<void> {
    const state = this.#calls.get(toolCallId);
    if (!state || state.approvalId === undefined) throw new InvalidStateError(`tool call "${toolCallId}" is not awaiting approval`);
    if (state.status !== ToolCallStatus.AWAITING_APPROVAL) return;
    const pending = this.approvals.get(state.approvalId);
    const settled = pending.status === ApprovalStatus.PENDING ? await raceAbort(state.controller.signal, () => this.approvals.wait(pending)).catch((error: unknown) => {
      // A halt while waiting cancels the request (and the halt records the call as refused).
      if (isHalt(error)) {
        this.approvals.cancel([pending.approvalId], (error as Error).message);
        throw this.#refused(state, error as WardenError);
      }
      // The caller gave up (its signal aborted): the request is cancelled and the call recorded as
      // rejected, never left awaiting a reviewer whose answer nothing would act on.
      this.approvals.cancel([pending.approvalId], "aborted");
      if (this.#calls.get(toolCallId)?.status === ToolCallStatus.AWAITING_APPROVAL) this.#finishToolCall(toolCallId, ToolCallStatus.REJECTED, undefined, undefined, "aborted");
      this.#refused(state, abortedWait(pending.approvalId, state.toolName, error));
      // `waitForApproval` rethrows the signal's reason as it always did; `admit()` answers refused/aborted.
      throw error;
    }) : pending;
    if (settled.status === ApprovalStatus.APPROVED) {
      this.#markApproved(state);
      return;
    }
    this.#finishToolCall(toolCallId, ToolCallStatus.REJECTED, undefined, undefined, settled.decisionReason ?? settled.status);
    if (settled.status === ApprovalStatus.EXPIRED) throw this.#refused(state, new ApprovalTimeoutError({ approvalId: settled.approvalId, toolName: state.toolName, timeoutMs: settled.expiresAt - settled.createdAt }));
    if (settled.status === ApprovalStatus.CANCELLED) {
      // A halt in another process cancels the request; its cancellation can arrive before this process's halt poll does.
      if (!this.#store.isMemory) this.#pollHalts();
      const halt = this.#halts.find({ agentId: state.agentId, group: this.#groupOf(state.agentId), runId: state.runId });
      if (halt) throw this.#refused(state, this.#halts.toError(halt));
    }
    throw this.#refused(state, new ApprovalRejectedError({ approvalId: settled.approvalId, toolName: state.toolName, reviewer: settled.reviewer, reason: settled.decisionReason }));
  }

  #track(state: ActiveToolCall): void {
    this.#calls.set(state.toolCallId, state);
    if (state.externalId !== undefined) this.#byExternalId.set(state.externalId, state.toolCallId);
  }

  #markApproved(state: ActiveToolCall): void {
    if (state.status !== ToolCallStatus.AWAITING_APPROVAL) return;
    state.status = ToolCallStatus.PENDING;
    if (state.row !== undefined && !state.row.done) state.row.params[9] = ToolCallStatus.PENDING;
    else this.#store.write("UPDATE tool_calls SET status = ? WHERE id = ?", [ToolCallStatus.PENDING, state.toolCallId]);
  }

  #link(state: ActiveToolCall, outer: AbortSignal): void {
    if (outer.aborted) {
      state.controller.abort(outer.reason);
      return;
    }
    const onAbort = () => state.controller.abort(outer.reason);
    outer.addEventListener("abort", onAbort, { once: true });
    const previous = state.cleanup;
    state.cleanup = () => {
      previous?.();
      outer.removeEventListener("abort", onAbort);
    };
  }

  #finishToolCall(toolCallId: string, status: ToolCallStatus, output: unknown, error: unknown, rejectedReason?: string): void {
    const state = this.#calls.get(toolCallId);
    if (!state) {
      const row = this.#store.get<{ status: string }>("SELECT status FROM tool_calls WHERE id = ?", toolCallId);
      if (!row) throw new NotFoundError("tool call", toolCallId);
      throw new InvalidStateError(`tool call "${toolCallId}" is ${row.status}; it cannot be ${status === ToolCallStatus.FAILED ? "failed" : "completed"}`);
    }
    if (state.status === ToolCallStatus.AWAITING_APPROVAL && status !== ToolCallStatus.REJECTED) {
      throw new InvalidStateError(`tool call "${toolCallId}" is awaiting approval; it cannot be ${status === ToolCallStatus.FAILED ? "failed" : "completed"} before a reviewer approves it`);
    }
    // A halt that landed while the tool ran: the call is recorded as stopped by it, never as a success.
    const halted = status === ToolCallStatus.COMPLETED ? this.#haltOfCall(state) : undefined;
    if (halted !== undefined) {
      status = ToolCallStatus.FAILED;
      error = halted;
    }
    this.#calls.delete(toolCallId);
    if (state.externalId !== undefined) this.#byExternalId.delete(state.externalId);
    state.cleanup?.();
    const durationMs = performance.now() - state.startedAt;
    const now = Date.now();
    const recordedOutput = output === undefined ? undefined : this.#safeRedact(output);
    const recordedError = error === undefined ? undefined : this.#safeRedact(serializeError(error));
    const outputJson = recordedOutput === undefined ? null : JSON.stringify(recordedOutput);
    const errorJson = recordedError === undefined ? null : JSON.stringify(recordedError);
    if (state.row !== undefined && !state.row.done) {
      // Still queued: finish the row in place so it commits once.
      const p = state.row.params;
      p[9] = status;
      p[11] = outputJson;
      p[12] = errorJson;
      p[13] = rejectedReason ?? p[13] ?? null;
      p[18] = now;
      p[19] = durationMs;
    } else {
      this.#store.write("UPDATE tool_calls SET status = ?, output = ?, error = ?, blocked_reason = COALESCE(?, blocked_reason), ended_at = ?, duration_ms = ? WHERE id = ?", [status, outputJson, errorJson, rejectedReason ?? null, now, durationMs, toolCallId]);
    }
    const type = status === ToolCallStatus.REJECTED ? EventType.TOOL_BLOCKED : EventType.TOOL_COMPLETED;
    this.#record(type, state.agentId, state.runId, state.stepId, toolCallId, { toolName: state.toolName, status, output: recordedOutput, error: recordedError, durationMs, reason: rejectedReason });
    const run = this.#runs.get(state.runId);
    if (run?.implicit) this.#endImplicitRun(run, status === ToolCallStatus.COMPLETED);
    if (halted !== undefined) throw halted;
  }

  /** The halt that covers a call now, or aborted it while it ran (even if lifted since); undefined if none. */
  #haltOfCall(state: ActiveToolCall): WardenError | undefined {
    const signal = state.controller.signal;
    if (signal.aborted && isHalt(signal.reason)) return signal.reason as WardenError;
    const halt = this.#haltFor(state.agentId, state.runId);
    return halt === undefined || halt === "unknown" ? undefined : this.#halts.toError(halt);
  }

  // ── LLM calls ─────────────────────────────────────────────────────────────────────────────

  /**
   * Records an LLM call with its model and token usage. With a token budget, `estimatedTokens` is
   * reserved first (a call over budget is refused with `ToolBlockedError`) and reconciled on `complete`.
   */
  beginLlmCall(init: { runId?: string | undefined; model?: string | undefined; estimatedTokens?: number | undefined; input?: unknown; id?: string | undefined }): { id: string; complete(usage: LlmUsage, output?: unknown): void; fail(error: unknown): void } {
    const run = this.#resolveRun(init.runId, undefined);
    // Enforcement: a halted agent makes no more model calls either.
    const halt = this.#haltFor(run.agentId, run.runId);
    if (halt !== undefined) {
      this.#endImplicitRun(run, false);
      throw halt === "unknown" ? new HaltedError({ reason: "halt state unknown", scope: "unknown" }) : this.#halts.toError(halt);
    }
    const id = init.id ?? newId("llm");
    const reserved = init.estimatedTokens ?? 0;
    const over = this.#budgets.size > 0 ? this.#budgets.reserveTokens(run.runId, reserved) : undefined;
    const startedAt = performance.now();
    const now = Date.now();
    const stepId = this.#currentScope()?.stepId;
    const model = init.model ?? "unknown";
    const input = init.input === undefined ? null : JSON.stringify(this.#safeRedact(init.input));
    if (over && over.action === "block") {
      this.#store.write("INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, blocked_reason, started_at, ended_at) VALUES (?,?,?,?,?,'llm',?,'unknown',?,?,?,?,?)", [id, run.runId, stepId ?? null, this.organization, run.agentId, model, ToolCallStatus.BLOCKED, input, over.reason, now, now]);
      this.#record(EventType.TOOL_BLOCKED, run.agentId, run.runId, stepId, id, { kind: "llm", model, reason: over.reason, policyId: over.policyId });
      this.#endImplicitRun(run, false);
      throw new ToolBlockedError({ toolName: model, reason: over.reason, policyId: over.policyId, toolCallId: id });
    }
    this.#store.write("INSERT INTO tool_calls (id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, started_at) VALUES (?,?,?,?,?,'llm',?,'unknown',?,?,?)", [id, run.runId, stepId ?? null, this.organization, run.agentId, model, ToolCallStatus.PENDING, input, now]);
    this.#record(EventType.TOOL_CALLED, run.agentId, run.runId, stepId, id, { kind: "llm", model });
    let done = false;
    const finish = (status: ToolCallStatus, usage: LlmUsage | undefined, output: unknown, error: unknown) => {
      if (done) return;
      done = true;
      const total = usage ? (usage.totalTokens ?? (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0)) : 0;
      if (this.#budgets.size > 0) this.#budgets.reconcileTokens(run.runId, reserved, total);
      const recordedUsage = usage ? { model: usage.model ?? model, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: total } : undefined;
      const recordedOutput = output === undefined ? null : JSON.stringify(this.#safeRedact(output));
      this.#store.write("UPDATE tool_calls SET status = ?, usage = ?, output = ?, error = ?, ended_at = ?, duration_ms = ? WHERE id = ?", [status, recordedUsage ? JSON.stringify(recordedUsage) : null, recordedOutput, error === undefined ? null : JSON.stringify(this.#safeRedact(serializeError(error))), Date.now(), performance.now() - startedAt, id]);
      this.#record(EventType.TOOL_COMPLETED, run.agentId, run.runId, stepId, id, { kind: "llm", model: recordedUsage?.model ?? model, status, usage: recordedUsage });
      this.#endImplicitRun(run, status === ToolCallStatus.COMPLETED);
    };
    return {
      id,
      complete: (usage, output) => finish(ToolCallStatus.COMPLETED, usage, output, undefined),
      fail: (error) => finish(ToolCallStatus.FAILED, undefined, undefined, error),
    };
  }

  // ── runs and steps ────────────────────────────────────────────────────────────────────────

  /** @internal */
  openRun(metadata: unknown, options: RunOptions & { implicit?: boolean } = {}): ActiveRun {
    this.#assertOpen();
    const agentId = options.agentId ?? this.agentId;
    const runId = options.runId ?? newId("run");
    if (this.#runs.has(runId)) throw new InvalidStateError(`run "${runId}" is already running`);
    const halt = this.#haltFor(agentId, runId);
    if (halt === "unknown") throw new HaltedError({ reason: "halt state unknown", scope: "unknown" });
    if (halt) throw this.#halts.toError(halt);
    const enclosing = this.#currentScope();
    const parentRunId = options.parentRunId ?? enclosing?.runId;
    const parent = parentRunId === undefined ? undefined : this.#runs.get(parentRunId);
    const traceId = options.traceId ?? parent?.traceId ?? (parentRunId ? this.#traceOf(parentRunId) : undefined) ?? newId("trace");
    const delegation = (options as { delegation?: Delegation }).delegation;
    const token = delegation?.verified ?? (agentId === this.agentId ? this.#clientToken() : undefined);
    if (token !== undefined) {
      const invalid = stillValid(this.tokens, token, (info) => this.#halts.haltedSince(info.agentId, info.agentId && this.#groupOf(info.agentId), info.issuedAt), Date.now());
      if (invalid) throw invalid;
    }
    const agentContext = options.agentContext === undefined ? undefined : (this.#safeRedact(options.agentContext) as AgentContext);
    const reason = options.reason === undefined ? undefined : (this.#safeRedact(options.reason) as string);
    const run: ActiveRun = { runId, agentId, traceId, implicit: options.implicit === true, token, agentContext };
    const now = Date.now();
    const recordedMetadata = metadata === undefined ? null : JSON.stringify(this.#safeRedact(metadata));
    run.row = this.#store.write(`INSERT INTO runs (org, ${runColumns}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`, [this.organization, runId, agentId, traceId, parentRunId ?? null, RunStatus.RUNNING, recordedMetadata, reason ?? null, agentContext ? JSON.stringify(agentContext) : null, token?.id ?? null, now, null, null]);
    this.#runs.set(runId, run);
    if (agentId !== this.agentId && !this.#groups.has(agentId)) this.#store.write("INSERT OR IGNORE INTO agents (org, id, created_at) VALUES (?,?,?)", [this.organization, agentId, now]);
    this.#record(EventType.RUN_STARTED, agentId, runId, undefined, undefined, { traceId, parentRunId, tokenId: token?.id, metadata: recordedMetadata === null ? undefined : JSON.parse(recordedMetadata), reason, agentContext, implicit: run.implicit || undefined });
    return run;
  }

  /** @internal */
  closeRun(runId: string, status: typeof RunStatus.COMPLETED | typeof RunStatus.FAILED, detail: unknown): void {
    const run = this.#adoptRun(runId);
    this.#runs.delete(runId);
    if (this.#limits.size > 0) this.#limits.forgetRun(runId);
    if (this.#budgets.size > 0) this.#budgets.forgetRun(runId);
    const recorded = detail === undefined ? undefined : this.#safeRedact(status === RunStatus.FAILED ? serializeError(detail) : detail);
    const error = status === RunStatus.FAILED && recorded !== undefined ? JSON.stringify(recorded) : null;
    if (run.row !== undefined && !run.row.done) {
      // Still queued (a short run, a one-call implicit run): finish the row in place so it commits once.
      run.row.params[5] = status;
      run.row.params[11] = Date.now();
      run.row.params[12] = error;
    } else this.#store.write("UPDATE runs SET status = ?, ended_at = ?, error = ? WHERE id = ?", [status, Date.now(), error, runId]);
    this.#record(status === RunStatus.COMPLETED ? EventType.RUN_COMPLETED : EventType.RUN_FAILED, run.agentId, runId, undefined, undefined, status === RunStatus.COMPLETED ? { output: recorded } : { error: recorded });
  }

  /**
   * Runs `fn` as one governed run: completed when it returns, failed when it throws. Runs started
   * inside it become its children (sub-agents).
   * @example
   * await warden.run({ task: "refund order 1042" }, async (run) => {
   *   await run.tool("refund", { amount: 2800, currency: "EUR" }, () => payments.refund(1042));
   * });
   */
  async run<T>(metadata: unknown, fn: (run: RunScope) => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    const run = this.openRun(metadata, options);
    const scope: Scope = { owner: this, runId: run.runId, stepId: undefined };
    try {
      const result = await scopeStorage.run(scope, () => fn(new RunScope(this, run)));
      this.closeRun(run.runId, RunStatus.COMPLETED, undefined);
      return result;
    } catch (error) {
      if (this.#runs.has(run.runId)) this.closeRun(run.runId, RunStatus.FAILED, error);
      throw error;
    }
  }

  /** @internal */
  async step<T>(runId: string, name: string, fn: () => T | Promise<T>, metadata?: Record<string, unknown>): Promise<T> {
    const stepId = this.#openStep(runId, name, metadata);
    try {
      const result = await scopeStorage.run({ owner: this, runId, stepId }, fn);
      this.#closeStep(runId, stepId, RunStatus.COMPLETED);
      return result;
    } catch (error) {
      this.#closeStep(runId, stepId, RunStatus.FAILED);
      throw error;
    }
  }

  /**
   * Wraps any async function as a governed tool: each call is checked, approved if needed, run and
   * recorded, inside the current run (or a run of its own).
   * @example
   * const deploy = warden.guard("deploy", (env: string) => ci.deploy(env), { args: (env) => ({ environment: env }) });
   * await deploy("production");
   */
  guard<A extends unknown[], R>(name: string, fn: (...args: A) => R | Promise<R>, options: ToolOptions & { args?: (...args: A) => unknown } = {}): (...args: A) => Promise<Awaited<R>> {
    const { args: mapArgs, ...toolOptions } = options;
    const governed = (...args: A): Promise<Awaited<R>> => {
      const payload = mapArgs ? mapArgs(...args) : args.length === 1 && isPlainObject(args[0]) ? args[0] : { arguments: args };
      return this.execute({ ...toolOptions, tool: name, args: payload }, () => fn(...args) as Awaited<R>);
    };
    Object.defineProperty(governed, "name", { value: `governed ${fn.name || name}` });
    return governed;
  }

  // ── the step-by-step lifecycle (ids in, ids out) ──────────────────────────────────────────

  /** Starts a run and returns its id. */
  async startRun(runId?: string, metadata?: Record<string, unknown>, reason?: string, agentContext?: AgentContext): Promise<string> {
    return this.openRun(metadata, { runId, reason, agentContext }).runId;
  }

  /** Starts a step in a run; `nameOrMetadata` is a name or metadata such as `{ phase: "analysis" }`. */
  async startStep(runId: string, nameOrMetadata: string | Record<string, unknown> = "step", metadata?: Record<string, unknown>): Promise<string> {
    const name = typeof nameOrMetadata === "string" ? nameOrMetadata : String(nameOrMetadata.name ?? nameOrMetadata.phase ?? "step");
    return this.#openStep(runId, name, typeof nameOrMetadata === "string" ? metadata : nameOrMetadata);
  }

  async completeStep(runId: string, stepId: string): Promise<void> {
    this.#closeStep(runId, stepId, RunStatus.COMPLETED);
  }

  /**
   * Evaluates policy and records the call (`pending` once allowed, `blocked`, `awaiting_approval`)
   * without waiting; returns its id. Throws `HaltedError` when halted.
   */
  async trackToolCall(runId: string, toolName: string, payload?: unknown, options: ToolOptions = {}): Promise<string> {
    const handle = this.beginToolCall({ ...options, tool: toolName, args: payload, runId });
    if (handle.decision.action === "block" && handle.decision.halted) throw handle.error;
    return handle.toolCallId;
  }

  /**
   * Records a tool call's output. Completing a blocked or unapproved call is an `InvalidStateError`;
   * completing one a halt landed on while it ran records it `failed` and rejects with `HaltedError`.
   */
  async completeToolCall(runId: string, toolCallId: string, output?: unknown): Promise<void> {
    this.#assertCallOfRun(runId, toolCallId);
    this.#finishToolCall(toolCallId, ToolCallStatus.COMPLETED, output, undefined);
  }

  async failToolCall(runId: string, toolCallId: string, error: unknown): Promise<void> {
    this.#assertCallOfRun(runId, toolCallId);
    this.#finishToolCall(toolCallId, ToolCallStatus.FAILED, undefined, error);
  }

  /** Waits for the approval of a call `trackToolCall` left `awaiting_approval`. */
  async waitForApproval(toolCallId: string): Promise<void> {
    return this.#waitForApproval(toolCallId);
  }

  async completeRun(runId: string, output?: unknown): Promise<void> {
    this.closeRun(runId, RunStatus.COMPLETED, output);
  }

  async failRun(runId: string, error: unknown): Promise<void> {
    this.closeRun(runId, RunStatus.FAILED, error);
  }

  /** The run with its steps, tool calls (decision, approval), events and child runs. */
  async getRun(runId: string): Promise<RunRecord> {
    return this.runRecord(runId);
  }

  /** @internal Synchronous `getRun`, for the CLI. */
  runRecord(runId: string): RunRecord {
    const row = this.#store.get<RunRow>(`SELECT ${runColumns} FROM runs WHERE id = ? AND org = ?`, runId, this.organization);
    if (!row) throw new NotFoundError("run", runId);
    const approvals = new Map(this.#store.all<ApprovalRow>("SELECT * FROM approvals WHERE run_id = ? ORDER BY created_at", runId).map((a) => [a.tool_call_id, toApprovalRecord(a)]));
    return {
      ...toRunSummary(row),
      steps: this.#store.all<StepRow>("SELECT * FROM steps WHERE run_id = ? AND org = ? ORDER BY started_at, rowid", runId, this.organization).map(toStepRecord),
      toolCalls: this.#store.all<ToolCallRow>("SELECT * FROM tool_calls WHERE run_id = ? ORDER BY started_at, rowid", runId).map((tc) => toToolCallRecord(tc, approvals.get(tc.id))),
      events: this.ledger.entries({ runId }).map(({ id, type, ts, org, agentId, runId: r, stepId, toolCallId, actor, data }) => ({ id, type: type as EventType, ts, org, agentId, runId: r, stepId, toolCallId, actor, data: data as Record<string, unknown> })),
      childRunIds: this.#store.all<{ id: string }>("SELECT id FROM runs WHERE parent_run_id = ? ORDER BY started_at", runId).map((r) => r.id),
    };
  }

  /** Runs, newest first. */
  listRuns(filter: { agentId?: string | undefined; status?: RunStatus | undefined; traceId?: string | undefined; limit?: number | undefined; offset?: number | undefined } = {}): RunSummary[] {
    return this.#store
      .all<RunRow>(
        `SELECT ${runColumns} FROM runs WHERE org = ?1 AND (?2 IS NULL OR agent_id = ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR trace_id = ?4) ORDER BY started_at DESC, rowid DESC LIMIT ?5 OFFSET ?6`,
        this.organization,
        filter.agentId ?? null,
        filter.status ?? null,
        filter.traceId ?? null,
        filter.limit ?? 50,
        filter.offset ?? 0,
      )
      .map(toRunSummary);
  }

  // ── delegation and permissions ────────────────────────────────────────────────────────────

  /**
   * Starts work under a delegation token (verified now, offline): runs act as the token's agent
   * and tool calls outside its scopes or tools are blocked before policy.
   */
  beginDelegatedTask(token: string): DelegatedTask {
    return new DelegatedTask(this, token, this.tokens.verify(token));
  }

  /** From the token alone (the current delegated run's, else the client's `token`): is `permission` granted? */
  hasPermission(permission: string, token: VerifiedToken | undefined = this.#currentToken()): boolean {
    return token !== undefined && tokenHasPermission(token.authority, permission) && !this.#tokenExpired(token);
  }

  /** The token (scope and amount cap), then policy (`permission` as the tool, the amount as `args.amount`): one decision. */
  authorize(permission: string, money: Partial<Money> = {}, token: VerifiedToken | undefined = this.#currentToken()): Decision {
    const args = { amount: money.amount, currency: money.currency };
    const call: PolicyInputCall = { tool: permission, action: this.#actionTypeOf(permission), agent: token?.authority.agentId ?? this.agentId, environment: this.environment, args };
    if (token === undefined) return { action: "block", reason: "no delegation token", matches: [], actionType: call.action, complete: true };
    const denial = this.#tokenDenial(token, call, permission);
    if (denial !== undefined) return { action: "block", cause: "token", halted: denial.halted || undefined, reason: denial.reason, matches: [], actionType: call.action, complete: true };
    return this.#decide(call, "", false).decision;
  }

  /** Throws `PermissionDeniedError` unless `authorize` allows (allow or warn). */
  ensureAuthorized(permission: string, money: Partial<Money> = {}, token: VerifiedToken | undefined = this.#currentToken()): void {
    const decision = this.authorize(permission, money, token);
    if (decision.action !== "allow" && decision.action !== "warn") throw new PermissionDeniedError(permission, decision.reason);
  }

  /** The run the calling code is inside (`warden.run`, `run.step`), if any: what adapters attach framework calls to. */
  currentRun(): { runId: string; traceId: string } | undefined {
    const scope = this.#currentScope();
    const run = scope && this.#runs.get(scope.runId);
    return run && { runId: run.runId, traceId: run.traceId };
  }

  #currentToken(): VerifiedToken | undefined {
    const scope = this.#currentScope();
    try {
      return (scope && this.#runs.get(scope.runId)?.token) ?? this.#clientToken();
    } catch {
      return undefined;
    }
  }

  /** The client's own token, verified on first use. Throws `TokenError` when it does not verify. */
  #clientToken(): VerifiedToken | undefined {
    if (this.#clientTokenText === undefined) return undefined;
    return (this.#clientTokenVerified ??= this.tokens.verify(this.#clientTokenText, { audience: this.agentId }));
  }

  #tokenExpired(token: VerifiedToken): boolean {
    return Date.now() >= token.expiresAt;
  }

  /** Why a token does not cover a call (and whether a halt is why), or undefined if it does. Enforcement: checked before policy. */
  #tokenDenial(token: VerifiedToken, call: PolicyInputCall, permission: string | undefined): { reason: string; halted: boolean } | undefined {
    const invalid = stillValid(this.tokens, token, (info) => this.#halts.haltedSince(info.agentId, info.agentId && this.#groupOf(info.agentId), info.issuedAt), Date.now());
    if (invalid) return { reason: invalid.message, halted: invalid.reason === "halted" };
    const authority = token.authority;
    // A token's `tools` list grants those tools; otherwise the call needs a scope for its permission.
    const byTool = authority.tools !== undefined && toolAllowed(authority, call.tool);
    if (authority.tools !== undefined && !byTool && permission === undefined) return { reason: `token ${token.id} does not allow tool "${call.tool}"`, halted: false };
    const args = call.args as { amount?: unknown; currency?: unknown } | undefined;
    // The policy file's `currencies` table counts for caps too, as for budgets.
    const denial = tokenDenial(token, { permission: byTool ? undefined : (permission ?? call.tool.replaceAll(".", ":")), amount: args?.amount, currency: args?.currency }, this.#policyConverter);
    return denial === undefined ? undefined : { reason: denial, halted: false };
  }

  // ── runs and calls seen from outside a callback (adapters' trace processors) ──────────────

  /**
   * Opens a run without a callback scope, for adapters that see a run's start and its end in separate
   * hooks (a framework's trace processor). Close it with `completeRun` or `failRun`. Throws `HaltedError` when halted.
   */
  beginRun(metadata?: unknown, options: RunOptions = {}): { runId: string; traceId: string } {
    const run = this.openRun(metadata, options);
    return { runId: run.runId, traceId: run.traceId };
  }

  /**
   * Records a tool call that ran without passing through a decision (seen only afterwards, in a
   * framework's trace): input, output or error and duration; no decision, no approval. Returns its id.
   */
  recordToolCall(init: { tool: string; args?: unknown; output?: unknown; error?: unknown; runId?: string | undefined; externalId?: string | undefined; durationMs?: number | undefined }): string {
    this.#assertOpen();
    const run = this.#resolveRun(init.runId, undefined);
    const toolCallId = newId("tc");
    const actionType = this.#actionTypeOf(init.tool);
    const stepId = this.#currentScope()?.stepId;
    const input = this.#safeRedact(init.args ?? {});
    const output = init.output === undefined ? undefined : this.#safeRedact(init.output);
    const error = init.error === undefined ? undefined : this.#safeRedact(serializeError(init.error));
    const status = error === undefined ? ToolCallStatus.COMPLETED : ToolCallStatus.FAILED;
    const now = Date.now();
    this.#store.write(
      "INSERT INTO tool_calls (id, external_id, run_id, step_id, org, agent_id, kind, tool_name, action_type, status, input, output, error, started_at, ended_at, duration_ms) VALUES (?,?,?,?,?,?,'tool',?,?,?,?,?,?,?,?,?)",
      [toolCallId, init.externalId ?? null, run.runId, stepId ?? null, this.organization, run.agentId, init.tool, actionType, status, JSON.stringify(input ?? null), output === undefined ? null : JSON.stringify(output), error === undefined ? null : JSON.stringify(error), Math.round(now - (init.durationMs ?? 0)), now, init.durationMs ?? null],
    );
    this.#record(EventType.TOOL_CALLED, run.agentId, run.runId, stepId, toolCallId, { toolName: init.tool, actionType, input, observed: true });
    this.#record(EventType.TOOL_COMPLETED, run.agentId, run.runId, stepId, toolCallId, { toolName: init.tool, status, output, error, durationMs: init.durationMs, observed: true });
    this.#endImplicitRun(run, status === ToolCallStatus.COMPLETED);
    return toolCallId;
  }

  // ── halt ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Emergency stop. No target: the whole organization. New runs and tool calls are refused with
   * `HaltedError`, in-flight calls are aborted through their signal, pending approvals cancelled.
   * @example
   * warden.halt({ reason: "runaway refunds", agentId: "billing-agent" });
   */
  halt(input: HaltTarget & { reason: string; actor?: string | undefined }): HaltRecord {
    this.#assertOpen();
    if (!input?.reason?.trim()) throw new InvalidInputError("a halt needs a reason");
    const record = this.#halts.halt(input, Date.now());
    this.#record(EventType.AGENT_HALTED, input.agentId ?? null, input.runId ?? null, undefined, undefined, { haltId: record.haltId, scope: record.scope, target: record.target, reason: record.reason }, input.actor ?? null);
    this.#store.flush();
    this.#applyHalts();
    // Requests no process here waits on (paused calls, other processes' calls) are cancelled too.
    const covered = this.approvals.list({ status: ApprovalStatus.PENDING, limit: -1 }).filter((a) => haltMatches(record, { agentId: a.agentId, group: this.#groupOf(a.agentId), runId: a.runId }));
    this.approvals.cancel(covered.map((a) => a.approvalId), this.#halts.toError(record).message);
    return record;
  }

  /** Lifts the halts with exactly this target. Returns the halts lifted. */
  resume(input: HaltTarget & { actor?: string | undefined; reason?: string | undefined } = {}): HaltRecord[] {
    this.#assertOpen();
    const lifted = this.#halts.resume(input, Date.now());
    if (lifted.length > 0) {
      this.#record(EventType.AGENT_RESUMED, input.agentId ?? null, input.runId ?? null, undefined, undefined, { haltIds: lifted.map((h) => h.haltId), scope: lifted[0]!.scope, target: lifted[0]!.target, reason: input.reason }, input.actor ?? null);
      this.#store.flush();
    }
    this.#applyHalts();
    return lifted;
  }

  /** The halt covering this agent (or one of its runs), if any. */
  haltedFor(target: { agentId?: string; runId?: string } = {}): HaltRecord | undefined {
    const agentId = target.agentId ?? this.agentId;
    return this.#halts.find({ agentId, group: this.#groupOf(agentId), runId: target.runId });
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────

  /** Remote mode: the link to the control plane (status, flush); undefined in embedded mode. */
  get remote(): RemoteLink | undefined {
    return this.#remote;
  }

  /**
   * Remote mode: resolves true once policies and halt state are synced from the control plane, false
   * when the first attempt could not reach it (cached policies apply; calls block until halt state is known).
   * Embedded mode: true at once.
   */
  ready(): Promise<boolean> {
    return this.#remote?.ready() ?? Promise.resolve(true);
  }

  /** Remote mode: sends every queued event (what cannot be sent stays in the spool), then closes. Safe to call twice. */
  async shutdown(): Promise<void> {
    await this.#remote?.shutdown();
    this.close();
  }

  /** Commits every queued write now; in remote mode, also sends what is queued for the control plane. */
  flush(): Promise<void> {
    this.#store.flush();
    return this.#remote?.flush() ?? Promise.resolve();
  }

  /** Flushes, signs a final ledger checkpoint and closes the store. Safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#haltPoller) clearInterval(this.#haltPoller);
    this.#remote?.close();
    this.approvals.close();
    this.#store.close();
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  #setPolicies(policies: string | PolicySetInput): void {
    const set = typeof policies === "string" ? loadPolicyFile(policies) : parsePolicySet(policies);
    const converter = set.currencies ? new CurrencyConverter({ ...this.#options.currencies, ...set.currencies }) : this.#converter;
    this.#engine = new PolicyEngine(set);
    this.#limits = new RateLimiter(set.limits);
    this.#budgets = new BudgetTracker(set.budgets, converter);
    this.#policyConverter = converter;
  }

  #record(type: EventType, agentId: string | null, runId: string | null, stepId: string | null | undefined, toolCallId: string | null | undefined, data: Record<string, unknown>, actor: string | null = null): void {
    const event: WardenEvent = { id: newId("evt"), type, ts: Date.now(), org: this.organization, agentId, runId, stepId: stepId ?? null, toolCallId: toolCallId ?? null, actor, data };
    try {
      this.#store.append({ id: event.id, ts: event.ts, type, org: event.org, agentId, runId, stepId: event.stepId, toolCallId: event.toolCallId, actor, dataJson: canonicalJson(data) });
    } catch (error) {
      this.#reportError(error);
    }
    this.#bus.emit(event);
    this.#remote?.send(event);
  }

  #resolveRun(runId: string | undefined, agentId: string | undefined): ActiveRun {
    const id = runId ?? this.#currentScope()?.runId;
    if (id === undefined) return this.openRun(undefined, { implicit: true, agentId });
    return this.#runs.get(id) ?? this.#adoptRun(id);
  }

  /** Takes over a run another process (or an earlier life of this one) started, to resume it. */
  #adoptRun(runId: string): ActiveRun {
    const existing = this.#runs.get(runId);
    if (existing) return existing;
    const row = this.#store.get<{ status: string; agent_id: string; trace_id: string; token_id: string | null }>("SELECT status, agent_id, trace_id, token_id FROM runs WHERE id = ? AND org = ?", runId, this.organization);
    if (!row) throw new NotFoundError("run", runId);
    if (row.status !== RunStatus.RUNNING) throw new InvalidStateError(`run "${runId}" is ${row.status}; start a new run`);
    const run: ActiveRun = { runId, agentId: row.agent_id, traceId: row.trace_id, implicit: false, token: undefined };
    // The run acted under a delegation token this process cannot recover (only its id is stored):
    // its calls are refused rather than let through without the token's limits.
    if (row.token_id !== null) {
      let own: VerifiedToken | undefined;
      try {
        own = row.agent_id === this.agentId ? this.#clientToken() : undefined;
      } catch {
        own = undefined;
      }
      if (own?.id === row.token_id) run.token = own;
      else run.tokenMissing = row.token_id;
    }
    this.#runs.set(runId, run);
    return run;
  }

  #endImplicitRun(run: ActiveRun, completed: boolean): void {
    if (!run.implicit || !this.#runs.has(run.runId)) return;
    this.closeRun(run.runId, completed ? RunStatus.COMPLETED : RunStatus.FAILED, completed ? undefined : { message: "tool call did not complete" });
  }

  #currentScope(): Scope | undefined {
    const scope = scopeStorage.getStore();
    return scope?.owner === this && this.#runs.has(scope.runId) ? scope : undefined;
  }

  #traceOf(runId: string): string | undefined {
    return this.#store.get<{ trace_id: string }>("SELECT trace_id FROM runs WHERE id = ?", runId)?.trace_id;
  }

  #openStep(runId: string, name: string, metadata: Record<string, unknown> | undefined): string {
    const run = this.#resolveRun(runId, undefined);
    const stepId = newId("step");
    const recorded = metadata === undefined ? undefined : this.#safeRedact(metadata);
    this.#store.write("INSERT INTO steps (id, org, run_id, name, status, metadata, started_at) VALUES (?,?,?,?,?,?,?)", [stepId, this.organization, runId, name, RunStatus.RUNNING, recorded === undefined ? null : JSON.stringify(recorded), Date.now()]);
    this.#record(EventType.STEP_STARTED, run.agentId, runId, stepId, undefined, { name, metadata: recorded });
    return stepId;
  }

  #closeStep(runId: string, stepId: string, status: RunStatus): void {
    const run = this.#runs.get(runId);
    const row = this.#store.get<{ status: string; run_id: string }>("SELECT status, run_id FROM steps WHERE id = ? AND org = ?", stepId, this.organization);
    if (!row || row.run_id !== runId) throw new NotFoundError("step", stepId);
    if (row.status !== RunStatus.RUNNING) throw new InvalidStateError(`step "${stepId}" is already ${row.status}`);
    this.#store.write("UPDATE steps SET status = ?, ended_at = ? WHERE id = ?", [status, Date.now(), stepId]);
    this.#record(EventType.STEP_COMPLETED, run?.agentId ?? this.agentId, runId, stepId, undefined, { status });
  }

  #assertCallOfRun(runId: string, toolCallId: string): void {
    const state = this.#calls.get(toolCallId);
    if (state && state.runId !== runId) throw new InvalidInputError(`tool call "${toolCallId}" belongs to run "${state.runId}", not "${runId}"`);
  }

  #actionTypeOf(tool: string): ActionType {
    let action = this.#actionTypes.get(tool);
    if (action === undefined) {
      action = classifyTool(tool);
      if (this.#actionTypes.size > 10_000) this.#actionTypes.clear();
      this.#actionTypes.set(tool, action);
    }
    return action;
  }

  #groupOf(agentId: string): string | undefined {
    if (this.#groups.has(agentId)) return this.#groups.get(agentId);
    const group = this.#store.peek<{ grp: string | null }>("SELECT grp FROM agents WHERE org = ? AND id = ?", this.organization, agentId)?.grp ?? undefined;
    this.#groups.set(agentId, group);
    return group;
  }

  #blockError(decision: Decision, toolName: string, toolCallId: string): WardenError {
    if (decision.action === "block" && decision.halted && decision.cause === "token") return new TokenError("halted", TOKEN_HALTED);
    if (decision.action === "block" && decision.halted) return new HaltedError({ reason: decision.reason, scope: "halt" });
    return new ToolBlockedError({ toolName, reason: decision.reason, policyId: decision.policyId, toolCallId });
  }

  #pollHalts(): void {
    try {
      if (this.#halts.refresh()) this.#applyHalts();
    } catch (error) {
      this.#reportError(error);
    }
  }

  /** Aborts what a halt covers: in-flight calls (and their approval waits) and this client's signal. */
  #applyHalts(): void {
    const own = this.#halts.find({ agentId: this.agentId, group: this.group, runId: undefined });
    if (own && !this.#signal.signal.aborted) this.#signal.abort(this.#halts.toError(own));
    if (!own && this.#signal.signal.aborted) this.#signal = new AbortController();
    if (this.#halts.active.length === 0) return;
    for (const call of [...this.#calls.values()]) {
      const halt = this.#halts.find({ agentId: call.agentId, group: this.#groupOf(call.agentId), runId: call.runId });
      if (!halt || call.controller.signal.aborted) continue;
      const error = this.#halts.toError(halt);
      call.controller.abort(error);
      // A call still waiting for a reviewer is refused now, waiter or not: its request is cancelled,
      // so an approval given after a resume can never run it.
      if (call.status === ToolCallStatus.AWAITING_APPROVAL && call.approvalId !== undefined) {
        this.approvals.cancel([call.approvalId], error.message);
        this.#finishToolCall(call.toolCallId, ToolCallStatus.REJECTED, undefined, undefined, error.message);
        this.#refused(call, error);
      }
    }
  }

  #safeRedact(value: unknown): unknown {
    try {
      return this.#redact(value);
    } catch (error) {
      // Never record what could not be redacted.
      this.#reportError(error);
      return "[unredactable]";
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError("this Warden client is closed");
  }

  #reportError(error: unknown): void {
    this.reportError(error);
  }

  /**
   * The one sink for failures that must not reach agent code (telemetry, recording, a framework hook
   * that failed open): the `onError` option if set, else one process warning per kind of failure.
   * Adapters report through it; `source` names the surface in the warning.
   * @example
   * try { recordUsage(event); } catch (error) { warden.reportError(error, "ai"); }
   */
  reportError(error: unknown, source?: string): void {
    if (this.#options.onError) {
      try {
        this.#options.onError(error);
      } catch {
        // An error handler that throws has nowhere left to report to.
      }
      return;
    }
    const key = `${source ?? ""}:${error instanceof Error ? `${error.name}:${error.message}` : String(error)}`;
    if (this.#reportedErrors.has(key)) return;
    // Warn once per kind, but never let the memory of what was warned grow without bound.
    if (this.#reportedErrors.size >= 256) this.#reportedErrors.clear();
    this.#reportedErrors.add(key);
    process.emitWarning(`[warden] ${source ? `${source}: ` : ""}${error instanceof Error ? error.message : String(error)}`, { code: "WARDEN_TELEMETRY" });
  }
}

/** A decision recorded but not enforced (`shadow: true`): blocks and approvals become warnings; halts stay blocks. */
function shadowed(decision: Decision): Decision {
  if (decision.action === "allow" || decision.action === "warn" || (decision.action === "block" && decision.halted)) return decision;
  const would = decision.action === "block" ? "block" : "require approval";
  const { action: _action, ...rest } = decision as Decision & { timeoutMs?: number; halted?: boolean };
  delete rest.timeoutMs;
  delete rest.halted;
  return { ...rest, action: "warn", reason: `shadow: would ${would}: ${decision.reason}` };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

function serializeError(error: unknown): unknown {
  if (error instanceof Error) {
    const out: Record<string, unknown> = { name: error.name, message: error.message };
    if (WardenError.isInstance(error)) out.code = error.code;
    return out;
  }
  return error;
}
