import type { Tool, ToolExecutionOptions, ToolSet } from "ai";
import { isHalt, NotFoundError, type ToolCallHandle, type Warden } from "agent-warden";
import { approvalRequested, governedBy, isExecutable, isGovernedBy, takeLink, type CallLink } from "./shared.js";

/**
 * Options of `governTools`.
 * @example
 * import { governTools } from "agent-warden/ai";
 * const tools = governTools({ deploy }, warden, { approval: "user-approval" });
 */
export interface GovernToolsOptions {
  /** Records the calls in this run. Defaults to the run the call-level options name, else the enclosing `warden.run`, else a run per call. */
  runId?: string | undefined;
  /**
   * How a call that needs approval is held:
   * - `"wait"` (default): `execute` waits for the reviewer, then runs or refuses the call.
   * - `"user-approval"`: the call surfaces as the AI SDK's `tool-approval-request` (through the tool's
   *   `needsApproval`), even without `wardenCallOptions`; nothing waits in-process.
   */
  approval?: "wait" | "user-approval" | undefined;
}

type AnyTool = Tool<any, any, any>;
type Execute = (input: unknown, options: ToolExecutionOptions<unknown>) => unknown;

/**
 * Returns the same tool set with every `execute` governed: each call is decided by Warden before it
 * runs (a block throws, which the model sees as a tool error), waits for approval where policy asks,
 * runs with an abort signal that fires on a halt, and has its input and output recorded.
 * @example
 * import { governTools } from "agent-warden/ai";
 * const result = await generateText({ model, tools: governTools({ deploy, readLogs }, warden), prompt });
 */
export function governTools<TOOLS extends ToolSet>(tools: TOOLS, warden: Warden, options: GovernToolsOptions = {}): TOOLS {
  const governed: Record<string, AnyTool> = {};
  for (const [name, tool] of Object.entries(tools as Record<string, AnyTool>)) {
    governed[name] = isExecutable(tool) && !isGovernedBy(tool, warden) ? governTool(name, tool, warden, options) : tool;
  }
  return governed as TOOLS;
}

function governTool(name: string, tool: AnyTool, warden: Warden, options: GovernToolsOptions): AnyTool {
  const execute = tool.execute as Execute;
  const governed: AnyTool & { [governedBy]: Warden } = {
    ...tool,
    [governedBy]: warden,
    execute: isAsyncGeneratorFunction(execute) ? streamingExecute(name, execute, warden, options) : promiseExecute(name, execute, warden, options),
  };
  if (options.approval === "user-approval") governed.needsApproval = needsApproval(name, tool, warden, options);
  return governed;
}

function promiseExecute(name: string, execute: Execute, warden: Warden, options: GovernToolsOptions): Execute {
  return async function governedExecute(input, execution) {
    const { handle, link } = await openCall(name, input, execution, warden, options);
    try {
      // Admitted already: `run` races the tool against the call's signal and records its outcome.
      return await handle.run((signal) => settle(execute(input, { ...execution, abortSignal: signal })));
    } catch (error) {
      throw stopOnHalt(link, error);
    }
  };
}

/** Streaming tools (async generators): every preliminary output passes through; the last is recorded. */
function streamingExecute(name: string, execute: Execute, warden: Warden, options: GovernToolsOptions): Execute {
  return async function* governedExecute(input, execution) {
    const { handle, link } = await openCall(name, input, execution, warden, options);
    const iterator = (execute(input, { ...execution, abortSignal: handle.signal }) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    let last: unknown;
    try {
      for (;;) {
        const next = await handle.race(() => iterator.next());
        if (next.done) break;
        last = next.value;
        yield next.value;
      }
    } catch (error) {
      handle.settle({ error }, "ai");
      const thrown = stopOnHalt(link, error);
      void Promise.resolve(iterator.return?.()).catch(() => {});
      throw thrown;
    }
    handle.settle({ output: last }, "ai");
  };
}

/**
 * Decides on the call (or picks up the decision the call-level options or an answered approval
 * request already made), waits for approval if needed, and returns the handle, whose signal to run with.
 */
async function openCall(name: string, input: unknown, execution: ToolExecutionOptions<unknown>, warden: Warden, options: GovernToolsOptions): Promise<{ handle: ToolCallHandle; link: CallLink | undefined }> {
  const { toolCallId, abortSignal } = execution;
  const link = takeLink(warden, toolCallId);
  try {
    const handle =
      link?.handle ??
      (approvalRequested(execution.messages, toolCallId) ? resume(warden, toolCallId, input, abortSignal) : undefined) ??
      warden.beginToolCall({ tool: name, args: input, externalId: toolCallId, signal: abortSignal, runId: options.runId });
    // A handle begun by the call-level options has not seen the SDK's signal yet: link it before any wait.
    if (link && abortSignal) handle.link(abortSignal);
    // A refused or halted call is already recorded; the model gets the refusal as a tool error, a halt stops the loop.
    const admission = await handle.admit();
    if (!admission.ok) throw admission.error;
    return { handle, link };
  } catch (error) {
    throw stopOnHalt(link, error);
  }
}

/** A halt stops the whole `generateText` / `streamText` call, not just this tool; returns `error` to rethrow. */
function stopOnHalt(link: CallLink | undefined, error: unknown): unknown {
  if (isHalt(error)) link?.stop(error);
  return error;
}

/** The Warden call an answered `tool-approval-request` paused, or undefined when Warden did not raise it. */
function resume(warden: Warden, toolCallId: string, args: unknown, signal: AbortSignal | undefined): ToolCallHandle | undefined {
  try {
    // The input the SDK runs with now (the app's message history may have changed it): the approval must cover it.
    return warden.resumeToolCall(toolCallId, { signal, args });
  } catch (error) {
    if (error instanceof NotFoundError) return undefined;
    throw error;
  }
}

/** `needsApproval` for `approval: "user-approval"`: true when Warden asks for a reviewer (or the tool itself does). */
function needsApproval(name: string, tool: AnyTool, warden: Warden, options: GovernToolsOptions) {
  const own = tool.needsApproval;
  return async (input: unknown, context: { toolCallId: string; messages: ToolExecutionOptions<unknown>["messages"]; context: unknown }): Promise<boolean> => {
    const ownAnswer = typeof own === "function" ? await own(input, context) : own === true;
    // An answered request: `execute` checks Warden's decision when it runs.
    if (approvalRequested(context.messages, context.toolCallId)) return true;
    // Decided and recorded once: `execute` picks up the same call by its id.
    const handle = warden.beginToolCall({ tool: name, args: input, externalId: context.toolCallId, runId: options.runId });
    return handle.outcome.outcome === "needs_approval" || ownAnswer;
  };
}

/** A tool's result: a value, a promise, or (from a plain function) an async iterable, read to its last value. */
async function settle(result: unknown): Promise<unknown> {
  if (result !== null && typeof result === "object" && Symbol.asyncIterator in result) {
    let last: unknown;
    for await (const value of result as AsyncIterable<unknown>) last = value;
    return last;
  }
  return await result;
}

function isAsyncGeneratorFunction(fn: unknown): boolean {
  return Object.prototype.toString.call(fn) === "[object AsyncGeneratorFunction]";
}
