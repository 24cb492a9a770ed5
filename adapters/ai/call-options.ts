import type { LanguageModelUsage, ModelMessage, ToolApprovalStatus, ToolSet } from "ai";
import { NotFoundError, InvalidStateError, isHalt, type Admission, type ToolCallHandle, type Warden } from "agent-warden";
import { approvalRequested, isExecutable, isGovernedBy, ownTool, setLink, takeLink } from "./shared.js";

/**
 * The fields of a model call's start event Warden reads.
 * @example
 * import { wardenCallOptions, type ModelCallStart } from "agent-warden/ai";
 * const options = wardenCallOptions(warden, { onLanguageModelCallStart: (event: ModelCallStart) => console.log(event.callId, event.modelId) });
 */
export interface ModelCallStart {
  readonly callId: string;
  readonly provider: string;
  readonly modelId: string;
}

/**
 * The fields of a model call's end event Warden reads.
 * @example
 * import { wardenCallOptions, type ModelCallEnd } from "agent-warden/ai";
 * const options = wardenCallOptions(warden, { onLanguageModelCallEnd: (event: ModelCallEnd) => console.log(event.modelId, event.usage.totalTokens) });
 */
export interface ModelCallEnd {
  /** The SDK's id of the model call, shared with its start event. */
  readonly callId?: string | undefined;
  readonly provider: string;
  readonly modelId: string;
  readonly usage: LanguageModelUsage;
}

/**
 * The fields of a step Warden reads (a `StepResult` of any tool set).
 * @example
 * import { wardenCallOptions, type StepEnd } from "agent-warden/ai";
 * const options = wardenCallOptions(warden, { onStepEnd: (step: StepEnd) => console.log(step.toolCalls.length) });
 */
export interface StepEnd {
  readonly toolCalls: ReadonlyArray<{ readonly toolCallId: string }>;
}

/**
 * The fields of a tool execution end event Warden reads.
 * @example
 * import { wardenCallOptions, type ToolExecutionEnd } from "agent-warden/ai";
 * const options = wardenCallOptions(warden, { onToolExecutionEnd: (event: ToolExecutionEnd) => console.log(event.toolOutput.type) });
 */
export interface ToolExecutionEnd {
  readonly toolCall: { readonly toolCallId: string };
  readonly toolOutput: { readonly type: string; readonly output?: unknown; readonly error?: unknown };
}

/**
 * What the SDK asks `toolApproval` about one tool call.
 * @example
 * import { wardenCallOptions, type ToolApprovalQuery } from "agent-warden/ai";
 * const { toolApproval } = wardenCallOptions(warden);
 * const status = await toolApproval({ toolCall: { toolCallId: "c1", toolName: "deploy", input: {} }, tools, messages } satisfies ToolApprovalQuery);
 */
export interface ToolApprovalQuery {
  readonly toolCall: { readonly toolCallId: string; readonly toolName: string; readonly input: unknown };
  readonly tools: ToolSet | undefined;
  readonly messages: ModelMessage[];
}

/**
 * Options of `wardenCallOptions`.
 * @example
 * import { wardenCallOptions } from "agent-warden/ai";
 * const options = wardenCallOptions(warden, { approval: "wait", abortSignal: AbortSignal.timeout(60_000) });
 */
export interface WardenCallOptionsInit {
  /** Records tool calls and LLM usage in this run. Defaults to the enclosing `warden.run`. */
  runId?: string | undefined;
  /**
   * How a call that needs approval is held:
   * - `"user-approval"` (default): it surfaces as a `tool-approval-request` and the call ends; the
   *   reviewer decides in Warden and `approvalResponses` turns the decision into the next call's input.
   * - `"wait"`: the call waits in-process for the reviewer.
   */
  approval?: "user-approval" | "wait" | undefined;
  /** Your own abort signal, merged with the halt signal. */
  abortSignal?: AbortSignal | undefined;
  /** Your own callbacks of the same names, called after Warden's (the returned object replaces them). */
  onLanguageModelCallStart?(event: ModelCallStart): unknown;
  onLanguageModelCallEnd?(event: ModelCallEnd): unknown;
  onStepError?(event: { readonly error: unknown }): unknown;
  onToolExecutionEnd?(event: ToolExecutionEnd): unknown;
  onStepEnd?(step: StepEnd): unknown;
}

/**
 * Settings to spread into `generateText`, `streamText` or `agent.generate` / `agent.stream`.
 * @example
 * import { wardenCallOptions, type WardenCallOptions } from "agent-warden/ai";
 * const options: WardenCallOptions = wardenCallOptions(warden);
 * await generateText({ model, tools, prompt, ...options });
 */
