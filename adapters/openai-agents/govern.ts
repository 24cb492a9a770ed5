import { AsyncLocalStorage } from "node:async_hooks";
import { Agent, defineToolInputGuardrail, getCurrentSpan, ToolGuardrailFunctionOutputFactory } from "@openai/agents";
import type { FunctionTool, Model, RunContext, ToolGuardrailFunctionOutput, ToolInputGuardrailDefinition } from "@openai/agents";
import { InvalidStateError, isHalt, WardenError, type ActionType, type ToolCallHandle, type Warden } from "agent-warden";
import { namesFor, toolFailures, type ToolFailure } from "./names.js";
import { FRAMEWORK, governedSpans, registryOf, runScope, type Registry, type RunContextScope, type RunMetadata } from "./registry.js";

/**
 * How a `require_approval` decision reaches the reviewer:
 * - `"interrupt"` (default): the tool's `needsApproval` says yes, the SDK run stops with an
 *   interruption and can be serialized; `resolveInterruptions` applies the reviewer's answer.
 * - `"wait"`: the tool's guardrail holds the call until the reviewer answers or the approval times out.
 * @example
 * import { governAgent, type ApprovalMode } from "agent-warden/openai-agents";
 * const approval: ApprovalMode = "wait";
 * governAgent(agent, warden, { approval });
 */
export type ApprovalMode = "interrupt" | "wait";

/**
 * Options of `governAgent`.
 * @example
 * import { governAgent } from "agent-warden/openai-agents";
 * governAgent(agent, warden, { approval: "wait", handoffs: false, actionHints: { read_vault: "secret_access" } });
 */
export interface GovernAgentOptions {
  approval?: ApprovalMode | undefined;
  /** Also govern the agents reachable through handoffs. Default `true`. */
  handoffs?: boolean | undefined;
  /** The semantic action of a tool whose name does not say it, by tool name (yours or the SDK's): `{ read_vault: "secret_access" }`. */
  actionHints?: Readonly<Record<string, ActionType>> | undefined;
}

type AnyFunctionTool = FunctionTool<any, any, any>;
type InvokeArgs = Parameters<AnyFunctionTool["invoke"]>;
type ToolCallDetails = NonNullable<InvokeArgs[2]>;

/**
 * The name of the tool input guardrail this adapter appends, as it shows in `result.toolInputGuardrailResults`.
 * @example
 * import { GUARDRAIL_NAME } from "agent-warden/openai-agents";
 * const wardenResults = result.toolInputGuardrailResults.filter((r) => r.guardrail.name === GUARDRAIL_NAME);
 */
export const GUARDRAIL_NAME = "warden";

const governedTools = new WeakMap<object, Warden>();

/**
 * Puts every function tool of an agent (and of the agents it hands off to) under Warden: a tool input
 * guardrail decides each call, `needsApproval` raises an SDK interruption where policy asks for a
 * human, and each tool's outcome is recorded. Returns the same agent.
 * @example
 * import { Agent, run } from "@openai/agents";
 * import { governAgent } from "agent-warden/openai-agents";
 * const agent = governAgent(new Agent({ name: "billing", tools: [refund] }), warden);
 * const result = await run(agent, "refund order 1042", { signal: warden.signal });
 */
export function governAgent<TAgent extends Agent<any, any>>(agent: TAgent, warden: Warden, options: GovernAgentOptions = {}): TAgent {
  governNestedRuns();
  const registry = registryOf(warden);
  const seen = new Set<Agent<any, any>>();
  const visit = (current: Agent<any, any>): void => {
    if (seen.has(current)) return;
    seen.add(current);
    for (const tool of current.tools) {
      if (tool.type === "function") governTool(tool as AnyFunctionTool, warden, registry, options);
    }
    if (typeof current.model === "object" && current.model !== null) governModel(current.model, warden, registry);
    if (options.handoffs === false) return;
    for (const handoff of current.handoffs) visit(handoff instanceof Agent ? handoff : handoff.agent);
  };
  visit(agent);
  return agent;
}

