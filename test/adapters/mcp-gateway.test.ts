import { spawn } from "node:child_process";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ListToolsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { BLOCKED_ERROR_CODE, createMcpGateway, createMcpGatewayHttpHandler, HALTED_ERROR_CODE, REFUSAL_META_KEY, TOKEN_META_KEY, type McpGatewayHttpOptions } from "agent-warden/mcp";
import { TS_NODE } from "../fixtures/proc.js";
import { richServer } from "../fixtures/mcp-rich-server.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const RICH = fileURLToPath(new URL("../fixtures/mcp-rich-server.ts", import.meta.url));

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const allowAll: PolicySetInput = { version: 1, default: "allow", policies: [] };

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "gateway-agent", store: ":memory:", policies: allowAll, ...options });
  cleanups.push(() => warden.close());
  return warden;
}

const textOf = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** What an agent's client sees besides answers: notifications, and the server's requests it answered. */
interface Seen {
  logs: unknown[];
  updated: string[];
  toolListChanged: number;
  asked: string[];
}

/** An agent's client that declares sampling, elicitation and roots (or only what `capabilities` says) and answers them offline. */
async function agent(transport: Transport, capabilities: ClientCapabilities = { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } }) {
  const client = new Client({ name: "agent", version: "1.0.0" }, { capabilities });
  const seen: Seen = { logs: [], updated: [], toolListChanged: 0, asked: [] };
  if (capabilities.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      seen.asked.push("sampling");
      const first = request.params.messages[0]!.content as { text?: string };
      return { model: "offline-model", role: "assistant", content: { type: "text", text: `an answer to "${first.text}"` } };
    });
  }
  if (capabilities.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      seen.asked.push(`elicitation: ${request.params.message}`);
      return { action: "accept", content: { name: "Ada" } };
    });
  }
  if (capabilities.roots) {
    client.setRequestHandler(ListRootsRequestSchema, () => {
      seen.asked.push("roots");
      return { roots: [{ uri: "file:///work", name: "work" }] };
    });
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => void seen.logs.push(notification.params));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => void seen.updated.push(notification.params.uri));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (seen.toolListChanged += 1));
  await client.connect(transport);
  cleanups.push(() => client.close());
  return { client, seen };
}

/** What an error looks like on the wire. */
const wire = (error: unknown) => (error instanceof McpError ? { code: error.code, message: error.message, data: error.data } : { thrown: String(error) });

/**
 * Drives every request type the gateway relays and returns what the client saw, in order: run once
 * directly against a server and once through the gateway, the two must be equal.
 */