export interface WardenCallOptions {
  /** Aborts on a halt (and with your own signal): the SDK stops the tool loop and rejects with `HaltedError`. */
  abortSignal: AbortSignal;
  /** Warden's decision for every tool call: allow/warn run, block is denied, require_approval asks a human. */
  toolApproval(query: ToolApprovalQuery): Promise<ToolApprovalStatus>;
  /** Opens each model call's record before the provider is called: a spent token budget or a halt refuses it and stops the loop. */
  onLanguageModelCallStart(event: ModelCallStart): Promise<void>;
  /** Records each model call's model and token usage. */
  onLanguageModelCallEnd(event: ModelCallEnd): Promise<void>;
  /** Records a model call whose provider call failed. */
  onStepError(event: { readonly error: unknown }): Promise<void>;
  /** Records the result of tools `governTools` did not wrap; a halted tool stops the loop. */
  onToolExecutionEnd(event: ToolExecutionEnd): Promise<void>;
  /** Closes calls that were allowed but never executed. */
  onStepEnd(step: StepEnd): Promise<void>;
}

/**
 * Call-level governance for the AI SDK: a `toolApproval` answered by Warden's policies, an
 * `abortSignal` that fires on a halt, and callbacks that record token usage. Create one per call.
 * @example
 * import { governTools, wardenCallOptions } from "agent-warden/ai";
 * const result = await generateText({ model, tools: governTools(tools, warden), prompt, ...wardenCallOptions(warden) });
 */
export function wardenCallOptions(warden: Warden, init: WardenCallOptionsInit = {}): WardenCallOptions {
  const controller = new AbortController();
  const stop = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const signals = [warden.signal, controller.signal];
  if (init.abortSignal) signals.push(init.abortSignal);
  const runIdNow = () => init.runId ?? warden.currentRun()?.runId;
  const link = (toolCallId: string, handle: ToolCallHandle) => setLink(warden, toolCallId, { stop, handle });
  const modelCalls = new ModelCalls(warden, stop);

  /** The one rule: a refusal reaches the model as `denied`; a halt stops the whole call instead. */
  const refusal = (admission: Admission & { ok: false }): ToolApprovalStatus => {
    if (admission.outcome === "halted") {
      stop(admission.error);
      throw admission.error;
    }
    return { type: "denied", reason: admission.error.message };
  };

  /** Maps a decided Warden call onto the SDK's approval status. */
  const answer = async (handle: ToolCallHandle, governed: boolean): Promise<ToolApprovalStatus> => {
    const outcome = handle.outcome;
    if (outcome.ok) return "not-applicable";
    if (outcome.outcome !== "needs_approval") return refusal(outcome);
    if (init.approval !== "wait") return { type: "user-approval", reason: outcome.reason };
    // The governed `execute` waits for the reviewer itself.
    if (governed) return "not-applicable";
    const admission = await handle.admit();
    return admission.ok ? "approved" : refusal(admission);
  };

  const abortSignal = AbortSignal.any(signals);
  return {
    abortSignal,

    async toolApproval({ toolCall, tools, messages }) {
      const { toolCallId, toolName, input } = toolCall;
      const tool = ownTool(tools as Record<string, unknown> | undefined, toolName);
      const governed = isGovernedBy(tool, warden);
      // The app answered a `tool-approval-request` for this call: Warden's decision is the one that counts.
      const resuming = approvalRequested(messages, toolCallId);
      let handle: ToolCallHandle | undefined;
      if (resuming) {
        try {
          handle = warden.resumeToolCall(toolCallId, { args: input });
        } catch (error) {
          if (error instanceof InvalidStateError) return { type: "denied", reason: error.message };
          if (!(error instanceof NotFoundError)) throw error;
        }
      }
      // Decided and recorded once; the governed `execute` picks up the same call.
      // The call's signal: a caller who gives up ends a wait for the reviewer too.
      handle ??= warden.beginToolCall({ tool: toolName, args: input, externalId: toolCallId, runId: runIdNow(), signal: abortSignal });
      const status = await answer(handle, governed);
      // A tool without `execute` runs in the application: allowed, Warden's part of the call is done.
      if (!isExecutable(tool) && handle.outcome.ok) handle.settle({}, "ai");
      const type = statusType(status);
      // Once answered, anything but a denial lets the call run: one still waiting for its reviewer must not.
      if (resuming && type === "user-approval") return { type: "denied", reason: `[warden] approval${handle.approval ? ` ${handle.approval.approvalId}` : ""} for "${toolName}" is still pending` };
      // The call goes ahead: the governed `execute` (or `onToolExecutionEnd`) finishes this same Warden call.
      if (isExecutable(tool) && (type === "not-applicable" || type === "approved")) link(toolCallId, handle);
      return status;
    },

    async onToolExecutionEnd(event) {
      const { toolCall, toolOutput } = event;
      const handle = takeLink(warden, toolCall.toolCallId)?.handle;
      handle?.settle(toolOutput.type === "tool-result" ? { output: toolOutput.output } : { error: toolOutput.error }, "ai");
      if (toolOutput.type === "tool-error" && isHalt(toolOutput.error)) stop(toolOutput.error);
      await init.onToolExecutionEnd?.(event);
    },

    async onLanguageModelCallStart(event) {
      await modelCalls.start(event, runIdNow());
      await init.onLanguageModelCallStart?.(event);
    },

    async onLanguageModelCallEnd(event) {
      await modelCalls.end(event, runIdNow());
      await init.onLanguageModelCallEnd?.(event);
    },

    async onStepError(event) {
      await modelCalls.failOpen(event.error);
      await init.onStepError?.(event);
    },

    async onStepEnd(step) {
      for (const { toolCallId } of step.toolCalls) {
        // Allowed by toolApproval but never executed (say the step ended on its length limit).
        const left = takeLink(warden, toolCallId)?.handle;
        left?.settle({ error: new Error("the tool call was not executed") }, "ai");
      }
      await init.onStepEnd?.(step);
    },
  };
}

