// Trace context across processes: an MCP call through the client gate, a gateway and a governed server,
// each its own process on stdio, shows as one trace in the collector; spans reach a collector over
// OTLP/HTTP as they would in production; the serving side's hook (`warden.continueTrace`) fails open.
import { join } from "node:path";
import { context } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, type WardenOptions } from "agent-warden";
import { governMcpClient, governMcpServer } from "agent-warden/mcp";
import { instrumentWarden } from "agent-warden/otel";
import { StorageContextManager } from "../fixtures/otel-context.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "../fixtures/otlp-receiver.js";

const REPO = join(import.meta.dirname, "../..");
const HOP = join(REPO, "test/fixtures/otel-mcp-process.ts");

const clients: Warden[] = [];
const cleanups: Array<() => unknown> = [];

beforeAll(() => {
  context.setGlobalContextManager(new StorageContextManager());
});
afterAll(() => {
  context.disable();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const client of clients.splice(0)) client.close();
});

function open(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "planner", store: ":memory:", onError: () => {}, policies: { version: 1, default: "allow", policies: [] }, ...options });
  clients.push(warden);
  return warden;
}

function memoryTracing(): { provider: BasicTracerProvider; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  return { exporter, provider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) };
}

function childEnv(receiver: OtlpReceiver): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS" && !key.startsWith("VITEST")) env[key] = value;
  return { ...env, OTLP_RECEIVER_URL: receiver.url };
}

const text = (result: unknown): string => ((result as { content: Array<{ text: string }> }).content[0]?.text ?? "");

describe("MCP: trace context in params._meta", () => {
  it("client gate → gateway → server gate over stdio (three processes): one trace per call, each hop under the one before", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const { provider, exporter } = memoryTracing();
    const warden = open();
    cleanups.push(instrumentWarden(warden, { tracerProvider: provider }));
    const client = governMcpClient(new Client({ name: "agent", version: "1.0.0" }), warden);
    // The gateway process starts the server process; both export to the receiver.
    await client.connect(new StdioClientTransport({ command: process.execPath, args: ["--import", "tsx", HOP, "gateway"], cwd: REPO, env: childEnv(receiver), stderr: "inherit" }));
    cleanups.push(() => client.close());

    const framework = provider.getTracer("framework");
    const turn = async (name: string, tool: string, args: Record<string, unknown>) =>
      framework.startActiveSpan(name, async (span) => {
        try {
          return await warden.run({ turn: name }, () => client.callTool({ name: tool, arguments: args }));
        } finally {
          span.end();
        }
      });
    const first = await turn("turn 1", "echo", { text: "hello" });
    const second = await turn("turn 2", "wipe", {});
    expect(text(first)).toBe("hello");
    expect(second.isError).toBe(true);

    const local = exporter.getFinishedSpans();
    const turns = ["turn 1", "turn 2"].map((name) => local.find((span) => span.name === name)!);
    const agentCalls = local.filter((span) => span.name.startsWith("execute_tool"));
    expect(agentCalls.map((span) => span.name)).toEqual(["execute_tool echo", "execute_tool wipe"]);
    // Two turns, two traces; each agent-side call sits in its turn's trace.
    expect(turns[0]!.spanContext().traceId).not.toBe(turns[1]!.spanContext().traceId);
    agentCalls.forEach((span, i) => expect(span.spanContext().traceId).toBe(turns[i]!.spanContext().traceId));

    // The server's implicit run (one per call) ends with each call: two invoke_agent spans from the server.
    const serverRuns = (spans: ReceivedSpan[]) => spans.filter((span) => span.name === "invoke_agent files-server");
    await receiver.waitFor((spans) => serverRuns(spans).length === 2 && spans.filter((span) => span.name === "execute_tool wipe").length === 2);
    // The gateway's session run ends when the session does.
    await client.close();
    const received = await receiver.waitFor((spans) => spans.some((span) => span.name === "invoke_agent mcp-gateway"));
    expect(receiver.contentTypes.every((type) => type.startsWith("application/json"))).toBe(true);

    const session = received.find((span) => span.name === "invoke_agent mcp-gateway")!;
    const hop = (name: string, agent: string) => received.filter((span) => span.name === name && span.attributes["gen_ai.agent.id"] === agent);
    const gatewayCalls = [...hop("execute_tool echo", "mcp-gateway"), ...hop("execute_tool wipe", "mcp-gateway")];
    const serverCalls = [...hop("execute_tool echo", "files-server"), ...hop("execute_tool wipe", "files-server")];
    expect(gatewayCalls).toHaveLength(2);
    expect(serverCalls).toHaveLength(2);

    for (const i of [0, 1]) {
      const agentCall = agentCalls[i]!;
      const traceId = agentCall.spanContext().traceId;
      const gatewayCall = gatewayCalls[i]!;
      const serverRun = serverRuns(received).find((span) => span.traceId === traceId)!;
      const serverCall = serverCalls[i]!;
      // One trace id end to end: agent → gateway → server.
      expect([gatewayCall.traceId, serverRun.traceId, serverCall.traceId]).toEqual([traceId, traceId, traceId]);
      // Each hop continues from the span that sent the call: the gateway's call from the agent's, the server's run from the gateway's call.
      expect(serverRun.parentSpanId).toBe(gatewayCall.spanId);
      expect(serverCall.parentSpanId).toBe(serverRun.spanId);
      // The server's run is in the caller's trace in the ledger too.
      expect(serverRun.attributes["agent_warden.trace.id"]).toBe(traceId);
      if (i === 0) {
        // The first call opened the gateway's session run, under the agent's call.
        expect(session.traceId).toBe(traceId);
        expect(session.parentSpanId).toBe(agentCall.spanContext().spanId);
        expect(gatewayCall.parentSpanId).toBe(session.spanId);
      } else {
        // A later call of the same session joins its own caller's trace, not the session's.
        expect(gatewayCall.parentSpanId).toBe(agentCall.spanContext().spanId);
      }
    }
    // The server refused the wipe: the refusal shows on its span and on the hops before it.
    expect(serverCalls[1]!.attributes["error.type"]).toBe("blocked");
    expect(serverCalls[1]!.attributes["agent_warden.policy.id"]).toBe("no-wipe");
    expect(gatewayCalls[1]!.status.code).toBe(2);
    expect(agentCalls[1]!.status.code).toBe(2);
  });
});

