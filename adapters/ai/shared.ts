// What the call-level options and the governed tools share: the link from an AI SDK tool call id to
// the Warden call begun for it, the marker on governed tools, and a few small helpers.
import type { ModelMessage } from "ai";
import type { ToolCallHandle, Warden } from "agent-warden";

/** What the call-level options hand to the tool that runs a given AI SDK tool call. */
export interface CallLink {
  /** Stops the whole `generateText` / `streamText` call (used on a halt). */
  stop(reason: unknown): void;
  /** The Warden call already begun (and decided) for this tool call, in the call-level options' run. */
  handle: ToolCallHandle;
}

const links = new WeakMap<Warden, Map<string, CallLink>>();

export function setLink(warden: Warden, toolCallId: string, link: CallLink): void {
  let byId = links.get(warden);
  if (!byId) links.set(warden, (byId = new Map()));
  byId.set(toolCallId, link);
}

/** Returns and forgets the link for a tool call: each link is used once. */
export function takeLink(warden: Warden, toolCallId: string): CallLink | undefined {
  const byId = links.get(warden);
  const link = byId?.get(toolCallId);
  if (link) byId!.delete(toolCallId);
  return link;
}

/** Marks a tool whose `execute` a given Warden client already governs. */
export const governedBy = Symbol.for("agent-warden.ai.governed-by");

export function isGovernedBy(tool: unknown, warden: Warden): boolean {
  return typeof tool === "object" && tool !== null && (tool as Record<symbol, unknown>)[governedBy] === warden;
}

export function isExecutable(tool: unknown): boolean {
  return typeof tool === "object" && tool !== null && typeof (tool as { execute?: unknown }).execute === "function";
}

/** An own property only: tool names come from the model. */
export function ownTool<T>(tools: Record<string, T> | undefined, name: string): T | undefined {
  return tools !== undefined && Object.prototype.hasOwnProperty.call(tools, name) ? tools[name] : undefined;
}

/**
 * True when `messages` hold a (non-automatic) `tool-approval-request` for this tool call: the call
 * is being resumed after the app answered it, rather than made for the first time.
 */
export function approvalRequested(messages: readonly ModelMessage[] | undefined, toolCallId: string): boolean {
  if (!messages) return false;
  for (const message of messages) {
    if (message.role !== "assistant" || typeof message.content === "string") continue;
    for (const part of message.content) {
      if (part.type === "tool-approval-request" && part.toolCallId === toolCallId && part.isAutomatic !== true) return true;
    }
  }
  return false;
}
