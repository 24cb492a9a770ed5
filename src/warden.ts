import { randomUUID } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { canonicalJson } from "./internal/canonical.js";
import { TELEMETRY_GAP_ENTRY } from "./remote/gaps.js";
import { Approvals } from "./approvals/approvals.js";
import { optionsFromEnv, parseOptions, type WardenOptions } from "./config.js";
import type { Decision } from "./decision.js";
import { Decisions } from "./decisions.js";
import { DelegatedTask } from "./delegation.js";
import { EventType, RunStatus, ToolCallStatus, type AgentContext } from "./enums.js";
import { InvalidStateError, PermissionDeniedError, RemoteError, WardenError } from "./errors.js";
import { EventBus, type EventListener } from "./events.js";
import { HaltGuard } from "./halt/guard.js";
import type { HaltRecord, HaltTarget } from "./halt/halt.js";
import type { CheckInput, RunOptions, ToolCallInit, ToolOptions } from "./inputs.js";
import { loadOrCreateKey } from "./ledger/keys.js";
import { eventEntries } from "./ledger/fold.js";
import { Ledger } from "./ledger/ledger.js";
import { ledgerSigningKey } from "./ledger/keyring.js";
import type { Witnessing, WitnessResult } from "./ledger/witnessing.js";
import type { WitnessConfig } from "./ledger/witness-config.js";
import { LlmCalls, type LlmCallHandle } from "./llm-calls.js";
import { Notices } from "./logger.js";
import { NO_POLICIES_NOTICE, waitingNotice } from "./notices.js";
import { CurrencyConverter, type Money } from "./money.js";
import { NO_POLICIES_INPUT } from "./policy/load.js";
import type { PolicySet, PolicySetInput } from "./policy/schema.js";
import { ErrorSink, Recorder } from "./recorder.js";
import type { ApprovalRecord, LlmUsage, RunRecord, RunSummary } from "./records.js";
import { createRedactor } from "./redaction/redact.js";
import { createRemoteLink, type RemoteLink } from "./remote/remote.js";
import { RunScope } from "./run-scope.js";
import { Runs, type Delegation, type TraceContextSource } from "./runs.js";
import type { ActiveRun } from "./scope.js";
import { RunStore } from "./store/run-store.js";
import { PinStore } from "./store/pin-store.js";
import { SqliteStore } from "./store/sqlite-store.js";
import { ToolCalls } from "./tool-calls.js";
import type { ToolCallHandle, ToolContext } from "./tool-call.js";
import type { VerifiedToken } from "./tokens/token.js";
import { Tokens } from "./tokens/tokens.js";
import { ToolPins } from "./tool-pins.js";

export type { CallRisk, CheckInput, RunOptions, ToolCallInit, ToolOptions } from "./inputs.js";
export type { ActiveRun } from "./scope.js";

