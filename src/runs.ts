import { hostname } from "node:os";
import type { Decisions } from "./decisions.js";
import { EventType, RunStatus, type AgentContext } from "./enums.js";
import { isHalt } from "./admission.js";
import { InvalidStateError, NotFoundError } from "./errors.js";
import type { HaltGuard } from "./halt/guard.js";
import type { RunOptions } from "./inputs.js";
import { newId } from "./internal/ids.js";
import { expandLedgerEntry } from "./ledger/fold.js";
import type { Ledger } from "./ledger/ledger.js";
import { Recorder } from "./recorder.js";
import { toApprovalRecord, toRunSummary, toStepRecord, toToolCallRecord, type RunRecord, type RunSummary } from "./records.js";
import { scopeStorage, type ActiveRun, type Scope } from "./scope.js";
import type { RunStore } from "./store/run-store.js";
import type { VerifiedToken } from "./tokens/token.js";
import { stillValid, type Tokens } from "./tokens/tokens.js";

/**  A delegation token handed to a run (`DelegatedTask.run`). */
export interface Delegation {
  token: string;
  verified: VerifiedToken;
}

/**
 * What a tracing integration gives the core, which never imports one: the trace id a new run takes,
 * and the headers that carry a tool call's trace context to the service it calls. Set with
 * `warden.useTracing`; `agent-warden/otel` is one.
 * @example
 * import type { TraceContextSource } from "agent-warden";
 * const tracing: TraceContextSource = { traceId: () => activeTraceId(), headers: (toolCallId) => ({ traceparent: traceparentOf(toolCallId) }) };
 */
export interface TraceContextSource {
  /** The trace id a run started outside any other run takes (unless given `traceId`); undefined keeps Warden's own. */
  traceId?(): string | undefined;
  /** Headers (`traceparent`, `tracestate`) that continue the tool call's trace where the call goes; undefined for none. */
  headers?(toolCallId: string): Record<string, string> | undefined;
  /**
   * Runs `fn` inside the trace context that `carrier` (`traceparent`, `tracestate` as a caller sent them)
   * continues, so what Warden records meanwhile joins the caller's trace. Must call `fn` once.
   */
  continueFrom?<T>(carrier: Record<string, string>, fn: () => T): T;
}

/**  What runs and steps need, injected. */
export interface RunsDeps {
  agentId: string;
  store: RunStore;
  recorder: Recorder;
  halts: HaltGuard;
  decisions: Decisions;
  tokens: Tokens;
  ledger: Ledger;
  /** Agents whose group is known; a run acting as a new agent registers it. */
  knownAgent: (agentId: string) => boolean;
  assertOpen: () => void;
}

/** How many open steps are remembered in memory; older ones are checked against the store when closed. */
const OPEN_STEPS_KEPT = 10_000;

/** This process, as runs record their owner: a run whose owner is gone was abandoned. */
export const PROCESS_OWNER = `${hostname()}:${process.pid}`;

/**
 * Runs and steps: opened, closed, taken over from another process, nested into a tree (sub-agents),
 * and read back. Tracks the runs open in this process and the scope (`AsyncLocalStorage`) that
 * places nested calls in them.
 */
export class Runs {
  readonly #deps: RunsDeps;
  readonly #open = new Map<string, ActiveRun>();
  /**
   * Steps this process opened and has not closed, to their run: closing one checks it here rather than
   * reading its row, a read that would commit the queued writes on the caller's thread. Bounded; a step
   * not found here (opened elsewhere, or forgotten) is checked against the store.
   */
  readonly #openSteps = new Map<string, string>();
  /** The tracing integration, if one is set (see `Warden.useTracing`). */
  #tracing: TraceContextSource | undefined;

  constructor(deps: RunsDeps) {
    this.#deps = deps;
  }

  get(runId: string): ActiveRun | undefined {
    return this.#open.get(runId);
  }

  /** Sets the tracing integration; returns what removes it (if it is still the one set). */
  setTracing(source: TraceContextSource): () => void {
    this.#tracing = source;
    return () => {
      if (this.#tracing === source) this.#tracing = undefined;
    };
  }

  /** The trace id the integration gives, if any: one that throws or answers nonsense is reported and ignored. */
  #sourcedTraceId(): string | undefined {
    const source = this.#tracing;
    if (source?.traceId === undefined) return undefined;
    try {
      const id = source.traceId();
      return typeof id === "string" && id.length > 0 && id.length <= 128 ? id : undefined;
    } catch (error) {
      this.#deps.recorder.errors.report(error, "tracing");
      return undefined;
    }
  }

