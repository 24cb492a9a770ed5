// The gateway in front of the reference MCP servers from npm (`@modelcontextprotocol/server-everything`,
// `@modelcontextprotocol/server-filesystem`), over stdio and Streamable HTTP: every request type is
// driven once directly with the SDK's Client and once through the gateway, and the two must answer
// alike (ids, session ids and clock times aside), except where a policy speaks.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
  type JSONRPCMessage,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { BLOCKED_ERROR_CODE, createMcpGateway, createMcpGatewayHttpHandler, REFUSAL_META_KEY } from "agent-warden/mcp";
import { TS_NODE } from "../fixtures/proc.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const EVERYTHING = realpathSync(join(REPO, "node_modules/.bin/mcp-server-everything"));
const FILESYSTEM = realpathSync(join(REPO, "node_modules/.bin/mcp-server-filesystem"));

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

function tempDir(prefix: string): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const textOf = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, tries = 1000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** What an error looks like on the wire. */
const wire = (error: unknown) => (error instanceof McpError ? { code: error.code, message: error.message, data: error.data } : { thrown: String(error) });

/** What legitimately differs between two sessions: session ids, clock times (and in blobs, once decoded), the roots' own paths. */
function normalize(value: unknown, paths: string[] = []): unknown {
  const text = (s: string) => {
    let out = s.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>").replace(/\d{1,2}:\d{2}:\d{2}(\s?[AP]M)?/g, "<time>");
    for (const [i, path] of paths.entries()) out = out.split(path).join(`<dir${i}>`);
    return out;
  };
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === "string") return key === "blob" ? text(Buffer.from(v, "base64").toString("utf8")) : text(v);
    if (Array.isArray(v)) return v.map((item) => walk(item));
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, k)]));
    return v;
  };
  return walk(value);
}

/** What the agent is told the server can do through the gateway: all of it but task-augmented requests (experimental in the SDK), which the gateway does not relay. */
function withoutTasks(answers: Record<string, unknown>): Record<string, unknown> {
  const { tasks: _tasks, ...capabilities } = answers.capabilities as Record<string, unknown>;
  return { ...answers, capabilities };
}

/** A transport that remembers every message it sends: what reaches the server, directly or from the gateway. */
function tapped<T extends Transport>(transport: T, sent: JSONRPCMessage[]): T {
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    sent.push(message);
    return send(message, options);
  };
  return transport;
}

/** What an agent's client sees besides answers: notifications, and the server's requests it answered. */
interface Seen {
  logs: Array<{ level: string; logger?: string; data: unknown }>;
  updated: string[];
  toolListChanged: number;
  resourceListChanged: number;
  asked: Array<{ method: string; params: unknown }>;
}

/** An agent's client that declares sampling, elicitation and roots (or what `capabilities` says) and answers them offline. */
async function agent(transport: Transport, roots: string[], capabilities: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } }) {
  const client = new Client({ name: "agent", version: "1.0.0" }, { capabilities });
  const seen: Seen = { logs: [], updated: [], toolListChanged: 0, resourceListChanged: 0, asked: [] };
  if (capabilities.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, ({ params: { _meta, ...params } }) => {
      seen.asked.push({ method: "sampling/createMessage", params });
      const first = params.messages[0]!.content as { text?: string };
      return { model: "offline-model", role: "assistant", content: { type: "text", text: `an answer to "${first.text}"` }, stopReason: "endTurn" };
    });
  }
  if (capabilities.elicitation) {
    client.setRequestHandler(ElicitRequestSchema, ({ params: { _meta, ...params } }) => {
      seen.asked.push({ method: "elicitation/create", params });
      if (params.mode === "url") return { action: "accept" };
      return { action: "accept", content: { name: "Ada Lovelace", check: true, email: "ada@example.com", integer: 7 } };
    });
  }
  if (capabilities.roots) {
    client.setRequestHandler(ListRootsRequestSchema, () => {
      seen.asked.push({ method: "roots/list", params: {} });
      return { roots: roots.map((dir) => ({ uri: pathToFileURL(dir).href, name: "work" })) };
    });
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => void seen.logs.push(notification.params as Seen["logs"][number]));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => void seen.updated.push(notification.params.uri));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (seen.toolListChanged += 1));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void (seen.resourceListChanged += 1));
  await client.connect(transport);
  cleanups.push(() => client.close());
  return { client, seen };
}
type Agent = Awaited<ReturnType<typeof agent>>;