/**
 * The Warden client: decides on every tool call before it runs, waits for humans where policy
 * asks, records everything in a hash-chained ledger, and stops on a halt. A facade: the work is done
 * by `Decisions`, `ToolCalls`, `LlmCalls`, `Runs`, `HaltGuard`, `Recorder` and the store's `RunStore`.
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
  /** Tool definitions pinned on first sight (the MCP gateway's): list, accept a change. Kept in the local store. */
  readonly toolPins: ToolPins;

  readonly #store: SqliteStore;
  readonly #runStore: RunStore;
  readonly #bus: EventBus;
  readonly #errors: ErrorSink;
  readonly #halts: HaltGuard;
  readonly #decisions: Decisions;
  readonly #runs: Runs;
  readonly #calls: ToolCalls;
  readonly #llm: LlmCalls;
  readonly #recorder: Recorder;
  readonly #groups = new Map<string, string | undefined>();
  /** Remote mode: the control plane link; undefined in embedded mode. */
  readonly #remote: RemoteLink | undefined;
  #closed = false;
  /** The witnessing client, loaded when witnesses are configured or `witness()` is first called. */
  #witnessing: Promise<Witnessing> | undefined;
  readonly #witnesses: readonly WitnessConfig[];
  #witnessTimer: NodeJS.Timeout | undefined;
  /** Remote mode with `ledger.countersign`: the control plane to ask, and whether its witness key is known. */
  #countersign: { url: string; apiKey: string; joined?: boolean } | undefined;

  constructor(options: WardenOptions) {
    const resolved = parseOptions(options);
    this.agentId = resolved.agentId;
    this.group = resolved.group;
    this.organization = resolved.organization;
    this.environment = resolved.environment;
    const org = this.organization;
    const assertOpen = () => this.#assertOpen();
    const groupOf = (agentId: string) => this.#groupOf(agentId);
    const notices = new Notices(resolved.logger);
    this.#errors = new ErrorSink(resolved.onError);
    const errors = this.#errors;
    this.#bus = new EventBus((error) => errors.report(error));
    const keyDir = resolved.store === ":memory:" ? undefined : join(dirname(resolve(resolved.store)), "keys");
    const ledgerKey = ledgerSigningKey(keyDir, resolved.ledger.signingKey, resolved.ledger.previousKeys);
    this.#store = new SqliteStore({ path: resolved.store, signer: ledgerKey, checkpointEvery: resolved.ledger.checkpointEvery, checkpointIntervalMs: resolved.ledger.checkpointInterval, writer: resolved.storeWriter, maxPending: resolved.storeMaxPending, onError: (error) => errors.report(error) });
    this.#runStore = new RunStore(this.#store, org);
    this.ledger = new Ledger(this.#store, ledgerKey.publicKey, { retired: ledgerKey.retired });
    this.#witnesses = resolved.ledger.witnesses;
    const controlPlane = Array.isArray(resolved.url) ? resolved.url[0] : resolved.url;
    if (resolved.ledger.countersign && controlPlane !== undefined && resolved.apiKey !== undefined) this.#countersign = { url: controlPlane.replace(/\/+$/, ""), apiKey: resolved.apiKey };
    if (this.#witnesses.length > 0 || this.#countersign !== undefined) {
      // New checkpoints go to the witnesses in the background; an unreachable witness is retried next time.
      let sent: number | undefined;
      this.#witnessTimer = setInterval(() => {
        const newest = this.#store.peek<{ seq: number }>("SELECT seq FROM checkpoints WHERE note IS NOT NULL ORDER BY seq DESC LIMIT 1")?.seq;
        if (newest === undefined || newest === sent) return;
        void this.#joinControlPlaneWitness()
          .then(() => this.#witnessingClient())
          .then((witnessing) => witnessing.sync())
          .then((results) => {
            if (results.length > 0 && results.every((r) => r.status === "cosigned" || r.status === "already")) sent = newest;
          })
          .catch((error: unknown) => errors.report(error));
      }, resolved.ledger.witnessInterval);
      this.#witnessTimer.unref();
    }
    let remote: RemoteLink | undefined;
    const recorder = new Recorder({ store: this.#store, bus: this.#bus, org, redact: createRedactor(resolved.redaction ?? {}), errors, send: undefined, maxRecordedBytes: resolved.maxRecordedBytes });
    this.#recorder = recorder;
    this.toolPins = new ToolPins({ store: new PinStore(this.#store, org), record: (type, data, actor) => recorder.record(type, { agentId: null, runId: null }, data, actor) });
    this.approvals = new Approvals({
      store: this.#store,
      org,
      record: (type, ids, data, actor) => recorder.record(type, { agentId: ids.agentId, runId: ids.runId, toolCallId: ids.toolCallId }, data, actor),
      onRequest: resolved.onApprovalRequest,
      onError: (error) => errors.report(error),
      pollIntervalMs: resolved.approvalPollInterval,
      now: resolved.clock,
    });
    this.#halts = new HaltGuard({
      store: this.#store,
      runs: this.#runStore,
      org,
      agentId: this.agentId,
      group: this.group,
      ...resolved.halt,
      recorder,
      errors,
      approvals: this.approvals,
      groupOf,
      stateUnknown: () => remote?.haltStateUnknown() === true,
      onHalts: () => this.#calls?.abortHalted(),
    });
    const halts = this.#halts;
    this.tokens = new Tokens({
      store: this.#store,
      org,
      // Remote mode: the control plane holds the organization key; its public half arrives by sync.
      key: resolved.url !== undefined && resolved.tokens.signingKey === undefined ? undefined : loadOrCreateKey(keyDir && join(keyDir, "organization.pem"), resolved.tokens.signingKey),
      converter: new CurrencyConverter(resolved.currencies ?? {}),
      isHalted: (info) => halts.haltedSince(info.agentId, info.issuedAt),
      onRevoke: (tokenId, reason, actor) => recorder.record(EventType.TOKEN_REVOKED, { agentId: null, runId: null }, { tokenId, reason }, actor ?? null),
      // A halted party mints nothing, and speaks as no one else.
      refuseIfHalted: (agentIds) => {
        halts.assertNotHalted({ agentId: this.agentId });
        for (const agentId of agentIds) if (agentId !== undefined) halts.assertNotHalted({ agentId });
      },
    });
    this.#decisions = new Decisions(
      { agentId: this.agentId, environment: this.environment, currencies: resolved.currencies, approvalTimeout: resolved.approvalTimeout, token: resolved.token, tokens: this.tokens, halts, errors, onPolicies: (set) => recorder.notePolicySet(set) },
      resolved.policies ?? NO_POLICIES_INPUT,
    );
    // Embedded mode knows the organization key now, so a bad token fails at startup; remote mode learns it by sync.
    if (resolved.token !== undefined && resolved.url === undefined) this.#decisions.clientToken();
    this.#runStore.saveAgent(this.agentId, this.group);
    this.#groups.set(this.agentId, this.group);
    this.#runs = new Runs({ agentId: this.agentId, store: this.#runStore, recorder, halts, decisions: this.#decisions, tokens: this.tokens, ledger: this.ledger, knownAgent: (agentId) => this.#groups.has(agentId), assertOpen });
    // A call waiting for a reviewer says so once, unless a handler routes the request elsewhere.
    const home = { store: resolved.store, organization: org, url: Array.isArray(resolved.url) ? resolved.url[0] : resolved.url };
    const onWaiting = resolved.onApprovalRequest ? undefined : (approval: ApprovalRecord) => notices.info(`waiting:${approval.approvalId}`, waitingNotice(approval, home));
    this.#calls = new ToolCalls({ agentId: this.agentId, store: this.#runStore, runs: this.#runs, decisions: this.#decisions, halts, recorder, approvals: this.approvals, assertOpen, onWaiting });
    this.#llm = new LlmCalls({ agentId: this.agentId, store: this.#runStore, runs: this.#runs, decisions: this.#decisions, halts, recorder });
    remote = this.#remote = createRemoteLink(resolved, { agentId: this.agentId, group: this.group }, {
      applyPolicies: (policies) => this.#decisions.setPolicies(policies as PolicySetInput),
      applyHalts: (records) => halts.mirror(records),
      applyApproval: (record) => this.approvals.applyRemote(record),
      applyOrganizationKey: (jwk) => this.tokens.useOrganizationKey(jwk),
      applyRevocation: (tokenId, reason) => this.tokens.noteRevoked(tokenId, reason),
      // The watermark resends events: a folded tool call is its two events.
      ledger: eventEntries(this.ledger),
      reportError: (error) => errors.report(error),
      warn: (key, message) => notices.warn(key, message),
      // Signed at once: the record of what the control plane will never see must not itself sit unsigned.
      recordGap: (gap) => {
        this.#store.append({ id: `evt_${randomUUID().replaceAll("-", "")}`, ts: Date.now(), type: TELEMETRY_GAP_ENTRY, org, agentId: this.agentId, runId: null, stepId: null, toolCallId: null, actor: null, dataJson: canonicalJson(gap) });
        this.#store.checkpointNow();
      },
    });
    if (remote !== undefined) recorder.sendTo((event) => remote.send(event));
    if (resolved.policies === undefined && resolved.url === undefined) notices.warn("no-policies", NO_POLICIES_NOTICE);
    halts.start();
    openClients.add(this);
    installExitHook();
    // Runs left `running` by a process of this host that died (kill -9) are failed as abandoned.
    if (!this.#store.isMemory) {
      try {
        this.#runs.abandonOrphans();
      } catch (error) {
        errors.report(error);
      }
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
    return this.#decisions.policies;
  }

  /**
   * The scopes the policies in force ask of whoever calls this tool (their `scope` fields), for a surface
   * that authenticates callers before the call (the MCP gateway over HTTP).
   * @example
   * warden.requiredScopes("crm.update"); // ["crm:write"]
   */
  requiredScopes(tool: string): string[] {
    return this.#decisions.scopesFor(tool);
  }

  /** Aborts when this client's agent, its group or the organization is halted; renewed on resume. */
  get signal(): AbortSignal {
    return this.#halts.signal;
  }

  /** Halts currently in force for this organization. */
  get activeHalts(): readonly HaltRecord[] {
    return this.#halts.state.active;
  }

  /** Replaces the policy set (a file path or an object); the next decision uses it. */
  setPolicies(policies: string | PolicySetInput): void {
    this.#decisions.setPolicies(policies);
  }

  /** Subscribes to one event type, or `"*"` for all. Returns the unsubscribe function. Listeners that throw are reported, never propagated. */
  on(type: EventType | "*", listener: EventListener): () => void {
    return this.#bus.on(type, listener);
  }

  /**
   * Connects a tracing integration: a run started outside any other run, without a `traceId` option,
   * takes the id `source.traceId()` returns (for OpenTelemetry, the active span's trace id), so the
   * ledger and the tracing backend share ids; and `handle.traceHeaders()` gives what `source.headers`
   * returns for the call, for adapters that send the call onward (the governed fetch). What the source
   * throws is reported, never passed on. One source at a time; returns the function that removes it.
   * `agent-warden/otel` sets it.
   * @example
   * const stop = warden.useTracing({ traceId: () => currentTraceId() });
   */
  useTracing(source: TraceContextSource): () => void {
    return this.#runs.setTracing(source);
  }

  /**
   * Runs `fn` in the trace context a caller sent with a request (`traceparent`, `tracestate`), so the
   * runs and calls it records continue the caller's trace: the serving side of propagation, as the MCP
   * server gate and gateway use it with a request's `params._meta`. Without a tracing integration
   * (`useTracing`) or trace context, `fn` just runs; what the integration throws is reported.
   * @example
   * const result = await warden.continueTrace({ traceparent: request.headers.traceparent }, () => handle(request));
   */
  continueTrace<T>(carrier: Record<string, unknown> | undefined, fn: () => T): T {
    return this.#runs.continueTrace(carrier, fn);
  }

  /**
   * The one sink for failures that must not reach agent code (telemetry, recording, a framework hook
   * that failed open): the `onError` option if set, else one process warning per kind of failure.
   * Adapters report through it; `source` names the surface in the warning.
   * @example
   * try { recordUsage(event); } catch (error) { warden.reportError(error, "ai"); }
   */
  reportError(error: unknown, source?: string): void {
    this.#errors.report(error, source);
  }

  /**
   * A value as this client records it: redacted by its `redaction` rules and the default secret
   * detection (`"[unredactable]"` when redaction fails). For surfaces that pass text on, such as the
   * MCP gateway's tool descriptions.
   * @example
   * const shown = warden.redact("call with Bearer abcdefgh12345678") as string; // "call with [REDACTED]"
   */
  redact(value: unknown): unknown {
    return this.#recorder.redact(value);
  }

  // ── decisions ─────────────────────────────────────────────────────────────────────────────

  /**
   * Decides on a call without recording it: halt state, then policies (strictest wins), then rate
   * limits and budgets. For asking before acting; adapters use `beginToolCall`, which decides once and records.
   */
  check(input: CheckInput): Decision {
    const run = input.runId === undefined ? undefined : this.#runs.get(input.runId);
    const call = this.#decisions.policyInput(input, input.agentId ?? run?.agentId ?? this.agentId);
    return this.#decisions.decide(call, run, input.runId ?? "", false, input.permission);
  }

  // ── tool calls ────────────────────────────────────────────────────────────────────────────

  /**
   * Decides on a tool call and records it (`pending` once allowed, `blocked`, `awaiting_approval`),
   * without waiting. Adapters finish it with `complete`/`fail` on the returned handle.
   *
   * One decision per call: with the framework's `externalId`, a later hook for the same call (same
   * tool, same run, or no run when the first opened one of its own) gets a handle on the same call,
   * from memory, while it is unfinished or refused: no second policy evaluation, no second record,
   * no second rate-limit slot. A `signal` given again is linked to it.
   * @example
   * const handle = warden.beginToolCall({ tool: "deploy", args, externalId: toolCall.id, signal });
   * const admission = await handle.admit();
   */
  beginToolCall(init: ToolCallInit): ToolCallHandle {
    return this.#calls.begin(init);
  }

  /**
   * The unfinished (or refused) call with this framework id that a hook of this process already
   * decided on, from memory (no store read, no policy evaluation); undefined when there is none.
   * `beginToolCall` with the same `externalId` answers the same handle: use either.
   * @example
   * const handle = warden.toolCall(toolCallId) ?? warden.beginToolCall({ tool, args, externalId: toolCallId });
   */
  toolCall(externalId: string, options: { tool?: string | undefined; runId?: string | undefined } = {}): ToolCallHandle | undefined {
    return this.#calls.lookup(externalId, options);
  }

  /** @internal The governed flow behind `run.tool` and `guard`: check → approval → execute → record. */
  execute<T>(init: ToolCallInit, fn: (context: ToolContext) => T | Promise<T>): Promise<T> {
    // Not `async`: the handle's own promise is returned as it is, not wrapped in another.
    let handle: ToolCallHandle;
    try {
      handle = this.beginToolCall(init);
    } catch (error) {
      return Promise.reject(error);
    }
    return handle.run((signal) => fn({ signal, toolCallId: handle.toolCallId, runId: handle.runId }));
  }

  /**
   * Picks up an unfinished tool call, possibly made in another process: one that paused for approval (a LangGraph
   * `interrupt()`, an AI SDK `tool-approval-request`, an OpenAI Agents interruption), by Warden id or
   * the framework's id. The handle's decision is `allow` once approved, `block` once rejected or
   * expired, and still `require_approval` while the reviewer has not answered; an allowed call that
   * has not finished yet (a coding-agent hook records the call before the tool runs) keeps its decision.
   * Undefined when no unfinished call has that id. Pass `args` when the framework hands the call's
   * arguments back on resume: an approval admits the call only with the arguments the reviewer saw.
   */
  findToolCall(id: string, options: { signal?: AbortSignal | undefined; args?: unknown } = {}): ToolCallHandle | undefined {
    try {
      return this.resumeToolCall(id, options);
    } catch (error) {
      if (WardenError.isInstance(error) && (error.code === "not_found" || error.code === "invalid_state")) return undefined;
      throw error;
    }
  }

  /** Like `findToolCall`, but an unknown call is a `NotFoundError` and a finished one an `InvalidStateError`. */
  resumeToolCall(id: string, options: { signal?: AbortSignal | undefined; args?: unknown } = {}): ToolCallHandle {
    return this.#calls.resume(id, options);
  }

  /**
   * Records a tool call that ran without passing through a decision (seen only afterwards, in a
   * framework's trace): input, output or error and duration; no decision, no approval. Returns its id.
   */
  recordToolCall(init: { tool: string; args?: unknown; output?: unknown; error?: unknown; runId?: string | undefined; externalId?: string | undefined; durationMs?: number | undefined }): string {
    return this.#calls.recordObserved(init);
  }

  // ── LLM calls ─────────────────────────────────────────────────────────────────────────────

  /**
   * Records an LLM call with its model and token usage. With a token budget, `estimatedTokens` is
   * reserved first (a call over budget is refused with `ToolBlockedError`) and reconciled on `complete`.
   */
  beginLlmCall(init: { runId?: string | undefined; model?: string | undefined; estimatedTokens?: number | undefined; input?: unknown; id?: string | undefined }): { id: string; complete(usage: LlmUsage, output?: unknown): void; fail(error: unknown): void } {
    return this.#llm.begin(init) satisfies LlmCallHandle;
  }

  /**
   * Gates a model call before it is made, for frameworks whose tracing records the call once made:
   * throws `HaltedError` on a halt and `ToolBlockedError` once the run's token budget is spent, with the
   * refusal recorded; records nothing when the call may go ahead.
   * @example
   * warden.admitLlmCall({ runId, model: "gpt-4.1" }); // then call the model; its usage is recorded from the trace
   */
  admitLlmCall(init: { runId?: string | undefined; model?: string | undefined }): void {
    this.#llm.admit(init);
  }

  // ── runs and steps ────────────────────────────────────────────────────────────────────────

  /** @internal */
  openRun(metadata: unknown, options: RunOptions & { implicit?: boolean; delegation?: Delegation } = {}): ActiveRun {
    return this.#runs.open(metadata, options);
  }

  /** @internal */
  closeRun(runId: string, status: typeof RunStatus.COMPLETED | typeof RunStatus.FAILED, detail: unknown): void {
    this.#runs.close(runId, status, detail);
  }

  /**
   * Runs `fn` as one governed run: completed when it returns, failed when it throws. Runs started
   * inside it become its children (sub-agents), acting under its token.
   * @example
   * await warden.run({ task: "refund order 1042" }, async (run) => {
   *   await run.tool("refund", { amount: 2800, currency: "EUR" }, () => payments.refund(1042));
   * });
   */
  async run<T>(metadata: unknown, fn: (run: RunScope) => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    const run = this.#runs.open(metadata, options);
    try {
      const result = await this.#runs.within(run.runId, undefined, () => fn(new RunScope(this, run)));
      this.#runs.close(run.runId, RunStatus.COMPLETED, undefined);
      return result;
    } catch (error) {
      if (this.#runs.get(run.runId)) this.#runs.close(run.runId, RunStatus.FAILED, error);
      throw error;
    }
  }

  /** @internal */
  async step<T>(runId: string, name: string, fn: () => T | Promise<T>, metadata?: Record<string, unknown>): Promise<T> {
    const stepId = this.#runs.openStep(runId, name, metadata);
    try {
      const result = await this.#runs.within(runId, stepId, fn);
      this.#runs.closeStep(runId, stepId, RunStatus.COMPLETED);
      return result;
    } catch (error) {
      this.#runs.closeStep(runId, stepId, RunStatus.FAILED);
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
    return this.#runs.open(metadata, { runId, reason, agentContext }).runId;
  }

  /** Starts a step in a run; `nameOrMetadata` is a name or metadata such as `{ phase: "analysis" }`. */
  async startStep(runId: string, nameOrMetadata: string | Record<string, unknown> = "step", metadata?: Record<string, unknown>): Promise<string> {
    const name = typeof nameOrMetadata === "string" ? nameOrMetadata : String(nameOrMetadata.name ?? nameOrMetadata.phase ?? "step");
    return this.#runs.openStep(runId, name, typeof nameOrMetadata === "string" ? metadata : nameOrMetadata);
  }

  async completeStep(runId: string, stepId: string): Promise<void> {
    this.#runs.closeStep(runId, stepId, RunStatus.COMPLETED);
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
    this.#calls.assertOfRun(runId, toolCallId);
    this.#calls.finish(toolCallId, ToolCallStatus.COMPLETED, output, undefined);
  }

  async failToolCall(runId: string, toolCallId: string, error: unknown): Promise<void> {
    this.#calls.assertOfRun(runId, toolCallId);
    this.#calls.finish(toolCallId, ToolCallStatus.FAILED, undefined, error);
  }

  /** Waits for the approval of a call `trackToolCall` left `awaiting_approval`. */
  async waitForApproval(toolCallId: string): Promise<void> {
    return this.#calls.waitForApproval(toolCallId);
  }

  async completeRun(runId: string, output?: unknown): Promise<void> {
    this.#runs.close(runId, RunStatus.COMPLETED, output);
  }

  async failRun(runId: string, error: unknown): Promise<void> {
    this.#runs.close(runId, RunStatus.FAILED, error);
  }

  /** The run with its steps, tool calls (decision, approval), events and child runs. */
  async getRun(runId: string): Promise<RunRecord> {
    return this.#runs.record(runId);
  }

  /** @internal Synchronous `getRun`, for the CLI. */
  runRecord(runId: string): RunRecord {
    return this.#runs.record(runId);
  }

  /** Runs, newest first. */
  listRuns(filter: { agentId?: string | undefined; status?: RunStatus | undefined; traceId?: string | undefined; limit?: number | undefined; offset?: number | undefined } = {}): RunSummary[] {
    return this.#runs.list(filter);
  }

  /**
   * Opens a run without a callback scope, for adapters that see a run's start and its end in separate
   * hooks (a framework's trace processor). Close it with `completeRun` or `failRun`. Throws `HaltedError` when halted.
   */
  beginRun(metadata?: unknown, options: RunOptions = {}): { runId: string; traceId: string } {
    const run = this.#runs.open(metadata, options);
    return { runId: run.runId, traceId: run.traceId };
  }

  /** The run the calling code is inside (`warden.run`, `run.step`), if any: what adapters attach framework calls to. */
  currentRun(): { runId: string; traceId: string } | undefined {
    const scope = this.#runs.currentScope();
    const run = scope && this.#runs.get(scope.runId);
    return run && { runId: run.runId, traceId: run.traceId };
  }

  // ── delegation and permissions ────────────────────────────────────────────────────────────

  /**
   * Starts work under a delegation token (verified now, offline): runs act as the token's agent
   * and tool calls outside its scopes or tools are blocked before policy.
   */
  beginDelegatedTask(token: string): DelegatedTask {
    return new DelegatedTask(this, token, this.#runs.verifyDelegation(token));
  }

  /** From the token alone (the current delegated run's, else the client's `token`): is `permission` granted? */
  hasPermission(permission: string, token: VerifiedToken | undefined = this.#currentToken()): boolean {
    return this.#decisions.hasPermission(permission, token);
  }

  /** The token (scope and amount cap), then policy (`permission` as the tool, the amount as `args.amount`): one decision. */
  authorize(permission: string, money: Partial<Money> = {}, token: VerifiedToken | undefined = this.#currentToken()): Decision {
    return this.#decisions.authorize(permission, money, token);
  }

  /** Throws `PermissionDeniedError` unless `authorize` allows (allow or warn). */
  ensureAuthorized(permission: string, money: Partial<Money> = {}, token: VerifiedToken | undefined = this.#currentToken()): void {
    const decision = this.authorize(permission, money, token);
    if (decision.action !== "allow" && decision.action !== "warn") throw new PermissionDeniedError(permission, decision.reason);
  }

  #currentToken(): VerifiedToken | undefined {
    const scope = this.#runs.currentScope();
    try {
      return (scope && this.#runs.get(scope.runId)?.token) ?? this.#decisions.clientToken();
    } catch {
      return undefined;
    }
  }

  // ── halt ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Emergency stop. No target: the whole organization. New runs and tool calls are refused with
   * `HaltedError`, in-flight calls are aborted through their signal, pending approvals cancelled;
   * a run's halt reaches its sub-agents' runs; a halted agent mints no tokens.
   * @example
   * warden.halt({ reason: "runaway refunds", agentId: "billing-agent" });
   */
  halt(input: HaltTarget & { reason: string; actor?: string | undefined }): HaltRecord {
    this.#assertOpen();
    return this.#halts.halt(input);
  }

  /** Lifts the halts with exactly this target. Returns the halts lifted. */
  resume(input: HaltTarget & { actor?: string | undefined; reason?: string | undefined } = {}): HaltRecord[] {
    this.#assertOpen();
    return this.#halts.resume(input);
  }

  /** The halt covering this agent (or one of its runs), if any. */
  haltedFor(target: { agentId?: string; runId?: string } = {}): HaltRecord | undefined {
    const agentId = target.agentId ?? this.agentId;
    return this.#halts.state.find({ agentId, group: this.#groupOf(agentId), runId: target.runId, ancestorRunIds: target.runId === undefined ? undefined : this.#runs.get(target.runId)?.ancestors });
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

  /**
   * Remote mode: sends every queued event (what cannot be sent stays in the spool), then closes. With
   * witnesses configured, signs a last checkpoint and has it witnessed first. Safe to call twice.
   */
  async shutdown(): Promise<void> {
    await this.#remote?.shutdown();
    if (!this.#closed && (this.#witnesses.length > 0 || this.#countersign !== undefined)) await this.witness().catch((error: unknown) => this.#errors.report(error));
    this.close();
  }

  /**
   * Signs a checkpoint over what is written (if anything is new) and asks the configured witnesses
   * (`ledger.witnesses`) to cosign it; the cosignatures are kept on the checkpoint and travel in evidence
   * bundles. Never throws for a witness that fails: each result says what happened.
   * @example
   * const results = await warden.witness();
   * for (const r of results) if (r.status === "refused") console.error(r.problem);
   */
  async witness(): Promise<WitnessResult[]> {
    this.#assertOpen();
    this.#store.checkpointNow();
    await this.#joinControlPlaneWitness();
    return (await this.#witnessingClient()).sync();
  }

  #witnessingClient(): Promise<Witnessing> {
    this.#witnessing ??= import("./ledger/witnessing.js").then(({ Witnessing, storeWitnessedLog }) => {
      const witnessing = new Witnessing(storeWitnessedLog(this.#store), this.#witnesses, { onError: (error) => this.#errors.report(error) });
      if (this.#closed) witnessing.close();
      return witnessing;
    });
    return this.#witnessing;
  }

  /** With `ledger.countersign`: learns the control plane's witness key once, then asks it like any witness. */
  async #joinControlPlaneWitness(): Promise<void> {
    const countersign = this.#countersign;
    if (countersign === undefined || countersign.joined) return;
    const authorization = `Bearer ${countersign.apiKey}`;
    try {
      const response = await fetch(`${countersign.url}/v1/ledger/witness/key`, { headers: { authorization }, signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new RemoteError(`the control plane did not give its witness key (${response.status})`, { status: response.status, retryable: response.status >= 500 });
      const { verifierKey } = (await response.json()) as { verifierKey: string };
      (await this.#witnessingClient()).add({ url: `${countersign.url}/v1/ledger/witness`, key: verifierKey }, { authorization, "x-warden-log-key": this.ledger.verifierKey() });
      countersign.joined = true;
    } catch (error) {
      this.#errors.report(WardenError.isInstance(error) ? error : new RemoteError(`the control plane's witness key could not be fetched: ${(error as Error).message}`, { retryable: true, cause: error }));
    }
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
    if (this.#witnessTimer) clearInterval(this.#witnessTimer);
    this.#witnessing?.then((witnessing) => witnessing.close()).catch(() => {});
    this.#halts.close();
    this.#remote?.close();
    this.approvals.close();
    openClients.delete(this);
    this.#release();
    this.#store.close();
  }

  /** Leaves this process's open runs for another process to take over (not abandoned). */
  #release(): void {
    try {
      this.#runs.release();
    } catch (error) {
      this.#errors.report(error);
    }
  }

  /** @internal On process exit, for clients never closed. */
  static releaseAll(): void {
    for (const client of openClients) client.#release();
  }

  #groupOf(agentId: string): string | undefined {
    if (this.#groups.has(agentId)) return this.#groups.get(agentId);
    const group = this.#runStore.groupOf(agentId);
    this.#groups.set(agentId, group);
    return group;
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError("this Warden client is closed");
  }
}

const openClients = new Set<Warden>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A process that exits (even without closing its clients) did not abandon its runs; one killed did.
  process.on("exit", () => Warden.releaseAll());
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}