  /** The headers that carry a tool call's trace context onward; empty without a tracing integration. */
  traceHeaders(toolCallId: string): Record<string, string> {
    const source = this.#tracing;
    if (source?.headers === undefined) return {};
    try {
      return traceCarrier(source.headers(toolCallId));
    } catch (error) {
      this.#deps.recorder.errors.report(error, "tracing");
      return {};
    }
  }

  /**
   * Runs `fn` in the trace context a caller sent (see `Warden.continueTrace`); without a tracing
   * integration, or with an empty carrier, `fn` simply runs. A source that fails before running `fn`
   * is reported and `fn` runs without it: tracing never stands between a call and its decision.
   */
  continueTrace<T>(carrier: Record<string, unknown> | undefined, fn: () => T): T {
    const source = this.#tracing;
    const headers = source?.continueFrom === undefined ? {} : traceCarrier(carrier);
    if (source?.continueFrom === undefined || Object.keys(headers).length === 0) return fn();
    let ran = false;
    try {
      return source.continueFrom(headers, () => {
        ran = true;
        return fn();
      });
    } catch (error) {
      if (ran) throw error;
      this.#deps.recorder.errors.report(error, "tracing");
      return fn();
    }
  }

  /** The scope of the calling code, if it is inside one of this client's open runs. */
  currentScope(): Scope | undefined {
    const scope = scopeStorage.getStore();
    return scope?.owner === this && this.#open.has(scope.runId) ? scope : undefined;
  }

  /**
   * Verifies the token work is about to start under (`beginDelegatedTask`). A token a halt invalidated is
   * refused as a run under it would be, and the refusal goes into the ledger first: no run is open to hold it.
   */
  verifyDelegation(token: string): VerifiedToken {
    const { tokens, recorder } = this.#deps;
    try {
      return tokens.verify(token);
    } catch (error) {
      // Halts are checked after the signatures, so the chain read here is the one that verified.
      if (isHalt(error)) {
        const chain = tokens.inspect(token).chain;
        const agentId = chain.findLast((block) => block.audience !== undefined)?.audience ?? this.#deps.agentId;
        recorder.record(EventType.RUN_FAILED, { agentId, runId: null }, { refused: true, tokenId: chain[0]!.id, error: Recorder.serializeError(error) });
      }
      throw error;
    }
  }

  /** The run a call lands in: the one named, else the enclosing one, else a run of its own (implicit). */
  resolve(runId: string | undefined, agentId: string | undefined): ActiveRun {
    const id = runId ?? this.currentScope()?.runId;
    if (id === undefined) return this.open(undefined, { implicit: true, agentId });
    return this.#open.get(id) ?? this.adopt(id);
  }

