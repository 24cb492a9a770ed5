// Profiling driver, not part of `npm run bench`: the CPU agent-warden/otel's event listener spends per governed
// call, apart from the core's own. The events of real governed calls (nine allowed reads to one warned write) are
// recorded once, then replayed to instrumentations on the real SDK (batch span processor into an in-memory
// exporter, metrics aggregated by a reader), rounds taking turns, so load lands on every case alike.
//   npx tsx bench/profile-otel-replay.ts [module exporting instrumentWarden, to compare] ...
//   SOURCE=langchain npx tsx bench/profile-otel-replay.ts    the events of LangChain tool calls through WardenCallbackHandler
//   TRACER=memory ...    spans to bench/adapter-langchain.ts's in-memory tracer rather than the SDK
//   SYNC=1 ...           every call's events in one go, rounds of N / ROUNDS calls: the first quartile of rounds too
import { context } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type EventListener, type TraceContextSource, type WardenEvent } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../test/fixtures/otel-context.js";
import { useInMemoryTracing } from "./adapter-langchain.js";

context.setGlobalContextManager(new StorageContextManager());
const CALLS = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const PER_ROUND = Math.ceil(CALLS / ROUNDS);

// The events of ten real calls in one run.
const source = new Warden({ agentId: "prof", store: ":memory:", policies: { version: 1, default: "allow", policies: [{ id: "flag-write", when: { tool: "write_order" }, action: "warn" }] } });
const recorded: WardenEvent[] = [];
source.on("*", (event) => recorded.push(event));
let runStarted: WardenEvent | undefined;
if (process.env.SOURCE === "langchain") {
  const { tool } = await import("@langchain/core/tools");
  const { z } = await import("zod");
  const { WardenCallbackHandler } = await import("agent-warden/langchain");
  const handler = new WardenCallbackHandler(source);
  const tools = ["read_order", "write_order"].map((name) => tool(async ({ id }) => `order ${id}`, { name, description: name, schema: z.object({ id: z.number() }) }));
  await source.run({}, async () => {
    for (let i = 0; i < 10; i++) await tools[i === 9 ? 1 : 0]!.invoke({ id: i }, { callbacks: [handler] });
  });
} else {
  await source.run({}, async (run) => {
    for (let i = 0; i < 10; i++) await run.tool(i === 9 ? "write_order" : "read_order", { id: i }, () => ({ ok: true }));
  });
}
source.close();
runStarted = recorded.find((event) => event.type === "run.started");
const perCall = new Map<string, WardenEvent[]>();
for (const event of recorded) if (event.toolCallId !== null) perCall.set(event.toolCallId, [...(perCall.get(event.toolCallId) ?? []), event]);
const callEvents = [...perCall.values()];

/** Just what instrumentWarden uses of a Warden: its bus and its tracing hook. */
function fakeWarden(): { warden: Warden; emit: (event: WardenEvent) => void } {
  let listener: EventListener = () => {};
  const warden = { on: (_type: string, fn: EventListener) => ((listener = fn), () => {}), useTracing: (_source: TraceContextSource) => () => {}, reportError: () => {} } as unknown as Warden;
  return { warden, emit: (event) => listener(event) };
}

const spans = new InMemorySpanExporter();
const sdk = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans, { maxQueueSize: 4096, scheduledDelayMillis: 50 })] });
// The bench's in-memory tracer keeps a bounded list and exports nothing: nothing to flush.
const tracerProvider = process.env.TRACER === "memory" ? Object.assign(useInMemoryTracing().provider, { forceFlush: async () => {}, shutdown: async () => {} }) : sdk;
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 })] });
const modules: Array<{ name: string; instrument: typeof instrumentWarden }> = [{ name: "agent-warden/otel", instrument: instrumentWarden }];
for (const path of process.argv.slice(2)) modules.push({ name: path, instrument: ((await import(path)) as { instrumentWarden: typeof instrumentWarden }).instrumentWarden });
const cases = modules.map(({ name, instrument }) => {
  const { warden, emit } = fakeWarden();
  instrument(warden, { tracerProvider, meterProvider });
  emit(runStarted!);
  return { name, emit, us: [] as number[] };
});

const cpu = () => {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
};
const sync = process.env.SYNC === "1";
const replay = async (emit: (event: WardenEvent) => void, count: number) => {
  for (let i = 0; i < count; i++) {
    for (const event of callEvents[i % callEvents.length]!) emit(event);
    // What a governed call awaits between its events.
    if (!sync) await Promise.resolve();
  }
};
for (const each of cases) await replay(each.emit, 2000);
await tracerProvider.forceFlush();
spans.reset();
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < cases.length; k++) {
    const each = cases[(k + round) % cases.length]!;
    const before = cpu();
    await replay(each.emit, PER_ROUND);
    await tracerProvider.forceFlush();
    each.us.push((cpu() - before) / PER_ROUND);
    spans.reset();
  }
}
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.floor(values.length * q)]!;
console.log(JSON.stringify(Object.fromEntries(cases.map((each) => [each.name, sync ? { q1: +quantile(each.us, 0.25).toFixed(2), median: +quantile(each.us, 0.5).toFixed(2) } : +quantile(each.us, 0.5).toFixed(2)]))));
await tracerProvider.shutdown();
await meterProvider.shutdown();
