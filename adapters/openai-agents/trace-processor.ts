import type { Span, Trace, TracingProcessor } from "@openai/agents";
import type { Warden } from "agent-warden";
import { FRAMEWORK, governedSpans, isOurs, registryOf, runScope, type Registry, type RunContextScope, type RunMetadata } from "./registry.js";

/**
 * Options of `WardenTraceProcessor`.
 * @example
 * import { WardenTraceProcessor } from "agent-warden/openai-agents";
 * const processor = new WardenTraceProcessor(warden, { agentId: (name) => `support/${name}`, onError: console.error });
 */
export interface WardenTraceProcessorOptions {
  /** The Warden agent id an SDK agent acts as, by agent name. Default: the client's own agent id. */
  agentId?: ((agentName: string) => string | undefined) | undefined;
  /** Receives the processor's own failures, which never reach the SDK. Default: the client's error sink (`warden.reportError`). */
  onError?: ((error: unknown) => void) | undefined;
}

/** A top run: one SDK run (its `task` span), or a whole trace when the SDK traces no task span. */
interface Workflow {
  runId: string;
  traceId: string;
  /** Opened (or resumed) here, so closed here; a `governedRun` closes its own. */
  owned: boolean;
  /** It continues a paused SDK run: its agents pick up their paused runs. */
  resumed: boolean;
  /** Paused agent runs to continue, by agent name; read once, on the first agent. */
  paused: Map<string, string[]> | undefined;
  agentRuns: Set<string>;
  failed: boolean;
}

interface SpanState {
  type: string;
  runId: string | undefined;
  parentId: string | null;
  /** A model call under this span already recorded its usage. */
  llmRecorded: boolean;
  /** Tokens of model calls in runs nested below this turn (agents used as tools), which the SDK sums into its usage. */
  nestedInput: number;
  nestedOutput: number;
  workflow?: Workflow | undefined;
}

interface TraceState {
  /** The trace-wide top run, opened only for agents outside any task span and any `governedRun`. */
  workflow: Workflow | undefined;
  /** The run of the agent that handed off, by the name of the agent it handed off to. */
  handoffs: Map<string, string>;
}

type AnySpan = Span<any>;

/**
 * An OpenAI Agents `TracingProcessor` that records what the SDK traces into Warden: each SDK run as a
 * top run sharing the SDK's trace id, each agent as a child run (a handoff makes the next agent a
 * child of the one handing off), model calls with their token usage, and the tool calls no Warden
 * guardrail governed (recorded as observed, not decided). Its failures never reach the SDK.
 * @example
 * import { setTraceProcessors } from "@openai/agents";
 * import { WardenTraceProcessor } from "agent-warden/openai-agents";
 * setTraceProcessors([new WardenTraceProcessor(warden)]); // or addTraceProcessor to keep OpenAI's exporter
 */
export class WardenTraceProcessor implements TracingProcessor {
  readonly #warden: Warden;
  readonly #registry: Registry;
  readonly #options: WardenTraceProcessorOptions;
  readonly #traces = new Map<string, TraceState>();
  readonly #spans = new Map<string, SpanState>();
  /** Top runs in use by a live task span, so two SDK runs of one trace never share one. */
  readonly #live = new Set<string>();

  constructor(warden: Warden, options: WardenTraceProcessorOptions = {}) {
    this.#warden = warden;
    this.#registry = registryOf(warden);
    this.#options = options;
  }

  async onTraceStart(trace: Trace): Promise<void> {
    this.#safely(() => void this.#trace(trace.traceId));
  }

  async onTraceEnd(trace: Trace): Promise<void> {
    this.#safely(() => this.#endTrace(trace.traceId));
  }

  async onSpanStart(span: AnySpan): Promise<void> {
    this.#safely(() => this.#startSpan(span));
  }

  async onSpanEnd(span: AnySpan): Promise<void> {
    this.#safely(() => this.#endSpan(span));
  }

  async forceFlush(): Promise<void> {
    this.#safely(() => this.#warden.flush());
  }

  async shutdown(): Promise<void> {
    this.#safely(() => this.#warden.flush());
  }

  // ── SDK runs and agents → Warden runs ─────────────────────────────────────────────────────

