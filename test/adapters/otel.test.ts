// agent-warden/otel against the real OpenTelemetry SDK: the span tree, attributes and metrics a run
// produces, spans joining the caller's active span, undo, and a core that never loads OpenTelemetry.
import { spawnSync } from "node:child_process";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { context } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type HistogramMetricData, type SumMetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HaltedError, Warden, type PolicySetInput, type WardenOptions } from "agent-warden";
import { createGovernedFetch } from "agent-warden/fetch";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../fixtures/otel-context.js";

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-delete", when: { tool: "db.delete" }, action: "block", reason: "deletes are off" },
    { id: "flag-write", when: { tool: "db.write" }, action: "warn", reason: "writes are watched" },
    { id: "would-block-write", when: { tool: "db.write" }, action: "block", mode: "shadow" },
    { id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" },
  ],
};

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const tracer = tracerProvider.getTracer("framework");
const clients: Warden[] = [];
const undos: Array<() => void> = [];

beforeAll(() => {
  context.setGlobalContextManager(new StorageContextManager());
});
afterAll(() => {
  context.disable();
});
afterEach(() => {
  for (const undo of undos.splice(0)) undo();
  for (const client of clients.splice(0)) client.close();
  spans.reset();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const client = new Warden({
    agentId: "planner",
    store: ":memory:",
    policies,
    onError: () => {},
    // The reviewer approves staging and rejects production.
    onApprovalRequest: (request, decide) => {
      const staging = (request.payload as { env?: string }).env === "staging";
      setTimeout(() => (staging ? decide.approve({ reviewer: "alice" }) : decide.reject({ reviewer: "bob", reason: "not today" })), 2);
    },
    ...options,
  });
  clients.push(client);
  return client;
}

function instrument(warden: Warden, options: Parameters<typeof instrumentWarden>[1] = {}): () => void {
  const undo = instrumentWarden(warden, { tracerProvider, ...options });
  undos.push(undo);
  return undo;
}


const byName = (name: string): ReadableSpan[] => spans.getFinishedSpans().filter((span) => span.name === name);
const one = (name: string): ReadableSpan => {
  const found = byName(name);
  expect(found.map((span) => span.name), name).toEqual([name]);
  return found[0]!;
};
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const idOf = (span: ReadableSpan): string => span.spanContext().spanId;
const eventNames = (span: ReadableSpan): string[] => span.events.map((event) => event.name);

describe("agent-warden/otel: spans", () => {
  it("a run with allowed, warned, blocked, approved and rejected calls, a model call, a nested run and a halt", async () => {
    const warden = open();
    instrument(warden, { captureContent: true });
    let runId = "";
    const outcome = await warden
      .run({ task: "release" }, async (run) => {
        runId = run.runId;
        await run.tool("read", { path: "/docs", password: "hunter2" }, () => ({ ok: true, token: "sk-live-abcdefghijklmnopqrstuvwx" }));
        await run.tool("db.write", { row: 1 }, () => "written");
        await expect(run.tool("db.delete", { row: 1 }, () => "deleted")).rejects.toThrow(/deletes are off/);
        await run.tool("deploy", { env: "staging" }, () => "deployed");
        await expect(run.tool("deploy", { env: "production" }, () => "deployed")).rejects.toThrow(/rejected/);
        warden.beginLlmCall({ runId: run.runId, model: "gpt-test" }).complete({ inputTokens: 12, outputTokens: 5, model: "gpt-test-2026" });
        await warden.run({ task: "research" }, (child) => child.tool("search", { q: "otel" }, () => ["a"]), { agentId: "researcher" });
        warden.halt({ runId: run.runId, reason: "runaway" });
        await run.tool("read", { path: "/etc" }, () => "never");
      })
      .catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(HaltedError);

    const root = one("invoke_agent planner");
    expect(parentOf(root)).toBeUndefined();
    expect(root.attributes).toMatchObject({ "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "planner", "gen_ai.agent.name": "planner", "agent_warden.run.id": runId, "error.type": "halted" });
    expect(root.status.code).toBe(2);
    expect(eventNames(root)).toContain("agent_warden.halt");
    // The span leads to the run's ledger entry and trace.
    const started = warden.ledger.entries({ runId }).find((entry) => entry.type === "run.started")!;
    expect(root.attributes["agent_warden.ledger.entry_id"]).toBe(started.id);
    expect(root.attributes["agent_warden.trace.id"]).toBe(warden.runRecord(runId).traceId);

    const reads = byName("execute_tool read");
    expect(reads).toHaveLength(2);
    const [allowed, halted] = reads.sort((a, b) => Number(a.startTime[1]) - Number(b.startTime[1]) + (a.startTime[0] - b.startTime[0]) * 1e9);
    for (const span of [allowed!, halted!]) expect(parentOf(span)).toBe(idOf(root));
    expect(allowed!.attributes).toMatchObject({ "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read", "gen_ai.tool.type": "function", "agent_warden.decision.action": "allow" });
    expect(allowed!.attributes["gen_ai.tool.call.id"]).toMatch(/^tc_/);
    expect(allowed!.attributes["error.type"]).toBeUndefined();
    // Allowed by the default, no policy behind it: the attribute says it, no decision event repeats it.
    expect(eventNames(allowed!)).not.toContain("agent_warden.decision");
    // Content only after redaction.
    expect(allowed!.attributes["gen_ai.tool.call.arguments"]).toContain('"path":"/docs"');
    expect(String(allowed!.attributes["gen_ai.tool.call.arguments"])).not.toContain("hunter2");
    expect(String(allowed!.attributes["gen_ai.tool.call.result"])).not.toContain("sk-live-abcdefghijklmnopqrstuvwx");
    expect(allowed!.attributes["gen_ai.tool.call.result"]).toContain('"ok":true');
    expect(halted!.attributes).toMatchObject({ "error.type": "halted" });
    expect(eventNames(halted!)).toContain("agent_warden.halt");

    const warned = one("execute_tool db.write");
    expect(warned.attributes).toMatchObject({ "agent_warden.decision.action": "warn", "agent_warden.policy.id": "flag-write" });
    const decision = warned.events.find((event) => event.name === "agent_warden.decision")!;
    expect(decision.attributes).toMatchObject({ "agent_warden.decision.action": "warn", "agent_warden.policy.id": "flag-write", "agent_warden.policy.matched": ["flag-write"], "agent_warden.policy.shadow_matched": ["would-block-write"] });
    expect(eventNames(warned)).toContain("agent_warden.risk");

    const blocked = one("execute_tool db.delete");
    expect(blocked.attributes).toMatchObject({ "agent_warden.decision.action": "block", "agent_warden.policy.id": "no-delete", "error.type": "blocked" });
    expect(blocked.status).toMatchObject({ code: 2, message: "deletes are off" });
    expect(blocked.attributes["gen_ai.tool.call.result"]).toBeUndefined();

    const deploys = byName("execute_tool deploy");
    const approved = deploys.find((span) => span.attributes["agent_warden.approval.outcome"] === "approved")!;
    const rejected = deploys.find((span) => span.attributes["agent_warden.approval.outcome"] === "rejected")!;
    expect(approved.attributes).toMatchObject({ "agent_warden.decision.action": "require_approval", "agent_warden.approval.reviewer": "alice" });
    expect(approved.attributes["agent_warden.approval.id"]).toMatch(/^apr_/);
    expect(approved.attributes["error.type"]).toBeUndefined();
    expect(eventNames(approved)).toEqual(expect.arrayContaining(["agent_warden.decision", "agent_warden.approval.requested", "agent_warden.approval.approved"]));
    const waited = approved.events.find((event) => event.name === "agent_warden.approval.approved")!;
    expect(waited.attributes!["agent_warden.approval.wait_ms"]).toBeGreaterThanOrEqual(0);
    expect(rejected.attributes).toMatchObject({ "error.type": "approval_rejected", "agent_warden.approval.reviewer": "bob" });
    expect(eventNames(rejected)).toContain("agent_warden.approval.rejected");

    const chat = one("chat gpt-test");
    expect(parentOf(chat)).toBe(idOf(root));
    expect(chat.kind).toBe(2); // CLIENT
    expect(chat.attributes).toMatchObject({ "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-test", "gen_ai.response.model": "gpt-test-2026", "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 5 });

    const child = one("invoke_agent researcher");
    expect(parentOf(child)).toBe(idOf(root));
    expect(child.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(child.attributes).toMatchObject({ "agent_warden.parent_run.id": runId });
    expect(parentOf(one("execute_tool search"))).toBe(idOf(child));
    // Every span of the run in one trace.
    expect(new Set(spans.getFinishedSpans().map((span) => span.spanContext().traceId)).size).toBe(1);
  });

  it("an approval nobody answers expires: the span says so, and the wait is measured", async () => {
    const warden = open({ onApprovalRequest: () => {}, policies: { version: 1, default: "allow", policies: [{ id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval", approval: { timeout: 20 } }] } });
    instrument(warden);
    await warden.run({}, (run) => run.tool("deploy", {}, () => "deployed")).catch(() => undefined);
    const span = one("execute_tool deploy");
    expect(span.attributes).toMatchObject({ "error.type": "approval_expired", "agent_warden.approval.outcome": "expired" });
    expect(eventNames(span)).toContain("agent_warden.approval.expired");
  });

  it("leaves arguments and results off spans unless captureContent is set", async () => {
    const warden = open();
    instrument(warden);
    await warden.run({}, (run) => run.tool("read", { path: "/docs" }, () => "contents"));
    const span = one("execute_tool read");
    expect(span.attributes["gen_ai.tool.call.arguments"]).toBeUndefined();
    expect(span.attributes["gen_ai.tool.call.result"]).toBeUndefined();
  });

  it("a run started inside an active span sits under it and takes its trace id; a framework span inside the run parents the tool span", async () => {
    const warden = open();
    instrument(warden);
    let wardenTraceId = "";
    let frameworkTraceId = "";
    await tracer.startActiveSpan("framework.agent", async (outer) => {
      frameworkTraceId = outer.spanContext().traceId;
      await warden.run({}, async (run) => {
        wardenTraceId = run.traceId;
        await run.tool("read", {}, () => "direct");
        await tracer.startActiveSpan("framework.tool", async (inner) => {
          await run.tool("search", {}, () => "through the framework");
          inner.end();
        });
      });
      outer.end();
    });
    const outer = one("framework.agent");
    const run = one("invoke_agent planner");
    expect(wardenTraceId).toBe(frameworkTraceId);
    expect(parentOf(run)).toBe(idOf(outer));
    expect(run.spanContext().traceId).toBe(frameworkTraceId);
    expect(parentOf(one("execute_tool read"))).toBe(idOf(run));
    expect(parentOf(one("execute_tool search"))).toBe(idOf(one("framework.tool")));
  });

  it("a tool call outside any run gets a run of its own, under the active span", async () => {
    const warden = open();
    instrument(warden);
    await tracer.startActiveSpan("request", async (request) => {
      await warden.execute({ tool: "read", args: {} }, () => "ok");
      request.end();
    });
    const run = one("invoke_agent planner");
    expect(run.attributes["agent_warden.run.implicit"]).toBe(true);
    expect(parentOf(run)).toBe(idOf(one("request")));
    expect(parentOf(one("execute_tool read"))).toBe(idOf(run));
  });

  it("undo() stops emission: open spans end marked incomplete, later runs make no spans and keep Warden's own trace ids", async () => {
    const warden = open();
    const undo = instrument(warden);
    const { runId } = warden.beginRun();
    const handle = warden.beginToolCall({ tool: "read", runId });
    undo();
    undo();
    expect(spans.getFinishedSpans().map((span) => [span.name, span.attributes["agent_warden.incomplete"]])).toEqual(
      expect.arrayContaining([
        ["execute_tool read", true],
        ["invoke_agent planner", true],
      ]),
    );
    handle.complete("done");
    await warden.completeRun(runId);
    spans.reset();
    let traceId = "";
    await tracer.startActiveSpan("framework.agent", async (outer) => {
      await warden.run({}, async (run) => {
        traceId = run.traceId;
        await run.tool("read", {}, () => "ok");
      });
      outer.end();
    });
    expect(spans.getFinishedSpans().map((span) => span.name)).toEqual(["framework.agent"]);
    expect(traceId).toMatch(/^trace_/);
  });

  it("gen_ai.tool.call.id is the framework's id for the call where it gave one; Warden's stays under agent_warden.tool_call.id", async () => {
    const warden = open();
    instrument(warden);
    const { runId } = warden.beginRun();
    const named = warden.beginToolCall({ tool: "read", runId, externalId: "call_7" });
    named.complete("ok");
    warden.beginToolCall({ tool: "search", runId }).complete("ok");
    await expect(Promise.resolve(warden.beginToolCall({ tool: "db.delete", runId, externalId: "call_8" }).outcome)).resolves.toMatchObject({ ok: false });
    await warden.completeRun(runId);
    expect(one("execute_tool read").attributes).toMatchObject({ "gen_ai.tool.call.id": "call_7", "agent_warden.tool_call.id": named.toolCallId });
    const search = one("execute_tool search");
    expect(search.attributes["gen_ai.tool.call.id"]).toBe(search.attributes["agent_warden.tool_call.id"]);
    expect(one("execute_tool db.delete").attributes).toMatchObject({ "gen_ai.tool.call.id": "call_8", "error.type": "blocked" });
  });

  it("keeps at most maxOpenSpans calls open: past it the oldest ends marked incomplete, and its late end adds nothing", async () => {
    const warden = open();
    instrument(warden, { maxOpenSpans: 2 });
    const { runId } = warden.beginRun();
    const [first, second, third] = ["a", "b", "c"].map((tool) => warden.beginToolCall({ tool, runId }));
    // The third call pushed the first out.
    expect(spans.getFinishedSpans().map((span) => [span.name, span.attributes["agent_warden.incomplete"]])).toEqual([["execute_tool a", true]]);
    second!.complete("ok");
    third!.complete("ok");
    first!.complete("late");
    await warden.completeRun(runId);
    expect(byName("execute_tool a")).toHaveLength(1);
    expect(byName("execute_tool b")[0]!.attributes["agent_warden.incomplete"]).toBeUndefined();
    expect(byName("execute_tool c")).toHaveLength(1);
    expect(one("invoke_agent planner").attributes["agent_warden.incomplete"]).toBeUndefined();
  });

  it("refuses a maxOpenSpans that is not a positive integer", () => {
    const warden = open();
    for (const maxOpenSpans of [0, -1, 1.5, Number.NaN]) {
      expect(() => instrumentWarden(warden, { tracerProvider, maxOpenSpans })).toThrow(expect.objectContaining({ code: "invalid_input" }));
    }
  });

  it("a run refused at its start by a halt still shows, as a failed span", async () => {
    const warden = open();
    instrument(warden);
    warden.halt({ agentId: "planner", reason: "incident" });
    await expect(warden.run({}, () => "never")).rejects.toBeInstanceOf(HaltedError);
    const refused = one("invoke_agent planner");
    expect(refused.attributes).toMatchObject({ "agent_warden.run.refused": true, "error.type": "halted" });
  });
});

describe("agent-warden/otel: propagation", () => {
  it("the governed fetch sends traceparent continuing the execute_tool span; nothing without instrumentation or after undo", async () => {
    const received: IncomingHttpHeaders[] = [];
    const server = createServer((request, response) => {
      received.push(request.headers);
      response.setHeader("content-type", "application/json");
      response.end("{}");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const warden = open();
      const http = createGovernedFetch(warden);
      await http(`${origin}/before`);
      const undo = instrument(warden);
      await warden.run({}, async () => {
        await http(`${origin}/traced`, { headers: { accept: "application/json" } });
        await http(`${origin}/own`, { headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" } });
      });
      undo();
      await http(`${origin}/after`);
      expect(received[0]!.traceparent).toBeUndefined();
      const [traced, own] = byName("execute_tool http.get");
      expect(received[1]!.traceparent).toBe(`00-${traced!.spanContext().traceId}-${idOf(traced!)}-01`);
      expect(received[1]!.accept).toBe("application/json");
      // A traceparent the caller set is theirs to send.
      expect(own).toBeDefined();
      expect(received[2]!.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
      expect(received[3]!.traceparent).toBeUndefined();
    } finally {
      server.close();
    }
  });
});

describe("agent-warden/otel: metrics", () => {
  it("tool call durations, decisions by action and policy, approval waits by outcome, halts by scope", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const warden = open();
    instrument(warden, { meterProvider });
    await warden
      .run({}, async (run) => {
        await run.tool("read", {}, () => "ok");
        await run.tool("read", {}, () => "ok");
        await run.tool("db.write", {}, () => "ok");
        await run.tool("db.delete", {}, () => "ok").catch(() => undefined);
        await run.tool("deploy", { env: "staging" }, () => "ok");
        await run.tool("deploy", { env: "production" }, () => "ok").catch(() => undefined);
        warden.halt({ runId: run.runId, reason: "stop" });
        await run.tool("read", {}, () => "ok");
      })
      .catch(() => undefined);
    await reader.forceFlush();
    const metrics = exporter.getMetrics().at(-1)!.scopeMetrics.flatMap((scope) => scope.metrics);
    const metric = (name: string) => metrics.find((m) => m.descriptor.name === name)!;

    const durations = metric("gen_ai.execute_tool.duration") as HistogramMetricData;
    expect(durations.descriptor.unit).toBe("s");
    const readDurations = durations.dataPoints.find((point) => point.attributes["gen_ai.tool.name"] === "read")!;
    expect(readDurations.value.count).toBe(2);
    expect(readDurations.attributes).toEqual({ "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read" });
    // Blocked and rejected calls never ran: no duration.
    expect(durations.dataPoints.map((point) => point.attributes["gen_ai.tool.name"]).sort()).toEqual(["db.write", "deploy", "read"]);

    const decisions = (metric("agent_warden.decisions") as SumMetricData).dataPoints.map((point) => [point.attributes["agent_warden.decision.action"], point.attributes["agent_warden.policy.id"], point.value]);
    expect(decisions).toEqual(
      expect.arrayContaining([
        ["allow", undefined, 2],
        ["warn", "flag-write", 1],
        ["block", "no-delete", 1],
        ["require_approval", "approve-deploy", 2],
      ]),
    );
    // The halted call: refused by the halt, not a policy.
    expect(decisions.find((d) => d[0] === "block" && d[1] === undefined)?.[2]).toBe(1);

    const waits = (metric("agent_warden.approval.wait.duration") as HistogramMetricData).dataPoints.map((point) => [point.attributes["agent_warden.approval.outcome"], point.value.count]);
    expect(waits.sort()).toEqual([
      ["approved", 1],
      ["rejected", 1],
    ]);
    const halts = (metric("agent_warden.halts") as SumMetricData).dataPoints.map((point) => [point.attributes["agent_warden.halt.scope"], point.value]);
    expect(halts).toEqual([["run", 1]]);
    // Four instruments, nothing else exported.
    expect(metrics.map((m) => m.descriptor.name).sort()).toEqual(["agent_warden.approval.wait.duration", "agent_warden.decisions", "agent_warden.halts", "gen_ai.execute_tool.duration"]);
    await meterProvider.shutdown();
  });

  it("decisions are counted while instrumented, none after undo(), and the counter keeps adding up when instrumented again", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const warden = open();
    const allowed = async () => {
      await reader.forceFlush();
      const decisions = exporter.getMetrics().at(-1)!.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === "agent_warden.decisions") as SumMetricData;
      return decisions.dataPoints.find((point) => point.attributes["agent_warden.decision.action"] === "allow")?.value;
    };
    const undo = instrument(warden, { meterProvider });
    await warden.run({}, (run) => run.tool("read", {}, () => "ok"));
    expect(await allowed()).toBe(1);
    await warden.run({}, (run) => run.tool("read", {}, () => "ok"));
    undo();
    await warden.run({}, (run) => run.tool("read", {}, () => "ok"));
    expect(await allowed()).toBe(2);
    instrument(warden, { meterProvider });
    await warden.run({}, (run) => run.tool("read", {}, () => "ok"));
    expect(await allowed()).toBe(3);
    await meterProvider.shutdown();
  });

  it("decisions reach a delta exporter as the count of each interval, two clients on one meter provider adding up", async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.DELTA);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const [first, second] = [open(), open()];
    instrument(first!, { meterProvider });
    instrument(second!, { meterProvider });
    const interval = async () => {
      await reader.forceFlush();
      const sum = exporter.getMetrics().at(-1)!.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === "agent_warden.decisions") as SumMetricData;
      expect(sum.isMonotonic).toBe(true);
      return Object.fromEntries(sum.dataPoints.map((point) => [String(point.attributes["agent_warden.decision.action"]), point.value]));
    };
    await first!.run({}, async (run) => {
      await run.tool("read", {}, () => "ok");
      await run.tool("db.delete", {}, () => "ok").catch(() => undefined);
    });
    await second!.run({}, (run) => run.tool("read", {}, () => "ok"));
    expect(await interval()).toEqual({ allow: 2, block: 1 });
    await first!.run({}, (run) => run.tool("read", {}, () => "ok"));
    expect(await interval()).toEqual({ allow: 1, block: 0 });
    await meterProvider.shutdown();
  });
});

describe("the core's tracing hook (warden.useTracing)", () => {
  it("fails open: a source that throws is reported and the run keeps Warden's own trace id; bad headers are dropped", async () => {
    const reported: unknown[] = [];
    const warden = open({ onError: (error) => reported.push(error) });
    const remove = warden.useTracing({
      traceId: () => {
        throw new Error("tracer broke");
      },
      headers: () => ({ traceparent: "00-abc-def-01", "bad header": "x", long: "y".repeat(600) }),
    });
    let traceId = "";
    let headers: Record<string, string> = {};
    await warden.run({}, async (run) => {
      traceId = run.traceId;
      const handle = warden.beginToolCall({ tool: "read", runId: run.runId });
      headers = handle.traceHeaders();
      handle.complete("ok");
    });
    expect(traceId).toMatch(/^trace_/);
    expect(reported.map((error) => (error as Error).message)).toEqual(["tracer broke"]);
    expect(headers).toEqual({ traceparent: "00-abc-def-01" });
    remove();
    await warden.run({}, async (run) => {
      const handle = warden.beginToolCall({ tool: "read", runId: run.runId });
      expect(handle.traceHeaders()).toEqual({});
      handle.complete("ok");
    });
  });

  it("a run given a traceId, or nested in another run, keeps it over the source's", async () => {
    const warden = open();
    warden.useTracing({ traceId: () => "4bf92f3577b34da6a3ce929d0e0e4736" });
    const ids: string[] = [];
    await warden.run({}, async (run) => {
      ids.push(run.traceId);
      await warden.run({}, (child) => ids.push(child.traceId));
    });
    await warden.run({}, (run) => ids.push(run.traceId), { traceId: "trace_given" });
    expect(ids).toEqual(["4bf92f3577b34da6a3ce929d0e0e4736", "4bf92f3577b34da6a3ce929d0e0e4736", "trace_given"]);
  });
});

describe("agent-warden/otel: the core stays free of OpenTelemetry", () => {
  it("importing agent-warden and running a governed call loads no @opentelemetry module", () => {
    // A fresh process that logs every module it resolves; the core is imported from source.
    const script = `
      import { registerHooks } from "node:module";
      const seen = [];
      registerHooks({ resolve(specifier, ctx, next) { const result = next(specifier, ctx); seen.push(result.url); return result; } });
      const { Warden } = await import(${JSON.stringify(join(import.meta.dirname, "../../src/index.ts"))});
      const warden = new Warden({ agentId: "a", store: ":memory:", policies: { version: 1, default: "allow", policies: [] } });
      await warden.run({}, (run) => run.tool("read", {}, () => "ok"));
      warden.close();
      console.log(JSON.stringify({ count: seen.length, otel: seen.filter((url) => url.includes("@opentelemetry")) }));
    `;
    const result = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: join(import.meta.dirname, "../.."), encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout.trim().split("\n").at(-1)!) as { count: number; otel: string[] };
    // The hook saw the core's own modules (so it would have seen OpenTelemetry too).
    expect(report.count).toBeGreaterThan(20);
    expect(report.otel).toEqual([]);
  });
});
