import type { ToolMessage } from "@langchain/core/messages";
import type { ToolCall } from "@langchain/core/messages/tool";
// Types only from `langchain`: importing `agent-warden/langchain` must not load it (nor LangGraph), so that
// `WardenCallbackHandler` works with `@langchain/core` alone. The middleware reaches LangGraph, and
// LangChain's messages (which load most of `@langchain/core`), lazily.
import type { AgentMiddleware } from "langchain";
import type { ActionType, ToolCallHandle, Warden } from "agent-warden";
import { completeRunIfOpen, errorSink, failRunIfOpen, governedCalls, hasLangChainBrand, isErrorMessage, isGraphBubbleUp, isStaleRun, recordableOutput, type GovernedCall } from "./shared.js";

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

/** LangGraph's `interrupt`, loaded on first use: only `approval: "interrupt"` needs it, and only when a reviewer is awaited. */
let langgraph: Promise<typeof import("@langchain/langgraph")> | undefined;
async function interrupt(value: unknown): Promise<void> {
  langgraph ??= import("@langchain/langgraph");
  (await langgraph).interrupt(value);
}

/** The Warden run of one agent invocation. */
interface InvocationRun {
  readonly runId: string;
  /** The middleware opened it (rather than an enclosing `warden.run`), so it closes it. */
  readonly owned: boolean;
}