async function exercise(client: Client, seen: Seen): Promise<Record<string, unknown>> {
  const stats = async () => JSON.parse(textOf(await client.callTool({ name: "stats" }))) as Record<string, number>;
  const t: Record<string, unknown> = {};
  t.capabilities = client.getServerCapabilities();
  t.serverInfo = client.getServerVersion();
  t.instructions = client.getInstructions();
  t.ping = await client.ping();
  t.tools = await client.listTools();
  t.echo = await client.callTool({ name: "echo", arguments: { text: "hi" } });
  t.unknownTool = await client.callTool({ name: "no_such_tool", arguments: {} }).catch(wire);
  t.badArguments = await client.callTool({ name: "echo", arguments: { text: 42 } }).catch(wire);
  const progress: Progress[] = [];
  t.progress = await client.callTool({ name: "progress" }, undefined, { onprogress: (p) => void progress.push(p) });
  t.progressSeen = progress;

  t.setLevel = await client.setLoggingLevel("info");
  t.log = await client.callTool({ name: "log" });
  await waitFor(() => seen.logs.length >= 3, "three log messages");
  t.logs = seen.logs;

  t.sampling = await client.callTool({ name: "ask_model", arguments: { question: "2+2?" } });
  t.elicitation = await client.callTool({ name: "ask_user" });
  t.roots = await client.callTool({ name: "list_roots" });
  t.asked = [...seen.asked];

  t.resources = await client.listResources();
  t.templates = await client.listResourceTemplates();
  t.readme = await client.readResource({ uri: "file:///docs/readme.md" });
  t.note = await client.readResource({ uri: "note://7" });
  t.missingResource = await client.readResource({ uri: "file:///nope" }).catch(wire);
  t.completePrompt = await client.complete({ ref: { type: "ref/prompt", name: "review" }, argument: { name: "language", value: "py" } });
  t.completeTemplate = await client.complete({ ref: { type: "ref/resource", uri: "note://{id}" }, argument: { name: "id", value: "1" } });
  t.prompts = await client.listPrompts();
  t.prompt = await client.getPrompt({ name: "review", arguments: { language: "rust", code: "fn main() {}" } });
  t.missingPrompt = await client.getPrompt({ name: "nope" }).catch(wire);

  t.subscribe = await client.subscribeResource({ uri: "file:///docs/readme.md" });
  await waitFor(() => seen.updated.length === 1, "a resource update");
  t.updated = seen.updated;
  t.unsubscribe = await client.unsubscribeResource({ uri: "file:///docs/readme.md" });

  t.addTool = await client.callTool({ name: "add_tool", arguments: { name: "later" } });
  await waitFor(() => seen.toolListChanged >= 1, "a tools/list_changed notification");
  t.toolsAfter = (await client.listTools()).tools.map((tool) => tool.name);
  t.later = await client.callTool({ name: "later" });

  // The agent cancels: the server sees it, the client rejects as the SDK does.
  const controller = new AbortController();
  const pending = client.callTool({ name: "slow" }, undefined, { signal: controller.signal }).catch(wire);
  await waitFor(async () => (await stats()).slow === 1, "the slow call to start");
  controller.abort();
  t.cancelled = await pending;
  await waitFor(async () => (await stats())["slow.aborted"] === 1, "the server to see the cancellation");
  t.stats = await stats();
  return t;
}

/** A gateway in front of `upstream`, with an agent's client connected to it in memory. */
async function throughGateway(warden: Warden, upstream: Transport, capabilities?: ClientCapabilities) {
  const gateway = createMcpGateway({ warden, upstream });
  const [agentSide, gatewaySide] = InMemoryTransport.createLinkedPair();
  await gateway.connect(gatewaySide);
  cleanups.push(() => gateway.close());
  return { gateway, ...(await agent(agentSide, capabilities)) };
}

async function inMemoryUpstream() {
  const { server, ran } = richServer();
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  cleanups.push(() => server.close());
  return { transport: clientSide, ran };
}

/** Every tool call the warden recorded, oldest first, with its run. */
async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const calls: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 500 }).reverse()) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

describe("createMcpGateway: the whole protocol passes through", () => {
  it("answers every request type as the server does directly, in memory", async () => {
    const direct = await inMemoryUpstream();
    const expected = await (async () => {
      const { client, seen } = await agent(direct.transport);
      return exercise(client, seen);
    })();

    const warden = newWarden();
    const upstream = await inMemoryUpstream();
    const { client, seen } = await throughGateway(warden, upstream.transport);
    const actual = await exercise(client, seen);
    expect(actual).toEqual(expected);
    // Sanity: the script did reach the server's features, and the gateway added nothing of its own.
    expect(expected.asked).toEqual(["sampling", "elicitation: Your name?", "roots"]);
    expect(textOf(expected.sampling)).toBe('the model said: an answer to "2+2?" (offline-model)');
    expect((expected.logs as unknown[]).length).toBe(3);
    expect(expected.serverInfo).toEqual({ name: "rich-upstream", version: "2.1.0", title: "Rich upstream" });
    expect(upstream.ran).toEqual(direct.ran);
  });

  it("relays nothing the agent did not declare: a server's sampling request fails as it would directly", async () => {
    const direct = await inMemoryUpstream();
    const { client: plain } = await agent(direct.transport, {});
    const expected = await plain.callTool({ name: "ask_model", arguments: { question: "?" } });

    const upstream = await inMemoryUpstream();
    const { client, seen } = await throughGateway(newWarden(), upstream.transport, {});
    const actual = await client.callTool({ name: "ask_model", arguments: { question: "?" } });
    expect(actual).toEqual(expected);
    expect((actual as CallToolResult).isError).toBe(true);
    expect(seen.asked).toEqual([]);
  });
});

