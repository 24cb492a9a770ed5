import type { Decisions } from "./decisions.js";
import { EventType, ToolCallStatus } from "./enums.js";
import { ToolBlockedError } from "./errors.js";
import type { HaltGuard } from "./halt/guard.js";
import { newId } from "./internal/ids.js";
import { Recorder } from "./recorder.js";
import type { LlmUsage } from "./records.js";
import type { Runs } from "./runs.js";
import type { RunStore } from "./store/run-store.js";

/**  What LLM calls need, injected. */
export interface LlmCallsDeps {
  /** The client's own agent: whose halts stop a model call made outside any run. */
  agentId: string;
  store: RunStore;
  runs: Runs;
  decisions: Decisions;
  halts: HaltGuard;
  recorder: Recorder;
}

/** An LLM call in flight: finish it with its usage, or its failure. */
export interface LlmCallHandle {
  id: string;
  complete(usage: LlmUsage, output?: unknown): void;
  fail(error: unknown): void;
}

/**
 * LLM calls, recorded as actions with model and token usage: refused on a halt; with a token
 * budget, reserved before (a call over budget is refused) and reconciled after.
 */
export class LlmCalls {
  readonly #deps: LlmCallsDeps;

  constructor(deps: LlmCallsDeps) {
    this.#deps = deps;
  }

  begin(init: { runId?: string | undefined; model?: string | undefined; estimatedTokens?: number | undefined; input?: unknown; id?: string | undefined }): LlmCallHandle {
    const { runs, halts, decisions, store, recorder } = this.#deps;
    const run = runs.resolve(init.runId, undefined);
    // Enforcement: a halted agent makes no more model calls either.
    const halt = halts.find({ agentId: run.agentId, runId: run.runId, ancestorRunIds: run.ancestors });
    if (halt !== undefined) {
      runs.endImplicit(run, false);
      throw halts.error(halt);
    }
    const id = init.id ?? newId("llm");
    const budgets = decisions.budgets;
    const reserved = init.estimatedTokens ?? 0;
    const over = budgets.size > 0 ? budgets.reserveTokens(run.runId, reserved) : undefined;
    const startedAt = performance.now();
    const stepId = runs.currentScope()?.stepId;
    const model = init.model ?? "unknown";
    const input = recorder.recordable(init.input);
    const ids = { agentId: run.agentId, runId: run.runId, stepId, toolCallId: id };
    const row = { id, run_id: run.runId, step_id: stepId ?? null, agent_id: run.agentId, kind: "llm", tool_name: model, action_type: "unknown", input: input.json, started_at: Date.now() };
    if (over && over.action === "block") {
      runs.endImplicit(run, false);
      throw this.#refuse(row, ids, over);
    }
    const pending = store.insertToolCall({ ...row, status: ToolCallStatus.PENDING });
    recorder.record(EventType.TOOL_CALLED, ids, { kind: "llm", model });
    let done = false;
    const finish = (status: ToolCallStatus, usage: LlmUsage | undefined, output: unknown, error: unknown) => {
      if (done) return;
      done = true;
      const total = usage ? (usage.totalTokens ?? (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0)) : 0;
      if (budgets.size > 0) budgets.reconcileTokens(run.runId, reserved, total);
      const recordedUsage = usage ? { model: usage.model ?? model, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, totalTokens: total } : undefined;
      store.updateToolCall(pending, id, {
        status,
        usage: recordedUsage ? JSON.stringify(recordedUsage) : null,
        output: recorder.recordable(output).json,
        error: recorder.recordable(error === undefined ? undefined : Recorder.serializeError(error)).json,
        ended_at: Date.now(),
        duration_ms: performance.now() - startedAt,
      });
      recorder.record(EventType.TOOL_COMPLETED, ids, { kind: "llm", model: recordedUsage?.model ?? model, status, usage: recordedUsage });
      runs.endImplicit(run, status === ToolCallStatus.COMPLETED);
    };
    return {
      id,
      complete: (usage, output) => finish(ToolCallStatus.COMPLETED, usage, output, undefined),
      fail: (error) => finish(ToolCallStatus.FAILED, undefined, undefined, error),
    };
  }

  /**
   * Before a model call whose usage is recorded once it is made (by a framework's tracing): refuses it,
   * with the refusal recorded, when a halt stops it or the run's token budget is spent (the call would
   * need at least one more token); records nothing when it may go ahead. Opens no run.
   */
  admit(init: { runId?: string | undefined; model?: string | undefined }): void {
    const { runs, halts, decisions, recorder } = this.#deps;
    const runId = init.runId ?? runs.currentScope()?.runId;
    const run = runId === undefined ? undefined : runs.resolve(runId, undefined);
    const agentId = run?.agentId ?? this.#deps.agentId;
    const model = init.model ?? "unknown";
    const halt = halts.find({ agentId, runId: run?.runId, ancestorRunIds: run?.ancestors });
    if (halt !== undefined) {
      // Evidence of the halt's effect, like a refused tool call's.
      recorder.record(EventType.TOOL_BLOCKED, { agentId, runId: run?.runId ?? null }, { kind: "llm", model, reason: halts.decision("unknown", halt).reason, halted: true, refused: true });
      throw halts.error(halt);
    }
    if (run === undefined || decisions.budgets.size === 0) return;
    const over = decisions.budgets.tokensOver(run.runId, 1);
    if (over?.action !== "block") return;
    const id = newId("llm");
    const stepId = runs.currentScope()?.stepId;
    const row = { id, run_id: run.runId, step_id: stepId ?? null, agent_id: run.agentId, kind: "llm", tool_name: model, action_type: "unknown", input: null, started_at: Date.now() };
    throw this.#refuse(row, { agentId: run.agentId, runId: run.runId, stepId, toolCallId: id }, over);
  }

  /** Records a model call a token budget refused, and the error it is refused with. */
  #refuse(row: Parameters<RunStore["insertToolCall"]>[0] & { started_at: number; tool_name: string }, ids: { agentId: string; runId: string; stepId: string | undefined; toolCallId: string }, over: { reason: string; policyId: string }): ToolBlockedError {
    this.#deps.store.insertToolCall({ ...row, status: ToolCallStatus.BLOCKED, blocked_reason: over.reason, ended_at: row.started_at });
    this.#deps.recorder.record(EventType.TOOL_BLOCKED, ids, { kind: "llm", model: row.tool_name, reason: over.reason, policyId: over.policyId });
    return new ToolBlockedError({ toolName: row.tool_name, reason: over.reason, policyId: over.policyId, toolCallId: ids.toolCallId });
  }
}
