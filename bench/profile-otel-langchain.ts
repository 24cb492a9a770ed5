// Profiling driver, not part of `npm run bench`: main-thread CPU per LangChain `tool.invoke`, traced by Langfuse's
// CallbackHandler, governed by WardenCallbackHandler, and governed with agent-warden/otel's spans on the same
// tracer as Langfuse's (the real SDK: batch span processor, an exporter that drops what it is given). Cases take
// turns in rounds, every order equally often, each round waiting for its own store handover.
//   npx tsx bench/profile-otel-langchain.ts [module exporting instrumentWarden, to compare] ...
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tool } from "@langchain/core/tools";
import { CallbackHandler as LangfuseCallbackHandler } from "@langfuse/langchain";
import { setLangfuseTracerProvider } from "@langfuse/tracing";
import { context } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { z } from "zod";
import { Warden } from "agent-warden";
import { WardenCallbackHandler } from "agent-warden/langchain";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../test/fixtures/otel-context.js";

context.setGlobalContextManager(new StorageContextManager());
const N = Number(process.env.N ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 48);
const PER_ROUND = Math.ceil(N / ROUNDS);
const dir = mkdtempSync(join(tmpdir(), "warden-prof-otel-lc-"));
let exported = 0;
const exporter: SpanExporter = { export: (spans, done) => ((exported += spans.length), done({ code: ExportResultCode.SUCCESS })), shutdown: async () => {} };
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 4096, scheduledDelayMillis: 50 })] });
setLangfuseTracerProvider(provider);
const policies = { version: 1 as const, default: "allow" as const, policies: [{ id: "no-drop", when: { tool: "drop_table" }, action: "block" as const }] };
const lookup = tool(async ({ id }) => `order ${id}: shipped`, { name: "lookup_order", description: "Look up an order", schema: z.object({ id: z.number() }) });
let n = 0;

interface Case {
  name: string;
  step: () => Promise<unknown>;
  us: number[];
}
const wardens: Warden[] = [];
const releases: Array<() => void> = [];
/** A client with a run held open; its calls re-enter the run, as code inside its warden.run would. */
const governed = async (name: string, instrument?: typeof instrumentWarden): Promise<Case> => {
  const warden = new Warden({ agentId: "prof", store: join(dir, `${wardens.length}.db`), policies });
  wardens.push(warden);
  if (instrument) instrument(warden, { tracerProvider: provider });
  const handler = new WardenCallbackHandler(warden);
  let inRun!: <R>(fn: () => R) => R;
  void warden.run({}, () => {
    inRun = AsyncLocalStorage.snapshot();
    return new Promise<void>((resolve) => releases.push(resolve));
  });
  await Promise.resolve();
  return { name, step: () => inRun(() => lookup.invoke({ id: n++ }, { callbacks: [handler] })), us: [] };
};

const langfuse = new LangfuseCallbackHandler();
const cases: Case[] = [
  { name: "ungoverned", step: () => lookup.invoke({ id: n++ }), us: [] },
  { name: "langfuse CallbackHandler", step: () => lookup.invoke({ id: n++ }, { callbacks: [langfuse] }), us: [] },
  await governed("WardenCallbackHandler"),
  await governed("WardenCallbackHandler + Warden spans", instrumentWarden),
];
for (const path of process.argv.slice(2)) cases.push(await governed(`WardenCallbackHandler + spans by ${path}`, ((await import(path)) as { instrumentWarden: typeof instrumentWarden }).instrumentWarden));

const cpu = () => {
  const usage = process.threadCpuUsage();
  return usage.user + usage.system;
};
const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

try {
  for (const each of cases) for (let i = 0; i < 1000; i++) await each.step();
  await provider.forceFlush();
  // With more than four cases, rotations rather than every order (5! rounds would be too many).
  const orders = cases.length <= 4 ? permutations(cases) : cases.map((_, r) => cases.map((__, k) => cases[(k + r) % cases.length]!));
  for (let round = 0; round < ROUNDS; round++) {
    for (const each of orders[round % orders.length]!) {
      const before = cpu();
      for (let i = 0; i < PER_ROUND; i++) await each.step();
      // Langfuse ends its spans in the background; the batch processor's export is part of the spans' cost.
      await provider.forceFlush();
      await settle();
      each.us.push((cpu() - before) / PER_ROUND);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const langfuseUs = cases[1]!.us;
  console.log(JSON.stringify({ callsPerCase: PER_ROUND * ROUNDS, spansExported: exported, ...Object.fromEntries(cases.map((each) => [each.name, { usPerCall: +median(each.us).toFixed(2), overLangfuse: +median(each.us.map((value, i) => value - langfuseUs[i]!)).toFixed(2) }])) }));
} finally {
  for (const release of releases) release();
  await settle();
  for (const warden of wardens) warden.close();
  await provider.shutdown();
  rmSync(dir, { recursive: true, force: true });
}