function governTool(tool: AnyFunctionTool, warden: Warden, registry: Registry, options: GovernAgentOptions): void {
  const owner = governedTools.get(tool);
  if (owner === warden) return;
  if (owner !== undefined) throw new InvalidStateError(`tool "${tool.name}" is already governed by another Warden client`);
  governedTools.set(tool, warden);
  const sdkName = tool.name;
  const identify: Identify = () => {
    // The developer's name for the tool (see `names.ts`); other names policies may mean it by go as aliases,
    // and the core decides the call once, under the strictest of them.
    const [name, ...aliases] = namesFor(tool, warden);
    const hinted = [name!, ...aliases].find((candidate) => options.actionHints?.[candidate] !== undefined);
    return { tool: name!, aliases: aliases.length === 0 ? undefined : aliases, actionHint: options.actionHints?.[hinted ?? sdkName] };
  };
  tool.inputGuardrails = [...(tool.inputGuardrails ?? []), wardenGuardrail(sdkName, identify, warden, registry)];
  if ((options.approval ?? "interrupt") === "interrupt") {
    const own = tool.needsApproval;
    tool.needsApproval = async (runContext, input, callId) => (await policyNeedsApproval(identify, input, callId, warden, registry)) || (await own(runContext, input, callId));
  }
  const invoke = tool.invoke;
  tool.invoke = (runContext, input, details) => governedInvoke(tool, invoke, warden, registry, options, runContext, input, details);
}

const governedModels = new WeakMap<object, Warden>();

/**
 * Gates the agent's model (a `Model` instance) before each call: a halt, or a run whose LLM-token budget
 * is spent, refuses the call before it reaches the provider (the refusal is recorded; the run rejects
 * with the `HaltedError` or `ToolBlockedError`). Its usage is recorded from the trace once it is made.
 * Model names the runner resolves (`"gpt-4.1"`) are gated by `governedRun`.
 */
function governModel(model: Model, warden: Warden, registry: Registry): void {
  const owner = governedModels.get(model);
  if (owner === warden) return;
  if (owner !== undefined) throw new InvalidStateError("this model instance is already governed by another Warden client");
  governedModels.set(model, warden);
  const admit = () => warden.admitLlmCall({ runId: registry.currentRunId(warden), model: modelName(model) });
  const getResponse = model.getResponse;
  model.getResponse = async function (this: Model, request) {
    admit();
    return getResponse.call(this, request);
  };
  const getStreamedResponse = model.getStreamedResponse;
  model.getStreamedResponse = async function* (this: Model, request) {
    admit();
    yield* getStreamedResponse.call(this, request);
  };
}

function modelName(model: Model): string | undefined {
  const name = (model as { model?: unknown }).model;
  return typeof name === "string" ? name : undefined;
}

/** The names Warden decides a call under (see `ToolCallInit.aliases`), and its action hint. */
type Identify = () => { tool: string; aliases: readonly string[] | undefined; actionHint: ActionType | undefined };

/**
 * `needsApproval`: the call is decided and recorded here, once, keyed by the SDK call id (the
 * guardrail picks up the same decision); true only where policy asks for a human, so the
 * interruption and the Warden approval request are one thing. Never throws: on any failure the
 * guardrail decides, failing closed.
 */
async function policyNeedsApproval(identify: Identify, input: unknown, callId: string | undefined, warden: Warden, registry: Registry): Promise<boolean> {
  if (callId === undefined) return false;
  try {
    if (registry.interrupted.has(callId)) return settle(registry, callId, warden.resumeToolCall(callId, { args: input }));
    // Approved in Warden and applied to the SDK state (`resolveInterruptions`): the guardrail runs it.
    if (registry.decided.has(callId)) return false;
    const handle = warden.beginToolCall({ ...identify(), args: input, runId: registry.currentRunId(warden), externalId: callId });
    // A reviewer callback may have answered at once (an auto-approver): then there is nothing to pause for.
    if (handle.approval && warden.approvals.get(handle.approval.approvalId).status !== "pending") return settle(registry, callId, warden.resumeToolCall(callId, { args: input }));
    return settle(registry, callId, handle);
  } catch {
    return false;
  }
}

/** True while the call still waits for a reviewer; otherwise hands the decision to the guardrail. */
function settle(registry: Registry, callId: string, handle: ToolCallHandle): boolean {
  if (handle.outcome.outcome === "needs_approval") {
    registry.interrupted.set(callId, handle.runId);
    return true;
  }
  registry.interrupted.delete(callId);
  registry.decided.set(callId, handle);
  return false;
}

