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
      store.insertToolCall({ ...row, status: ToolCallStatus.BLOCKED, blocked_reason: over.reason, ended_at: row.started_at });
      recorder.record(EventType.TOOL_BLOCKED, ids, { kind: "llm", model, reason: over.reason, policyId: over.policyId });
      runs.endImplicit(run, false);
      throw new ToolBlockedError({ toolName: model, reason: over.reason, policyId: over.policyId, toolCallId: id });
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
}
