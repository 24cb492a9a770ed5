import type { ToolMessage } from "@langchain/core/messages";
import type { ToolCall } from "@langchain/core/messages/tool";
// Types only from `langchain`: importing `agent-warden/langchain` must not load it (nor LangGraph), so that
// `WardenCallbackHandler` works with `@langchain/core` alone. The middleware reaches LangGraph, and
// LangChain's messages (which load most of `@langchain/core`), lazily.
import type { AgentMiddleware } from "langchain";
import { z } from "zod";
import type { ActionType, ToolCallHandle, Warden } from "agent-warden";
import { completeRunIfOpen, errorSink, failRunIfOpen, governedCalls, hasLangChainBrand, isErrorMessage, isGraphBubbleUp, isStaleRun, recordableOutput, RUN_ID_KEY, RUN_OWNED_KEY, type GovernedCall } from "./shared.js";

/**
 * Options of {@link wardenMiddleware}.
 * @example
 * import { wardenMiddleware } from "agent-warden/langchain";
 * const middleware = wardenMiddleware(warden, { approval: "interrupt", actionHints: { ship_it: "deploy" } });
 */
export interface WardenMiddlewareOptions {
  /**
   * How a `require_approval` decision pauses the call.
   * - `"wait"` (default): the tool call waits in process for the reviewer (or the policy's timeout).
   * - `"interrupt"`: LangGraph `interrupt()` pauses the whole agent (needs a checkpointer); approve in
   *   Warden, then resume with `new Command({ resume: … })`. Warden's approval status decides, not the resume value.
   */
  approval?: "wait" | "interrupt" | undefined;
  /** Semantic action of a tool, by name, when its name does not say it (`{ ship_it: "deploy" }`). */
  actionHints?: Readonly<Record<string, ActionType>> | undefined;
  /** Recorded on each run the middleware opens. */
  metadata?: Readonly<Record<string, unknown>> | undefined;
  /** Receives failures to record (never thrown into the agent). Default: the client's error sink, `warden.reportError`. */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * The value a paused tool call passes to LangGraph `interrupt()`: what the reviewer is asked to approve.
 * @example
 * import { approvalInterrupts, type WardenApprovalInterrupt } from "agent-warden/langchain";
 * const requests: WardenApprovalInterrupt[] = approvalInterrupts(result);
 * for (const { approvalId } of requests) if (approvalId) warden.approvals.approve(approvalId, { reviewer: "ops" });
 */
export interface WardenApprovalInterrupt {
  type: "warden.approval_required";
  /** Approve or reject this id with `warden.approvals.approve(approvalId, …)`. */
  approvalId: string | undefined;
  /** Warden's id of the tool call. */
  toolCallId: string;
  /** The framework's tool call id. */
  externalId: string | undefined;
  runId: string;
  toolName: string;
  /** The call's arguments, redacted. */
  args: unknown;
  reason: string;
  policyId: string | undefined;
  expiresAt: number | undefined;
}

const MIDDLEWARE_NAME = "WardenMiddleware";

/** The brand langchain's `createMiddleware` stamps on a middleware (a registered symbol, the same in every copy). */
const MIDDLEWARE_BRAND = Symbol.for("AgentMiddleware");

/**
 * LangGraph, loaded on first use: `interrupt` for `approval: "interrupt"`, and `Command` for the state update
 * that carries a run into the agent's state (createAgent has loaded it by then).
 */
let langgraph: Promise<typeof import("@langchain/langgraph")> | undefined;
async function interrupt(value: unknown): Promise<void> {
  langgraph ??= import("@langchain/langgraph");
  (await langgraph).interrupt(value);
}

/** A `Command` writing the Warden keys of the agent state (`null` clears them), returned from `wrapModelCall`. */
async function stateUpdate(runId: string | null, owned: boolean | null): Promise<unknown> {
  langgraph ??= import("@langchain/langgraph");
  return new (await langgraph).Command({ update: { [RUN_ID_KEY]: runId, [RUN_OWNED_KEY]: owned } });
}

const stateShape = {
  [RUN_ID_KEY]: z.string().nullish(),
  [RUN_OWNED_KEY]: z.boolean().nullish(),
};
// The agent state's Warden keys. createAgent builds a partial copy of this schema and parses the state with
// it on every model call; zod's JIT object would compile a parser for each copy (hundreds of µs per model
// call), the plain core object only checks the two keys.
const stateSchema = new z.core.$ZodObject({ type: "object", shape: stateShape }) as unknown as z.ZodObject<typeof stateShape>;

type RunState = { [RUN_ID_KEY]?: string | null | undefined; [RUN_OWNED_KEY]?: boolean | null | undefined };

/**
 * Governs every tool call of a `createAgent` agent: each call is checked by Warden before it runs,
 * refused with an error `ToolMessage` when blocked, paused for a reviewer when policy asks, aborted
 * on a halt, and recorded with its output in one Warden run per agent invocation. Each model call is
 * admitted first: a halt or a spent token budget rejects the invocation before the model is called.
 * Add `WardenCallbackHandler` to record the model calls' token usage.
 * @example
 * import { createAgent } from "langchain";
 * import { Warden } from "agent-warden";
 * import { wardenMiddleware } from "agent-warden/langchain";
 *
 * const warden = new Warden({ agentId: "ops-agent", policies: "./warden.yaml" });
 * const agent = createAgent({ model, tools, middleware: [wardenMiddleware(warden)] });
 * await agent.invoke({ messages: [{ role: "user", content: "deploy to staging" }] });
 */
export function wardenMiddleware(warden: Warden, options: WardenMiddlewareOptions = {}): AgentMiddleware {
  const mode = options.approval ?? "wait";
  const report = errorSink(warden, options.onError);

  /** Closes a run this middleware opened as failed: a failed model call or a halt ends the invocation. */
  const failOwnedRun = async (state: RunState, error: unknown) => {
    const runId = state[RUN_ID_KEY];
    if (typeof runId !== "string" || state[RUN_OWNED_KEY] !== true) return;
    await failRunIfOpen(warden, runId, error).catch(report);
  };

  /** A halted outcome ends the invocation: the run this middleware opened fails with the halt, which reaches the caller. */
  const stopOnHalt = async (outcome: ToolCallHandle["outcome"], state: RunState) => {
    if (outcome.outcome !== "halted") return;
    await failOwnedRun(state, outcome.error);
    throw outcome.error;
  };

  /** Ends a run this middleware opened once the invocation is over, unless a callback handler that sees the end does. */
  const completeOwnedRun = async (call: GovernedCall) => {
    if (!call.owned || call.observed) return;
    await completeRunIfOpen(warden, call.runId).catch(report);
  };

  /**
   * The invocation's run, the model call admitted in it. The agent state carries the run from the first model
   * call on (so an interrupted and resumed invocation keeps it); a run the state names that is no longer open
   * is a previous invocation's, and this one opens its own: inside `warden.run(…)` that run, else a new one.
   * No graph node of its own opens or closes it: those cost every turn more than the rest of the middleware.
   */
  const admitted = async (state: RunState, model: string | undefined, runtime: { configurable?: Record<string, unknown> | undefined }): Promise<{ runId: string; owned: boolean; fresh: boolean }> => {
    const carried = state[RUN_ID_KEY];
    if (typeof carried === "string") {
      try {
        warden.admitLlmCall({ runId: carried, model });
        return { runId: carried, owned: state[RUN_OWNED_KEY] === true, fresh: false };
      } catch (error) {
        if (!isStaleRun(error)) {
          await failOwnedRun(state, error);
          throw error;
        }
      }
    }
    const enclosing = warden.currentRun();
    const threadId = runtime.configurable?.thread_id;
    // Throws `HaltedError` while halted: the invocation is refused before any model call.
    const runId = enclosing?.runId ?? (await warden.startRun(undefined, { framework: "langchain", ...(threadId !== undefined && { threadId }), ...options.metadata }));
    const owned = enclosing === undefined;
    try {
      warden.admitLlmCall({ runId, model });
    } catch (error) {
      if (owned) await failRunIfOpen(warden, runId, error).catch(report);
      throw error;
    }
    return { runId, owned, fresh: true };
  };

  // What `createMiddleware` from langchain returns (it copies the hooks beside its brand), built here so that
  // importing this module does not load langchain.
  const middleware = {
    [MIDDLEWARE_BRAND]: true,
    name: MIDDLEWARE_NAME,
    stateSchema,

    wrapModelCall: async (request, handler) => {
      // Gated before the model is called: a halt or a spent token budget ends the invocation (the refusal is
      // recorded by the core). An admitted call records nothing here; its usage is WardenCallbackHandler's to record.
      const state = request.state as RunState;
      const { runId, owned, fresh } = await admitted(state, modelName(request.model), request.runtime);
      const call: GovernedCall = { warden, runId, owned, toolCallId: undefined, observed: false };
      let response: Awaited<ReturnType<typeof handler>>;
      try {
        response = await governedCalls.run(call, () => handler(request));
      } catch (error) {
        if (owned && !isGraphBubbleUp(error)) await failRunIfOpen(warden, runId, error).catch(report);
        throw error;
      }
      if (endsInvocation(response)) {
        await completeOwnedRun(call);
        // The thread's next invocation starts without a run; state that carries none needs no update.
        return (state[RUN_ID_KEY] == null ? response : ((await stateUpdate(null, null)) as typeof response));
      }
      return fresh ? ((await stateUpdate(runId, owned)) as typeof response) : response;
    },

    wrapToolCall: async (request, handler) => {
      const { toolCall } = request;
      const state = request.state as RunState;
      const runId = state[RUN_ID_KEY] ?? undefined;
      const signal = request.runtime.signal;
      const interrupting = mode === "interrupt" && toolCall.id !== undefined;

      // A call resumed after an interrupt() was recorded the first time round: pick it up by its id.
      const begun =
        (interrupting ? pausedCall(warden, toolCall.id!, runId, signal, toolCall.args) : undefined) ??
        warden.beginToolCall({ tool: toolCall.name, args: toolCall.args, externalId: toolCall.id, runId, signal, actionHint: options.actionHints?.[toolCall.name] });
      const handle = interrupting ? await reviewedOrInterrupt(warden, begun, toolCall, signal) : begun;

      // The core's closed set of outcomes: a refusal reaches the model as an error tool message; a halt,
      // or the caller's own abort of an approval wait, ends the run.
      const admission = await handle.admit().catch(async (error: unknown) => {
        await failOwnedRun(state, error);
        throw error;
      });
      if (!admission.ok) {
        if (admission.outcome === "refused" && admission.cause !== "aborted") return refusal(toolCall, admission.error.message);
        await failOwnedRun(state, admission.error);
        throw admission.error;
      }

      const call: GovernedCall = { warden, runId: handle.runId, owned: state[RUN_OWNED_KEY] === true, toolCallId: toolCall.id, observed: false };
      let result: Awaited<ReturnType<typeof handler>>;
      try {
        // The tool node invokes `request.tool` with its own signal; hand it one that also aborts on a halt.
        const governed = { ...request, tool: abortingOn(request.tool, handle.signal) };
        result = await governedCalls.run(call, () => handle.race(() => handler(governed)));
      } catch (error) {
        handle.settle({ error }, report);
        await stopOnHalt(handle.outcome, state);
        if (handle.signal.aborted && error === handle.signal.reason) {
          // The caller's own abort stops the run rather than telling the model.
          await failOwnedRun(state, error);
          throw error;
        }
        // Interrupts belong to LangGraph; failures of middleware inside this one are theirs to surface.
        if (isGraphBubbleUp(error) || hasLangChainBrand(error, "MiddlewareError")) throw error;
        return toolError(toolCall, error);
      }
      const failed = isErrorMessage(result);
      handle.settle(failed ? { error: { message: String(recordableOutput(result)) } } : { output: recordableOutput(result) }, report);
      // A halt that landed as the tool finished: the call is recorded as stopped by it, and the run stops too.
      await stopOnHalt(handle.outcome, state);
      // A `returnDirect` tool that succeeds ends the invocation without another model call.
      if (!failed && (request.tool as { returnDirect?: unknown } | undefined)?.returnDirect === true && runId !== undefined) await completeOwnedRun(call);
      return result;
    },
  } satisfies AgentMiddleware<typeof stateSchema> & { [MIDDLEWARE_BRAND]: true };
  return middleware as unknown as AgentMiddleware;
}

/**
 * The Warden approval requests in an agent result's `__interrupt__`, so the caller can show them to a reviewer.
 * @example
 * import { approvalInterrupts } from "agent-warden/langchain";
 * const result = await agent.invoke(input, { configurable: { thread_id: "t1" } });
 * for (const request of approvalInterrupts(result)) console.log(request.toolName, request.approvalId);
 */
export function approvalInterrupts(result: unknown): WardenApprovalInterrupt[] {
  const interrupts = typeof result === "object" && result !== null ? (result as { __interrupt__?: unknown }).__interrupt__ : undefined;
  if (!Array.isArray(interrupts)) return [];
  return interrupts
    .map((entry) => (typeof entry === "object" && entry !== null ? (entry as { value?: unknown }).value : undefined))
    .filter((value): value is WardenApprovalInterrupt => typeof value === "object" && value !== null && (value as { type?: unknown }).type === "warden.approval_required");
}

/** The paused Warden call for this framework id, if it belongs to this run; a stale or finished one starts afresh. */
function pausedCall(warden: Warden, externalId: string, runId: string | undefined, signal: AbortSignal | undefined, args: unknown): ToolCallHandle | undefined {
  // The arguments in the resumed state are what runs: the approval must cover them.
  const handle = warden.findToolCall(externalId, { signal, args });
  return handle !== undefined && (runId === undefined || handle.runId === runId) ? handle : undefined;
}

/**
 * Interrupt mode: the call once its reviewer has answered. While nobody has, LangGraph `interrupt()`
 * pauses the agent; on a resume LangGraph replays this node, and the `interrupt()` answered before returns.
 */
async function reviewedOrInterrupt(warden: Warden, begun: ToolCallHandle, toolCall: ToolCall, signal: AbortSignal | undefined): Promise<ToolCallHandle> {
  let handle = begun;
  while (handle.outcome.outcome === "needs_approval") {
    // The reviewer may have answered already (onApprovalRequest, another process).
    handle = warden.resumeToolCall(handle.toolCallId, { signal, args: toolCall.args });
    if (handle.outcome.outcome !== "needs_approval") break;
    await interrupt(approvalRequest(handle, toolCall));
  }
  return handle;
}

function approvalRequest(handle: ToolCallHandle, toolCall: ToolCall): WardenApprovalInterrupt {
  const approval = handle.approval;
  return {
    type: "warden.approval_required",
    approvalId: approval?.approvalId,
    toolCallId: handle.toolCallId,
    externalId: toolCall.id,
    runId: handle.runId,
    toolName: handle.toolName,
    args: approval?.payload,
    reason: handle.decision.reason,
    policyId: handle.decision.policyId,
    expiresAt: approval?.expiresAt,
  };
}

/**
 * A model response after which createAgent ends the invocation: no tool calls, or only its structured-output
 * ones (`extract-…`), as its own router decides.
 */
function endsInvocation(response: unknown): boolean {
  const calls = (response as { tool_calls?: readonly { name?: unknown }[] } | null | undefined)?.tool_calls;
  if (calls === undefined || calls.length === 0) return typeof response === "object" && response !== null && "tool_calls" in response;
  return calls.every((call) => typeof call.name === "string" && call.name.startsWith("extract-"));
}

/** The model's name as a chat model carries it (`model`, else `modelName`), for the record of a refusal. */
function modelName(model: unknown): string | undefined {
  if (typeof model !== "object" || model === null) return undefined;
  const { model: name, modelName: legacy } = model as { model?: unknown; modelName?: unknown };
  return typeof name === "string" && name.length > 0 ? name : typeof legacy === "string" && legacy.length > 0 ? legacy : undefined;
}

type RequestTool = Parameters<NonNullable<AgentMiddleware["wrapToolCall"]>>[0]["tool"];
type Invoke = (input: unknown, config?: { signal?: AbortSignal | undefined } & Record<string, unknown>) => Promise<unknown>;

/**
 * The tool, but invoked with a signal that also aborts when `signal` does. LangChain's tool node ignores
 * `request.runtime` and builds the tool's config from its own, but it invokes `request.tool` when given one,
 * so the signal travels on a view of the tool. A tool the node has not been given (dynamic) is left as is.
 */
function abortingOn(tool: RequestTool, signal: AbortSignal): RequestTool {
  if (typeof tool !== "object" || tool === null || typeof (tool as { invoke?: unknown }).invoke !== "function") return tool;
  const original = tool as unknown as { invoke: Invoke };
  const invoke: Invoke = async (input, config) => {
    try {
      return await original.invoke(input, { ...config, signal: config?.signal ? AbortSignal.any([config.signal, signal]) : signal });
    } catch (error) {
      // The middleware rejects with the abort reason itself. Were the tool's rejection the same object, LangChain
      // would take it for an error from further down and pass it on bare, not as a `MiddlewareError` whose cause it is.
      if (signal.aborted && error === signal.reason) throw new Error("tool call aborted", { cause: error });
      throw error;
    }
  };
  return new Proxy(tool, { get: (target, key) => (key === "invoke" ? invoke : Reflect.get(target, key, target)) });
}

/** LangChain's messages, loaded with the first refusal or failed tool rather than with this module. */
let messages: Promise<typeof import("@langchain/core/messages")> | undefined;
async function errorToolMessage(toolCall: ToolCall, content: string): Promise<ToolMessage> {
  messages ??= import("@langchain/core/messages");
  return new (await messages).ToolMessage({ content, tool_call_id: toolCall.id ?? "", name: toolCall.name, status: "error" });
}

/** What the model sees for a call Warden refused: an error tool message; the agent carries on. */
function refusal(toolCall: ToolCall, reason: string): Promise<ToolMessage> {
  return errorToolMessage(toolCall, reason);
}

/** The error tool message LangChain itself gives a failed tool when no `wrapToolCall` middleware is present. */
function toolError(toolCall: ToolCall, error: unknown): Promise<ToolMessage> {
  return errorToolMessage(toolCall, hasLangChainBrand(error, "ToolInvocationError") ? (error as Error).message : `${String(error)}\n Please fix your mistakes.`);
}
