// One trace per toolkit: each adapter traced by its framework's own tracing and by agent-warden/otel at
// once, with the real OpenTelemetry SDK; Warden's spans land in the framework's trace, under its spans.
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { HumanMessage, AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool as langchainTool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { setLangfuseTracerProvider, startActiveObservation } from "@langfuse/tracing";
import { OpenTelemetry } from "@ai-sdk/otel";
import { OpenAIAgentsInstrumentation } from "@arizeai/openinference-instrumentation-openai-agents";
import * as agents from "@openai/agents";
import { Agent, run, setTracingDisabled, tool as agentsTool, Usage } from "@openai/agents";
import { functionCall, assistantMessage, modelResponse, ScriptedModel } from "@openai/agents-core/testing";
import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { generateText, stepCountIs, streamText, tool as aiTool } from "ai";
import { convertArrayToReadableStream, MockLanguageModelV4 } from "ai/test";
import { createAgent } from "langchain";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { Warden, type WardenOptions } from "agent-warden";
import { governTools, wardenCallOptions } from "agent-warden/ai";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";
import { governAgent, governedRun, linkAgentsSpans } from "agent-warden/openai-agents";
import { instrumentWarden, type WardenTelemetryOptions } from "agent-warden/otel";
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

function open(options: Partial<WardenOptions> = {}, telemetry: WardenTelemetryOptions = {}): Warden {
  const warden = new Warden({ agentId: "support", store: ":memory:", onError: () => {}, policies: { version: 1, default: "allow", policies: [{ id: "no-refunds", when: { tool: "refund" }, action: "block", reason: "refunds need a human" }] }, ...options });
  clients.push(warden);
  undos.push(instrumentWarden(warden, { tracerProvider: provider, ...telemetry }));
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

const usage = { inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined }, outputTokens: { total: 5, text: 5, reasoning: undefined } };
const lookupOrder = () => aiTool({ description: "Look up an order", inputSchema: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });

describe("AI SDK traced by @ai-sdk/otel and by Warden", () => {
  it("generateText: one execute_tool span per call, the SDK's, carrying Warden's decision; an allowed and a blocked call", async () => {
    const warden = open();
    let refunded = 0;
    const model = new MockLanguageModelV4({
      doGenerate: [
        {
          content: [
            { type: "tool-call", toolCallId: "call_1", toolName: "lookup_order", input: JSON.stringify({ id: 7 }) },
            { type: "tool-call", toolCallId: "call_2", toolName: "refund", input: JSON.stringify({ id: 7 }) },
          ],
          finishReason: { unified: "tool-calls", raw: undefined },
          usage,
          warnings: [],
        },
        { content: [{ type: "text", text: "shipped, no refund" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
      ],
    });
    const refund = aiTool({ description: "Refund an order", inputSchema: z.object({ id: z.number() }), execute: async () => `refunded ${++refunded}` });
    const result = await generateText({
      model,
      prompt: "where is order 7?",
      tools: governTools({ lookup_order: lookupOrder(), refund }, warden),
      stopWhen: stepCountIs(3),
      telemetry: { functionId: "support", integrations: new OpenTelemetry({ tracer: provider.getTracer("ai") }) },
    });
    expect(result.text).toBe("shipped, no refund");
    expect(refunded).toBe(0);

    const root = named("invoke_agent mock-model-id")[0]!;
    const traceId = root.spanContext().traceId;
    expect(new Set(finished().map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    // The SDK's tool spans are the only ones: no second execute_tool, no run span per call.
    expect(finished().filter((span) => span.attributes["gen_ai.operation.name"] === "execute_tool")).toHaveLength(2);
    expect(finished().filter((span) => span.attributes["gen_ai.operation.name"] === "invoke_agent")).toEqual([root]);
    const lookup = named("execute_tool lookup_order")[0]!;
    expect(lookup.instrumentationScope.name).toBe("ai");
    expect(ancestry(lookup)).toEqual(["execute_tool lookup_order", "step 1", "invoke_agent mock-model-id"]);
    expect(lookup.attributes).toMatchObject({ "gen_ai.tool.call.id": "call_1", "gen_ai.tool.name": "lookup_order", "agent_warden.decision.action": "allow" });
    // Allowed by the default, no policy behind it: the attribute says so, with no decision event to repeat it.
    expect(lookup.events.map((event) => event.name)).not.toContain("agent_warden.decision");
    const refused = named("execute_tool refund")[0]!;
    expect(refused.attributes).toMatchObject({ "gen_ai.tool.call.id": "call_2", "agent_warden.decision.action": "block", "agent_warden.policy.id": "no-refunds", "error.type": "blocked" });
    expect(refused.status.code).toBe(SpanStatusCode.ERROR);
    expect(refused.events.find((event) => event.name === "agent_warden.decision")?.attributes).toMatchObject({ "agent_warden.policy.id": "no-refunds", "agent_warden.decision.reason": "refunds need a human" });

    // The span leads to the ledger: Warden's run and call ids, and the ledger holds the SDK's trace id.
    const runId = String(lookup.attributes["agent_warden.run.id"]);
    const record = await warden.getRun(runId);
    expect(record.traceId).toBe(traceId);
    expect(record.toolCalls.map((call) => [call.toolCallId, call.externalId])).toEqual([[lookup.attributes["agent_warden.tool_call.id"], "call_1"]]);
  });

  it("wardenCallOptions: a call decided in toolApproval, before the SDK opens its span, still has one execute_tool span, the SDK's", async () => {
    const warden = open();
    let refunded = 0;
    const model = new MockLanguageModelV4({
      doGenerate: [
        {
          content: [
            { type: "tool-call", toolCallId: "call_1", toolName: "lookup_order", input: JSON.stringify({ id: 7 }) },
            { type: "tool-call", toolCallId: "call_2", toolName: "refund", input: JSON.stringify({ id: 7 }) },
          ],
          finishReason: { unified: "tool-calls", raw: undefined },
          usage,
          warnings: [],
        },
        { content: [{ type: "text", text: "shipped, no refund" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
      ],
    });
    const refund = aiTool({ description: "Refund an order", inputSchema: z.object({ id: z.number() }), execute: async () => `refunded ${++refunded}` });
    await generateText({
      model,
      prompt: "where is order 7?",
      tools: governTools({ lookup_order: lookupOrder(), refund }, warden),
      stopWhen: stepCountIs(3),
      ...wardenCallOptions(warden),
      telemetry: { functionId: "support", integrations: new OpenTelemetry({ tracer: provider.getTracer("ai") }) },
    });
    expect(refunded).toBe(0);
    const calls = finished().filter((span) => span.attributes["gen_ai.operation.name"] === "execute_tool");
    expect(calls.map((span) => span.name).sort()).toEqual(["execute_tool lookup_order", "execute_tool refund"]);
    // The allowed call ran in the SDK's span: Warden's facts are on it, under the framework's own call id.
    const lookup = named("execute_tool lookup_order")[0]!;
    expect(lookup.instrumentationScope.name).toBe("ai");
    expect(ancestry(lookup)).toEqual(["execute_tool lookup_order", "step 1", "invoke_agent mock-model-id"]);
    expect(lookup.attributes).toMatchObject({ "gen_ai.tool.call.id": "call_1", "agent_warden.decision.action": "allow" });
    const runId = String(lookup.attributes["agent_warden.run.id"]);
    expect((await warden.getRun(runId)).toolCalls.map((call) => [call.toolCallId, call.externalId])).toEqual([[lookup.attributes["agent_warden.tool_call.id"], "call_1"]]);
    // Its run of its own shows through the SDK's span, not as an invoke_agent span per call.
    expect(finished().filter((span) => span.attributes["agent_warden.run.id"] === runId).map((span) => span.name)).toEqual(["execute_tool lookup_order"]);
    // The refused call never reached the SDK's execute: Warden's span is its one span.
    const refused = named("execute_tool refund")[0]!;
    expect(refused.instrumentationScope.name).toBe("agent-warden");
    expect(refused.attributes).toMatchObject({ "agent_warden.decision.action": "block", "agent_warden.policy.id": "no-refunds", "error.type": "blocked" });
  });

  it("an approval wait on the SDK's span: requested and approved events, reviewer and outcome, then the call runs", async () => {
    const warden = open({
      policies: { version: 1, default: "allow", policies: [{ id: "deploys", when: { tool: "deploy" }, action: "require_approval" }] },
      onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "bob" }), 5),
    });
    const deployed: number[] = [];
    const deploy = aiTool({ description: "Deploy", inputSchema: z.object({ id: z.number() }), execute: async ({ id }) => `deployed ${deployed.push(id)}` });
    const model = new MockLanguageModelV4({
      doGenerate: [
        { content: [{ type: "tool-call", toolCallId: "call_1", toolName: "deploy", input: JSON.stringify({ id: 3 }) }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] },
        { content: [{ type: "text", text: "deployed" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
      ],
    });
    await generateText({ model, prompt: "deploy 3", tools: governTools({ deploy }, warden), stopWhen: stepCountIs(3), telemetry: { integrations: new OpenTelemetry({ tracer: provider.getTracer("ai") }) } });
    expect(deployed).toEqual([3]);

    const [call, ...more] = named("execute_tool deploy");
    expect(more).toEqual([]);
    expect(call!.instrumentationScope.name).toBe("ai");
    expect(call!.attributes).toMatchObject({ "agent_warden.decision.action": "require_approval", "agent_warden.approval.outcome": "approved", "agent_warden.approval.reviewer": "bob" });
    expect(call!.events.map((event) => event.name)).toEqual(expect.arrayContaining(["agent_warden.approval.requested", "agent_warden.approval.approved"]));
    expect(call!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(call!.attributes["gen_ai.tool.call.result"]).toBe(JSON.stringify("deployed 1"));
  });

  it("streamText inside warden.run inside a request span: the call's span is the SDK's, in the run recorded there", async () => {
    const warden = open();
    const chunks = (parts: unknown[]) => ({ stream: convertArrayToReadableStream(parts as never[]) });
    const finish = (reason: "tool-calls" | "stop") => ({ type: "finish", finishReason: { unified: reason, raw: undefined }, usage });
    const model = new MockLanguageModelV4({
      doStream: [
        chunks([{ type: "stream-start", warnings: [] }, { type: "tool-call", toolCallId: "call_1", toolName: "lookup_order", input: JSON.stringify({ id: 7 }) }, finish("tool-calls")]),
        chunks([{ type: "stream-start", warnings: [] }, { type: "text-start", id: "t" }, { type: "text-delta", id: "t", delta: "shipped" }, { type: "text-end", id: "t" }, finish("stop")]),
      ],
    });
    const { runId, text } = await provider.getTracer("app").startActiveSpan("POST /chat", async (span) => {
      try {
        return await warden.run({ task: "order status" }, async (run) => {
          const result = streamText({ model, prompt: "where is order 7?", tools: governTools({ lookup_order: lookupOrder() }, warden), stopWhen: stepCountIs(3), telemetry: { integrations: new OpenTelemetry({ tracer: provider.getTracer("ai") }) } });
          return { runId: run.runId, text: await result.text };
        });
      } finally {
        span.end();
      }
    });
    expect(text).toBe("shipped");

    const request = named("POST /chat")[0]!;
    const call = named("execute_tool lookup_order");
    expect(call).toHaveLength(1);
    expect(ancestry(call[0]!)).toEqual(["execute_tool lookup_order", "step 1", "invoke_agent mock-model-id", "POST /chat"]);
    expect(call[0]!.attributes).toMatchObject({ "gen_ai.tool.call.id": "call_1", "agent_warden.run.id": runId, "agent_warden.decision.action": "allow" });
    // The run Warden recorded the call in has its span under the request too, and the request's trace id.
    const run = named("invoke_agent support")[0]!;
    expect(run.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(run.attributes["agent_warden.run.id"]).toBe(runId);
    expect((await warden.getRun(runId)).traceId).toBe(request.spanContext().traceId);
  });
});

describe("OpenAI Agents traced by the OpenInference bridge and by Warden", () => {
  // The bridge as its README registers it (exclusive: it replaces the SDK's own exporter), given the link's
  // provider so Warden can find the bridge's span for the SDK span it records under.
  const link = linkAgentsSpans(provider);
  const bridge = new OpenAIAgentsInstrumentation({ tracerProvider: link.tracerProvider });
  beforeAll(() => {
    bridge.manuallyInstrument(agents);
    setTracingDisabled(false);
  });
  afterAll(() => {
    bridge.uninstrument();
    setTracingDisabled(true);
  });

  const scripted = () =>
    new ScriptedModel([
      modelResponse({ output: [functionCall("lookup_order", { id: 7 }, { callId: "call_1" }), functionCall("refund", { id: 7 }, { callId: "call_2" })], usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }) }),
      modelResponse({ output: [assistantMessage("shipped, no refund")], usage: new Usage({ requests: 1, inputTokens: 10, outputTokens: 5, totalTokens: 15 }) }),
    ]);
  const tools = () => {
    const refunds: number[] = [];
    const lookup = agentsTool({ name: "lookup_order", description: "Look up an order", parameters: z.object({ id: z.number() }), execute: async ({ id }) => `order ${id}: shipped` });
    const refund = agentsTool({ name: "refund", description: "Refund an order", parameters: z.object({ id: z.number() }), execute: async ({ id }) => `refunded ${refunds.push(id)}` });
    return { lookup, refund, refunds };
  };
  /** The bridge ends its spans from the SDK's processor callbacks, after `run` returns. */
  const traced = () => vi.waitFor(() => expect(named("Agent workflow").filter((span) => span.attributes["openinference.span.kind"] === "AGENT")).toHaveLength(1));

  it("run(agent) with approval \"wait\": each Warden execute_tool span under the bridge's function span, in the bridge's trace", async () => {
    const warden = open({}, { frameworkSpan: link.currentSpan });
    const { lookup, refund, refunds } = tools();
    const agent = governAgent(new Agent({ name: "support", model: scripted(), tools: [lookup, refund] }), warden, { approval: "wait" });
    const result = await run(agent, "where is order 7?");
    expect(result.finalOutput).toBe("shipped, no refund");
    expect(refunds).toEqual([]);
    await traced();

    const traceId = named("Agent workflow")[0]!.spanContext().traceId;
    expect(new Set(finished().map((span) => span.spanContext().traceId))).toEqual(new Set([traceId]));
    for (const tool of ["lookup_order", "refund"]) {
      const functionSpan = named(tool)[0]!;
      expect(functionSpan.attributes["openinference.span.kind"]).toBe("TOOL");
      const call = named(`execute_tool ${tool}`)[0]!;
      // No run was open: the call's run of its own sits under the function span, the call under it.
      expect(ancestry(call).slice(0, 3)).toEqual([`execute_tool ${tool}`, "invoke_agent support", tool]);
      expect(ancestry(call).at(-1)).toBe("Agent workflow");
    }
    expect(named("execute_tool refund")[0]!.attributes).toMatchObject({ "error.type": "blocked", "agent_warden.policy.id": "no-refunds" });
    // The ledger holds the bridge's trace id.
    const runId = String(named("execute_tool lookup_order")[0]!.attributes["agent_warden.run.id"]);
    expect((await warden.getRun(runId)).traceId).toBe(traceId);
  });

  it("governedRun in a request span, approval through interruptions (the default): Warden decides in the bridge's turn span, before the SDK opens the function span", async () => {
    const warden = open({}, { frameworkSpan: link.currentSpan });
    const { lookup, refund, refunds } = tools();
    const agent = governAgent(new Agent({ name: "support", model: scripted(), tools: [lookup, refund] }), warden);
    const result = await provider.getTracer("app").startActiveSpan("POST /chat", async (span) => {
      try {
        return await governedRun(agent, "where is order 7?", warden);
      } finally {
        span.end();
      }
    });
    expect(result.finalOutput).toBe("shipped, no refund");
    expect(refunds).toEqual([]);
    await traced();

    const request = named("POST /chat")[0]!;
    expect(new Set(finished().map((span) => span.spanContext().traceId))).toEqual(new Set([request.spanContext().traceId]));
    // The bridge's trace and Warden's run both under the request span.
    expect(named("Agent workflow").find((span) => span.parentSpanContext?.spanId === request.spanContext().spanId)).toBeDefined();
    const run = named("invoke_agent support")[0]!;
    expect(run.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    for (const tool of ["lookup_order", "refund"]) {
      const call = named(`execute_tool ${tool}`)[0]!;
      const functionSpan = named(tool)[0]!;
      // Decided in `needsApproval`, while the SDK's turn span is current: beside the function span, under the same turn.
      expect(call.parentSpanContext?.spanId).toBe(functionSpan.parentSpanContext?.spanId);
      expect(byId(call.parentSpanContext?.spanId)?.name).toBe("turn");
      expect(call.attributes["agent_warden.run.id"]).toBe(run.attributes["agent_warden.run.id"]);
    }
    expect(named("execute_tool refund")[0]!.attributes["error.type"]).toBe("blocked");
    expect((await warden.getRun(String(run.attributes["agent_warden.run.id"]))).traceId).toBe(request.spanContext().traceId);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe("frameworkSpan", () => {
  it("fails open: a source that throws is reported and Warden's spans join the active context", async () => {
    const errors: unknown[] = [];
    const warden = open({ onError: (error) => errors.push(error) }, { frameworkSpan: () => { throw new Error("no bridge"); } });
    await provider.getTracer("app").startActiveSpan("POST /chat", async (span) => {
      try {
        await warden.run({ task: "lookup" }, (run) => run.tool("lookup_order", { id: 7 }, () => "shipped"));
      } finally {
        span.end();
      }
    });
    expect(ancestry(named("execute_tool lookup_order")[0]!)).toEqual(["execute_tool lookup_order", "invoke_agent support", "POST /chat"]);
    expect(errors.map((error) => (error as Error).message)).toContain("no bridge");
  });

  it("linkAgentsSpans names no span outside the SDK's spans", () => {
    expect(linkAgentsSpans(provider).currentSpan()).toBeUndefined();
  });
});
