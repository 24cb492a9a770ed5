import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { Serialized } from "@langchain/core/load/serializable";
import type { BaseMessage } from "@langchain/core/messages";
import type { LLMResult } from "@langchain/core/outputs";
import type { ChainValues } from "@langchain/core/utils/types";
import { isHalt, WardenError, type ActionType, type LlmUsage, type ToolCallHandle, type Warden } from "agent-warden";
import { completeRunIfOpen, errorSink, failRunIfOpen, governedCall, isGraphInterrupt, recordableOutput, type GovernedCall } from "./shared.js";

/**
 * Options of {@link WardenCallbackHandler}.
 * @example
 * import { WardenCallbackHandler } from "agent-warden/langchain";
 * const handler = new WardenCallbackHandler(warden, { actionHints: { ship_it: "deploy" }, metadata: { team: "ops" } });
 */
export interface WardenCallbackHandlerOptions {
  /** Semantic action of a tool, by name, when its name does not say it (`{ ship_it: "deploy" }`). */
  actionHints?: Readonly<Record<string, ActionType>> | undefined;
  /** Recorded on each run the handler opens. */
  metadata?: Readonly<Record<string, unknown>> | undefined;
  /** Receives failures to record (never thrown into the agent). Default: the client's error sink, `warden.reportError`. */
  onError?: ((error: unknown) => void) | undefined;
}

/** One LangChain run tree (a top-level chain, or a model or tool called on its own) and its Warden run. */
interface Tree {
  name: string;
  threadId: string | undefined;
  wardenRunId: string | undefined;
  /** The handler opened the Warden run, so it closes it. */
  owned: boolean;
  /** The Warden middleware opened the run; it cannot see the invocation fail, so the handler fails it. */
  middlewareOwned: boolean;
  /** The handler saw a model or tool call the middleware wrapped: the middleware leaves closing its run to the handler. */
  closesRun: boolean;
  /** A LangGraph interrupt paused something inside; the run stays open for the resume. */
  interrupted: boolean;
  /**
   * Aborts when the tree's root fails (the caller's own abort included). Hooks get no signal, so this is how
   * a tool call's approval wait learns that the invocation around it has ended. Made when a tool call first
   * asks for it: a tree no call waits in needs none.
   */
  ended: AbortController | undefined;
}

/** A LangChain run the handler follows (a chain, a model call or a tool call), by its run id. */
interface Node {
  tree: Tree;
  depth: number;
  /** The Warden step of the nearest top-level child chain. */
  stepId: string | undefined;
  /** This node opened `stepId` and closes it. */
  ownsStep: boolean;
  /** The step's name while it waits for the tree's run (a createAgent node before the middleware's run is known). */
  pendingStep: string | undefined;
  /** The governed tool call this node is, settled when it ends. */
  tool: ToolCallHandle | undefined;
  /** The model call this node is, with the model it was asked for. */
  llm: { model: string; call: ReturnType<Warden["beginLlmCall"]> } | undefined;
}

// Nodes that are middleware plumbing rather than steps worth recording.
const PLUMBING = /\.(before|after)_(agent|model)$/;
/**
 * createAgent's model and tool nodes. The Warden middleware names its run only inside them (the model call
 * opens it; a tool call resumed after an interrupt knows it): until the run is known, their steps wait for it.
 */
const AGENT_NODES = new Set(["model_request", "tools"]);

/**
 * Maps LangChain's run tree onto Warden: a top-level chain becomes a run, its child chains steps,
 * LLM calls are recorded with model and token usage, and tool calls are checked before they run — a
 * disallowed tool is refused by throwing `ToolBlockedError` from `handleToolStart`, for code that does
 * not use `createAgent` (a plain `tool.invoke`, a custom loop). With `wardenMiddleware` on the same agent
 * it records into the middleware's run and leaves its tool calls to it.
 * @example
 * import { Warden } from "agent-warden";
 * import { WardenCallbackHandler } from "agent-warden/langchain";
 *
 * const warden = new Warden({ agentId: "research-agent", policies: "./warden.yaml" });
 * const handler = new WardenCallbackHandler(warden);
 * await searchTool.invoke({ query: "warden" }, { callbacks: [handler] });
 */
export class WardenCallbackHandler extends BaseCallbackHandler {
  name = "WardenCallbackHandler";
  readonly warden: Warden;
  readonly #options: WardenCallbackHandlerOptions;
  readonly #report: (error: unknown) => void;
  /** Every LangChain run followed, with the tool or model call it is: one lookup per hook. */
  readonly #nodes = new Map<string, Node>();
  /** Runs this handler opened that a LangGraph interrupt paused, by thread, so the resume continues them. */
  readonly #paused = new Map<string, string>();