describe("MCP: the server gate continues a caller's trace context", () => {
  async function governedServer(warden: Warden): Promise<Client> {
    const server = governMcpServer(new McpServer({ name: "files", version: "1.0.0" }), warden);
    server.registerTool("echo", { inputSchema: { text: z.string() } }, ({ text }) => ({ content: [{ type: "text", text }] }));
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    // A plain client, not governed: what it sends in `_meta` is all the server sees of the caller.
    const client = new Client({ name: "caller", version: "1.0.0" });
    await client.connect(clientSide);
    cleanups.push(() => client.close());
    return client;
  }

  it("a traceparent (and tracestate) in _meta parents the call's run, W3C read without a registered propagator", async () => {
    const { provider, exporter } = memoryTracing();
    const warden = open({ agentId: "files-server" });
    cleanups.push(instrumentWarden(warden, { tracerProvider: provider }));
    const client = await governedServer(warden);
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await client.callTool({ name: "echo", arguments: { text: "a" }, _meta: { traceparent, tracestate: "vendor=abc" } });
    const run = exporter.getFinishedSpans().find((span) => span.name === "invoke_agent files-server")!;
    expect(run.spanContext().traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(run.parentSpanContext).toMatchObject({ spanId: "00f067aa0ba902b7", isRemote: true });
    expect(run.parentSpanContext?.traceState?.get("vendor")).toBe("abc");
    expect(run.attributes["agent_warden.trace.id"]).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    const call = exporter.getFinishedSpans().find((span) => span.name === "execute_tool echo")!;
    expect(call.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
  });

  it("a malformed traceparent starts a trace of its own; the call is governed as ever", async () => {
    const { provider, exporter } = memoryTracing();
    const warden = open({ agentId: "files-server" });
    cleanups.push(instrumentWarden(warden, { tracerProvider: provider }));
    const client = await governedServer(warden);
    for (const traceparent of ["00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "not a traceparent"]) {
      const result = await client.callTool({ name: "echo", arguments: { text: "b" }, _meta: { traceparent } });
      expect(text(result)).toBe("b");
    }
    const runs = exporter.getFinishedSpans().filter((span) => span.name === "invoke_agent files-server");
    expect(runs).toHaveLength(4);
    for (const run of runs) expect(run.parentSpanContext).toBeUndefined();
  });

  it("the client gate sends its call's span as traceparent in _meta, next to the delegation token", async () => {
    const { provider, exporter } = memoryTracing();
    const warden = open();
    cleanups.push(instrumentWarden(warden, { tracerProvider: provider }));
    const server = new McpServer({ name: "files", version: "1.0.0" });
    const seen: Array<Record<string, unknown> | undefined> = [];
    server.registerTool("echo", { inputSchema: { text: z.string() } }, ({ text }, extra) => {
      seen.push(extra._meta as Record<string, unknown> | undefined);
      return { content: [{ type: "text", text }] };
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = governMcpClient(new Client({ name: "agent", version: "1.0.0" }), warden, { token: "opaque-token" });
    await client.connect(clientSide);
    cleanups.push(() => client.close());
    await client.callTool({ name: "echo", arguments: { text: "c" } });
    const call = exporter.getFinishedSpans().find((span) => span.name === "execute_tool echo")!;
    const { traceId, spanId } = call.spanContext();
    expect(seen[0]).toMatchObject({ traceparent: `00-${traceId}-${spanId}-01`, "agent-warden/token": "opaque-token" });
  });
});

describe("warden.continueTrace (the core's serving-side hook)", () => {
  it("fails open: a source that throws before running the call is reported and the call runs once; nothing without trace context", async () => {
    const reported: unknown[] = [];
    const warden = open({ onError: (error) => reported.push(error) });
    let ran = 0;
    const remove = warden.useTracing({
      continueFrom: () => {
        throw new Error("bad carrier");
      },
    });
    expect(warden.continueTrace({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, () => ++ran)).toBe(1);
    expect(reported.map((error) => (error as Error).message)).toEqual(["bad carrier"]);
    remove();

    // What the call itself throws passes through, and it ran once.
    const carriers: Array<Record<string, string>> = [];
    warden.useTracing({
      continueFrom: (carrier, fn) => {
        carriers.push(carrier);
        return fn();
      },
    });
    expect(() =>
      warden.continueTrace({ traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, () => {
        ran += 1;
        throw new Error("the call failed");
      }),
    ).toThrow("the call failed");
    expect(ran).toBe(2);
    expect(reported).toHaveLength(1);
    // Only header-like entries reach the source; none at all, and it is not asked.
    warden.continueTrace({ traceparent: "x", "agent-warden/token": "secret", progressToken: 3, tracestate: "y".repeat(600) }, () => ran++);
    warden.continueTrace({ "agent-warden/token": "secret" }, () => ran++);
    warden.continueTrace(undefined, () => ran++);
    expect(carriers.slice(1)).toEqual([{ traceparent: "x" }]);
    expect(ran).toBe(5);
  });
});

describe("OTLP/HTTP: spans reach a collector", () => {
  it("the OTLP/HTTP exporter behind a batch processor delivers Warden's spans, attributes and events to a loopback receiver", async () => {
    const receiver = await startOtlpReceiver();
    cleanups.push(() => receiver.close());
    const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: receiver.url }))] });
    cleanups.push(() => provider.shutdown());
    const warden = open({
      policies: {
        version: 1,
        default: "allow",
        policies: [
          { id: "no-delete", when: { tool: "db.delete" }, action: "block", reason: "deletes are off" },
          { id: "approve-deploy", when: { tool: "deploy" }, action: "require_approval" },
        ],
      },
      onApprovalRequest: (_request, decide) => void setTimeout(() => decide.approve({ reviewer: "alice" }), 2),
    });
    cleanups.push(instrumentWarden(warden, { tracerProvider: provider }));
    let traceId = "";
    await warden.run({ task: "release" }, async (run) => {
      traceId = run.traceId;
      await run.tool("read", { path: "/docs", password: "hunter2" }, () => "ok");
      await expect(run.tool("db.delete", { row: 1 }, () => "deleted")).rejects.toThrow(/deletes are off/);
      await run.tool("deploy", { env: "staging" }, () => "deployed");
    });
    await provider.forceFlush();
    const received = await receiver.waitFor((spans) => spans.length >= 4);

    expect(received.map((span) => span.name).sort()).toEqual(["execute_tool db.delete", "execute_tool deploy", "execute_tool read", "invoke_agent planner"]);
    expect(new Set(received.map((span) => span.scope))).toEqual(new Set(["agent-warden"]));
    const run = received.find((span) => span.name === "invoke_agent planner")!;
    // The ledger's trace id is the collector's: a run outside any span takes Warden's own, the span its own; they are told apart by the attribute.
    expect(run.attributes).toMatchObject({ "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "planner", "gen_ai.agent.name": "planner", "agent_warden.trace.id": traceId });
    for (const span of received.filter((s) => s !== run)) {
      expect(span.traceId).toBe(run.traceId);
      expect(span.parentSpanId).toBe(run.spanId);
      expect(span.attributes["gen_ai.operation.name"]).toBe("execute_tool");
      // Content stays off unless asked for.
      expect(span.attributes["gen_ai.tool.call.arguments"]).toBeUndefined();
    }
    const blocked = received.find((span) => span.name === "execute_tool db.delete")!;
    expect(blocked.attributes).toMatchObject({ "gen_ai.tool.name": "db.delete", "error.type": "blocked", "agent_warden.policy.id": "no-delete", "agent_warden.decision.action": "block" });
    expect(blocked.status).toMatchObject({ code: 2, message: "deletes are off" });
    const deploy = received.find((span) => span.name === "execute_tool deploy")!;
    expect(deploy.attributes).toMatchObject({ "agent_warden.approval.outcome": "approved", "agent_warden.approval.reviewer": "alice" });
    expect(deploy.events.map((event) => event.name)).toEqual(expect.arrayContaining(["agent_warden.decision", "agent_warden.approval.requested", "agent_warden.approval.approved"]));
    expect(deploy.events.find((event) => event.name === "agent_warden.decision")!.attributes).toMatchObject({ "agent_warden.decision.action": "require_approval", "agent_warden.policy.id": "approve-deploy" });
    expect(BigInt(deploy.endTimeUnixNano)).toBeGreaterThan(BigInt(deploy.startTimeUnixNano));
  });
});