describe("createMcpGateway: pagination", () => {
  it("passes cursors through unchanged, both ways", async () => {
    // A low-level server that pages its tools two at a time with opaque cursors.
    const names = ["a", "b", "c", "d", "e"];
    const cursorsSeen: Array<string | undefined> = [];
    const paged = new Server({ name: "paged", version: "1.0.0" }, { capabilities: { tools: {} } });
    paged.setRequestHandler(ListToolsRequestSchema, (request) => {
      const cursor = request.params?.cursor;
      cursorsSeen.push(cursor);
      const start = cursor === undefined ? 0 : Number(Buffer.from(cursor, "base64url").toString().slice("page:".length));
      const page = names.slice(start, start + 2).map((name) => ({ name, inputSchema: { type: "object" as const } }));
      const next = start + 2 < names.length ? Buffer.from(`page:${start + 2}`).toString("base64url") : undefined;
      return { tools: page, ...(next !== undefined && { nextCursor: next }) };
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await paged.connect(serverSide);
    cleanups.push(() => paged.close());
    const { client } = await throughGateway(newWarden(), clientSide);
    const pages: Array<{ names: string[]; nextCursor: string | undefined }> = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? undefined : { cursor });
      pages.push({ names: page.tools.map((tool) => tool.name), nextCursor: page.nextCursor });
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pages.map((page) => page.names)).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    expect(cursorsSeen).toEqual([undefined, pages[0]!.nextCursor, pages[1]!.nextCursor]);
  });
});

