// What OpenTelemetry spans and metrics add to a governed call: run.tool with agent-warden/otel off and on
// (the real SDK, batch span processor into an in-memory exporter, metrics aggregated by a reader): its latency,
// two clients alike but for the spans taking turns call by call, and the main thread's CPU per call, in rounds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { ExportResultCode } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type RunScope } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";
import { interleaveAsync, scaled, timingRow, type BenchRow } from "./harness.js";
import { makeRules, wardenPolicySet } from "./peers.js";

/** Main-thread CPU in µs: the store's writer thread is left out, it does the same work with spans on or off. */
function threadCpu(): number {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
}

/**
 * Main-thread CPU per `run.tool` call with spans off and on: two clients alike but for the instrumentation, in
 * rounds that take turns (each order equally often), the span export of each round counted in it.
 */
async function cpuPerCall(dir: string, tracerProvider: BasicTracerProvider, meterProvider: MeterProvider): Promise<BenchRow[]> {
  const policies = wardenPolicySet(makeRules(100)) as never;
  const clients = [new Warden({ agentId: "bench-off", store: join(dir, "cpu-off.db"), policies }), new Warden({ agentId: "bench-on", store: join(dir, "cpu-on.db"), policies })];
  const undo = instrumentWarden(clients[1]!, { tracerProvider, meterProvider });
  const spent: number[][] = [[], []];
  const perRound = 250;
  let n = 0;
  try {
    const scopes: RunScope[] = [];
    const releases: Array<() => void> = [];
    const done = clients.map((client) =>
      client.run({}, async (scope) => {
        scopes.push(scope);
        await new Promise<void>((resolve) => releases.push(resolve));
      }),
    );
    await Promise.resolve();
    const calls = async (which: number) => {
      for (let i = 0; i < perRound; i++) await scopes[which]!.tool("read_order", { id: n }, () => ({ ok: true, id: n++ }));
      if (which === 1) await tracerProvider.forceFlush();
    };
    for (const which of [0, 1]) for (let i = 0; i < 8; i++) await calls(which);
    for (let round = 0; round < scaled(80, 20); round++) {
      for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const before = threadCpu();
        await calls(which);
        // The store hands its queued writes over on a timer: every round waits for its own, so none lands in the next.
        await new Promise((resolve) => setTimeout(resolve, 5));
        spent[which]!.push((threadCpu() - before) / perRound);
      }
    }
    for (const release of releases) release();
    await Promise.all(done);
  } finally {
    undo();
    for (const client of clients) client.close();
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const added = median(spent[1]!.map((value, i) => value - spent[0]![i]!));
  return [
    { group: "otel", name: "run.tool main-thread CPU per call, OTel off", samples: spent[0]!.length * perRound, medianUs: median(spent[0]!), note: "CPU µs per call (median of rounds), not latency" },
    { group: "otel", name: "run.tool main-thread CPU per call, OTel on", samples: spent[1]!.length * perRound, medianUs: median(spent[1]!), note: `${added >= 0 ? "+" : "−"}${Math.abs(added).toFixed(1)} µs per call: span, its export, the duration histogram` },
  ];
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-otel-"));
  const rows: BenchRow[] = [];
  // An exporter that counts what it is given and keeps nothing, as one sending spans away would.
  let exported = 0;
  const spans: SpanExporter = { export: (batch, done) => ((exported += batch.length), done({ code: ExportResultCode.SUCCESS })), shutdown: async () => {} };
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const policies = wardenPolicySet(makeRules(100)) as never;
  // Two clients alike but for the instrumentation, their calls taking turns (interleaved, the order rotating).
  const off = new Warden({ agentId: "bench-off", store: join(dir, "off.db"), policies });
  const on = new Warden({ agentId: "bench-on", store: join(dir, "on.db"), policies });
  const undo = instrumentWarden(on, { tracerProvider, meterProvider });
  const releases: Array<() => void> = [];
  const held: Promise<unknown>[] = [];
  try {
    const tool = (id: number) => ({ ok: true, id });
    let n = 0;
    // One open run per client: each sample is one governed call in it.
    const scopes: RunScope[] = [];
    for (const client of [off, on]) {
      held.push(client.run({}, async (scope) => {
        scopes.push(scope);
        await new Promise<void>((resolve) => releases.push(resolve));
      }));
    }
    await Promise.resolve();
    const [inOff, inOn] = scopes as [RunScope, RunScope];
    const cases = [
      { name: "run.tool, OTel off", note: "one open run, file store", step: () => inOff.tool("read_order", { id: n }, () => tool(n++)) },
      { name: "run.tool, OTel on", note: "execute_tool span + duration histogram, batch processor", step: () => inOn.tool("read_order", { id: n }, () => tool(n++)) },
      { name: "warden.run + run.tool, OTel off", note: "a run per call", step: () => off.run({}, (scope) => scope.tool("read_order", { id: n }, () => tool(n++))) },
      { name: "warden.run + run.tool, OTel on", note: "invoke_agent + execute_tool spans", step: () => on.run({}, (scope) => scope.tool("read_order", { id: n }, () => tool(n++))) },
    ];
    const results = await interleaveAsync(cases, scaled(10_000), () => undefined, 500);
    await tracerProvider.forceFlush();
    for (const c of cases) rows.push(timingRow("otel", c.name, results.get(c.name)!, c.name.endsWith("on") ? `${c.note}; ${exported.toLocaleString("en-US")} spans exported in all` : c.note));
  } finally {
    for (const release of releases) release();
    await Promise.all(held);
    undo();
    off.close();
    on.close();
  }
  try {
    rows.push(...(await cpuPerCall(dir, tracerProvider, meterProvider)));
  } finally {
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
