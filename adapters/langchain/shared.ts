// What the middleware and the callback handler share: the calls the middleware is wrapping (its run, and
// which framework tool call it records, so the handler does not record it twice), how framework values are
// turned into recordable ones, where a failure is reported, and how a run is closed once.
// Nothing here imports `langchain` or `@langchain/langgraph`: the callback handler needs only `@langchain/core`.
import { AsyncLocalStorage } from "node:async_hooks";
import { WardenError, type Warden } from "agent-warden";

/**
 * A model or tool call the Warden middleware wraps, as the calls inside it see it: the callback handler finds
 * the middleware's run here (the middleware opens it with its first model call, after the graph's first node
 * has started) and, having seen the call, closes that run when the invocation ends, where it sees the end.
 */
export interface GovernedCall {
  readonly warden: Warden;
  readonly runId: string;
  /** The middleware opened the run (rather than an enclosing `warden.run`), so the adapter closes it. */
  readonly owned: boolean;
  /** The framework's id of the tool call the middleware decides on and records itself. */
  readonly toolCallId: string | undefined;
  /** A callback handler on the invocation saw this call: it closes the run when the invocation ends. */
  observed: boolean;
}

export const governedCalls = new AsyncLocalStorage<GovernedCall>();

/** The call the Warden middleware of `warden` is wrapping here, if any. */
export function governedCall(warden: Warden): GovernedCall | undefined {
  const call = governedCalls.getStore();
  return call?.warden === warden ? call : undefined;
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

/** Completes a run unless it is closed already (failed by a halt, or completed by the other adapter). */
export async function completeRunIfOpen(warden: Warden, runId: string): Promise<void> {
  try {
    await warden.completeRun(runId);
  } catch (failure) {
    if (!(WardenError.isInstance(failure) && failure.code === "invalid_state")) throw failure;
  }
}

/** The core's answer for a run id that names no open run (closed, or unknown to this store): a previous invocation's. */
export function isStaleRun(error: unknown): boolean {
  return WardenError.isInstance(error) && (error.code === "invalid_state" || error.code === "not_found");
}

/** Where failures that must not reach the agent go: the adapter's `onError` option, else the client's one sink. */
export function errorSink(warden: Warden, onError: ((error: unknown) => void) | undefined): (error: unknown) => void {
  return onError ?? ((error) => warden.reportError(error, "langchain"));
}