describe("createMcpGateway: governed where policy speaks", () => {
  const policies: PolicySetInput = {
    version: 1,
    default: "allow",
    policies: [
      { id: "no-system-files", reason: "system files are not for agents", when: { tool: "resource.read", "args.uri": { matches: "^file:///etc/" } }, action: "block" },
      { id: "no-review-prompt", when: { tool: "prompt.get", "args.name": "review", "args.arguments.language": "python" }, action: "block" },
      { id: "no-sampling-in-deploys", reason: "no model calls while deploying", when: { tool: "sampling.create_message", "args.causedBy.tool": "deploy" }, action: "block" },
    ],
  };

  it("blocks a resource read by a glob on its uri: the server is never asked, the block is recorded in the session's run", async () => {
    const warden = newWarden({ policies });
    const upstream = await inMemoryUpstream();
    const { client } = await throughGateway(warden, upstream.transport);
    expect((await client.readResource({ uri: "file:///docs/readme.md" })).contents).toHaveLength(1);
    const error = await client.readResource({ uri: "file:///etc/passwd" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(BLOCKED_ERROR_CODE);
    expect((error as McpError).message).toContain("system files are not for agents");
    expect((error as McpError).data).toMatchObject({ warden: "blocked" });
    expect(upstream.ran["read passwd"]).toBeUndefined();
    expect(upstream.ran["read readme"]).toBe(1);

    const runs = warden.listRuns();
    expect(runs).toHaveLength(1);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status, c.input])).toEqual([
      ["resource.read", "completed", { uri: "file:///docs/readme.md", server: "rich-upstream" }],
      ["resource.read", "blocked", { uri: "file:///etc/passwd", server: "rich-upstream" }],
    ]);
  });

  it("governs prompts/get as prompt.get with the prompt's arguments", async () => {
    const warden = newWarden({ policies });
    const upstream = await inMemoryUpstream();
    const { client } = await throughGateway(warden, upstream.transport);
    expect((await client.getPrompt({ name: "review", arguments: { language: "rust", code: "x" } })).messages).toHaveLength(1);
    const error = await client.getPrompt({ name: "review", arguments: { language: "python", code: "x" } }).catch((e: unknown) => e);
    expect((error as McpError).code).toBe(BLOCKED_ERROR_CODE);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["prompt.get", "completed"],
      ["prompt.get", "blocked"],
    ]);
  });

  it("records the server's sampling request with the tool call that caused it, and lets policy refuse it", async () => {
    const warden = newWarden({ policies });
    const upstream = await inMemoryUpstream();
    const { client, seen } = await throughGateway(warden, upstream.transport);
    await client.callTool({ name: "ask_model", arguments: { question: "2+2?" } });
    expect(seen.asked).toEqual(["sampling"]);
    const calls = await recorded(warden);
    const tool = calls.find((c) => c.toolName === "ask_model")!;
    const sampling = calls.find((c) => c.toolName === "sampling.create_message")!;
    expect(sampling.status).toBe("completed");
    expect(sampling.runId).toBe(tool.runId);
    expect(sampling.input).toMatchObject({ server: "rich-upstream", causedBy: { tool: "ask_model", toolCallId: tool.toolCallId }, maxTokens: 50 });
    expect(warden.listRuns()).toHaveLength(1);
  });

  it("refuses a server's sampling request by policy: the agent's client is never asked", async () => {
    const warden = newWarden({ policies: { version: 1, default: "allow", policies: [{ id: "no-sampling", reason: "no model calls from servers", when: { tool: "sampling.create_message", "args.causedBy.tool": "ask_model" }, action: "block" }] } });
    const upstream = await inMemoryUpstream();
    const { client, seen } = await throughGateway(warden, upstream.transport);
    const result = (await client.callTool({ name: "ask_model", arguments: { question: "2+2?" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("no model calls from servers");
    expect(seen.asked).toEqual([]);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["ask_model", "failed"],
      ["sampling.create_message", "blocked"],
    ]);
  });

  it("records one run per session, completed when the session ends", async () => {
    const warden = newWarden();
    const upstream = await inMemoryUpstream();
    const { client, gateway } = await throughGateway(warden, upstream.transport);
    await client.callTool({ name: "echo", arguments: { text: "a" } });
    await client.readResource({ uri: "file:///docs/readme.md" });
    await client.callTool({ name: "echo", arguments: { text: "b" } });
    const [run] = warden.listRuns();
    expect(warden.listRuns()).toHaveLength(1);
    expect(run).toMatchObject({ agentId: "gateway-agent", status: "running" });
    expect((await warden.getRun(run!.runId)).toolCalls.map((c) => c.toolName)).toEqual(["echo", "resource.read", "echo"]);
    await gateway.close();
    expect(warden.listRuns()[0]).toMatchObject({ runId: run!.runId, status: "completed" });
  });

  it("refuses with HALTED_ERROR_CODE on a halt, for tools and resources alike, and records the refusal", async () => {
    const warden = newWarden();
    const upstream = await inMemoryUpstream();
    const { client } = await throughGateway(warden, upstream.transport);
    await client.callTool({ name: "echo", arguments: { text: "before" } });
    warden.halt({ reason: "incident 7", agentId: "gateway-agent" });
    for (const attempt of [() => client.callTool({ name: "echo", arguments: { text: "after" } }), () => client.readResource({ uri: "file:///docs/readme.md" })]) {
      const error = await attempt().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(McpError);
      expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
      expect((error as McpError).message).toContain("incident 7");
    }
    expect(upstream.ran.echo).toBe(1);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["echo", "completed"],
      ["echo", "blocked"],
      ["resource.read", "blocked"],
    ]);
  });

  it("records a call refused by a halt before the session has a run, in the ledger", async () => {
    const warden = newWarden();
    const upstream = await inMemoryUpstream();
    const { client } = await throughGateway(warden, upstream.transport);
    warden.halt({ reason: "incident 8" });
    const error = await client.callTool({ name: "echo", arguments: { text: "x" } }).catch((e: unknown) => e);
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    expect(upstream.ran.echo).toBeUndefined();
    // No run could open: the refusal is in the ledger, naming the tool, after the halt.
    const entries = warden.ledger.entries({ limit: 100 });
    const halted = entries.findIndex((entry) => entry.type === "agent.halted");
    const refusal = entries.slice(halted + 1).find((entry) => entry.type === "tool.blocked");
    expect(refusal?.data).toMatchObject({ toolName: "echo", halted: true, refused: true });
    expect(warden.listRuns({ status: "running" })).toEqual([]);
  });

  it("completes the session's run after refused calls, and fails it when a halt stopped one", async () => {
    const policies: PolicySetInput = { version: 1, default: "allow", policies: [{ id: "no-slow", when: { tool: "slow" }, action: "block", reason: "too slow" }] };
    const refusedOnly = newWarden({ policies });
    const first = await inMemoryUpstream();
    const { client, gateway } = await throughGateway(refusedOnly, first.transport);
    const refused = (await client.callTool({ name: "slow" })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(refused._meta?.[REFUSAL_META_KEY]).toEqual({ reason: "too slow", cause: "policy" });
    await client.callTool({ name: "echo", arguments: { text: "after" } });
    await gateway.close();
    await waitFor(() => refusedOnly.listRuns()[0]?.status !== "running", "the session's run to end");
    expect(refusedOnly.listRuns().map((run) => run.status)).toEqual(["completed"]);

    const halted = newWarden();
    const second = await inMemoryUpstream();
    const session = await throughGateway(halted, second.transport);
    await session.client.callTool({ name: "echo", arguments: { text: "before" } });
    const pending = session.client.callTool({ name: "slow" }).catch((e: unknown) => e);
    await waitFor(async () => (await recorded(halted)).some((call) => call.toolName === "slow"), "the slow call to start");
    halted.halt({ reason: "incident 9", agentId: "gateway-agent" });
    expect(((await pending) as McpError).code).toBe(HALTED_ERROR_CODE);
    await session.gateway.close();
    await waitFor(() => halted.listRuns()[0]?.status !== "running", "the session's run to end");
    const [run] = halted.listRuns();
    expect(run).toMatchObject({ status: "failed", error: { name: "HaltedError" } });
    expect((await halted.getRun(run!.runId)).toolCalls.map((call) => [call.toolName, call.status])).toEqual([
      ["echo", "completed"],
      ["slow", "failed"],
    ]);
  });

  it("never passes the agent's delegation token upstream", async () => {
    const warden = newWarden();
    const token = warden.tokens.mint({ agentId: "files-agent", scopes: ["echo"], ttl: "1h" });
    const { server } = richServer();
    const received: unknown[] = [];
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const handle = serverSide.onmessage!;
    serverSide.onmessage = (message, extra) => {
      received.push(message);
      handle(message, extra);
    };
    const { client } = await throughGateway(warden, clientSide);
    const result = await client.callTool({ name: "echo", arguments: { text: "t" }, _meta: { [TOKEN_META_KEY]: token, trace: "abc" } });
    expect(textOf(result)).toBe("echo: t");
    const sent = JSON.stringify(received);
    expect(sent).not.toContain(token);
    expect(sent).toContain('"trace":"abc"');
    expect(warden.listRuns().map((r) => r.agentId)).toEqual(["files-agent"]);
  });
});

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS" && !key.startsWith("VITEST")) env[key] = value;
  return env;
}