  open(metadata: unknown, options: RunOptions & { implicit?: boolean; delegation?: Delegation } = {}): ActiveRun {
    this.#deps.assertOpen();
    const { halts, recorder, store } = this.#deps;
    const agentId = options.agentId ?? this.#deps.agentId;
    const runId = options.runId ?? newId("run");
    if (this.#open.has(runId)) throw new InvalidStateError(`run "${runId}" is already running`);
    const enclosing = this.currentScope();
    const parentRunId = options.parentRunId ?? enclosing?.runId;
    const parent = parentRunId === undefined ? undefined : this.#open.get(parentRunId);
    const ancestors = parentRunId === undefined ? [] : [parentRunId, ...(parent?.ancestors ?? [])];
    const halt = halts.find({ agentId, runId, ancestorRunIds: ancestors });
    if (halt !== undefined) {
      // The refusal is evidence of the halt's effect: it goes into the ledger before the throw.
      const error = halts.error(halt);
      recorder.record(EventType.RUN_FAILED, { agentId, runId }, { refused: true, parentRunId, error: Recorder.serializeError(error) });
      throw error;
    }
    const traceId = options.traceId ?? parent?.traceId ?? (parentRunId ? store.traceOf(parentRunId) : undefined) ?? this.#sourcedTraceId() ?? newId("trace");
    // A sub-agent never holds more than its spawner: without a token of its own, a run acts under its
    // parent run's token, else the client's (whatever agent id it acts as).
    const token = options.delegation?.verified ?? (parent !== undefined ? parent.token : undefined) ?? this.#deps.decisions.clientToken();
    if (token !== undefined) {
      const invalid = stillValid(this.#deps.tokens, token, (info) => halts.haltedSince(info.agentId, info.issuedAt), Date.now());
      if (invalid) {
        recorder.record(EventType.RUN_FAILED, { agentId, runId }, { refused: true, parentRunId, tokenId: token.id, error: Recorder.serializeError(invalid) });
        throw invalid;
      }
    }
    const agentContext = options.agentContext === undefined ? undefined : (recorder.redact(options.agentContext) as AgentContext);
    const reason = options.reason === undefined ? undefined : (recorder.redact(options.reason) as string);
    const run: ActiveRun = { runId, agentId, traceId, implicit: options.implicit === true, ancestors, token, agentContext };
    const recorded = recorder.recordable(metadata);
    run.row = store.insertRun({
      id: runId,
      agent_id: agentId,
      trace_id: traceId,
      parent_run_id: parentRunId ?? null,
      status: RunStatus.RUNNING,
      metadata: recorded.json,
      reason: reason ?? null,
      agent_context: agentContext ? JSON.stringify(agentContext) : null,
      token_id: token?.id ?? null,
      owner: PROCESS_OWNER,
      started_at: Date.now(),
    });
    this.#open.set(runId, run);
    if (agentId !== this.#deps.agentId && !this.#deps.knownAgent(agentId)) store.noteAgent(agentId);
    recorder.record(EventType.RUN_STARTED, { agentId, runId }, { traceId, parentRunId, tokenId: token?.id, metadata: recorded.value, reason, agentContext, implicit: run.implicit || undefined });
    return run;
  }

  /** Takes over a run another process (or an earlier life of this one) started, to resume it. */
  adopt(runId: string): ActiveRun {
    const existing = this.#open.get(runId);
    if (existing) return existing;
    const row = this.#deps.store.runHead(runId);
    if (!row) throw new NotFoundError("run", runId);
    if (row.status !== RunStatus.RUNNING) throw new InvalidStateError(`run "${runId}" is ${row.status}; start a new run`);
    const run: ActiveRun = { runId, agentId: row.agent_id, traceId: row.trace_id, implicit: false, ancestors: this.#ancestorsOf(runId), token: undefined };
    // The run acted under a delegation token this process cannot recover (only its id is stored):
    // its calls are refused rather than let through without the token's limits.
    if (row.token_id !== null) {
      let own: VerifiedToken | undefined;
      try {
        own = this.#deps.decisions.clientToken();
      } catch {
        own = undefined;
      }
      if (own?.id === row.token_id) run.token = own;
      else run.tokenMissing = row.token_id;
    }
    this.#open.set(runId, run);
    return run;
  }

  #ancestorsOf(runId: string): string[] {
    const ancestors: string[] = [];
    let parent = this.#deps.store.run(runId)?.parent_run_id ?? null;
    while (parent !== null && ancestors.length < 64 && !ancestors.includes(parent)) {
      ancestors.push(parent);
      parent = this.#open.get(parent)?.ancestors[0] ?? this.#deps.store.run(parent)?.parent_run_id ?? null;
    }
    return ancestors;
  }

  close(runId: string, status: typeof RunStatus.COMPLETED | typeof RunStatus.FAILED, detail: unknown): void {
    const run = this.adopt(runId);
    this.#open.delete(runId);
    this.#deps.decisions.forgetRun(runId);
    const recorded = this.#deps.recorder.recordable(detail === undefined ? undefined : status === RunStatus.FAILED ? Recorder.serializeError(detail) : detail);
    this.#deps.store.endRun(run.row, runId, status, status === RunStatus.FAILED ? recorded.json : null);
    this.#deps.recorder.record(status === RunStatus.COMPLETED ? EventType.RUN_COMPLETED : EventType.RUN_FAILED, { agentId: run.agentId, runId }, status === RunStatus.COMPLETED ? { output: recorded.value } : { error: recorded.value });
  }

  /** A run a single call opened ends with it: completed unless the call failed or a halt stopped it. */
  endImplicit(run: ActiveRun, completed: boolean): void {
    if (!run.implicit || !this.#open.has(run.runId)) return;
    this.close(run.runId, completed ? RunStatus.COMPLETED : RunStatus.FAILED, completed ? undefined : { message: "tool call did not complete" });
  }

  /** Runs `fn` inside the run's scope: nested runs, steps and calls land in it. */
  within<T>(runId: string, stepId: string | undefined, fn: () => T): T {
    return scopeStorage.run({ owner: this, runId, stepId }, fn);
  }

  openStep(runId: string, name: string, metadata: Record<string, unknown> | undefined): string {
    const run = this.resolve(runId, undefined);
    const stepId = newId("step");
    const recorded = this.#deps.recorder.recordable(metadata);
    this.#deps.store.insertStep(stepId, runId, name, recorded.json);
    if (this.#openSteps.size >= OPEN_STEPS_KEPT) this.#openSteps.delete(this.#openSteps.keys().next().value!);
    this.#openSteps.set(stepId, runId);
    this.#deps.recorder.record(EventType.STEP_STARTED, { agentId: run.agentId, runId, stepId }, { name, metadata: recorded.value });
    return stepId;
  }

  closeStep(runId: string, stepId: string, status: RunStatus): void {
    const run = this.#open.get(runId);
    const openIn = this.#openSteps.get(stepId);
    if (openIn === undefined) {
      const row = this.#deps.store.step(stepId);
      if (!row || row.run_id !== runId) throw new NotFoundError("step", stepId);
      if (row.status !== RunStatus.RUNNING) throw new InvalidStateError(`step "${stepId}" is already ${row.status}`);
    } else if (openIn !== runId) throw new NotFoundError("step", stepId);
    this.#openSteps.delete(stepId);
    this.#deps.store.endStep(stepId, status);
    this.#deps.recorder.record(EventType.STEP_COMPLETED, { agentId: run?.agentId ?? this.#deps.agentId, runId, stepId }, { status });
  }

  /** The run with its steps, tool calls (decision, approval), events and child runs. */
  record(runId: string): RunRecord {
    const { store } = this.#deps;
    const row = store.run(runId);
    if (!row) throw new NotFoundError("run", runId);
    const approvals = new Map(store.approvalsOf(runId).map((a) => [a.tool_call_id, toApprovalRecord(a)]));
    return {
      ...toRunSummary(row),
      steps: store.stepsOf(runId).map(toStepRecord),
      toolCalls: store.toolCallsOf(runId).map((tc) => toToolCallRecord(tc, approvals.get(tc.id))),
      // A tool call folded into one entry is its two events again.
      events: this.#deps.ledger.entries({ runId }).flatMap(expandLedgerEntry).map(({ id, type, ts, org, agentId, runId: r, stepId, toolCallId, actor, data }) => ({ id, type: type as EventType, ts, org, agentId, runId: r, stepId, toolCallId, actor, data: data as Record<string, unknown> })),
      childRunIds: store.childRunIds(runId),
    };
  }

  list(filter: { agentId?: string | undefined; status?: RunStatus | undefined; traceId?: string | undefined; limit?: number | undefined; offset?: number | undefined }): RunSummary[] {
    return this.#deps.store.listRuns(filter).map(toRunSummary);
  }

  /** On a clean close (or exit): runs still open are left for another process, not abandoned. */
  release(): void {
    this.#deps.store.releaseRuns(PROCESS_OWNER);
  }

  /**
   * Runs of this organization left `running` by a process of this host that is gone (`kill -9`, a
   * crash): failed with error `abandoned`, each with a `run.failed` event. Returns their ids.
   */
  abandonOrphans(): string[] {
    const host = `${hostname()}:`;
    const abandoned: string[] = [];
    for (const [owner, runs] of this.#deps.store.runningOwners()) {
      if (owner === PROCESS_OWNER || !owner.startsWith(host)) continue;
      const pid = Number(owner.slice(host.length));
      if (!Number.isInteger(pid) || processAlive(pid)) continue;
      for (const run of runs) {
        const error = { name: "AbandonedRun", message: "abandoned", owner };
        if (!this.#deps.store.abandonRun(run.id, JSON.stringify(error))) continue;
        this.#deps.recorder.record(EventType.RUN_FAILED, { agentId: run.agent_id, runId: run.id }, { error, abandoned: true });
        abandoned.push(run.id);
      }
    }
    return abandoned;
  }
}

/** True unless the process surely does not exist (a process of another user still counts as alive). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Trace context entries fit for a header or an MCP `_meta` key: short names, short string values, at most 8 of them. */
function traceCarrier(carrier: Record<string, unknown> | null | undefined): Record<string, string> {
  if (typeof carrier !== "object" || carrier === null) return {};
  const kept: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(carrier)) {
    if (/^[a-z0-9-]{1,64}$/i.test(key) && typeof value === "string" && value.length <= 512) kept.push([key, value]);
    if (kept.length === 8) break;
  }
  return Object.fromEntries(kept);
}
