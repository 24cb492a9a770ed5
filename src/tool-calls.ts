import { abortedWait, isHalt, refusalOf } from "./admission.js";
import type { Approvals } from "./approvals/approvals.js";
import type { Decision } from "./decision.js";
import { Decisions } from "./decisions.js";
import { strictness, type PolicyInputCall } from "./policy/engine.js";
import { ApprovalStatus, EventType, RunStatus, ToolCallStatus, type ActionType, type AgentContext } from "./enums.js";
import { ApprovalRejectedError, ApprovalTimeoutError, HaltedError, InvalidInputError, InvalidStateError, NotFoundError, ToolBlockedError, WardenError } from "./errors.js";
import type { HaltGuard } from "./halt/guard.js";
import type { ToolCallInit } from "./inputs.js";
import { raceAbort } from "./internal/abort.js";
import { newId } from "./internal/ids.js";
import { argsDigest } from "./approvals/binding.js";
import { Recorder } from "./recorder.js";
import { decisionOf, storedDecision, type ApprovalRecord } from "./records.js";
import type { Runs } from "./runs.js";
import type { ActiveRun } from "./scope.js";
import type { RunStore, ToolCallColumn } from "./store/run-store.js";
import type { SQLInputValue } from "node:sqlite";
import { ToolCallHandle, type ActiveToolCall, type WardenInternals } from "./tool-call.js";

/**  What tool calls need, injected. */
export interface ToolCallsDeps {
  /** The client's own agent: what a call acts as when nothing else says. */
  agentId: string;
  store: RunStore;
  runs: Runs;
  decisions: Decisions;
  halts: HaltGuard;
  recorder: Recorder;
  approvals: Approvals;
  assertOpen: () => void;
  /** Told once when a call starts waiting for a reviewer, so a waiting program is never silent. */
  onWaiting?: ((approval: ApprovalRecord) => void) | undefined;
}

/** How many refused calls stay findable by their framework id. */
const REFUSED_KEPT = 1024;

/**
 * Governed tool calls: decided once and recorded (`beginToolCall`), found again by the framework's id
 * for the hooks that follow, resumed after a pause, waited on for approval, stopped by a halt, and
 * finished (output or failure, never a success a halt interrupted).
 */
export class ToolCalls {
  readonly #deps: ToolCallsDeps;
  readonly #calls = new Map<string, ActiveToolCall>();
  /** In-flight calls by the framework's id, for the hooks that follow and resuming without a store read. */
  readonly #byExternalId = new Map<string, string>();
  /** Calls refused (blocked, rejected) by their framework id, for the hooks that follow; bounded. */
  readonly #refusedByExternalId = new Map<string, ActiveToolCall>();
  readonly internals: WardenInternals;
  /** This client, as the one user of an approval it admits (another process presenting it again is a replay). */
  readonly #instance = newId("wdn");