  #trace(traceId: string): TraceState {
    let trace = this.#traces.get(traceId);
    if (!trace) this.#traces.set(traceId, (trace = { workflow: undefined, handoffs: new Map() }));
    return trace;
  }

  #scope(): RunContextScope | undefined {
    const scope = runScope.getStore();
    return scope?.warden === this.#warden ? scope : undefined;
  }

  /** The top run of an SDK run: the enclosing `governedRun`'s, else a paused one of this trace to continue, else a new one. */
  #openWorkflow(sdkTraceId: string, name: string | undefined): Workflow {
    const scope = this.#scope();
    if (scope) return { runId: scope.runId, traceId: scope.traceId, owned: false, resumed: scope.resumed, paused: undefined, agentRuns: new Set(), failed: false };
    const open = this.#warden.listRuns({ traceId: sdkTraceId, status: "running", limit: 100 }).find((run) => isOurs(run.metadata, "workflow") && !this.#live.has(run.runId));
    const run = open ?? this.#warden.beginRun({ framework: FRAMEWORK, kind: "workflow", workflow: name, sdkTraceId } satisfies RunMetadata, { traceId: sdkTraceId });
    this.#live.add(run.runId);
    return { runId: run.runId, traceId: run.traceId, owned: true, resumed: open !== undefined, paused: undefined, agentRuns: new Set(), failed: false };
  }

  /** The workflow of the nearest task span above `spanId`. */
  #workflowAbove(spanId: string | null): Workflow | undefined {
    for (let id = spanId, depth = 0; id !== null && depth < 64; depth++) {
      const state = this.#spans.get(id);
      if (!state) return undefined;
      if (state.workflow) return state.workflow;
      id = state.parentId;
    }
    return undefined;
  }

  #startAgent(span: AnySpan): string {
    const name: string = span.spanData.name;
    const trace = this.#trace(span.traceId);
    const workflow = this.#workflowAbove(span.parentId) ?? (trace.workflow ??= this.#openWorkflow(span.traceId, undefined));
    const handedOffBy = trace.handoffs.get(name);
    trace.handoffs.delete(name);
    let runId = workflow.resumed ? this.#pausedRun(workflow, name) : undefined;
    runId ??= this.#warden.beginRun({ framework: FRAMEWORK, kind: "agent", agent: name, sdkTraceId: span.traceId } satisfies RunMetadata, {
      parentRunId: handedOffBy ?? workflow.runId,
      agentId: this.#options.agentId?.(name),
    }).runId;
    workflow.agentRuns.add(runId);
    return runId;
  }

  /** A resumed agent continues the run it paused in, so its pending call and its later calls share one run. */
  #pausedRun(workflow: Workflow, agent: string): string | undefined {
    if (workflow.paused === undefined) {
      workflow.paused = new Map();
      for (const run of this.#warden.listRuns({ traceId: workflow.traceId, status: "running", limit: 100 }).reverse()) {
        const metadata = run.metadata as Partial<RunMetadata> | undefined;
        if (!isOurs(metadata, "agent") || typeof metadata?.agent !== "string") continue;
        const list = workflow.paused.get(metadata.agent) ?? [];
        list.push(run.runId);
        workflow.paused.set(metadata.agent, list);
      }
    }
    return workflow.paused.get(agent)?.shift();
  }

  #endAgent(span: AnySpan, state: SpanState): void {
    const runId = state.runId;
    if (runId === undefined) return;
    if (span.error) {
      const workflow = this.#workflowAbove(state.parentId) ?? this.#traces.get(span.traceId)?.workflow;
      if (workflow) workflow.failed = true;
      this.#close(runId, span.error);
      return;
    }
    // Paused for approval: the run stays open until the SDK run resumes.
    if (!this.#registry.holdsPausedCall(runId)) this.#close(runId, undefined);
  }

  #endWorkflow(workflow: Workflow, error: unknown): void {
    this.#live.delete(workflow.runId);
    if (!workflow.owned) return;
    for (const runId of workflow.agentRuns) if (this.#registry.holdsPausedCall(runId)) return;
    this.#close(workflow.runId, error ?? (workflow.failed ? { message: "an agent of this run failed" } : undefined));
  }

  #endTrace(traceId: string): void {
    const trace = this.#traces.get(traceId);
    this.#traces.delete(traceId);
    if (trace?.workflow) this.#endWorkflow(trace.workflow, undefined);
  }

  #close(runId: string, error: unknown): void {
    const done = error === undefined ? this.#warden.completeRun(runId) : this.#warden.failRun(runId, error);
    done.catch((failure: unknown) => this.#report(failure));
  }

  // ── spans ─────────────────────────────────────────────────────────────────────────────────

  #startSpan(span: AnySpan): void {
    const type: string = span.spanData.type;
    const state: SpanState = { type, runId: undefined, parentId: span.parentId, llmRecorded: false, nestedInput: 0, nestedOutput: 0 };
    if (type === "task") {
      state.workflow = this.#openWorkflow(span.traceId, span.spanData.name);
      state.runId = state.workflow.runId;
    } else if (type === "agent") {
      state.runId = this.#startAgent(span);
    } else {
      state.runId = (span.parentId === null ? undefined : this.#spans.get(span.parentId)?.runId) ?? this.#scope()?.runId;
    }
    this.#spans.set(span.spanId, state);
    if (state.runId !== undefined) this.#registry.spanRuns.set(span.spanId, state.runId);
  }

  #endSpan(span: AnySpan): void {
    const state = this.#spans.get(span.spanId);
    this.#spans.delete(span.spanId);
    this.#registry.spanRuns.delete(span.spanId);
    if (!state) return;
    const data = span.spanData;
    switch (data.type) {
      case "task": {
        if (state.workflow) this.#endWorkflow(state.workflow, span.error ?? undefined);
        // A run resumed from a live state traces no new trace start or end: forget what it left.
        const trace = this.#traces.get(span.traceId);
        if (trace && trace.workflow === undefined && trace.handoffs.size === 0) this.#traces.delete(span.traceId);
        return;
      }
      case "agent":
        return this.#endAgent(span, state);
      case "handoff":
        if (typeof data.to_agent === "string" && state.runId !== undefined) this.#trace(span.traceId).handoffs.set(data.to_agent, state.runId);
        return;
      case "generation":
        if (data.usage) this.#recordLlm(state, data.model, { inputTokens: data.usage.input_tokens, outputTokens: data.usage.output_tokens }, span.error);
        return;
      case "response": {
        const response = data._response as { model?: string; usage?: { input_tokens?: number; output_tokens?: number; total_tokens?: number } } | undefined;
        if (response?.usage) this.#recordLlm(state, response.model, { inputTokens: response.usage.input_tokens, outputTokens: response.usage.output_tokens, totalTokens: response.usage.total_tokens }, span.error);
        return;
      }
      case "turn":
        // Models that trace no generation or response span (custom and scripted models): the turn's usage is the model call's.
        if (!state.llmRecorded && data.usage) {
          const inputTokens = Math.max(0, data.usage.input_tokens - state.nestedInput);
          const outputTokens = Math.max(0, data.usage.output_tokens - state.nestedOutput);
          if (inputTokens > 0 || outputTokens > 0) this.#recordLlm(state, undefined, { inputTokens, outputTokens }, undefined);
        }
        return;
      case "function":
        return this.#recordObservedTool(span, state);
      default:
        return;
    }
  }

  #recordLlm(state: SpanState, model: string | undefined, usage: { inputTokens?: number | undefined; outputTokens?: number | undefined; totalTokens?: number | undefined }, error: unknown): void {
    if (state.runId === undefined) return;
    // The enclosing turn: its summed usage is not recorded a second time. The turn above it (an agent
    // that called this one as a tool) sums this usage into its own: it is taken out there.
    let ownTurn = state.type === "turn";
    for (let id = state.parentId, depth = 0; id !== null && depth < 64; depth++) {
      const ancestor = this.#spans.get(id);
      if (!ancestor) break;
      if (ancestor.type === "turn") {
        if (ownTurn) {
          ancestor.nestedInput += usage.inputTokens ?? 0;
          ancestor.nestedOutput += usage.outputTokens ?? 0;
          break;
        }
        ancestor.llmRecorded = true;
        ownTurn = true;
      }
      id = ancestor.parentId;
    }
    const call = this.#warden.beginLlmCall({ runId: state.runId, model });
    if (error) call.fail(error);
    else call.complete({ model, ...usage });
  }

  /**
   * Tool calls a Warden guardrail governed are recorded by the guardrail (with their decision and
   * approval) and skipped here; any other function span is recorded as observed, never decided.
   */
  #recordObservedTool(span: AnySpan, state: SpanState): void {
    if (governedSpans.has(span)) return;
    const error = span.error as { message: string; data?: { error?: unknown } } | null;
    // A call rejected at approval never ran.
    if (error && typeof error.data?.error === "string" && error.data.error.includes("manually rejected")) return;
    const started = span.startedAt ? Date.parse(span.startedAt) : Number.NaN;
    const ended = span.endedAt ? Date.parse(span.endedAt) : Number.NaN;
    this.#warden.recordToolCall({
      tool: span.spanData.name,
      args: parseJson(span.spanData.input),
      output: span.spanData.output === "" ? undefined : span.spanData.output,
      error: error ?? undefined,
      runId: state.runId,
      durationMs: Number.isFinite(ended - started) ? ended - started : undefined,
    });
  }

  // ── failure handling ──────────────────────────────────────────────────────────────────────

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#report(error);
    }
  }

  #report(error: unknown): void {
    if (!this.#options.onError) return this.#warden.reportError(error, "openai-agents trace processor");
    try {
      this.#options.onError(error);
    } catch {
      // Nowhere left to report to.
    }
  }
}

function parseJson(raw: unknown): unknown {
  if (typeof raw !== "string" || raw === "") return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
