// LangChain: what one tool call costs ungoverned, traced by Langfuse's CallbackHandler, governed by
// WardenCallbackHandler (inside an open run without, then with agent-warden/otel's spans on the same tracer
// as Langfuse's; and with no run open, a run of its own per call), and governed through wardenMiddleware's wrapToolCall; plus a whole createAgent turn (scripted model,
// one tool call) with and without the middleware.
//
// Langfuse v5 traces through OpenTelemetry and never touches the network itself; its spans are given
// to an in-memory tracer provider here (recorded, kept, never exported), so nothing can block on I/O.
// Its handler runs with its defaults; span ids come from Math.random, as OpenTelemetry's own generator's do.
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { fakeModel } from "@langchain/core/testing";
import { tool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { setLangfuseTracerProvider } from "@langfuse/tracing";
import { context, trace, type Attributes, type Context, type Span, type SpanContext, type SpanStatus, type Tracer, type TracerProvider } from "@opentelemetry/api";
import { createAgent, createMiddleware } from "langchain";
import { z } from "zod";
import { Warden } from "agent-warden";
import { WardenCallbackHandler, wardenMiddleware } from "agent-warden/langchain";
import { instrumentWarden } from "agent-warden/otel";
import { interleaveAsync, scaled, timingRow, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-langchain-"));
  const exported = useInMemoryTracing();
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push(timingRow(GROUP, name, timing, note));
  const policies = { version: 1 as const, default: "allow" as const, policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" as const }] };
  const warden = new Warden({ agentId: "bench-langchain", store: join(dir, "warden.db"), policies });
  // The same governance with agent-warden/otel on, its spans going where Langfuse's go.
  const traced = new Warden({ agentId: "bench-langchain-otel", store: join(dir, "warden-otel.db"), policies });
  const undoTracing = instrumentWarden(traced, { tracerProvider: exported.provider });
  let releaseTraced = () => {};
  let tracedRun: Promise<unknown> = Promise.resolve();
  try {
    const lookup = tool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
    let n = 0;

    // Langfuse's handler as it ships (it does not await its hooks); the three cases take turns per call.
    const langfuse = new LangfuseCallbackHandler();
    const handler = new WardenCallbackHandler(warden);
    const tracedHandler = new WardenCallbackHandler(traced);
    // The traced client's run stays open; its calls re-enter it (as code inside its warden.run would).
    let inTracedRun!: <R>(fn: () => R) => R;
    tracedRun = traced.run({ bench: "langchain-otel" }, () => {
      inTracedRun = AsyncLocalStorage.snapshot();
      return new Promise<void>((resolve) => (releaseTraced = resolve));
    });
    await Promise.resolve();
    // Outside any run, as README's example calls it: each call opens a run of its own and closes it.
    const outsideRuns = AsyncLocalStorage.snapshot();
    // Inside one run, so each sample is one governed call (check, record, ledger) and not a run of its own.
    await warden.run({ bench: "langchain" }, async () => {
      const cases = [
        { name: "langchain tool ungoverned", note: "tool.invoke(input)", step: () => lookup.invoke({ id: n++ }) },
        { name: "langchain tool + langfuse CallbackHandler", note: "@langfuse/langchain, defaults; spans recorded in memory", step: () => lookup.invoke({ id: n++ }, { callbacks: [langfuse] }) },
        { name: "langchain tool + WardenCallbackHandler", note: "check + record + ledger, file store", step: () => lookup.invoke({ id: n++ }, { callbacks: [handler] }) },
        { name: "langchain tool + WardenCallbackHandler + Warden spans", note: "as above, plus agent-warden/otel spans on Langfuse's tracer", step: () => inTracedRun(() => lookup.invoke({ id: n++ }, { callbacks: [tracedHandler] })) },
        { name: "langchain tool + WardenCallbackHandler, no run open", note: "a run of its own per call (opened, recorded, closed)", step: () => outsideRuns(() => lookup.invoke({ id: n++ }, { callbacks: [handler] })) },
      ];
      const results = await interleaveAsync(cases, scaled(10_000), () => undefined, 500);
      const spans = [exported.count(), exported.wardenCount()].map((count) => `${count.toLocaleString("en-US")} spans`);
      for (const [i, c] of cases.entries()) rows.push(timingRow(GROUP, c.name, results.get(c.name)!, i === 1 ? `${c.note}, ${spans[0]}` : i === 3 ? `${c.note}, ${spans[1]}` : c.note));
      // The middleware's hook, called the way createAgent's tool node calls it.
      const middleware = wardenMiddleware(warden);
      const wrap = middleware.wrapToolCall!;
      const execute = async (request: { toolCall: { name: string; args: Record<string, unknown>; id?: string } }): Promise<ToolMessage> =>
        (await lookup.invoke({ ...request.toolCall, id: request.toolCall.id!, type: "tool_call" })) as ToolMessage;
      const request = (id: number) => ({ toolCall: { name: "lookup_order", args: { id }, id: `call_${id}`, type: "tool_call" as const }, tool: lookup, state: { messages: [] }, runtime: {} });
      const wrapCases = [
        { name: "langchain tool call via wrapToolCall, ungoverned", note: "the tool node's own handler", step: () => execute(request(n++)) },
        { name: "langchain tool call + wardenMiddleware", note: "wrapToolCall: check + record + ledger", step: async () => wrap(request(n++) as never, execute as never) },
      ];
      const wrapResults = await interleaveAsync(wrapCases, scaled(10_000), () => undefined, 500);
      for (const c of wrapCases) row(c.name, wrapResults.get(c.name)!, c.note);
    });

    // A whole agent turn: model → tool → model, scripted; the queue holds every response up front. The
    // cases take turns, as above: ungoverned, the same hooks empty, Langfuse's handler alone, and Warden's
    // middleware without, then with, its callback handler (which records the model calls).
    const rounds = scaled(400, 100);
    const warmupTurns = 50;
    const script = (count: number) => {
      const model = fakeModel();
      for (let i = 0; i < count; i++) model.respondWithTools([{ name: "lookup_order", args: { id: i } }]).respond(new AIMessage("shipped"));
      return model;
    };
    const agentWith = (middleware: Parameters<typeof createAgent>[0]["middleware"] = []) => createAgent({ model: script(rounds + warmupTurns), tools: [lookup], middleware });
    const input = { messages: [new HumanMessage("where is my order?")] };
    // The same hooks doing nothing: what createAgent itself charges for a middleware that wraps model and tool calls.
    const noop = createMiddleware({ name: "Noop", wrapModelCall: (request, next) => next(request), wrapToolCall: (request, next) => next(request) });
    const plain = agentWith();
    const hooked = agentWith([noop]);
    const langfuseTraced = agentWith();
    const governed = agentWith([wardenMiddleware(warden)]);
    const governedHandled = agentWith([wardenMiddleware(warden)]);
    const turnHandler = new WardenCallbackHandler(warden);
    const turnCases = [
      { name: "createAgent turn, 1 tool call, ungoverned", note: "scripted model", step: () => plain.invoke(input) },
      { name: "createAgent turn, 1 tool call + no-op middleware", note: "same hooks, empty", step: () => hooked.invoke(input) },
      { name: "createAgent turn, 1 tool call + langfuse CallbackHandler", note: "@langfuse/langchain, defaults", step: () => langfuseTraced.invoke(input, { callbacks: [langfuse] }) },
      { name: "createAgent turn, 1 tool call + wardenMiddleware", note: "one Warden run per turn", step: () => governed.invoke(input) },
      { name: "createAgent turn, 1 tool call + wardenMiddleware + WardenCallbackHandler", note: "as above, plus the model call's usage", step: () => governedHandled.invoke(input, { callbacks: [turnHandler] }) },
    ];
    const turnResults = await interleaveAsync(turnCases, rounds, () => undefined, warmupTurns);
    const bareTurn = turnResults.get(turnCases[0]!.name)!;
    for (const [i, c] of turnCases.entries()) {
      const timing = turnResults.get(c.name)!;
      row(c.name, timing, i === 0 ? c.note : `${c.note}; ${delta(timing, bareTurn)}`);
    }
  } finally {
    releaseTraced();
    await tracedRun.catch(() => {});
    undoTracing();
    traced.close();
    warden.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The median difference to the baseline, signed. */
function delta(timing: Timing, baseline: Timing): string {
  const us = Math.round(timing.medianUs - baseline.medianUs);
  return `${us >= 0 ? "+" : "−"}${Math.abs(us)} µs vs ungoverned`;
}

/** A recording tracer whose finished spans go to a bounded in-memory list: an SDK with an in-memory exporter, minus the SDK. */
export function useInMemoryTracing(): { count(): number; wardenCount(): number; provider: TracerProvider } {
  const finished: MemorySpan[] = [];
  let total = 0;
  let warden = 0;
  const onEnd = (span: MemorySpan) => {
    total++;
    if (span.name.startsWith("execute_tool ")) warden++;
    if (finished.length >= 2048) finished.length = 0;
    finished.push(span);
  };
  const tracer = {
    startSpan(name: string, options: { startTime?: unknown; attributes?: Attributes } = {}, parent: Context = context.active()): Span {
      const parentContext = trace.getSpanContext(parent);
      const spanContext: SpanContext = { traceId: parentContext?.traceId ?? randomHex(32), spanId: randomHex(16), traceFlags: 1 };
      return new MemorySpan(name, spanContext, parentContext?.spanId, options.attributes, onEnd);
    },
    startActiveSpan(name: string, ...rest: unknown[]): unknown {
      const fn = rest.at(-1) as (span: Span) => unknown;
      const options = (rest.length > 1 ? rest[0] : undefined) as { attributes?: Attributes } | undefined;
      const parent = (rest.length > 2 ? rest[1] : context.active()) as Context;
      const span = tracer.startSpan(name, options, parent);
      return context.with(trace.setSpan(parent, span), fn, undefined, span);
    },
  };
  const provider: TracerProvider = { getTracer: () => tracer as unknown as Tracer };
  setLangfuseTracerProvider(provider);
  return { count: () => total - warden, wardenCount: () => warden, provider };
}

class MemorySpan implements Span {
  readonly attributes: Attributes = {};
  readonly startedAt = performance.now();
  status: SpanStatus = { code: 0 };
  #ended = false;

  constructor(
    public name: string,
    readonly context: SpanContext,
    readonly parentSpanId: string | undefined,
    attributes: Attributes | undefined,
    readonly onEnd: (span: MemorySpan) => void,
  ) {
    if (attributes) Object.assign(this.attributes, attributes);
  }

  spanContext(): SpanContext {
    return this.context;
  }
  setAttribute(key: string, value: Attributes[string]): this {
    if (!this.#ended && value !== undefined) this.attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    if (!this.#ended) Object.assign(this.attributes, attributes);
    return this;
  }
  addEvent(): this {
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.status = status;
    return this;
  }
  updateName(name: string): this {
    this.name = name;
    return this;
  }
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd(this);
  }
  isRecording(): boolean {
    return !this.#ended;
  }
  recordException(): void {}
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}

/** Random lowercase hex of `length` digits, as OpenTelemetry's RandomIdGenerator makes span ids. */
function randomHex(length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += Math.floor(Math.random() * 16).toString(16);
  return out;
}