  constructor(warden: Warden, options: WardenCallbackHandlerOptions = {}) {
    // raiseError makes LangChain await every hook and let handleToolStart's refusal through.
    super({ raiseError: true });
    this.warden = warden;
    this.#options = options;
    this.#report = errorSink(warden, options.onError);
  }

  /** LangChain copies handlers in some paths; the run tree must stay in one place. */
  override copy(): this {
    return this;
  }

  // ── chains ────────────────────────────────────────────────────────────────────────────────

  // The declared signature orders these arguments differently; this is the order LangChain passes at runtime.
  override async handleChainStart(chain: Serialized, _inputs: ChainValues, runId: string, parentRunId?: string, tags?: string[], metadata?: Record<string, unknown>, _runType?: string, runName?: string): Promise<void> {
    try {
      const name = runName ?? chain?.id?.at(-1) ?? "chain";
      const parent = this.#node(parentRunId);
      if (parent === undefined) {
        const tree = newTree(name, threadIdOf(metadata));
        this.#nodes.set(runId, childOf(undefined, tree));
        return;
      }
      const node = childOf(parent, parent.tree);
      // Only the agent's own nodes become steps: deeper chains are parts of one, plumbing is not worth one.
      if (node.depth === 1 && !tags?.includes("langsmith:hidden") && !PLUMBING.test(name)) {
        if (parent.tree.wardenRunId === undefined && AGENT_NODES.has(name) && this.warden.currentRun() === undefined) node.pendingStep = name;
        else {
          node.stepId = await this.warden.startStep(await this.#runOf(parent.tree), name);
          node.ownsStep = true;
        }
      }
      this.#nodes.set(runId, node);
    } catch (error) {
      this.#enforceOrReport(error);
    }
  }

  // The end hooks return a promise only when something is left to wait for (a step or run to close).
  override handleChainEnd(_outputs: ChainValues, runId: string): Promise<void> | undefined {
    return this.#finish(runId, false, undefined);
  }

  override handleChainError(error: unknown, runId: string): Promise<void> | undefined {
    return this.#finish(runId, true, error);
  }

  // ── LLM calls ─────────────────────────────────────────────────────────────────────────────

  override async handleChatModelStart(llm: Serialized, _messages: BaseMessage[][], runId: string, parentRunId?: string, extraParams?: Record<string, unknown>, _tags?: string[], metadata?: Record<string, unknown>): Promise<void> {
    await this.#startLlm(llm, runId, parentRunId, extraParams, metadata);
  }

  override async handleLLMStart(llm: Serialized, _prompts: string[], runId: string, parentRunId?: string, extraParams?: Record<string, unknown>, _tags?: string[], metadata?: Record<string, unknown>): Promise<void> {
    await this.#startLlm(llm, runId, parentRunId, extraParams, metadata);
  }

  override handleLLMEnd(output: LLMResult, runId: string): Promise<void> | undefined {
    return this.#finish(runId, false, output);
  }

  override handleLLMError(error: unknown, runId: string): Promise<void> | undefined {
    return this.#finish(runId, true, error);
  }

  // ── tool calls ────────────────────────────────────────────────────────────────────────────

  /** Decides before the tool runs. Throws `ToolBlockedError`, `HaltedError`, or an approval error to refuse it. */
  override async handleToolStart(tool: Serialized, input: string, runId: string, parentRunId?: string, _tags?: string[], _metadata?: Record<string, unknown>, runName?: string, toolCallId?: string): Promise<void> {
    const parent = this.#node(parentRunId);
    // The Warden middleware already decides on and records calls it wraps.
    const governed = governedCall(this.warden);
    if (governed !== undefined && toolCallId !== undefined && governed.toolCallId === toolCallId) {
      if (parent) {
        this.#observe(parent.tree, governed);
        if (parent.pendingStep !== undefined) await this.#openPendingStep(parent);
        this.#nodes.set(runId, childOf(parent, parent.tree));
      }
      return;
    }
    const name = runName ?? tool?.id?.at(-1) ?? "tool";
    // Enforcement fails closed: anything that goes wrong deciding refuses the call.
    const wardenRunId = parent ? await this.#runOf(parent.tree) : undefined;
    const handle = this.warden.beginToolCall({ tool: name, args: parseToolInput(input), externalId: toolCallId, runId: wardenRunId, stepId: parent?.stepId, actionHint: this.#options.actionHints?.[name], signal: parent === undefined ? undefined : endedSignal(parent.tree) });
    // A callback can refuse only by throwing: a refusal and a halt both throw the admission's error
    // (`ToolBlockedError`, an approval error, `HaltedError`, a `TokenError`), already recorded by the core.
    const admission = await handle.admit();
    if (!admission.ok) throw admission.error;
    const node = childOf(parent, parent?.tree ?? newTree(name, undefined, handle.runId));
    node.tool = handle;
    this.#nodes.set(runId, node);
  }

  override handleToolEnd(output: unknown, runId: string): Promise<void> | undefined {
    return this.#finish(runId, false, output);
  }

  override handleToolError(error: unknown, runId: string): Promise<void> | undefined {
    return this.#finish(runId, true, error);
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  async #startLlm(llm: Serialized, runId: string, parentRunId: string | undefined, extraParams: Record<string, unknown> | undefined, metadata: Record<string, unknown> | undefined): Promise<void> {
    try {
      const parent = this.#node(parentRunId);
      const model = modelOf(llm, extraParams, metadata);
      const tree = parent?.tree ?? newTree(model, threadIdOf(metadata));
      if (parent !== undefined) {
        const governed = governedCall(this.warden);
        if (governed !== undefined) this.#observe(tree, governed);
        if (parent.pendingStep !== undefined) await this.#openPendingStep(parent);
      }
      const wardenRunId = await this.#runOf(tree);
      const node = childOf(parent, tree);
      node.llm = { model, call: this.warden.beginLlmCall({ runId: wardenRunId, model }) };
      this.#nodes.set(runId, node);
    } catch (error) {
      this.#enforceOrReport(error);
    }
  }

  /** A call the middleware wraps, seen from inside an invocation this handler follows: its run is the tree's, and the handler closes it. */
  #observe(tree: Tree, governed: GovernedCall): void {
    if (tree.wardenRunId === undefined) {
      tree.wardenRunId = governed.runId;
      tree.middlewareOwned = governed.owned;
    }
    if (tree.wardenRunId !== governed.runId || !governed.owned) return;
    governed.observed = true;
    tree.closesRun = true;
  }

  async #openPendingStep(node: Node): Promise<void> {
    const name = node.pendingStep!;
    node.pendingStep = undefined;
    node.stepId = await this.warden.startStep(await this.#runOf(node.tree), name);
    node.ownsStep = true;
  }

  #node(runId: string | undefined): Node | undefined {
    return runId === undefined ? undefined : this.#nodes.get(runId);
  }

  /**
   * Records how a LangChain run ended (`failed` with `outcome` as its error, else with `outcome` as a tool's output
   * or a model's result), then closes what it opened; telemetry never throws into the agent. A promise only while
   * a step or run is being closed.
   */
  #finish(runId: string, failed: boolean, outcome: unknown): Promise<void> | undefined {
    const node = this.#nodes.get(runId);
    if (node === undefined) return undefined;
    this.#nodes.delete(runId);
    try {
      if (node.tool !== undefined) node.tool.settle(failed ? { error: outcome } : { output: recordableOutput(outcome) }, this.#report);
      else if (node.llm !== undefined) {
        if (failed) node.llm.call.fail(outcome);
        else node.llm.call.complete(usageOf(outcome as LLMResult, node.llm.model));
      }
      return this.#end(node, failed ? outcome : undefined)?.catch(this.#report);
    } catch (failure) {
      this.#report(failure);
      return undefined;
    }
  }

  /** The Warden run of a tree: the middleware's (around the call), the enclosing `warden.run`, or one of its own. */
  async #runOf(tree: Tree): Promise<string> {
    if (tree.wardenRunId !== undefined) return tree.wardenRunId;
    const enclosing = governedCall(this.warden) ?? this.warden.currentRun();
    if (enclosing) {
      tree.wardenRunId = enclosing.runId;
      return enclosing.runId;
    }
    const paused = tree.threadId === undefined ? undefined : this.#paused.get(tree.threadId);
    if (paused !== undefined) this.#paused.delete(tree.threadId!);
    tree.wardenRunId = paused ?? (await this.warden.startRun(undefined, { framework: "langchain", name: tree.name, ...(tree.threadId !== undefined && { threadId: tree.threadId }), ...this.#options.metadata }));
    tree.owned = true;
    return tree.wardenRunId;
  }

  /** Closes what a node opened: nothing to wait for (most nodes) answers undefined. */
  #end(node: Node, error: unknown): Promise<void> | undefined {
    const { tree } = node;
    if (error !== undefined && isGraphInterrupt(error)) tree.interrupted = true;
    else if (error !== undefined && node.depth === 0) tree.ended?.abort(error);
    const closesStep = node.ownsStep && node.stepId !== undefined && tree.wardenRunId !== undefined;
    const closesRun = node.depth === 0 && tree.wardenRunId !== undefined && (tree.middlewareOwned || tree.owned);
    if (!closesStep && !closesRun) return undefined;
    return this.#close(node, error, closesStep, closesRun);
  }

  async #close(node: Node, error: unknown, closesStep: boolean, closesRun: boolean): Promise<void> {
    const { tree } = node;
    if (closesStep) await this.warden.completeStep(tree.wardenRunId!, node.stepId!);
    if (!closesRun || tree.wardenRunId === undefined) return;
    if (tree.middlewareOwned) {
      // The middleware sees neither the invocation end nor another middleware failing it: the handler does.
      if (error !== undefined && !isGraphInterrupt(error)) await failRunIfOpen(this.warden, tree.wardenRunId, error);
      else if (tree.closesRun && !tree.interrupted) await completeRunIfOpen(this.warden, tree.wardenRunId);
      return;
    }
    if (!tree.owned) return;
    if (tree.interrupted && tree.threadId !== undefined) {
      // Left running: the resume on this thread continues the same run.
      this.#paused.set(tree.threadId, tree.wardenRunId);
      return;
    }
    if (error === undefined || isGraphInterrupt(error)) await this.warden.completeRun(tree.wardenRunId);
    else await this.warden.failRun(tree.wardenRunId, error);
  }

  /** Halts (the core's `isHalt`, a token a halt invalidated included) and budget refusals are enforcement and reach the caller; anything else is telemetry and does not. */
  #enforceOrReport(error: unknown): void {
    if (isHalt(error) || (WardenError.isInstance(error) && error.code === "tool_blocked")) throw error;
    this.#report(error);
  }
}