/** Every page of a paginated list, and the cursors that led to them. */
async function allPages<T>(list: (cursor: string | undefined) => Promise<{ nextCursor?: string | undefined } & T>): Promise<T[]> {
  const pages: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    pages.push(page);
    cursor = page.nextCursor;
  } while (cursor !== undefined && pages.length < 50);
  return pages;
}

/** The requests and notifications of `method` in what was sent to the server: their id (none for a notification) and params. */
function sentOf<P>(sent: JSONRPCMessage[], method: string): Array<{ id: unknown; params: P }> {
  return sent.flatMap((m) => ("method" in m && m.method === method ? [{ id: "id" in m ? m.id : undefined, params: m.params as P }] : []));
}

/** How often the server was sent a call of `tool`, and whether one of them was cancelled. */
function upstreamCancellations(sent: JSONRPCMessage[], tool: string): { called: number; cancelledThatCall: boolean } {
  const calls = sentOf<{ name: string }>(sent, "tools/call").filter((call) => call.params.name === tool);
  const cancelled = sentOf<{ requestId: unknown }>(sent, "notifications/cancelled").map((n) => n.params.requestId);
  return { called: calls.length, cancelledThatCall: calls.some((call) => cancelled.includes(call.id)) };
}

/**
 * Drives every request type of the everything server and returns what the agent saw, in order. Run once
 * directly and once through the gateway: the two must be equal once normalized.
 */
