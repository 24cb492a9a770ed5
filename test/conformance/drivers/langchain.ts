// Shared by the LangChain surfaces: LangChain's own fake chat model asks for the scenario's tool once, then answers.
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { z } from "zod";
import { WardenError } from "agent-warden";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";
import { classify, type Call, type Driven } from "../harness.js";

export type LangChainMode = "middleware" | "callback handler";

const CALL_ID = "call_1";

/** A reply carrying the scenario's model usage (the field's declared type does not resolve under TypeScript 6, hence the cast). */
function reply(call: Call, fields: { content: string; tool_calls?: Array<{ name: string; args: Record<string, unknown>; id: string }> }): AIMessage {
  const { inputTokens, outputTokens } = call.modelUsage;
  const usage_metadata = { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens };
  return new AIMessage({ ...fields, usage_metadata } as ConstructorParameters<typeof AIMessage>[0]);
}

/** What the model was handed for the call: the tool message LangChain put into the conversation. */
function answered(messages: readonly BaseMessage[]): Driven {
  const message = messages.find((m): m is ToolMessage => ToolMessage.isInstance(m) && m.tool_call_id === CALL_ID);
  if (message === undefined) return { outcome: "refused", received: "no tool message: the model asked, nothing answered" };
  const content = String(message.content);
  if (message.status !== "error") return { outcome: "result", received: "ToolMessage: the tool's output" };
  if (content.includes("disk full")) return { outcome: "failed", received: "ToolMessage(error): the tool's error" };
  return { outcome: "refused", received: `ToolMessage(error): ${/\b(\w+Error)\b/.exec(content)?.[1] ?? "Warden's refusal"}` };
}

/** The Warden error (or the caller's abort reason) behind LangChain's wrappers (`MiddlewareError`, `ToolInvocationError`). */
function unwrap(error: unknown, signal: AbortSignal): unknown {
  for (let current = error, depth = 0; current !== null && typeof current === "object" && depth < 6; depth++) {
    if (WardenError.isInstance(current) || current === signal.reason) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return error;
}

/** One call of the scenario's tool through a `createAgent` agent governed the way `mode` names (approval: "wait"). */
export async function driveLangChain(call: Call, mode: LangChainMode): Promise<Driven> {
  const target = tool(async (_input: Record<string, unknown>, config) => call.body(config?.signal), {
    name: call.tool,
    description: `the ${call.tool} tool`,
    schema: z.object({}).passthrough(),
  });
  const model = fakeModel()
    .respond(reply(call, { content: "", tool_calls: [{ name: call.tool, args: call.args, id: CALL_ID }] }))
    .respond(reply(call, { content: "done" }));
  const agent = mode === "middleware" ? createAgent({ model, tools: [target], middleware: [wardenMiddleware(call.warden)] }) : createAgent({ model, tools: [target] });
  const callbacks = mode === "callback handler" ? [new WardenCallbackHandler(call.warden)] : [];
  try {
    const result = await agent.invoke({ messages: [new HumanMessage("handle order 1042")] }, { signal: call.signal, callbacks });
    return answered(result.messages);
  } catch (error) {
    const cause = unwrap(error, call.signal);
    if (!WardenError.isInstance(cause) && call.signal.aborted) return { outcome: "aborted", received: `invoke rejects (${(error as Error).name})` };
    const driven = classify(cause, call.signal);
    return { ...driven, received: driven.received.replace(/^throws/, "invoke rejects:") };
  }
}