function newTree(name: string, threadId: string | undefined, wardenRunId?: string): Tree {
  return { name, threadId, wardenRunId, owned: false, middlewareOwned: false, closesRun: false, interrupted: false, ended: undefined };
}

/** The signal that aborts when the tree's root fails. */
function endedSignal(tree: Tree): AbortSignal {
  return (tree.ended ??= new AbortController()).signal;
}

/** A node one level below `parent` (or a root) in `tree`, in its parent's step. */
function childOf(parent: Node | undefined, tree: Tree): Node {
  return { tree, depth: parent ? parent.depth + 1 : 0, stepId: parent?.stepId, ownsStep: false, pendingStep: undefined, tool: undefined, llm: undefined };
}

function threadIdOf(metadata: Record<string, unknown> | undefined): string | undefined {
  const id = metadata?.thread_id;
  return typeof id === "string" || typeof id === "number" ? String(id) : undefined;
}

/** Tool input arrives as a JSON string; a plain string tool gets `{ input }`. */
function parseToolInput(input: string): unknown {
  try {
    const parsed: unknown = JSON.parse(input);
    return typeof parsed === "object" && parsed !== null ? parsed : { input: parsed };
  } catch {
    return { input };
  }
}

function modelOf(llm: Serialized, extraParams: Record<string, unknown> | undefined, metadata: Record<string, unknown> | undefined): string {
  const params = extraParams?.invocation_params as Record<string, unknown> | undefined;
  const candidates = [metadata?.ls_model_name, params?.model, params?.model_name, params?.modelName, llm?.id?.at(-1)];
  const found = candidates.find((c) => typeof c === "string" && c.length > 0);
  return (found as string | undefined) ?? "unknown";
}

/** Token usage from `generations[0][0].message.usage_metadata`, else the provider's `llmOutput.tokenUsage`. */
function usageOf(output: LLMResult, model: string): LlmUsage {
  const generation = output.generations?.[0]?.[0] as { message?: { usage_metadata?: Record<string, unknown>; response_metadata?: Record<string, unknown> } } | undefined;
  const message = generation?.message;
  const responseModel = message?.response_metadata?.model_name ?? message?.response_metadata?.model;
  const usage = message?.usage_metadata;
  const legacy = output.llmOutput?.tokenUsage as Record<string, unknown> | undefined;
  const number = (value: unknown) => (typeof value === "number" ? value : undefined);
  return {
    model: typeof responseModel === "string" && responseModel.length > 0 ? responseModel : model,
    inputTokens: number(usage?.input_tokens) ?? number(legacy?.promptTokens),
    outputTokens: number(usage?.output_tokens) ?? number(legacy?.completionTokens),
    totalTokens: number(usage?.total_tokens) ?? number(legacy?.totalTokens),
  };
}