/** The gateway's HTTP handler on a loopback port; each session gets a fresh in-memory rich server. */
async function httpGateway(warden: Warden, options: Partial<McpGatewayHttpOptions> = {}) {
  const upstreams: Array<Record<string, number>> = [];
  const handler = createMcpGatewayHttpHandler({
    warden,
    upstream: () => {
      const { server, ran } = richServer();
      const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
      void server.connect(serverSide);
      upstreams.push(ran);
      return clientSide;
    },
    ...options,
  });
  const http: HttpServer = createServer((request, response) => void handler(request, response));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    await handler.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const url = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
  return { handler, url, upstreams };
}

describe("createMcpGatewayHttpHandler: Streamable HTTP", () => {
  it("answers every request type as the server does directly", async () => {
    const direct = await inMemoryUpstream();
    const expected = await (async () => {
      const { client, seen } = await agent(direct.transport);
      return exercise(client, seen);
    })();
    const warden = newWarden();
    const { url, handler } = await httpGateway(warden);
    const { client, seen } = await agent(new StreamableHTTPClientTransport(url));
    expect(handler.sessions).toBe(1);
    const actual = await exercise(client, seen);
    expect(actual).toEqual(expected);
  });

  it("keeps sessions apart: an upstream connection and a run each, ended by DELETE", async () => {
    const warden = newWarden();
    const { url, handler, upstreams } = await httpGateway(warden);
    const transports = [new StreamableHTTPClientTransport(url), new StreamableHTTPClientTransport(url)];
    const [first, second] = await Promise.all(transports.map((transport) => agent(transport)));
    await first!.client.callTool({ name: "echo", arguments: { text: "one" } });
    await second!.client.callTool({ name: "echo", arguments: { text: "two" } });
    await second!.client.callTool({ name: "echo", arguments: { text: "two again" } });
    expect(handler.sessions).toBe(2);
    expect(upstreams.map((ran) => ran.echo)).toEqual([1, 2]);
    const runs = warden.listRuns();
    expect(runs).toHaveLength(2);
    expect((await Promise.all(runs.map(async (run) => (await warden.getRun(run.runId)).toolCalls.length))).sort()).toEqual([1, 2]);
    await transports[0]!.terminateSession();
    await waitFor(() => handler.sessions === 1, "the session to end");
    await waitFor(() => warden.listRuns().some((run) => run.status === "completed"), "the session's run to complete");
  });

  it("refuses a request whose Host or Origin is not loopback (DNS rebinding), and an unknown session", async () => {
    const { url } = await httpGateway(newWarden());
    const initialize = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    const rebound = await rawPost(url, initialize, { ...headers, host: "attacker.example:80" });
    expect(rebound.status).toBe(403);
    const foreign = await rawPost(url, initialize, { ...headers, origin: "https://attacker.example" });
    expect(foreign.status).toBe(403);
    const unknown = await rawPost(url, initialize, { ...headers, "mcp-session-id": "no-such-session" });
    expect(unknown.status).toBe(404);
    const fine = await rawPost(url, initialize, { ...headers, origin: `http://localhost:${url.port}` });
    expect(fine.status).toBe(200);
  });
});