function wardenGuardrail(sdkName: string, identify: Identify, warden: Warden, registry: Registry): ToolInputGuardrailDefinition<any> {
  return defineToolInputGuardrail({
    name: GUARDRAIL_NAME,
    run: async ({ toolCall, context }) => {
      const callId = toolCall.callId;
      const span = getCurrentSpan();
      // This guardrail records the call; the trace processor must not record its span again.
      if (span) governedSpans.add(span);
      let handle: ToolCallHandle;
      try {
        handle = registry.decided.get(callId) ?? resumeInterrupted(sdkName, callId, parseArguments(toolCall.arguments), context, warden, registry) ?? beginCall(identify, parseArguments(toolCall.arguments), callId, warden, registry);
      } catch (error) {
        // The call could not even be decided (a run that cannot open): refused, or stopped if a halt is why.
        return refuse(isHalt(error), error, undefined);
      } finally {
        registry.decided.delete(callId);
        registry.interrupted.delete(callId);
      }
      // `approval: "wait"`: the tool's invoke waits for the reviewer, where the run's signal can end the wait.
      if (handle.outcome.outcome === "needs_approval") {
        registry.active.set(callId, handle);
        return ToolGuardrailFunctionOutputFactory.allow({ warden: { toolCallId: handle.toolCallId, outcome: "needs_approval" } });
      }
      // A refused or halted call is already recorded as such.
      const admission = await handle.admit();
      if (!admission.ok) return refuse(admission.outcome === "halted", admission.error, handle, admission.reason);
      registry.active.set(callId, handle);
      return ToolGuardrailFunctionOutputFactory.allow({ warden: { toolCallId: handle.toolCallId, outcome: admission.outcome } });
    },
  });
}

function beginCall(identify: Identify, args: unknown, callId: string, warden: Warden, registry: Registry): ToolCallHandle {
  return warden.beginToolCall({ ...identify(), args, runId: registry.currentRunId(warden), externalId: callId });
}

/**
 * A call that paused through an interruption (here or in another process) continues as the same
 * Warden call. `undefined` when it has no record; throws when its approval cannot be verified here.
 */
function resumeInterrupted(tool: string, callId: string, args: unknown, context: RunContext<any>, warden: Warden, registry: Registry): ToolCallHandle | undefined {
  if (!registry.interrupted.has(callId) && context.isToolApproved({ toolName: tool, callId }) !== true) return undefined;
  try {
    return warden.resumeToolCall(callId, { args });
  } catch (error) {
    if (WardenError.isInstance(error) && error.code === "not_found") return undefined;
    throw error;
  }
}

/** The one rule: a refusal (block, rejection, timeout) is told to the model, which carries on; a halt stops the run. */
function refuse(halted: boolean, error: unknown, handle: ToolCallHandle | undefined, reason?: string): ToolGuardrailFunctionOutput {
  const info = { warden: { toolCallId: handle?.toolCallId, outcome: halted ? "halted" : "refused", reason }, error };
  if (halted) return ToolGuardrailFunctionOutputFactory.throwException(info);
  const message = error instanceof Error ? error.message : `[warden] tool call refused: ${String(error)}`;
  return ToolGuardrailFunctionOutputFactory.rejectContent(WardenError.isInstance(error) ? message : `[warden] tool call refused, governance check failed: ${message}`, info);
}

/**
 * The tool's `invoke`, wrapped: it gets a signal that also aborts on a halt, it is abandoned as soon
 * as a halt aborts that signal, and its output or failure is recorded on the call the guardrail allowed.
 * An SDK run nested in it (an agent used as a tool) is governed too, in a child run of the call's run.
 */
