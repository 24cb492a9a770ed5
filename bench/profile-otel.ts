// Profiling driver, not part of `npm run bench`: what agent-warden/otel's spans cost per governed call.
// Clients alike but for their instrumentation take turns in rounds of `run.tool` calls (nine allowed reads to
// one warned write), the order rotating every round; each instrumented client has its own real SDK (batch span
// processor into an in-memory exporter, metrics aggregated by a reader), flushed at the end of its round. The
// main thread's CPU per call is compared, so the writer thread's share and machine load land on all alike.
//   npx tsx bench/profile-otel.ts [module exporting instrumentWarden, to compare] ...
//   PROFILE=/tmp/otel.cpuprofile npx tsx bench/profile-otel.ts    also a CPU profile of the rounds
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { context } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import { Warden, type RunScope } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../test/fixtures/otel-context.js";

// As an application with async context (Langfuse, the Node SDK) has it.
context.setGlobalContextManager(new StorageContextManager());
const N = Number(process.env.N ?? 20_000);
const ROUNDS = Number(process.env.ROUNDS ?? 48);
const PER_ROUND = Math.ceil(N / ROUNDS);
const capture = process.env.CAPTURE === "1";
const dir = mkdtempSync(join(tmpdir(), "warden-prof-otel-"));

interface Case {
  name: string;
  warden: Warden;
  scope?: RunScope;
  close?: () => Promise<void>;
  flush: () => Promise<void>;
  shutdown: () => Promise<void>;
  us: number[];
}

const open = (name: string) =>
  new Warden({
    agentId: "prof",
    store: process.env.STORE === "memory" ? ":memory:" : join(dir, `${name}.db`),
    policies: { version: 1, default: "allow", policies: [{ id: "flag-write", when: { tool: "write_order" }, action: "warn" }, { id: "no-drop", when: { tool: "drop_table" }, action: "block" }] },
  });

const instrumented = (name: string, instrument: typeof instrumentWarden): Case => {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(spans, { maxQueueSize: 4096, scheduledDelayMillis: 50 })] });
  const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 })] });
  const warden = open(name.replace(/\W/g, "_"));
  instrument(warden, { tracerProvider, meterProvider, captureContent: capture });
  return {
    name,
    warden,
    // The batch processor's export of the round's spans is part of what they cost.
    flush: async () => {
      await tracerProvider.forceFlush();
      spans.reset();
    },
    shutdown: async () => {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
    },
    us: [],
  };
};

const cases: Case[] = [{ name: "off", warden: open("off"), flush: async () => {}, shutdown: async () => {}, us: [] }, instrumented("agent-warden/otel", instrumentWarden)];
for (const path of process.argv.slice(2)) cases.push(instrumented(path, ((await import(path)) as { instrumentWarden: typeof instrumentWarden }).instrumentWarden));

/** Main-thread CPU in µs (the writer thread's is left out). */
const cpu = (): number => {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
};

let n = 0;
const calls = async (scope: RunScope, count: number) => {
  for (let i = 0; i < count; i++) {
    const name = n % 10 === 9 ? "write_order" : "read_order";
    await scope.tool(name, { id: n }, () => ({ ok: true, id: n }));
    n++;
  }
};

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** A run held open while the rounds go on. */
const openRun = async (each: Case) => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const done = each.warden.run({}, async (run) => {
    each.scope = run;
    await held;
  });
  await Promise.resolve();
  each.close = async () => {
    release();
    await done;
  };
};

try {
  for (const each of cases) await openRun(each);
  for (const each of cases) {
    await calls(each.scope!, 2000);
    await each.flush();
  }
  const session = process.env.PROFILE ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post("Profiler.enable");
    await session.post("Profiler.start");
  }
  // Every order of the cases in turn: each follows each other case equally often (a round pays for garbage the
  // one before left), and takes each place equally often.
  const orders = permutations(cases);
  for (let round = 0; round < ROUNDS; round++) {
    for (const each of orders[round % orders.length]!) {
      const before = cpu();
      await calls(each.scope!, PER_ROUND);
      await each.flush();
      // The store hands its queued writes over on a timer: every round waits for its own, so none lands in the next.
      await settle();
      each.us.push((cpu() - before) / PER_ROUND);
    }
  }
  if (session) {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(process.env.PROFILE!, JSON.stringify(profile));
  }
  for (const each of cases) await each.close!();
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const off = cases[0]!.us;
  // Per case: main-thread CPU per call, and what it adds over "off" (median of the per-round differences).
  console.log(JSON.stringify({ callsPerCase: PER_ROUND * ROUNDS, rounds: ROUNDS, captureContent: capture, ...Object.fromEntries(cases.map((each) => [each.name, { usPerCall: +median(each.us).toFixed(2), overOff: +median(each.us.map((value, i) => value - off[i]!)).toFixed(2) }])) }));
} finally {
  for (const each of cases) {
    each.warden.close();
    await each.shutdown();
  }
  rmSync(dir, { recursive: true, force: true });
}