/** Tool calls whose invocation's run is remembered by id; past this, the oldest are forgotten. */
const REMEMBERED_CALLS = 10_000;
/** The invocation's run by framework tool call id, per client. */
const runsByCallIdOf = new WeakMap<Warden, Map<string, InvocationRun>>();
/** The invocation's run by model message and tool call object, for calls without an id. */
const runsByObject = new WeakMap<object, InvocationRun>();
/** The run of a model call that failed, by the last message it was given: what a retry of the call continues. */
const failedCalls = new WeakMap<object, InvocationRun>();

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

  // An invocation's run travels with the model's tool calls rather than in the agent state (state keys cost
  // createAgent a schema parse and channels on every step): the model call that asks for tools names its
  // run for them, and the next model call finds it from the tool calls it answers. Framework ids first,
  // else the call and message objects themselves. The ids are shared by every middleware of the client, so
  // an agent built afresh (per request) continues an invocation another began.
  let runsByCallId = runsByCallIdOf.get(warden);
  if (runsByCallId === undefined) runsByCallIdOf.set(warden, (runsByCallId = new Map()));

  const remember = (response: { tool_calls?: readonly ToolCall[] | undefined }, run: InvocationRun) => {
    runsByObject.set(response, run);
    for (const call of response.tool_calls ?? []) {
      runsByObject.set(call, run);
      if (call.id === undefined) continue;
      if (runsByCallId.size >= REMEMBERED_CALLS) runsByCallId.delete(runsByCallId.keys().next().value!);
      runsByCallId.set(call.id, run);
    }
  };

  /** The run of the invocation a model call continues: that of the tool calls in the last model message, which the messages after it answer. */
  const continued = (messages: readonly unknown[]): InvocationRun | undefined => {
    for (let i = messages.length - 1; i >= 0; i--) {
      const message = messages[i] as { tool_calls?: readonly ToolCall[] | undefined; getType?: () => string } | null;
      const type = typeof message === "object" && message !== null ? message.getType?.() : undefined;
      if (type === "tool") continue;
      // Anything else after the tool results (the user's next message) starts a new invocation.
      if (type !== "ai") return undefined;
      const calls = message!.tool_calls;
      // A model message without tool calls ended an earlier invocation: this one is new.
      if (calls === undefined || calls.length === 0) return undefined;
      let run = runsByObject.get(message!);
      for (const call of calls) if (run === undefined && call.id !== undefined) run = runsByCallId.get(call.id);
      return run;
    }
    return undefined;
  };

  /** Closes a run this middleware opened as failed: a refused model call or a halt ends the invocation. */
  const failOwnedRun = async (run: InvocationRun | undefined, error: unknown) => {
    if (run === undefined || !run.owned) return;
    await failRunIfOpen(warden, run.runId, error).catch(report);
  };

  /** A halted outcome ends the invocation: the run this middleware opened fails with the halt, which reaches the caller. */
  const stopOnHalt = async (outcome: ToolCallHandle["outcome"], run: InvocationRun | undefined) => {
    if (outcome.outcome !== "halted") return;
    await failOwnedRun(run, outcome.error);
    throw outcome.error;
  };

  /** Ends a run this middleware opened once the invocation is over, unless a callback handler that sees the end does. */
  const completeOwnedRun = async (call: GovernedCall) => {
    if (!call.owned || call.observed) return;
    await completeRunIfOpen(warden, call.runId).catch(report);
  };

  /**
   * The invocation's run, with the model call admitted in it. A model call that answers tool calls continues
   * their run (one that is no longer open was a previous invocation's); any other starts an invocation, which
   * records into the enclosing `warden.run(…)` or a run of its own. No graph node of its own opens or closes
   * it: those would cost every turn more than the rest of the middleware.
   */
  const admitted = async (messages: readonly unknown[], model: string | undefined, runtime: { configurable?: Record<string, unknown> | undefined }): Promise<InvocationRun> => {
    // A model call another middleware retries after it failed stays in its run.
    const last = messages.at(-1);
    const retried = typeof last === "object" && last !== null ? failedCalls.get(last) : undefined;
    if (retried !== undefined) failedCalls.delete(last as object);
    const carried = retried ?? continued(messages);
    if (carried !== undefined) {
      try {
        warden.admitLlmCall({ runId: carried.runId, model });
        return carried;
      } catch (error) {
        if (!isStaleRun(error)) {
          await failOwnedRun(carried, error);
          throw error;
        }
      }
    }
    const enclosing = warden.currentRun();
    const threadId = runtime.configurable?.thread_id;
    // Throws `HaltedError` while halted: the invocation is refused before any model call.
    const run = enclosing ? { runId: enclosing.runId, owned: false } : { runId: await warden.startRun(undefined, { framework: "langchain", ...(threadId !== undefined && { threadId }), ...options.metadata }), owned: true };
    try {
      warden.admitLlmCall({ runId: run.runId, model });
    } catch (error) {
      await failOwnedRun(run, error);
      throw error;
    }
    return run;
  };

  /** The run of a call an interrupt paused, resumed where its model call is not known (another process): the paused call's. */
  const recovered = (toolCall: ToolCall, paused: ToolCallHandle): InvocationRun => {
    const run = { runId: paused.runId, owned: warden.currentRun()?.runId !== paused.runId };
    if (toolCall.id !== undefined) runsByCallId.set(toolCall.id, run);
    return run;
  };

  // What `createMiddleware` from langchain returns (it copies the hooks beside its brand), built here so that
  // importing this module does not load langchain.
  const middleware = {
    [MIDDLEWARE_BRAND]: true,
    name: MIDDLEWARE_NAME,

    wrapModelCall: async (request, handler) => {
      // Gated before the model is called: a halt or a spent token budget ends the invocation (the refusal is
      // recorded by the core). An admitted call records nothing here; its usage is WardenCallbackHandler's to record.
      const run = await admitted(request.messages, modelName(request.model), request.runtime);
      const call: GovernedCall = { warden, runId: run.runId, owned: run.owned, toolCallId: undefined, observed: false };
      let response: Awaited<ReturnType<typeof handler>>;
      try {
        response = await governedCalls.run(call, () => handler(request));
      } catch (error) {
        // Not failed here: another middleware may retry the call (or fall back to another model). The
        // invocation's failure reaches WardenCallbackHandler, which fails the run.
        const last = request.messages.at(-1);
        if (typeof last === "object" && last !== null && !isGraphBubbleUp(error)) failedCalls.set(last, run);
        throw error;
      }
      if (endsInvocation(response)) await completeOwnedRun(call);
      else if (typeof response === "object" && response !== null) remember(response as { tool_calls?: ToolCall[] }, run);
      return response;
    },

    wrapToolCall: async (request, handler) => {
      const { toolCall } = request;
      const signal = request.runtime.signal;
      const interrupting = mode === "interrupt" && toolCall.id !== undefined;

      // The model call that asked for this call named its run. A call resumed after an interrupt() was recorded
      // the first time round: pick it up by its id.
      const known = runsByObject.get(toolCall) ?? (toolCall.id === undefined ? undefined : runsByCallId.get(toolCall.id));
      const paused = interrupting ? pausedCall(warden, toolCall.id!, known?.runId, signal, toolCall.args) : undefined;
      const run = known ?? (paused === undefined ? undefined : recovered(toolCall, paused));
      const begun = paused ?? warden.beginToolCall({ tool: toolCall.name, args: toolCall.args, externalId: toolCall.id, runId: run?.runId, signal, actionHint: options.actionHints?.[toolCall.name] });
      const handle = interrupting ? await reviewedOrInterrupt(warden, begun, toolCall, signal) : begun;

      // The core's closed set of outcomes: a refusal reaches the model as an error tool message; a halt,
      // or the caller's own abort of an approval wait, ends the run.
      const admission = await handle.admit().catch(async (error: unknown) => {
        await failOwnedRun(run, error);
        throw error;
      });
      if (!admission.ok) {
        if (admission.outcome === "refused" && admission.cause !== "aborted") return refusal(toolCall, admission.error.message);
        await failOwnedRun(run, admission.error);
        throw admission.error;
      }

      const call: GovernedCall = { warden, runId: handle.runId, owned: run?.owned === true, toolCallId: toolCall.id, observed: false };
      let result: Awaited<ReturnType<typeof handler>>;
      try {
        // The tool node invokes `request.tool` with its own signal; hand it one that also aborts on a halt.
        const governed = { ...request, tool: abortingOn(request.tool, handle.signal) };
        result = await governedCalls.run(call, () => handle.race(() => handler(governed)));
      } catch (error) {
        handle.settle({ error }, report);
        await stopOnHalt(handle.outcome, run);
        if (handle.signal.aborted && error === handle.signal.reason) {
          // The caller's own abort stops the run rather than telling the model.
          await failOwnedRun(run, error);
          throw error;
        }
        // Interrupts belong to LangGraph; failures of middleware inside this one are theirs to surface.
        if (isGraphBubbleUp(error) || hasLangChainBrand(error, "MiddlewareError")) throw error;
        return toolError(toolCall, error);
      }
      const failed = isErrorMessage(result);
      handle.settle(failed ? { error: { message: String(recordableOutput(result)) } } : { output: recordableOutput(result) }, report);
      // A halt that landed as the tool finished: the call is recorded as stopped by it, and the run stops too.
      await stopOnHalt(handle.outcome, run);
      // A `returnDirect` tool that succeeds ends the invocation without another model call.
      if (!failed && (request.tool as { returnDirect?: unknown } | undefined)?.returnDirect === true) await completeOwnedRun(call);
      return result;
    },
  } satisfies AgentMiddleware & { [MIDDLEWARE_BRAND]: true };
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
 * A model response after which createAgent ends the invocation, as its own router decides: a structured
 * response, or a model message without tool calls, or with only structured-output ones (`extract-…`).
 */
function endsInvocation(response: unknown): boolean {
  if (typeof response !== "object" || response === null) return false;
  if ("structuredResponse" in response) return true;
  const calls = (response as { tool_calls?: readonly { name?: unknown }[] }).tool_calls;
  if (calls === undefined || calls.length === 0) return "tool_calls" in response;
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
