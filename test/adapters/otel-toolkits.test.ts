// One trace per toolkit: each adapter traced by its framework's own tracing and by agent-warden/otel at
// once, with the real OpenTelemetry SDK; Warden's spans land in the framework's trace, under its spans.
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { HumanMessage, AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool as langchainTool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { setLangfuseTracerProvider, startActiveObservation } from "@langfuse/tracing";
import { context, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Agent, setTracingDisabled, tool as agentsTool, Usage } from "@openai/agents";
import { functionCall, assistantMessage, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { generateText, stepCountIs, tool as aiTool, type Telemetry } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { createAgent } from "langchain";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type WardenOptions } from "agent-warden";
import { governTools } from "agent-warden/ai";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";
import { governAgent, governedRun } from "agent-warden/openai-agents";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../fixtures/otel-context.js";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const clients: Warden[] = [];
const undos: Array<() => void> = [];

beforeAll(() => {
  context.setGlobalContextManager(new StorageContextManager());
  setLangfuseTracerProvider(provider);
});
afterAll(() => {
  setLangfuseTracerProvider(null);
  context.disable();
});
afterEach(() => {
  for (const undo of undos.splice(0)) undo();
  for (const client of clients.splice(0)) client.close();
  exporter.reset();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "support", store: ":memory:", onError: () => {}, policies: { version: 1, default: "allow", policies: [{ id: "no-refunds", when: { tool: "refund" }, action: "block", reason: "refunds need a human" }] }, ...options });
  clients.push(warden);
  undos.push(instrumentWarden(warden, { tracerProvider: provider }));
  return warden;
}

const finished = () => exporter.getFinishedSpans();
const named = (name: string) => finished().filter((span) => span.name === name);
const byId = (spanId: string | undefined) => finished().find((span) => span.spanContext().spanId === spanId);
/** The names from a span up to its root. */
function ancestry(span: ReadableSpan): string[] {
  const names: string[] = [];
  for (let current: ReadableSpan | undefined = span; current !== undefined; current = byId(current.parentSpanContext?.spanId)) names.push(current.name);
  return names;
}

