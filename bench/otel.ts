// What OpenTelemetry spans and metrics add to a governed call: run.tool with agent-warden/otel off and on
// (the real SDK, batch span processor into an in-memory exporter, metrics aggregated by a reader).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type RunScope } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";
import { measureAsync, type BenchRow } from "./harness.js";
import { makeRules, wardenPolicySet } from "./peers.js";

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
    await inRun("run.tool, OTel on", "execute_tool span + decision event + 2 metrics, batch processor");
    await perRun("warden.run + run.tool, OTel on");
    undo();
  } finally {
    warden.close();
    await tracerProvider.shutdown();
    await meterProvider.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
