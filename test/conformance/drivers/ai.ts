// Shared by the AI SDK surfaces: a MockLanguageModelV4 asks for the scenario's tool once, then answers.
import { generateText, stepCountIs, streamText, tool, type ToolSet } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { z } from "zod";
import { isHalt, WardenError } from "agent-warden";
import { governTools, wardenCallOptions } from "agent-warden/ai";
import { classify, type Call, type Driven } from "../harness.js";

export type AiMode = "governTools + generateText" | "governTools + streamText" | "wardenCallOptions + generateText";

const CALL_ID = "call-1";

function usageOf(call: Call) {
  const { inputTokens, outputTokens } = call.modelUsage;
  return { inputTokens: { total: inputTokens, noCache: inputTokens, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: outputTokens, text: outputTokens, reasoning: undefined } };
}

function model(call: Call, streaming: boolean): MockLanguageModelV4 {
  const usage = usageOf(call);
  const input = JSON.stringify(call.args);
  // Like a real provider, the fake model honours the call's abort signal.
  let step = 0;
  if (!streaming) {
    const steps = [
      { content: [{ type: "tool-call" as const, toolCallId: CALL_ID, toolName: call.tool, input }], finishReason: { unified: "tool-calls" as const, raw: undefined }, usage, warnings: [] },
      { content: [{ type: "text" as const, text: "done" }], finishReason: { unified: "stop" as const, raw: undefined }, usage, warnings: [] },
    ];
    return new MockLanguageModelV4({
      doGenerate: async ({ abortSignal }) => {
        abortSignal?.throwIfAborted();
        return steps[Math.min(step++, steps.length - 1)]!;
      },
    });
  }
  const chunks = (...parts: unknown[]) => ({ stream: new ReadableStream({ start: (c) => (parts.forEach((p) => c.enqueue(p)), c.close()) }) });
  const finish = (unified: "tool-calls" | "stop") => ({ type: "finish", finishReason: { unified, raw: undefined }, usage });
  const streams = [
    () => chunks({ type: "tool-call", toolCallId: CALL_ID, toolName: call.tool, input }, finish("tool-calls")),
    () => chunks({ type: "text-start", id: "t" }, { type: "text-delta", id: "t", delta: "done" }, { type: "text-end", id: "t" }, finish("stop")),
  ];
  return new MockLanguageModelV4({
    doStream: (async ({ abortSignal }: { abortSignal?: AbortSignal }) => {
      abortSignal?.throwIfAborted();
      return streams[Math.min(step++, streams.length - 1)]!();
    }) as never,
  });
}

/** What the model was handed for the call, from the SDK's own result content. */
function answered(content: ReadonlyArray<{ type: string; toolCallId?: string; error?: unknown; output?: unknown }>): Driven {
  const part = content.find((p) => p.toolCallId === CALL_ID && (p.type === "tool-result" || p.type === "tool-error" || p.type === "tool-output-denied"));
  if (part === undefined) return { outcome: "refused", received: "no tool result: the call ended at the tool call" };
  if (part.type === "tool-output-denied") return { outcome: "refused", received: "execution-denied" };
  if (part.type === "tool-result") return { outcome: "result", received: "tool-result" };
  if (isHalt(part.error)) return { outcome: "halted", received: `tool-error ${(part.error as Error).name}, the loop went on` };
  if (WardenError.isInstance(part.error)) return { outcome: "refused", received: `tool-error ${part.error.name}` };
  return { outcome: "failed", received: "tool-error (the tool's error)" };
}

/** One call of the scenario's tool through the AI SDK, the way `mode` names. */
export async function driveAi(call: Call, mode: AiMode): Promise<Driven> {
  const { warden } = call;
  const plain = tool({ description: `the ${call.tool} tool`, inputSchema: z.object({}).passthrough(), execute: (_input, { abortSignal }) => call.body(abortSignal) });
  const tools = { [call.tool]: plain } as ToolSet;
  const streaming = mode === "governTools + streamText";
  const options = wardenCallOptions(warden, { approval: "wait", abortSignal: call.signal });
  const settings = { model: model(call, streaming), tools: mode === "wardenCallOptions + generateText" ? tools : governTools(tools, warden), prompt: "handle order 1042", stopWhen: stepCountIs(3), ...options };
  try {
    if (!streaming) {
      const result = await generateText(settings);
      return answered(result.steps.flatMap((step) => step.content));
    }
    const result = streamText(settings);
    let failure: unknown;
    for await (const part of result.fullStream) if (part.type === "error") failure = part.error;
    if (failure !== undefined) throw failure;
    return answered((await result.steps).flatMap((step) => step.content));
  } catch (error) {
    return classify(unwrap(error, call.signal), call.signal);
  }
}

/** The SDK rethrows an abort as its own error around the signal's reason. */
function unwrap(error: unknown, signal: AbortSignal): unknown {
  if (WardenError.isInstance(error) || error === signal.reason) return error;
  const cause = (error as { cause?: unknown } | null)?.cause;
  return cause !== undefined && (WardenError.isInstance(cause) || cause === signal.reason) ? cause : error;
}
