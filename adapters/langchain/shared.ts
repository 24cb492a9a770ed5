// What the middleware and the callback handler share: which framework tool calls the middleware is
// governing (so the handler does not record them twice), the state keys that carry the run across
// interrupts, how framework values are turned into recordable ones, where a failure is reported, and how a run is failed once.
// Nothing here imports `langchain` or `@langchain/langgraph`: the callback handler needs only `@langchain/core`.
import { WardenError, type Warden } from "agent-warden";

/** Private agent-state key holding the Warden run of the current agent invocation (checkpointed with the thread). */
export const RUN_ID_KEY = "_wardenRunId";
/** Private agent-state key: true when the middleware opened that run and so must close it. */
export const RUN_OWNED_KEY = "_wardenRunOwned";

const governed = new WeakMap<Warden, Set<string>>();

/** Marks a framework tool call id as governed by the middleware while `fn` runs. */
export async function whileGoverned<T>(warden: Warden, toolCallId: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (toolCallId === undefined) return fn();
  let ids = governed.get(warden);
  if (ids === undefined) governed.set(warden, (ids = new Set()));
  ids.add(toolCallId);
  try {
    return await fn();
  } finally {
    ids.delete(toolCallId);
  }
}

/** True when the middleware already decides on and records this framework tool call. */
export function isGoverned(warden: Warden, toolCallId: string | undefined): boolean {
  return toolCallId !== undefined && governed.get(warden)?.has(toolCallId) === true;
}

interface MessageLike {
  content: unknown;
  status?: unknown;
  getType?: () => string;
}

function isMessageLike(value: unknown): value is MessageLike {
  return typeof value === "object" && value !== null && "content" in value && typeof (value as MessageLike).getType === "function";
}

/** A tool result as it is worth recording: a message's content, a command's update, else the value. */
export function recordableOutput(output: unknown): unknown {
  if (isMessageLike(output)) return output.content;
  if (isCommand(output)) {
    const update = output.update;
    const messages = update && typeof update === "object" && "messages" in update ? (update as { messages?: unknown }).messages : undefined;
    return { command: { goto: output.goto, messages: Array.isArray(messages) ? messages.map((m) => (isMessageLike(m) ? m.content : m)) : undefined } };
  }
  return output;
}

/** A tool message the tool itself marked as an error (`status: "error"`). */
export function isErrorMessage(output: unknown): output is MessageLike {
  return isMessageLike(output) && output.status === "error";
}

// ── framework values, recognised by the markers the frameworks themselves use across copies ──────
// LangChain and LangGraph make these checks by brand or name (so two installed copies agree); reading the
// same markers here keeps this module from loading either package.

/** LangGraph's `isGraphInterrupt`: an `interrupt()` pausing the graph (`GraphInterrupt`, `NodeInterrupt`). */
export function isGraphInterrupt(error: unknown): boolean {
  const name = (error as { name?: unknown } | null | undefined)?.name;
  return name === "GraphInterrupt" || name === "NodeInterrupt";
}

/** LangGraph's `isGraphBubbleUp`: control flow (interrupts, parent commands) that must pass through untouched. */
export function isGraphBubbleUp(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { is_bubble_up?: unknown }).is_bubble_up === true;
}

/** LangGraph's `isCommand`: a `Command` a tool returns to update state or route. */
export function isCommand(value: unknown): value is { update?: unknown; goto?: unknown } {
  if (typeof value !== "object" || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype !== Object.prototype && prototype !== null && (value as { lg_name?: unknown }).lg_name === "Command";
}

/** LangChain's `MiddlewareError.isInstance` / `ToolInvocationError.isInstance`: its errors carry a `~brand`. */
export function hasLangChainBrand(error: unknown, brand: "MiddlewareError" | "ToolInvocationError"): boolean {
  return error instanceof Error && (error as Error & { "~brand"?: unknown })["~brand"] === brand;
}

/** Fails a run unless it is closed already: a halt, or a parallel call of the same run, may have failed it first. */
export async function failRunIfOpen(warden: Warden, runId: string, error: unknown): Promise<void> {
  try {
    await warden.failRun(runId, error);
  } catch (failure) {
    if (!(WardenError.isInstance(failure) && failure.code === "invalid_state")) throw failure;
  }
}

/** Where failures that must not reach the agent go: the adapter's `onError` option, else the client's one sink. */
export function errorSink(warden: Warden, onError: ((error: unknown) => void) | undefined): (error: unknown) => void {
  return onError ?? ((error) => warden.reportError(error, "langchain"));
}
