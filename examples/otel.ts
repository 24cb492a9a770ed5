// Warden's runs and decisions as OpenTelemetry spans and metrics, offline: the real SDK with an
// in-memory exporter stands in for a collector, and the spans a support agent's run produces are
// printed as the tree a tracing backend shows. Arguments are captured, after redaction.
// Run: npx tsx examples/otel.ts
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type SumMetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Warden, WardenError } from "agent-warden";
import { instrumentWarden } from "agent-warden/otel";

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [reader] });

const warden = new Warden({
  agentId: "support-agent",
  store: ":memory:",
  policies: {
    version: 1,
    default: "allow",
    policies: [
      { id: "no-bulk-delete", when: { tool: "customers.delete_all" }, action: "block", reason: "bulk deletes are never automated" },
      { id: "watch-emails", when: { tool: "email.send" }, action: "warn" },
      { id: "refund-approval", when: { tool: "payments.refund", "args.amount": { gt: 1000 } }, action: "require_approval" },
    ],
  },
  // A reviewer who approves at once, for the example.
  onApprovalRequest: (_request, decide) => decide.approve({ reviewer: "alice" }),
});

const undo = instrumentWarden(warden, { tracerProvider, meterProvider, captureContent: true });

await warden.run({ ticket: 4711 }, async (run) => {
  await run.tool("crm.login", { user: "bot", password: "hunter2" }, () => ({ session: "ok" }));
  await run.tool("email.send", { to: "customer@example.com" }, () => "sent");
  await run.tool("customers.delete_all", {}, () => "deleted").catch((error: unknown) => console.log(`refused: ${(error as WardenError).message}`));
  await run.tool("payments.refund", { orderId: 42, amount: 2800 }, () => ({ refunded: 2800 }));
  warden.beginLlmCall({ runId: run.runId, model: "gpt-4.1" }).complete({ inputTokens: 812, outputTokens: 64 });
  await warden.run({ task: "lookup" }, (child) => child.tool("kb.search", { q: "refund policy" }, () => ["doc-1"]), { agentId: "research-subagent" });
});
undo();

// The tree, as a backend draws it.
const finished = spans.getFinishedSpans();
const children = (parent: string | undefined) => finished.filter((span) => span.parentSpanContext?.spanId === parent).sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
const shown = ["agent_warden.decision.action", "agent_warden.policy.id", "agent_warden.approval.reviewer", "error.type", "gen_ai.usage.input_tokens", "gen_ai.tool.call.arguments"];
function print(span: ReadableSpan, depth: number): void {
  const facts = shown.filter((key) => span.attributes[key] !== undefined).map((key) => `${key.replace(/^(agent_warden|gen_ai)\./, "")}=${String(span.attributes[key])}`);
  console.log(`${"  ".repeat(depth)}${span.name}  ${facts.join("  ")}`);
  for (const child of children(span.spanContext().spanId)) print(child, depth + 1);
}
for (const root of children(undefined)) print(root, 0);
console.log(`one trace: ${new Set(finished.map((span) => span.spanContext().traceId)).size === 1}`);

await reader.forceFlush();
const decisions = metrics.getMetrics().at(-1)!.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === "agent_warden.decisions") as SumMetricData;
console.log(`decisions: ${decisions.dataPoints.map((point) => `${String(point.attributes["agent_warden.decision.action"])}=${point.value}`).join(", ")}`);
await meterProvider.shutdown();
await tracerProvider.shutdown();
warden.close();
