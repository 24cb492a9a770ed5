// One trace per toolkit: each adapter traced by its framework's own tracing and by agent-warden/otel at
// once, with the real OpenTelemetry SDK; Warden's spans land in the framework's trace, under its spans.
import { awaitAllCallbacks } from "@langchain/core/callbacks/promises";
import { HumanMessage, AIMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool as langchainTool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { setLangfuseTracerProvider, startActiveObservation } from "@langfuse/tracing";
import { context } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createAgent } from "langchain";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type WardenOptions } from "agent-warden";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";
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