  constructor(deps: ToolCallsDeps) {
    this.#deps = deps;
    this.internals = {
      blockError: (decision, toolName, toolCallId) => blockError(decision, toolName, toolCallId),
      waitForApproval: (toolCallId) => this.waitForApproval(toolCallId),
      backpressure: () => this.#deps.store.backpressure(),
      link: (toolCallId, signal) => {
        const state = this.#calls.get(toolCallId);
        if (state) this.#link(state, signal);
      },
      finishToolCall: (toolCallId, status, output, error) => this.finish(toolCallId, status, output, error),
      stop: (toolCallId, error) => {
        if (this.#calls.get(toolCallId)?.status === ToolCallStatus.PENDING) this.finish(toolCallId, ToolCallStatus.FAILED, undefined, error);
      },
      approvedReason: (toolCallId) => this.#approvedReason(toolCallId),
      reportError: (error, source) => this.#deps.recorder.errors.report(error, source),
      traceHeaders: (toolCallId) => deps.runs.traceHeaders(toolCallId),
      admitApproved: (toolCallId, presented) => this.#admitApproved(toolCallId, presented),
    };
  }

  /** Decides on a call and records it; the same call again (by framework id) gets the first decision. */
  begin(init: ToolCallInit): ToolCallHandle {
    const { runs, decisions, halts, recorder } = this.#deps;
    this.#deps.assertOpen();
    if (typeof init.tool !== "string" || init.tool.length === 0) throw new InvalidInputError("a tool call needs a tool name");
    if (init.externalId !== undefined) {
      const decided = this.#decidedCall(init);
      if (decided !== undefined) return decided;
    }
    // Recordable first: nothing is decided or counted for a call whose arguments cannot be recorded.
    const input = recorder.recordable(init.args ?? {});
    if (init.runId === undefined && runs.currentScope() === undefined) {
      // No run open: a halt refuses the call before a run of its own is opened, and says so in the ledger.
      const agentId = init.agentId ?? this.#deps.agentId;
      const halt = halts.find({ agentId });
      if (halt !== undefined) {
        const decision = halts.decision(decisions.actionTypeOf(init.tool), halt);
        recorder.record(EventType.TOOL_BLOCKED, { agentId, runId: null }, { toolName: init.tool, input: input.value, reason: decision.reason, halted: true, refused: true });
        throw halts.error(halt);
      }
    }
    const run = runs.resolve(init.runId, init.agentId);
    const agentId = init.agentId ?? run.agentId;
    const toolCallId = newId("tc");
    const call = init.aliases === undefined || init.aliases.length === 0 ? decisions.policyInput(init, agentId) : this.#strictestName(init, agentId, run);
    const tool = call.tool;
    const decided = decisions.decide(call, run, run.runId, true, init.permission);
    const decision = init.shadow ? shadowed(decided) : decided;
    const stepId = init.stepId ?? runs.currentScope()?.stepId;
    const agentContext = init.agentContext === undefined ? run.agentContext : (recorder.redact({ ...run.agentContext, ...init.agentContext }) as AgentContext);
    // Free text too: an agent's stated reason can quote a secret.
    const reason = init.reason === undefined ? undefined : (recorder.redact(init.reason) as string);
    const status = decision.action === "block" ? ToolCallStatus.BLOCKED : decision.action === "require_approval" ? ToolCallStatus.AWAITING_APPROVAL : ToolCallStatus.PENDING;
    const state: ActiveToolCall = { toolCallId, externalId: init.externalId, runId: run.runId, stepId, agentId, toolName: tool, status, startedAt: performance.now(), controller: new AbortController(), cleanup: undefined, approvalId: undefined, decision, implicitRun: run.implicit || undefined, presented: { args: init.args ?? {} }, policyCall: call };
    state.row = this.#deps.store.insertToolCall({
      id: toolCallId,
      external_id: init.externalId ?? null,
      run_id: run.runId,
      step_id: stepId ?? null,
      agent_id: agentId,
      kind: "tool",
      tool_name: tool,
      action_type: call.action,
      status,
      input: input.json,
      blocked_reason: decision.action === "block" ? decision.reason : null,
      decision: storedDecision(decision),
      agent_context: agentContext ? JSON.stringify(agentContext) : null,
      reason: reason ?? null,
      started_at: Date.now(),
    });
    const ids = { agentId, runId: run.runId, stepId, toolCallId };
    recorder.record(EventType.TOOL_CALLED, ids, { toolName: tool, actionType: call.action, input: input.value, decision: decision.action, reason, agentContext, externalId: init.externalId });
    if (decision.matches.length > 0) recorder.record(EventType.POLICY_MATCHED, ids, { toolName: tool, decision: decision.action, policyId: decision.policyId, matches: decision.matches });
    // A risk: a warning, a policy with a severity, or a shadow policy that would have acted.
    const flagged = decision.matches.length === 0 ? undefined : decision.matches.filter((m) => m.action !== "allow" || m.severity !== undefined);
    if (flagged !== undefined && flagged.length > 0 && (decision.action === "warn" || flagged.some((m) => m.severity !== undefined || m.mode === "shadow"))) {
      recorder.record(EventType.RISK_DETECTED, ids, { toolName: tool, decision: decision.action, severity: decision.severity ?? flagged.find((m) => m.severity)?.severity ?? "medium", policies: flagged.map((m) => ({ policyId: m.policyId, action: m.action, mode: m.mode, severity: m.severity })) });
    }
    if (decision.action === "block") {
      recorder.record(EventType.TOOL_BLOCKED, ids, { toolName: tool, reason: decision.reason, policyId: decision.policyId, halted: decision.halted === true });
      // A refusal is an answer, not a failure of the run it opened; a halt stops that run.
      runs.endImplicit(run, decision.halted !== true);
      this.#rememberRefused(state);
      return new ToolCallHandle(this.internals, state, undefined);
    }
    this.#track(state);
    if (init.signal) this.#link(state, init.signal);
    let approval: ApprovalRecord | undefined;
    if (decision.action === "require_approval") {
      approval = this.#deps.approvals.create({ toolCallId, runId: run.runId, agentId, toolName: tool, payload: input.value, args: init.args ?? {}, agentContext, policyId: decision.policyId, policyVersion: decisions.policyVersion, rule: decision.approvalRule, reason: decision.reason, timeoutMs: decision.timeoutMs });
      state.approvalId = approval.approvalId;
      state.approval = approval;
      this.#deps.approvals.notify(approval);
    }
    return new ToolCallHandle(this.internals, state, approval);
  }

  /**
   * The call a framework hook already decided on, by the framework's id, from memory: a later hook for
   * the same call gets the same decision, with no second policy evaluation and no second record.
   * Unfinished calls, and calls refused in a run still open or a run of their own. Undefined otherwise,
   * or when the id was used for another tool, agent or run.
   */
  #decidedCall(init: ToolCallInit): ToolCallHandle | undefined {
    const externalId = init.externalId!;
    const open = this.#byExternalId.get(externalId);
    const state = (open === undefined ? undefined : this.#calls.get(open)) ?? this.#refusedByExternalId.get(externalId);
    if (state === undefined || (state.toolName !== init.tool && !init.aliases?.includes(state.toolName)) || (init.agentId !== undefined && init.agentId !== state.agentId)) return undefined;
    const runId = init.runId ?? this.#deps.runs.currentScope()?.runId;
    if (runId === undefined ? state.implicitRun !== true : runId !== state.runId) return undefined;
    if (init.signal && this.#calls.has(state.toolCallId)) this.#link(state, init.signal);
    // Approved while in memory: the handle says so, as `resume` would.
    const decision: Decision = state.decision.action === "require_approval" && state.status === ToolCallStatus.PENDING ? ({ ...state.decision, action: "allow", reason: this.#approvedReason(state.toolCallId) ?? "approved" } as Decision) : state.decision;
    return new ToolCallHandle(this.internals, { ...state, decision }, state.approval);
  }

  /** The call with this framework id a hook of this process decided on, from memory. */
  lookup(externalId: string, options: { tool?: string | undefined; runId?: string | undefined }): ToolCallHandle | undefined {
    const open = this.#byExternalId.get(externalId);
    const state = (open === undefined ? undefined : this.#calls.get(open)) ?? this.#refusedByExternalId.get(externalId);
    if (state === undefined) return undefined;
    return this.#decidedCall({ tool: options.tool ?? state.toolName, externalId, runId: options.runId ?? state.runId });
  }

  /** Keeps a refused call findable by its framework id for the hooks that follow (bounded: oldest forgotten first). */
  #rememberRefused(state: ActiveToolCall): void {
    if (state.externalId === undefined) return;
    this.#refusedByExternalId.delete(state.externalId);
    if (this.#refusedByExternalId.size >= REFUSED_KEPT) this.#refusedByExternalId.delete(this.#refusedByExternalId.keys().next().value!);
    this.#refusedByExternalId.set(state.externalId, state);
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

  /**
   * Picks up an unfinished tool call, possibly made in another process, by Warden id or the
   * framework's id: approved calls come back allowed, rejected or expired ones blocked, halted ones halted.
   */
  resume(id: string, options: { signal?: AbortSignal | undefined; args?: unknown }): ToolCallHandle {
    const { store, runs, approvals, halts } = this.#deps;
    this.#deps.assertOpen();
    let state = this.#calls.get(id) ?? this.#calls.get(this.#byExternalId.get(id) ?? "");
    if (state === undefined) {
      const row = store.findToolCall(id);
      if (!row) throw new NotFoundError("tool call", id);
      const decision = decisionOf(row) ?? null;
      const approvalId = approvals.forToolCall(row.id)?.approvalId;
      // Unfinished: awaiting a reviewer, or allowed (perhaps approved by another process) and not yet completed.
      const resumable = row.status === ToolCallStatus.AWAITING_APPROVAL || row.status === ToolCallStatus.PENDING;
      if (!resumable || decision === null) throw new InvalidStateError(`tool call "${id}" is ${row.status}; only an unfinished call can be resumed`);
      // The run may have ended while the call waited (an SDK pauses a call across two requests): the call can still finish.
      if (store.runStatus(row.run_id) === RunStatus.RUNNING) runs.adopt(row.run_id);
      state = { toolCallId: row.id, externalId: row.external_id ?? undefined, runId: row.run_id, stepId: row.step_id ?? undefined, agentId: row.agent_id, toolName: row.tool_name, status: row.status as ToolCallStatus, startedAt: performance.now(), controller: new AbortController(), cleanup: undefined, approvalId, decision, policyCall: { tool: row.tool_name, action: row.action_type as ActionType, agent: row.agent_id, environment: undefined, args: {}, metadata: undefined } };
      this.#track(state);
    }
    if (options.signal) this.#link(state, options.signal);
    const approval = state.approvalId === undefined ? undefined : approvals.get(state.approvalId);
    if (state.status === ToolCallStatus.AWAITING_APPROVAL && approval && approval.status !== ApprovalStatus.PENDING) {
      if (approval.status === ApprovalStatus.APPROVED) this.#markApproved(state);
      else this.finish(state.toolCallId, ToolCallStatus.REJECTED, undefined, undefined, approval.decisionReason ?? approval.status);
    }
    const halt = halts.find({ agentId: state.agentId, runId: state.runId, ancestorRunIds: runs.get(state.runId)?.ancestors });
    let decision: Decision = state.decision;
    if (halt !== undefined) decision = halts.decision(state.decision.actionType, halt);
    else if (approval?.status === ApprovalStatus.APPROVED) decision = { ...state.decision, action: "allow", reason: `approved${approval.reviewer ? ` by ${approval.reviewer}` : ""}` } as Decision;
    else if (approval && approval.status !== ApprovalStatus.PENDING) decision = { ...state.decision, action: "block", reason: `approval ${approval.status}${approval.decisionReason ? `: ${approval.decisionReason}` : ""}` } as Decision;
    // The arguments the framework hands back on resume are the ones an approval must cover.
    const presented = "args" in options ? { args: options.args ?? {} } : state.presented;
    return new ToolCallHandle(this.internals, { ...state, decision, presented }, approval);
  }

  /**
   * The binding check of an approved call, in one place for every surface: the presented call must be
   * the one approved (tool, agent, run, arguments' digest), under a policy set that still asks for this
   * approval, before its expiry, and the approval unused by any other client. A refusal finishes the
   * call as rejected and is recorded.
   */
  #admitApproved(toolCallId: string, presented: { args: unknown } | undefined): WardenError | undefined {
    const { approvals, decisions, runs } = this.#deps;
    const state = this.#calls.get(toolCallId);
    if (state === undefined || state.approvalId === undefined) return undefined;
    const approvalId = state.approvalId;
    const error = approvals.admit(approvalId, {
      toolName: state.toolName,
      agentId: state.agentId,
      runId: state.runId,
      argsDigest: presented === undefined ? undefined : argsDigest(approvalId, presented.args),
      consumer: `${toolCallId}@${this.#instance}`,
      policyVersion: decisions.policyVersion,
      redecide: () => {
        // Without the arguments the new policies cannot be asked: the approval does not carry over.
        if (presented === undefined || state.policyCall === undefined) return { action: "unknown", policyId: undefined };
        const decision = decisions.decide({ ...state.policyCall, args: presented.args }, runs.get(state.runId), state.runId, false);
        return { action: decision.action, policyId: decision.policyId };
      },
    });
    if (error === undefined) return undefined;
    if (error.reason === "used") {
      // The call is another client's, which admitted it: its record stays theirs; this replay is only let go (and recorded as refused).
      this.#calls.delete(toolCallId);
      if (state.externalId !== undefined) this.#byExternalId.delete(state.externalId);
      state.cleanup?.();
    } else this.finish(toolCallId, ToolCallStatus.REJECTED, undefined, undefined, error.message);
    this.#refused(state, error);
    return error;
  }

  async waitForApproval(toolCallId: string): Promise<void> {
    const { approvals, halts, runs } = this.#deps;
    const state = this.#calls.get(toolCallId);
    if (!state || state.approvalId === undefined) throw new InvalidStateError(`tool call "${toolCallId}" is not awaiting approval`);
    if (state.status !== ToolCallStatus.AWAITING_APPROVAL) return;
    const pending = approvals.get(state.approvalId);
    if (pending.status === ApprovalStatus.PENDING) this.#deps.onWaiting?.(pending);
    const settled =
      pending.status === ApprovalStatus.PENDING
        ? await raceAbort(state.controller.signal, () => approvals.wait(pending)).catch((error: unknown) => {
            // A halt while waiting cancels the request (and the halt records the call as refused).
            if (isHalt(error)) {
              approvals.cancel([pending.approvalId], (error as Error).message);
              throw this.#refused(state, error as WardenError);
            }
            // The caller gave up (its signal aborted): the request is cancelled and the call recorded as
            // rejected, never left awaiting a reviewer whose answer nothing would act on.
            approvals.cancel([pending.approvalId], "aborted");
            if (this.#calls.get(toolCallId)?.status === ToolCallStatus.AWAITING_APPROVAL) this.finish(toolCallId, ToolCallStatus.REJECTED, undefined, undefined, "aborted");
            this.#refused(state, abortedWait(pending.approvalId, state.toolName, error));
            // `waitForApproval` rethrows the signal's reason as it always did; `admit()` answers refused/aborted.
            throw error;
          })
        : pending;
    if (settled.status === ApprovalStatus.APPROVED) {
      this.#markApproved(state);
      return;
    }
    this.finish(toolCallId, ToolCallStatus.REJECTED, undefined, undefined, settled.decisionReason ?? settled.status);
    if (settled.status === ApprovalStatus.EXPIRED) throw this.#refused(state, new ApprovalTimeoutError({ approvalId: settled.approvalId, toolName: state.toolName, timeoutMs: settled.expiresAt - settled.createdAt }));
    if (settled.status === ApprovalStatus.CANCELLED) {
      // A halt in another process cancels the request; its cancellation can arrive before this process's halt poll does.
      halts.poll();
      const halt = halts.covering({ agentId: state.agentId, runId: state.runId, ancestorRunIds: runs.get(state.runId)?.ancestors });
      if (halt) throw this.#refused(state, halts.error(halt));
    }
    throw this.#refused(state, new ApprovalRejectedError({ approvalId: settled.approvalId, toolName: state.toolName, reviewer: settled.reviewer, reason: settled.decisionReason }));
  }

  #approvedReason(toolCallId: string): string | undefined {
    const approvalId = this.#calls.get(toolCallId)?.approvalId;
    const approval = approvalId === undefined ? undefined : this.#deps.approvals.get(approvalId);
    return approval?.status === ApprovalStatus.APPROVED ? `approved${approval.reviewer ? ` by ${approval.reviewer}` : ""}` : undefined;
  }

  #track(state: ActiveToolCall): void {
    this.#calls.set(state.toolCallId, state);
    if (state.externalId !== undefined) this.#byExternalId.set(state.externalId, state.toolCallId);
  }

  #markApproved(state: ActiveToolCall): void {
    if (state.status !== ToolCallStatus.AWAITING_APPROVAL) return;
    state.status = ToolCallStatus.PENDING;
    this.#deps.store.updateToolCall(state.row, state.toolCallId, { status: ToolCallStatus.PENDING });
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

  /** True when `runId` has this call in it; an `InvalidInputError` names the run it belongs to otherwise. */
  assertOfRun(runId: string, toolCallId: string): void {
    const state = this.#calls.get(toolCallId);
    if (state && state.runId !== runId) throw new InvalidInputError(`tool call "${toolCallId}" belongs to run "${state.runId}", not "${runId}"`);
  }

  /**
   * A call known by several names (a framework renamed it): the name whose decision is strictest, so
   * a policy written for any of them binds it (enforcement fails closed). Nothing is counted here;
   * the call is decided, counted and recorded once, under that name.
   */
  #strictestName(init: ToolCallInit, agentId: string, run: ActiveRun): PolicyInputCall {
    const { decisions } = this.#deps;
    let strictest: PolicyInputCall | undefined;
    let rank = -1;
    for (const name of new Set([init.tool, ...init.aliases!])) {
      const call = decisions.policyInput({ ...init, tool: name }, agentId);
      const action = decisions.decide(call, run, run.runId, false, init.permission).action;
      if (strictness[action] > rank) [strictest, rank] = [call, strictness[action]];
    }
    return strictest!;
  }

  /**
   * Finishes a call. A completion after a halt landed on it is recorded as `failed` with the halt,
   * and throws it. Whatever fails while recording, the call is finished (never left `pending`).
   */
  finish(toolCallId: string, status: ToolCallStatus, output: unknown, error: unknown, rejectedReason?: string): void {
    const state = this.#calls.get(toolCallId);
    if (!state) {
      const current = this.#deps.store.toolCallStatus(toolCallId);
      if (current === undefined) throw new NotFoundError("tool call", toolCallId);
      throw new InvalidStateError(`tool call "${toolCallId}" is ${current}; it cannot be ${status === ToolCallStatus.FAILED ? "failed" : "completed"}`);
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
    const { recorder, store, runs } = this.#deps;
    // Microseconds are what the clock resolves to: more digits are only bytes in every row and entry.
    const durationMs = Math.round((performance.now() - state.startedAt) * 1000) / 1000;
    const recordedOutput = recorder.recordable(output);
    const recordedError = recorder.recordable(error === undefined ? undefined : Recorder.serializeError(error));
    const ending: Partial<Record<ToolCallColumn, SQLInputValue>> = { status, output: recordedOutput.json, error: recordedError.json, ended_at: Date.now(), duration_ms: durationMs };
    if (rejectedReason !== undefined) ending.blocked_reason = rejectedReason;
    store.updateToolCall(state.row, toolCallId, ending);
    const type = status === ToolCallStatus.REJECTED ? EventType.TOOL_BLOCKED : EventType.TOOL_COMPLETED;
    recorder.record(type, { agentId: state.agentId, runId: state.runId, stepId: state.stepId, toolCallId }, { toolName: state.toolName, status, output: recordedOutput.value, error: recordedError.value, durationMs, reason: rejectedReason });
    const run = runs.get(state.runId);
    // A run of its own ends as the call did: completed, or refused by a reviewer (the caller carries on); a halt or the tool's failure fails it.
    const stoppedByHalt = state.controller.signal.aborted && isHalt(state.controller.signal.reason);
    if (run?.implicit) runs.endImplicit(run, status === ToolCallStatus.COMPLETED || (status === ToolCallStatus.REJECTED && !stoppedByHalt));
    if (halted !== undefined) throw halted;
  }

  /** The halt that covers a call now, or aborted it while it ran (even if lifted since); undefined if none. */
  #haltOfCall(state: ActiveToolCall): WardenError | undefined {
    const signal = state.controller.signal;
    if (signal.aborted && isHalt(signal.reason)) return signal.reason as WardenError;
    const halt = this.#deps.halts.find({ agentId: state.agentId, runId: state.runId, ancestorRunIds: this.#deps.runs.get(state.runId)?.ancestors });
    return halt === undefined || halt === "unknown" ? undefined : this.#deps.halts.error(halt);
  }

  /** Aborts the calls a halt now covers; a call still waiting for a reviewer is refused at once. */
  abortHalted(): void {
    const { halts, runs, approvals } = this.#deps;
    for (const call of [...this.#calls.values()]) {
      const halt = halts.covering({ agentId: call.agentId, runId: call.runId, ancestorRunIds: runs.get(call.runId)?.ancestors });
      if (!halt || call.controller.signal.aborted) continue;
      const error = halts.error(halt);
      call.controller.abort(error);
      // A call still waiting for a reviewer is refused now, waiter or not: its request is cancelled,
      // so an approval given after a resume can never run it.
      if (call.status === ToolCallStatus.AWAITING_APPROVAL && call.approvalId !== undefined) {
        approvals.cancel([call.approvalId], error.message);
        this.finish(call.toolCallId, ToolCallStatus.REJECTED, undefined, undefined, error.message);
        this.#refused(call, error);
      }
    }
  }

  /** Records a call seen only afterwards (a framework's trace): no decision, no approval. */
  recordObserved(init: { tool: string; args?: unknown; output?: unknown; error?: unknown; runId?: string | undefined; externalId?: string | undefined; durationMs?: number | undefined }): string {
    const { runs, recorder, decisions, store } = this.#deps;
    this.#deps.assertOpen();
    const run = runs.resolve(init.runId, undefined);
    const toolCallId = newId("tc");
    const actionType = decisions.actionTypeOf(init.tool);
    const stepId = runs.currentScope()?.stepId;
    const input = recorder.recordable(init.args ?? {});
    const output = recorder.recordable(init.output);
    const error = recorder.recordable(init.error === undefined ? undefined : Recorder.serializeError(init.error));
    const status = init.error === undefined ? ToolCallStatus.COMPLETED : ToolCallStatus.FAILED;
    const now = Date.now();
    store.insertToolCall({ id: toolCallId, external_id: init.externalId ?? null, run_id: run.runId, step_id: stepId ?? null, agent_id: run.agentId, kind: "tool", tool_name: init.tool, action_type: actionType, status, input: input.json, output: output.json, error: error.json, started_at: Math.round(now - (init.durationMs ?? 0)), ended_at: now, duration_ms: init.durationMs ?? null });
    const ids = { agentId: run.agentId, runId: run.runId, stepId, toolCallId };
    recorder.record(EventType.TOOL_CALLED, ids, { toolName: init.tool, actionType, input: input.value, externalId: init.externalId, observed: true });
    recorder.record(EventType.TOOL_COMPLETED, ids, { toolName: init.tool, status, output: output.value, error: error.value, durationMs: init.durationMs, observed: true });
    runs.endImplicit(run, status === ToolCallStatus.COMPLETED);
    return toolCallId;
  }
}

/** The error to surface for a blocked call. */
function blockError(decision: Decision, toolName: string, toolCallId: string): WardenError {
  const tokenHalt = Decisions.haltError(decision);
  if (tokenHalt !== undefined) return tokenHalt;
  if (decision.action === "block" && decision.halted) {
    // The decision's reason already reads "halted (<scope>): <reason>": the error says it once.
    const stated = /^halted \(([^)]*)\): ([\s\S]*)$/.exec(decision.reason);
    return stated ? new HaltedError({ scope: stated[1]!, reason: stated[2]! }) : new HaltedError({ reason: decision.reason, scope: "unknown" });
  }
  return new ToolBlockedError({ toolName, reason: decision.reason, policyId: decision.policyId, toolCallId });
}

/** A decision recorded but not enforced (`shadow: true`): blocks and approvals become warnings; halts stay blocks. */
function shadowed(decision: Decision): Decision {
  if (decision.action === "allow" || decision.action === "warn" || (decision.action === "block" && decision.halted)) return decision;
  const would = decision.action === "block" ? "block" : "require approval";
  const { action: _action, ...rest } = decision as Decision & { timeoutMs?: number; halted?: boolean; cause?: string };
  delete rest.timeoutMs;
  delete rest.halted;
  delete rest.cause;
  return { ...rest, action: "warn", reason: `shadow: would ${would}: ${decision.reason}` };
}
