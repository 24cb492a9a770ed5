// What OpenTelemetry spans and metrics add to a governed call: run.tool with agent-warden/otel off and on
// (the real SDK, batch span processor into an in-memory exporter, metrics aggregated by a reader): its latency,
// and the main thread's CPU per call, two clients alike but for the spans taking turns in rounds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type RunScope } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";
import { measureAsync, scaled, type BenchRow } from "./harness.js";
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
async function cpuPerCall(dir: string, tracerProvider: BasicTracerProvider, meterProvider: MeterProvider, reset: () => void): Promise<BenchRow[]> {
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
      reset();
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
    { group: "otel", name: "run.tool main-thread CPU per call, OTel on", samples: spent[1]!.length * perRound, medianUs: median(spent[1]!), note: `+${added.toFixed(1)} µs per call: span, its export, the duration histogram` },
  ];
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-otel-"));
  const rows: BenchRow[] = [];
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans)] });
  const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const warden = new Warden({ agentId: "bench", store: join(dir, "warden.db"), policies: wardenPolicySet(makeRules(100)) as never });
  try {
    const tool = (id: number) => ({ ok: true, id });
    let n = 0;
    const inRun = async (label: string, note: string) => {
      let scope: RunScope | undefined;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const done = warden.run({}, async (run) => {
        scope = run;
        await held;
      });
      await Promise.resolve();
      const timing = await measureAsync(() => scope!.tool("read_order", { id: n }, () => tool(n++)), { samples: 2000, batch: 10 });
      release();
      await done;
      rows.push({ group: "otel", name: label, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
      spans.reset();
    };
    const perRun = async (label: string) => {
      const timing = await measureAsync(() => warden.run({}, (run) => run.tool("read_order", { id: n }, () => tool(n++))), { samples: 1000, batch: 5 });
      rows.push({ group: "otel", name: label, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec });
      spans.reset();
    };
    await inRun("run.tool, OTel off", "one open run, file store");
    await perRun("warden.run + run.tool, OTel off");
    const undo = instrumentWarden(warden, { tracerProvider, meterProvider });
    await inRun("run.tool, OTel on", "execute_tool span + duration histogram, batch processor");
    await perRun("warden.run + run.tool, OTel on");
    undo();
    rows.push(...(await cpuPerCall(dir, tracerProvider, meterProvider, () => spans.reset())));
  } finally {
    warden.close();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