function statusType(status: ToolApprovalStatus): string {
  return typeof status === "object" ? status.type : (status ?? "not-applicable");
}

type LlmCall = ReturnType<Warden["beginLlmCall"]>;

/**
 * The model calls of one `generateText` / `streamText` call. Each is opened when the SDK is about to
 * call the provider, in the run the calling code is in, so a spent budget refuses the call before it
 * is made; it is completed with its usage when the call ends. Outside any run, each model call is a
 * run of its own, closed with it.
 */
class ModelCalls {
  readonly #open = new Map<string, { call: LlmCall; ownRun: string | undefined }>();
  /** Calls refused at their start: their end event (a provider that ignored the abort) records nothing more. */
  readonly #refused = new Set<string>();

  constructor(
    private readonly warden: Warden,
    private readonly stop: (reason: unknown) => void,
  ) {}

  async start(event: ModelCallStart, runId: string | undefined): Promise<void> {
    let ownRun: string | undefined;
    try {
      ownRun = runId === undefined ? await this.warden.startRun(undefined, { framework: "ai", provider: event.provider }) : undefined;
      this.#open.set(event.callId, { call: this.warden.beginLlmCall({ runId: runId ?? ownRun, model: event.modelId }), ownRun });
    } catch (error) {
      // A spent token budget or a halt (recorded by the core): no model call, and the loop stops.
      this.#refused.add(event.callId);
      this.stop(error);
      await this.#close(ownRun);
    }
  }

  async end(event: ModelCallEnd, runId: string | undefined): Promise<void> {
    const usage = { model: event.modelId, inputTokens: event.usage.inputTokens, outputTokens: event.usage.outputTokens, totalTokens: event.usage.totalTokens };
    if (event.callId !== undefined && this.#refused.delete(event.callId)) return;
    const started = event.callId === undefined ? undefined : this.#open.get(event.callId);
    if (event.callId !== undefined) this.#open.delete(event.callId);
    if (started === undefined) {
      // Called without its start event (by hand, say): open and complete it now.
      await this.start({ callId: "", provider: event.provider, modelId: event.modelId }, runId);
      const now = this.#open.get("");
      this.#open.delete("");
      if (now === undefined) return;
      return this.#finish(now, (call) => call.complete(usage));
    }
    await this.#finish(started, (call) => call.complete(usage));
  }

  /** The provider call failed (or was aborted): what is still open failed with it. */
  async failOpen(error: unknown): Promise<void> {
    const open = [...this.#open.values()];
    this.#open.clear();
    for (const started of open) await this.#finish(started, (call) => call.fail(error));
  }

  async #finish(started: { call: LlmCall; ownRun: string | undefined }, settle: (call: LlmCall) => void): Promise<void> {
    try {
      settle(started.call);
    } catch (error) {
      this.stop(error);
    }
    await this.#close(started.ownRun);
  }

  async #close(ownRun: string | undefined): Promise<void> {
    if (ownRun !== undefined) await this.warden.completeRun(ownRun).catch(() => {});
  }
}