/** A POST with exactly these headers (fetch will not let a test set Host). */
function rawPost(url: URL, body: string, headers: Record<string, string>): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    import("node:http").then(({ request }) => {
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) } }, (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0 });
      });
      req.on("error", reject);
      req.end(body);
    }, reject);
  });
}

describe("createMcpGateway over stdio", () => {
  it("`warden mcp-gateway -- <server>` answers as the server does directly over stdio", async () => {
    const serverCommand = [process.execPath, ...TS_NODE, RICH];
    const direct = await agent(new StdioClientTransport({ command: serverCommand[0]!, args: serverCommand.slice(1), cwd: REPO, env: cleanEnv(), stderr: "ignore" }));
    const expected = await exercise(direct.client, direct.seen);

    const gatewayed = await agent(
      new StdioClientTransport({ command: process.execPath, args: [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--", ...serverCommand], cwd: REPO, env: cleanEnv(), stderr: "ignore" }),
    );
    const actual = await exercise(gatewayed.client, gatewayed.seen);
    expect(actual).toEqual(expected);
  });
});

describe("warden mcp-gateway --http", () => {
  it("serves Streamable HTTP from the CLI, starting the server per session, and answers as the server does", async () => {
    const serverCommand = [process.execPath, ...TS_NODE, RICH];
    const child = spawn(process.execPath, [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--http", "127.0.0.1:0", "--", ...serverCommand], { cwd: REPO, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
    cleanups.push(() => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    }));
    let stderr = "";
    const url = await new Promise<URL>((resolve, reject) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(stderr);
        if (match) resolve(new URL(match[1]!));
      });
      child.once("exit", (code) => reject(new Error(`the gateway exited (${code}): ${stderr}`)));
    });
    const { client, seen } = await agent(new StreamableHTTPClientTransport(url));
    const viaHttp = await exercise(client, seen);
    const direct = await inMemoryUpstream();
    const expected = await (async () => {
      const { client: directClient, seen: directSeen } = await agent(direct.transport);
      return exercise(directClient, directSeen);
    })();
    expect(viaHttp).toEqual(expected);
  });
});