describe("LangChain traced by Langfuse (@langfuse/langchain) and by Warden", () => {
  it("createAgent + wardenMiddleware inside a Langfuse observation: Warden's run and tool spans in Langfuse's trace", async () => {
    const warden = open();
    const lookup = langchainTool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
    const model = fakeModel().respondWithTools([{ name: "lookup_order", args: { id: 7 }, id: "call_1" }]).respond(new AIMessage("shipped"));
    const agent = createAgent({ model, tools: [lookup], middleware: [wardenMiddleware(warden)] });
    const langfuse = new LangfuseCallbackHandler();
    await startActiveObservation("support turn", () => agent.invoke({ messages: [new HumanMessage("where is order 7?")] }, { callbacks: [langfuse] }));

    const turn = named("support turn")[0]!;
    const traceId = turn.spanContext().traceId;
    // Langfuse traced the graph: its spans, and Warden's, all in the observation's trace.
    expect(named("LangGraph")).toHaveLength(1);
    expect(named("lookup_order")).toHaveLength(1);
    expect(new Set(finished().map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    const call = named("execute_tool lookup_order")[0]!;
    expect(ancestry(call)).toEqual(["execute_tool lookup_order", "invoke_agent support", "support turn"]);
    expect(call.attributes["gen_ai.tool.call.id"]).toBeDefined();
    // The ledger holds the backend's trace id.
    const run = named("invoke_agent support")[0]!;
    expect((await warden.getRun(String(run.attributes["agent_warden.run.id"]))).traceId).toBe(traceId);
  });

  it("WardenCallbackHandler beside Langfuse's handler: an allowed and a refused call in the same trace, under the observation", async () => {
    const warden = open();
    let refunded = 0;
    const lookup = langchainTool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
    const refund = langchainTool(async () => `refunded ${++refunded}`, { name: "refund", description: "Refund an order", schema: z.object({ id: z.number() }) });
    const callbacks = [new LangfuseCallbackHandler(), new WardenCallbackHandler(warden)];
    const outcome = await startActiveObservation("refund turn", async () => {
      await lookup.invoke({ id: 7 }, { callbacks });
      return refund.invoke({ id: 7 }, { callbacks }).catch((error: unknown) => error);
    });
    expect(outcome).toBeInstanceOf(Error);
    expect(refunded).toBe(0);
    // Langfuse's handler ends its spans in the background.
    await awaitAllCallbacks();

    const traceId = named("refund turn")[0]!.spanContext().traceId;
    // Langfuse's span for the tool that ran, and Warden's for both calls, in the observation's trace.
    expect(named("lookup_order").map((span) => span.spanContext().traceId)).toEqual([traceId]);
    for (const name of ["execute_tool lookup_order", "execute_tool refund"]) {
      const call = named(name)[0]!;
      expect(call.spanContext().traceId).toBe(traceId);
      expect(ancestry(call).at(-1)).toBe("refund turn");
    }
    expect(named("execute_tool refund")[0]!.attributes).toMatchObject({ "error.type": "blocked", "agent_warden.policy.id": "no-refunds" });
  });
});

/**
 * The AI SDK's OpenTelemetry integration in brief (AI SDK 7 moved it out of `ai` into `@ai-sdk/otel`, not
 * installed here): a span per generation, and each tool's `execute` run inside an active `ai.toolCall`
 * span, through the SDK's own `Telemetry` hooks, as that integration does.
 */
function aiSdkTracing(tracer: Tracer): Telemetry {
  const operations = new Map<string, { span: Span; ctx: Context }>();
  return {
    onStart: (event) => {
      const span = tracer.startSpan(String(event.operationId), { attributes: { "ai.model.id": event.modelId } });
      operations.set(event.callId, { span, ctx: trace.setSpan(context.active(), span) });
    },
    executeTool: (options) => {
      const parent = options.callId === undefined ? undefined : operations.get(options.callId)?.ctx;
      return tracer.startActiveSpan("ai.toolCall", { attributes: { "ai.toolCall.id": options.toolCallId } }, parent ?? context.active(), async (span) => {
        try {
          return await options.execute();
        } finally {
          span.end();
        }
      });
    },
    onEnd: (event) => {
      const operation = operations.get(event.callId);
      operations.delete(event.callId);
      operation?.span.end();
    },
  };
}

describe("AI SDK experimental_telemetry and Warden", () => {
  it("generateText traced through the SDK's telemetry integration hooks: Warden's spans sit under the SDK's ai.toolCall span, in its trace", async () => {
    const warden = open();
    const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 5, text: 5, reasoning: undefined } };
    const model = new MockLanguageModelV4({
      doGenerate: [
        { content: [{ type: "tool-call", toolCallId: "call_1", toolName: "lookup_order", input: JSON.stringify({ id: 7 }) }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] },
        { content: [{ type: "text", text: "shipped" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
      ],
    });
    const lookup = aiTool({ description: "Look up an order", inputSchema: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });
    const result = await generateText({
      model,
      prompt: "where is order 7?",
      tools: governTools({ lookup_order: lookup }, warden),
      stopWhen: stepCountIs(3),
      experimental_telemetry: { isEnabled: true, functionId: "support", integrations: aiSdkTracing(provider.getTracer("ai")) },
    });
    expect(result.text).toBe("shipped");

    const sdkCall = named("ai.toolCall")[0]!;
    const traceId = named("ai.generateText")[0]!.spanContext().traceId;
    // No run was open: the call got a run of its own, opened inside the SDK's tool span, in the SDK's trace.
    const call = named("execute_tool lookup_order")[0]!;
    expect(ancestry(call)).toEqual(["execute_tool lookup_order", "invoke_agent support", "ai.toolCall", "ai.generateText"]);
    expect(new Set(finished().map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(call.attributes["gen_ai.tool.call.id"]).toBeDefined();
    expect(sdkCall.attributes["ai.toolCall.id"]).toBe("call_1");
    // The ledger has the SDK's trace id.
    const run = named("invoke_agent support")[0]!;
    expect((await warden.getRun(String(run.attributes["agent_warden.run.id"]))).traceId).toBe(traceId);
  });
});

describe("OpenAI Agents and Warden", () => {
  // No OpenTelemetry bridge for the Agents SDK's own tracing is installed here: the test opens the span a
  // request handler (or such a bridge) would hold around the run, and the SDK's tracing stays off.
  beforeAll(() => setTracingDisabled(true));
  afterAll(() => setTracingDisabled(false));

  it("governedRun inside an active span: the run and its tool calls are that span's children, in its trace", async () => {
    const warden = open();
    const lookup = agentsTool({ name: "lookup_order", description: "Look up an order", parameters: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });
    const refund = agentsTool({ name: "refund", description: "Refund an order", parameters: z.object({ id: z.number() }), execute: async () => "refunded" });
    const model = new ScriptedModel([
      modelResponse({ output: [functionCall("lookup_order", { id: 7 }, { callId: "call_1" }), functionCall("refund", { id: 7 }, { callId: "call_2" })], usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }) }),
      modelResponse({ output: [assistantMessage("shipped, no refund")], usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }) }),
    ]);
    const agent = governAgent(new Agent({ name: "support", model, tools: [lookup, refund] }), warden);
    const request = provider.getTracer("app");
    const result = await request.startActiveSpan("POST /chat", async (span) => {
      try {
        return await governedRun(agent, "where is order 7?", warden);
      } finally {
        span.end();
      }
    });
    expect(result.finalOutput).toBe("shipped, no refund");

    const root = named("POST /chat")[0]!;
    const traceId = root.spanContext().traceId;
    const run = finished().find((span) => span.name.startsWith("invoke_agent"))!;
    expect(run.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    for (const name of ["execute_tool lookup_order", "execute_tool refund"]) {
      const call = named(name)[0]!;
      expect(call.spanContext().traceId).toBe(traceId);
      expect(call.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
    }
    expect(named("execute_tool refund")[0]!.attributes["error.type"]).toBe("blocked");
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});
