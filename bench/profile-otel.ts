// Profiling driver, not part of `npm run bench`: what agent-warden/otel's spans cost per governed call.
// Rounds of `run.tool` calls alternate with spans off and on (the real SDK: batch span processor into an
// in-memory exporter, metrics aggregated by a reader); the main thread's CPU per call is compared, so the
// writer thread's share and machine load land on both sides alike.
//   npx tsx bench/profile-otel.ts                      A/B: CPU per call, spans off vs on
//   PROFILE=/tmp/otel.cpuprofile npx tsx bench/profile-otel.ts   also a CPU profile of the "on" rounds
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type RunScope } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";

const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const PER_ROUND = Math.ceil(N / ROUNDS);
const capture = process.env.CAPTURE === "1";
const dir = mkdtempSync(join(tmpdir(), "warden-prof-otel-"));
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans, { maxQueueSize: 4096, scheduledDelayMillis: 50 })] });
const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const open = (name: string) =>
  new Warden({
    agentId: "prof",
    store: process.env.STORE === "memory" ? ":memory:" : join(dir, `${name}.db`),
    policies: { version: 1, default: "allow", policies: [{ id: "flag-write", when: { tool: "write_order" }, action: "warn" }, { id: "no-drop", when: { tool: "drop_table" }, action: "block" }] },
  });
// Two clients alike but for the spans, instrumented once (a new instrumentation per round would re-warm the JIT).
const plain = open("plain");
const traced = open("traced");
instrumentWarden(traced, { tracerProvider, meterProvider, captureContent: capture });

/** Main-thread CPU in µs (the writer thread's is left out). */
const cpu = (): number => {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
};

let n = 0;
const calls = async (scope: RunScope, count: number) => {
  for (let i = 0; i < count; i++) {
    // Nine reads to one warned write: the write carries a policy match and a risk event.
    const name = n % 10 === 9 ? "write_order" : "read_order";
    await scope.tool(name, { id: n }, () => ({ ok: true, id: n }));
    n++;
  }
};

/** A run held open on `warden` while the rounds go on. */
const openRun = async (warden: Warden) => {
  let release!: () => void;
  let scope!: RunScope;
  const held = new Promise<void>((resolve) => (release = resolve));
  const done = warden.run({}, async (run) => {
    scope = run;
    await held;
  });
  await Promise.resolve();
  return { scope, close: async () => (release(), await done) };
};

const main = async () => {
  const off = await openRun(plain);
  const on = await openRun(traced);
  const session = process.env.PROFILE ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post("Profiler.enable");
  }
  // Warm-up on both paths.
  await calls(off.scope, 2000);
  await calls(on.scope, 2000);
  await tracerProvider.forceFlush();
  spans.reset();
  const offUs: number[] = [];
  const onUs: number[] = [];
  if (session) await session.post("Profiler.start");
  for (let round = 0; round < ROUNDS; round++) {
    for (const spansOn of round % 2 === 0 ? [false, true] : [true, false]) {
      const before = cpu();
      await calls(spansOn ? on.scope : off.scope, PER_ROUND);
      // The batch processor's export of this round's spans is part of what they cost.
      if (spansOn) await tracerProvider.forceFlush();
      const spent = cpu() - before;
      (spansOn ? onUs : offUs).push(spent / PER_ROUND);
      spans.reset();
    }
  }
  if (session) {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(process.env.PROFILE!, JSON.stringify(profile));
  }
  await off.close();
  await on.close();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const diffs = onUs.map((value, i) => value - offUs[i]!);
  console.log(JSON.stringify({ calls: PER_ROUND * ROUNDS * 2, rounds: ROUNDS, captureContent: capture, offUsPerCall: +median(offUs).toFixed(2), onUsPerCall: +median(onUs).toFixed(2), spansUsPerCall: +median(diffs).toFixed(2), perRoundSpansUs: diffs.map((d) => +d.toFixed(1)) }));
};

try {
  await main();
} finally {
  plain.close();
  traced.close();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
  rmSync(dir, { recursive: true, force: true });
}