async function exerciseEverything({ client, seen }: Agent, sent: JSONRPCMessage[] | undefined, over: "stdio" | "http"): Promise<Record<string, unknown>> {
  const t: Record<string, unknown> = {};
  // Over HTTP a client resumes a stream it thinks was cut (the SDK's client does so after a JSON-RPC
  // error, which it does not count as the stream's answer), and the reference server's event store then
  // replays the events of every stream after that point: notifications and requests can come twice,
  // directly as through the gateway, depending on timing. There, what the agent saw is compared as a set.
  const distinct = <T>(items: T[]) => (over === "stdio" ? items : [...new Map(items.map((item) => [JSON.stringify(item), item])).values()]);
  // After initialized the server registers the tools that need the client's capabilities (tools/list_changed) and asks for roots.
  await waitFor(() => seen.logs.some((log) => String(log.data).startsWith("Roots updated")), "the server to ask for the agent's roots");
  t.capabilities = client.getServerCapabilities();
  t.serverInfo = client.getServerVersion();
  t.instructions = client.getInstructions();
  t.ping = await client.ping();

  const toolPages = await allPages((cursor) => client.listTools(cursor === undefined ? undefined : { cursor }));
  t.tools = toolPages;
  t.toolListChanged = seen.toolListChanged > 0;
  t.echo = await client.callTool({ name: "echo", arguments: { message: "hello" } });
  t.sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 40 } });
  t.structured = await client.callTool({ name: "get-structured-content", arguments: { location: "Chicago" } });
  t.annotated = await client.callTool({ name: "get-annotated-message", arguments: { messageType: "error", includeImage: true } });
  t.image = await client.callTool({ name: "get-tiny-image", arguments: {} });
  t.links = await client.callTool({ name: "get-resource-links", arguments: { count: 4 } });
  t.reference = await client.callTool({ name: "get-resource-reference", arguments: { resourceType: "Blob", resourceId: 3 } });
  t.unknownTool = await client.callTool({ name: "no-such-tool", arguments: {} }).catch(wire);
  t.badArguments = await client.callTool({ name: "get-sum", arguments: { a: "two", b: 40 } }).catch(wire);
  t.rootsTool = await client.callTool({ name: "get-roots-list", arguments: {} });

  // The server asks the agent's client: sampling, elicitation; the answers go back to the tool.
  t.sampling = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "2+2?", maxTokens: 20 } });
  t.elicitation = await client.callTool({ name: "trigger-elicitation-request", arguments: {} });
  // URL elicitation, as a request to the agent and as the error (-32042) that names the URL before a retry.
  const urlElicitation = { url: "https://auth.example/consent", message: "Sign in to continue.", elicitationId: "consent-1" };
  t.urlElicitation = await client.callTool({ name: "trigger-url-elicitation", arguments: urlElicitation });
  t.urlElicitationRequired = await client.callTool({ name: "trigger-url-elicitation", arguments: { ...urlElicitation, elicitationId: "consent-2", errorPath: true } }).catch(wire);
  t.urlElicitationRetried = await client.callTool({ name: "trigger-url-elicitation", arguments: { ...urlElicitation, elicitationId: "consent-2", errorPath: true } });

  t.resources = await allPages((cursor) => client.listResources(cursor === undefined ? undefined : { cursor }));
  const firstDocument = (t.resources as Array<{ resources: Array<{ uri: string }> }>)[0]!.resources[0]!.uri;
  t.readDocument = await client.readResource({ uri: firstDocument });
  t.readText = await client.readResource({ uri: "demo://resource/dynamic/text/1" });
  t.readBlob = await client.readResource({ uri: "demo://resource/dynamic/blob/2" });
  t.readMissing = await client.readResource({ uri: "demo://resource/dynamic/text/nope" }).catch(wire);
  t.templates = await allPages((cursor) => client.listResourceTemplates(cursor === undefined ? undefined : { cursor }));

  t.completeDepartment = await client.complete({ ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "department", value: "S" } });
  t.completeName = await client.complete({ ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "name", value: "" }, context: { arguments: { department: "Engineering" } } });
  t.completeTemplate = await client.complete({ ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" }, argument: { name: "resourceId", value: "4" } });

  t.prompts = await allPages((cursor) => client.listPrompts(cursor === undefined ? undefined : { cursor }));
  t.simplePrompt = await client.getPrompt({ name: "simple-prompt" });
  t.argsPrompt = await client.getPrompt({ name: "args-prompt", arguments: { city: "Lyon", state: "Rhône" } });
  t.resourcePrompt = await client.getPrompt({ name: "resource-prompt", arguments: { resourceType: "Text", resourceId: "5" } });
  t.missingPrompt = await client.getPrompt({ name: "no-such-prompt" }).catch(wire);

  // Logging: at "error" the server's info message on subscribing is not sent; at "debug" the one on unsubscribing is.
  const logsBefore = seen.logs.length;
  t.setLevelError = await client.setLoggingLevel("error");
  t.subscribe = await client.subscribeResource({ uri: firstDocument });
  t.setLevelDebug = await client.setLoggingLevel("debug");
  t.toggleUpdates = await client.callTool({ name: "toggle-subscriber-updates", arguments: {} });
  await waitFor(() => seen.updated.length >= 1, "a resources/updated notification");
  t.toggleUpdatesOff = await client.callTool({ name: "toggle-subscriber-updates", arguments: {} });
  t.updated = seen.updated.slice(0, 1);
  t.unsubscribe = await client.unsubscribeResource({ uri: firstDocument });
  await waitFor(() => seen.logs.slice(logsBefore).some((log) => String(log.data).startsWith("Received Unsubscribe")), "the log message of unsubscribing");
  t.logsAfterSetLevel = distinct(seen.logs.slice(logsBefore));

  // Progress: one notification per step, under the agent's own token. (The SDK client handles a
  // notification a tick after a response that came in the same read, so the last step's can be dropped
  // when the answer follows it at once: the steps before it are compared. Progress only increases, so a
  // repeat is a replay.)
  const progress: Progress[] = [];
  t.longRunning = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.4, steps: 4 } }, undefined, { onprogress: (p) => void progress.push(p) });
  t.progress = progress.filter((p, i) => p.progress < p.total! && (i === 0 || p.progress > Math.max(...progress.slice(0, i).map((q) => q.progress))));

  // The agent's roots change: the server asks again.
  const rootsAsked = seen.asked.filter((a) => a.method === "roots/list").length;
  await client.sendRootsListChanged();
  await waitFor(() => seen.asked.filter((a) => a.method === "roots/list").length > rootsAsked, "the server to ask for roots again");
  await waitFor(() => seen.logs.filter((log) => String(log.data).startsWith("Roots updated")).length >= 2, "the second roots log");
  t.asked = distinct([...seen.asked]);
  t.rootsLogs = distinct(seen.logs.filter((log) => String(log.data).startsWith("Roots updated")));
  // Cancellation, last: the agent gives up after the first step; the server is told. (Over HTTP the
  // client then resumes the abandoned stream, and the reference server's event store replays events of
  // other streams too: whatever came after would arrive twice, directly as through the gateway.)
  const controller = new AbortController();
  const cancelledProgress: Progress[] = [];
  const pending = client
    .callTool({ name: "trigger-long-running-operation", arguments: { duration: 20, steps: 100 } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => void cancelledProgress.push(p),
    })
    .catch(wire);
  await waitFor(() => cancelledProgress.length >= 1, "the long-running operation to report progress");
  controller.abort("the agent gave up");
  t.cancelled = await pending;
  if (sent !== undefined) {
    await waitFor(() => upstreamCancellations(sent, "trigger-long-running-operation").cancelledThatCall, "the server to be sent the cancellation");
    t.upstreamCancellation = upstreamCancellations(sent, "trigger-long-running-operation");
  }
  return normalize(t) as Record<string, unknown>;
}