async function governedInvoke(tool: AnyFunctionTool, invoke: AnyFunctionTool["invoke"], warden: Warden, registry: Registry, options: GovernAgentOptions, runContext: InvokeArgs[0], input: string, details: InvokeArgs[2]): Promise<unknown> {
  const callId = details?.toolCall?.callId;
  const handle = callId === undefined ? undefined : registry.active.get(callId);
  if (handle === undefined || callId === undefined) return invoke.call(tool, runContext, input, details);
  registry.active.delete(callId);
  if (details?.signal) handle.link(details.signal);
  if (handle.outcome.outcome === "needs_approval") {
    // `approval: "wait"`: a rejection, an expiry or the caller giving up is the model's answer; a halt stops the run.
    const admission = await handle.admit();
    if (admission.outcome === "halted") throw admission.error;
    if (!admission.ok) return admission.error.message;
  }
  const signal = details?.signal ? AbortSignal.any([details.signal, handle.signal]) : handle.signal;
  const nested = new NestedRun(warden, options, handle, tool.name);
  const failure: ToolFailure = {};
  let output: unknown;
  try {
    output = await handle.race(() => toolFailures.run(failure, () => nestedRuns.run(nested, () => runScope.run(nested, () => invoke.call(tool, runContext, input, withSignal(details, signal))))));
  } catch (error) {
    handle.settle({ error }, "openai-agents");
    nested.close(error, registry);
    throw error;
  }
  // The SDK turns an ordinary tool error into model-visible text: `tool()` of this adapter saw it thrown;
  // for the SDK's own `tool()`, the function span shows it when tracing is on.
  const spanError = getCurrentSpan()?.error;
  const failed = "error" in failure ? failure.error : spanError ? { message: spanError.message, output } : undefined;
  handle.settle(failed !== undefined ? { error: failed } : { output }, "openai-agents");
  nested.close(undefined, registry);
  return output;
}

/**
 * The Warden run of an SDK run nested in a governed tool call (`agent.asTool()`, or a tool that calls
 * `run()` itself): a child of the call's run, opened only when something in it is recorded.
 */
class NestedRun implements RunContextScope {
  readonly resumed = false;
  #run: { runId: string; traceId: string } | undefined;

  constructor(
    readonly warden: Warden,
    readonly options: GovernAgentOptions,
    readonly caller: ToolCallHandle,
    readonly tool: string,
  ) {}

  get runId(): string {
    return this.#open().runId;
  }

  get traceId(): string {
    return this.#open().traceId;
  }

  #open(): { runId: string; traceId: string } {
    this.#run ??= this.warden.beginRun({ framework: FRAMEWORK, kind: "nested", tool: this.caller.toolName, toolCallId: this.caller.toolCallId } satisfies RunMetadata, { parentRunId: this.caller.runId });
    return this.#run;
  }

  /** Closes the run if one was opened; a run still holding a call paused for approval stays open. */
  close(error: unknown, registry: Registry): void {
    const run = this.#run;
    if (run === undefined || registry.holdsPausedCall(run.runId)) return;
    const done = error === undefined ? this.warden.completeRun(run.runId) : this.warden.failRun(run.runId, error);
    done.catch(() => {});
  }
}

/** Set while a governed tool runs, so an SDK run nested in it is governed by the same client. */
const nestedRuns = new AsyncLocalStorage<NestedRun>();
let nestedRunsGoverned = false;

/**
 * An agent used as a tool runs in a nested SDK run that `governAgent` on the caller cannot see (the
 * SDK keeps the agent behind an agent tool private). Every SDK run asks its agent for its tools
 * first: inside a governed call, that agent is governed too, before any of its tools can run.
 */
function governNestedRuns(): void {
  if (nestedRunsGoverned) return;
  nestedRunsGoverned = true;
  const prototype = Agent.prototype as { getAllTools: Agent<any, any>["getAllTools"] };
  const getAllTools = prototype.getAllTools;
  prototype.getAllTools = function (this: Agent<any, any>, ...args: Parameters<Agent<any, any>["getAllTools"]>) {
    const nested = nestedRuns.getStore();
    if (nested !== undefined) governAgent(this, nested.warden, nested.options);
    return getAllTools.apply(this, args);
  };
}

function withSignal(details: ToolCallDetails | undefined, signal: AbortSignal): ToolCallDetails {
  if (details === undefined) return { signal };
  // Keep every property, the SDK's non-enumerable symbols included.
  const copy = Object.create(Object.getPrototypeOf(details), Object.getOwnPropertyDescriptors(details)) as ToolCallDetails;
  Object.defineProperty(copy, "signal", { value: signal, enumerable: true, configurable: true, writable: true });
  return copy;
}

export function parseArguments(raw: string): unknown {
  try {
    return raw === "" ? {} : JSON.parse(raw);
  } catch {
    return { arguments: raw };
  }
}