function stdioEverything(sent: JSONRPCMessage[]): StdioClientTransport {
  return tapped(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" }), sent);
}

/** A gateway session in front of `upstream`, the agent's client connected to it in memory. */
async function throughGateway(warden: Warden, upstream: Transport, roots: string[], capabilities?: ClientCapabilities) {
  const gateway = createMcpGateway({ warden, upstream });
  const [agentSide, gatewaySide] = InMemoryTransport.createLinkedPair();
  await gateway.connect(gatewaySide);
  cleanups.push(() => gateway.close());
  return agent(agentSide, roots, capabilities);
}

/** Every tool call the warden recorded, oldest first. */
async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const calls: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 500 }).reverse()) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function stopOnCleanup(child: ChildProcess): void {
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  );
}

/** Waits for `pattern` on the child's stderr; rejects if it exits first. */
function awaitStderr(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  let stderr = "";
  return new Promise((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = pattern.exec(stderr);
      if (match) resolve(match);
    });
    child.once("exit", (code) => reject(new Error(`exited (${code}): ${stderr}`)));
  });
}

/** The everything server's own Streamable HTTP endpoint, in a child process. */
async function everythingOverHttp(): Promise<URL> {
  const port = await freePort();
  const child = spawn(process.execPath, [EVERYTHING, "streamableHttp"], { env: { ...process.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  stopOnCleanup(child);
  await awaitStderr(child, /listening on port/);
  return new URL(`http://127.0.0.1:${port}/mcp`);
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS" && !key.startsWith("VITEST")) env[key] = value;
  return env;
}

describe("the everything server (@modelcontextprotocol/server-everything) behind the gateway", () => {
  it("over stdio: every request type answers through the gateway as directly", { timeout: 60_000 }, async () => {
    const roots = [tempDir("warden-roots-")];
    const directSent: JSONRPCMessage[] = [];
    const expected = await exerciseEverything(await agent(stdioEverything(directSent), roots), directSent, "stdio");

    const warden = newWarden();
    const gatewaySent: JSONRPCMessage[] = [];
    const actual = await exerciseEverything(await throughGateway(warden, stdioEverything(gatewaySent), roots), gatewaySent, "stdio");
    expect(actual).toEqual(withoutTasks(expected));
    expect(expected.capabilities).toHaveProperty("tasks");

    // The script reached what it meant to reach, and the server was sent what the agent sent.
    expect((expected.asked as Seen["asked"]).map((a) => a.method)).toEqual(["roots/list", "sampling/createMessage", "elicitation/create", "elicitation/create", "elicitation/create", "roots/list"]);
    expect(textOf(expected.sampling)).toContain('an answer to \\"Resource trigger-sampling-request context: 2+2?\\"');
    expect(JSON.stringify((expected.elicitation as CallToolResult).content)).toContain("- Name: Ada Lovelace");
    expect(expected.urlElicitationRequired).toMatchObject({ code: -32042, data: { elicitations: [{ mode: "url", url: "https://modelcontextprotocol.io" }] } });
    expect((expected.progress as Progress[]).map((p) => [p.progress, p.total])).toEqual([[1, 4], [2, 4], [3, 4]]);
    expect(expected.upstreamCancellation).toEqual({ called: 2, cancelledThatCall: true });
    expect((expected.logsAfterSetLevel as Seen["logs"]).some((log) => String(log.data).startsWith("Received Subscribe"))).toBe(false);
    const methods = (sent: JSONRPCMessage[]) => sent.filter((m) => "method" in m).map((m) => (m as { method: string }).method);
    expect(methods(gatewaySent).sort()).toEqual(methods(directSent).sort());
    // The session is one run; its calls are in it, the server's sampling and elicitation requests recorded too.
    const calls = await recorded(warden);
    expect(warden.listRuns()).toHaveLength(1);
    expect(calls.map((c) => c.toolName)).toEqual(expect.arrayContaining(["echo", "resource.read", "prompt.get", "sampling.create_message", "elicitation.create"]));
    const sampling = calls.find((c) => c.toolName === "sampling.create_message")!;
    expect(sampling.input).toMatchObject({ server: "mcp-servers/everything", causedBy: { tool: "trigger-sampling-request" } });
  });

  it("over Streamable HTTP: the gateway's handler in front of the server's own HTTP endpoint answers as the endpoint does", { timeout: 60_000 }, async () => {
    const upstreamUrl = await everythingOverHttp();
    const roots = [tempDir("warden-roots-")];
    const directSent: JSONRPCMessage[] = [];
    const directTransport = tapped(new StreamableHTTPClientTransport(upstreamUrl), directSent);
    const expected = await exerciseEverything(await agent(directTransport, roots), directSent, "http");
    await directTransport.terminateSession();

    const warden = newWarden();
    const gatewaySent: JSONRPCMessage[] = [];
    const handler = createMcpGatewayHttpHandler({ warden, upstream: () => tapped(new StreamableHTTPClientTransport(upstreamUrl), gatewaySent) });
    const http: HttpServer = createServer((request, response) => void handler(request, response));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      await handler.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
    const gatewayUrl = new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`);
    const actual = await exerciseEverything(await agent(new StreamableHTTPClientTransport(gatewayUrl), roots), gatewaySent, "http");
    expect(actual).toEqual(withoutTasks(expected));
    expect(expected.upstreamCancellation).toEqual({ called: 2, cancelledThatCall: true });
    expect(warden.listRuns()).toHaveLength(1);
  });

  it("`warden mcp-gateway --http … --upstream <url>` in front of the server's own HTTP endpoint answers as the endpoint does", { timeout: 90_000 }, async () => {
    const upstreamUrl = await everythingOverHttp();
    const roots = [tempDir("warden-roots-")];
    const directTransport = new StreamableHTTPClientTransport(upstreamUrl);
    const expected = await exerciseEverything(await agent(directTransport, roots), undefined, "http");
    await directTransport.terminateSession();

    const child = spawn(process.execPath, [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--http", "127.0.0.1:0", "--upstream", upstreamUrl.href], {
      cwd: REPO,
      env: cleanEnv(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    stopOnCleanup(child);
    const [, gatewayUrl] = await awaitStderr(child, /listening on (http:\/\/\S+)/);
    const actual = await exerciseEverything(await agent(new StreamableHTTPClientTransport(new URL(gatewayUrl!)), roots), undefined, "http");
    expect(actual).toEqual(withoutTasks(expected));
  });

  it("blocks a resource read by policy on its uri: the agent gets BLOCKED_ERROR_CODE, the server is never asked, other reads pass", { timeout: 30_000 }, async () => {
    const warden = newWarden({
      policies: { version: 1, default: "allow", policies: [{ id: "no-instructions", reason: "instructions are not for agents", when: { tool: "resource.*", "args.uri": { matches: "/static/document/instructions\\.md$" } }, action: "block" }] },
    });
    const sent: JSONRPCMessage[] = [];
    const { client } = await throughGateway(warden, stdioEverything(sent), [tempDir("warden-roots-")]);
    const allowed = await client.readResource({ uri: "demo://resource/static/document/features.md" });
    expect(allowed.contents[0]).toMatchObject({ uri: "demo://resource/static/document/features.md", mimeType: "text/markdown" });
    const error = await client.readResource({ uri: "demo://resource/static/document/instructions.md" }).catch((e: unknown) => e);
    expect(wire(error)).toMatchObject({ code: BLOCKED_ERROR_CODE, data: { warden: "blocked", reason: "instructions are not for agents", cause: "policy" } });
    expect((error as McpError).message).toContain("instructions are not for agents");
    const reads = sentOf<{ uri: string }>(sent, "resources/read").map((read) => read.params.uri);
    expect(reads).toEqual(["demo://resource/static/document/features.md"]);
    expect((await recorded(warden)).map((c) => [c.toolName, c.status, (c.input as { uri: string }).uri])).toEqual([
      ["resource.read", "completed", "demo://resource/static/document/features.md"],
      ["resource.read", "blocked", "demo://resource/static/document/instructions.md"],
    ]);
  });
});

/** Drives the filesystem server's tools in `dir` (its allowed directory, from the agent's roots) and returns what the agent saw. */
async function exerciseFilesystem({ client, seen }: Agent, dir: string, outside: string): Promise<Record<string, unknown>> {
  const t: Record<string, unknown> = {};
  // The server replaces its allowed directories with the agent's roots once it has asked for them.
  await waitFor(async () => textOf(await client.callTool({ name: "list_allowed_directories", arguments: {} })).includes(dir), "the server to take the agent's roots");
  t.asked = seen.asked;
  t.capabilities = client.getServerCapabilities();
  t.serverInfo = client.getServerVersion();
  t.instructions = client.getInstructions();
  t.tools = await allPages((cursor) => client.listTools(cursor === undefined ? undefined : { cursor }));
  t.allowed = await client.callTool({ name: "list_allowed_directories", arguments: {} });
  t.write = await client.callTool({ name: "write_file", arguments: { path: join(dir, "notes.md"), content: "# Notes\n\nfirst line\nsecond line\n" } });
  t.read = await client.callTool({ name: "read_text_file", arguments: { path: join(dir, "notes.md") } });
  t.head = await client.callTool({ name: "read_text_file", arguments: { path: join(dir, "notes.md"), head: 1 } });
  t.edit = await client.callTool({ name: "edit_file", arguments: { path: join(dir, "notes.md"), edits: [{ oldText: "first line", newText: "1st line" }], dryRun: true } });
  t.mkdir = await client.callTool({ name: "create_directory", arguments: { path: join(dir, "sub") } });
  t.move = await client.callTool({ name: "move_file", arguments: { source: join(dir, "notes.md"), destination: join(dir, "sub", "notes.md") } });
  t.list = await client.callTool({ name: "list_directory", arguments: { path: dir } });
  t.tree = await client.callTool({ name: "directory_tree", arguments: { path: dir } });
  t.search = await client.callTool({ name: "search_files", arguments: { path: dir, pattern: "**/*.md" } });
  t.readMany = await client.callTool({ name: "read_multiple_files", arguments: { paths: [join(dir, "sub", "notes.md"), join(dir, "missing.md")] } });
  t.outside = await client.callTool({ name: "read_text_file", arguments: { path: join(outside, "secret.txt") } });
  t.badArguments = await client.callTool({ name: "write_file", arguments: { path: 42 } }).catch(wire);
  return normalize(t, [dir, outside]) as Record<string, unknown>;
}

describe("the filesystem server (@modelcontextprotocol/server-filesystem) behind the gateway", () => {
  it("over stdio: its tools, and its roots from the agent's client, answer through the gateway as directly", { timeout: 60_000 }, async () => {
    const started = tempDir("warden-fs-start-");
    const outside = tempDir("warden-fs-outside-");
    writeFileSync(join(outside, "secret.txt"), "not for agents");
    const server = () => new StdioClientTransport({ command: process.execPath, args: [FILESYSTEM, started], stderr: "ignore" });

    const directDir = tempDir("warden-fs-");
    const expected = await exerciseFilesystem(await agent(server(), [directDir]), directDir, outside);
    const gatewayDir = tempDir("warden-fs-");
    const actual = await exerciseFilesystem(await throughGateway(newWarden(), server(), [gatewayDir]), gatewayDir, outside);
    expect(actual).toEqual(expected);
    expect(textOf(expected.allowed)).toContain("<dir0>");
    expect((expected.outside as CallToolResult).isError).toBe(true);
    expect(readFileSync(join(gatewayDir, "sub", "notes.md"), "utf8")).toBe(readFileSync(join(directDir, "sub", "notes.md"), "utf8"));
  });

  it("blocks write_file by a glob policy and reads of a path by its argument: the file is untouched, the refusal is the model's to read", { timeout: 30_000 }, async () => {
    const dir = tempDir("warden-fs-");
    mkdirSync(join(dir, "private"));
    writeFileSync(join(dir, "plan.md"), "the plan\n");
    writeFileSync(join(dir, "private", "keys.txt"), "secret\n");
    const warden = newWarden({
      policies: {
        version: 1,
        default: "allow",
        policies: [
          { id: "read-only", reason: "this agent only reads", when: { tool: ["write_*", "edit_*", "move_*", "create_*"] }, action: "block" },
          { id: "no-private", reason: "private files stay private", when: { tool: "read_*", "args.path": { matches: "/private/" } }, action: "block" },
        ],
      },
    });
    const sent: JSONRPCMessage[] = [];
    const { client } = await throughGateway(warden, tapped(new StdioClientTransport({ command: process.execPath, args: [FILESYSTEM, dir], stderr: "ignore" }), sent), [], {});

    const write = (await client.callTool({ name: "write_file", arguments: { path: join(dir, "plan.md"), content: "overwritten" } })) as CallToolResult;
    expect(write.isError).toBe(true);
    expect(textOf(write)).toContain("this agent only reads");
    expect(write._meta?.[REFUSAL_META_KEY]).toMatchObject({ cause: "policy" });
    expect(readFileSync(join(dir, "plan.md"), "utf8")).toBe("the plan\n");

    const privateRead = (await client.callTool({ name: "read_text_file", arguments: { path: join(dir, "private", "keys.txt") } })) as CallToolResult;
    expect(privateRead.isError).toBe(true);
    expect(textOf(privateRead)).toContain("private files stay private");
    const read = (await client.callTool({ name: "read_text_file", arguments: { path: join(dir, "plan.md") } })) as CallToolResult;
    expect(read.isError).toBeFalsy();
    expect(textOf(read)).toBe("the plan\n");

    // The server saw the allowed read only.
    const calls = sentOf<{ name: string }>(sent, "tools/call").map((call) => call.params.name);
    expect(calls).toEqual(["read_text_file"]);
    expect((await recorded(warden)).map((c) => [c.toolName, c.status])).toEqual([
      ["write_file", "blocked"],
      ["read_text_file", "blocked"],
      ["read_text_file", "completed"],
    ]);
  });
});
