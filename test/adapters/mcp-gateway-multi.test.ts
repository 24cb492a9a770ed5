import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  CreateMessageRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type ClientCapabilities,
} from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden, WardenError, type PolicySetInput, type ToolCallRecord } from "agent-warden";
import { BLOCKED_ERROR_CODE, createMcpGateway, createMcpGatewayHttpHandler, loadMcpConfig, parseMcpConfig, UPSTREAM_SEPARATOR } from "agent-warden/mcp";
import { TS_NODE } from "../fixtures/proc.js";
import { richServer } from "../fixtures/mcp-rich-server.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const EVERYTHING = join(REPO, "node_modules/.bin/mcp-server-everything");
const FILESYSTEM = join(REPO, "node_modules/.bin/mcp-server-filesystem");

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newWarden(policies: PolicySetInput = { version: 1, default: "allow", policies: [] }): Warden {
  const warden = new Warden({ agentId: "multi-agent", store: ":memory:", policies });
  cleanups.push(() => warden.close());
  return warden;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-mcp-multi-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const textOf = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function agent(transport: Transport, capabilities: ClientCapabilities = { sampling: {} }) {
  const client = new Client({ name: "agent", version: "1.0.0" }, { capabilities });
  const seen = { updated: [] as string[], toolListChanged: 0, resourceListChanged: 0, sampled: [] as string[] };
  if (capabilities.sampling) {
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      seen.sampled.push((request.params.messages[0]!.content as { text: string }).text);
      return { model: "offline-model", role: "assistant", content: { type: "text", text: "4" } };
    });
  }
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => void seen.updated.push(notification.params.uri));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (seen.toolListChanged += 1));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void (seen.resourceListChanged += 1));
  await client.connect(transport);
  cleanups.push(() => client.close());
  return { client, seen };
}

/** A gateway in front of `upstreams`, an agent connected to it in memory. */
async function throughGateway(warden: Warden, upstreams: Record<string, Client | Transport>, capabilities?: ClientCapabilities) {
  const gateway = createMcpGateway({ warden, upstreams });
  const [agentSide, gatewaySide] = InMemoryTransport.createLinkedPair();
  await gateway.connect(gatewaySide);
  cleanups.push(() => gateway.close());
  return { gateway, ...(await agent(agentSide, capabilities)) };
}

async function inMemory(server: McpServer | Server): Promise<Transport> {
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  cleanups.push(() => server.close());
  return clientSide;
}

/** A second server with resources of its own (`memo://`), a tool named like the rich server's, a prompt and a template with completion. */
function notesServer() {
  const ran: Record<string, number> = {};
  const count = (name: string) => (ran[name] = (ran[name] ?? 0) + 1);
  const server = new McpServer({ name: "notes", version: "0.3.0" }, { capabilities: { resources: { listChanged: true } }, instructions: "Notes live under memo://." });
  server.registerTool("echo", { description: "Echoes, the notes way", inputSchema: { text: z.string() } }, ({ text }) => {
    count("echo");
    return { content: [{ type: "text", text: `notes echo: ${text}` }] };
  });
  server.registerTool("add_note", { inputSchema: { id: z.string() } }, ({ id }) => {
    count("add_note");
    server.registerResource(`memo ${id}`, `memo://added/${id}`, {}, (uri) => ({ contents: [{ uri: uri.href, text: `added ${id}` }] }));
    return { content: [{ type: "text", text: `added ${id}` }] };
  });
  server.registerResource("index", "memo://index", { mimeType: "text/plain" }, (uri) => {
    count("read index");
    return { contents: [{ uri: uri.href, text: "memo index" }] };
  });
  server.registerResource(
    "memo",
    new ResourceTemplate("memo://item/{id}", { list: undefined, complete: { id: (value) => ["alpha", "beta"].filter((id) => id.startsWith(value)) } }),
    {},
    (uri, { id }) => {
      count("read memo");
      return { contents: [{ uri: uri.href, text: `memo ${String(id)}` }] };
    },
  );
  server.registerPrompt("summary", { argsSchema: { topic: z.string() } }, ({ topic }) => ({ messages: [{ role: "user", content: { type: "text", text: `Summarize ${topic}` } }] }));
  return { server, ran };
}

async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const calls: ToolCallRecord[] = [];
  for (const run of warden.listRuns({ limit: 500 }).reverse()) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS" && !key.startsWith("VITEST")) env[key] = value;
  return env;
}

describe("createMcpGateway with several upstreams: the reference servers", () => {
  it("exposes each server's tools and prompts under its prefix, merges lists and capabilities, routes calls and reads, joins instructions", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "hello.txt"), "hello from the files server");
    const sources = () => ({
      everything: new StdioClientTransport({ command: EVERYTHING, args: ["stdio"], stderr: "ignore" }),
      files: new StdioClientTransport({ command: FILESYSTEM, args: [dir], stderr: "ignore" }),
    });
    // What each server offers directly, to compare with the merged view.
    const direct: Record<string, { tools: string[]; prompts: string[]; resources: string[] }> = {};
    for (const [name, transport] of Object.entries(sources())) {
      const { client } = await agent(transport, {});
      const capabilities = client.getServerCapabilities()!;
      direct[name] = {
        tools: (await client.listTools()).tools.map((tool) => tool.name),
        prompts: capabilities.prompts ? (await client.listPrompts()).prompts.map((prompt) => prompt.name) : [],
        resources: capabilities.resources ? (await client.listResources()).resources.map((resource) => resource.uri) : [],
      };
    }

    const warden = newWarden();
    const { client } = await throughGateway(warden, sources(), {});
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toEqual([...direct.everything!.tools.map((name) => `everything__${name}`), ...direct.files!.tools.map((name) => `files__${name}`)]);
    expect(tools).toContain("files__read_text_file");
    expect((await client.listPrompts()).prompts.map((prompt) => prompt.name)).toEqual(direct.everything!.prompts.map((name) => `everything__${name}`));
    // Resource URIs stay as the server gave them.
    expect((await client.listResources()).resources.map((resource) => resource.uri)).toEqual(direct.everything!.resources);

    const capabilities = client.getServerCapabilities()!;
    expect(capabilities).toMatchObject({ tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true }, logging: {}, completions: {} });
    expect(capabilities.tasks).toBeUndefined();
    expect(client.getServerVersion()).toMatchObject({ name: "warden-mcp-gateway" });
    expect(client.getInstructions()).toMatch(/^## everything \(tools and prompts named "everything__…"\)\n/);

    const read = await client.callTool({ name: "files__read_text_file", arguments: { path: join(dir, "hello.txt") } });
    expect(textOf(read)).toBe("hello from the files server");
    expect(textOf(await client.callTool({ name: "everything__echo", arguments: { message: "hi" } }))).toContain("hi");
    const prompt = await client.getPrompt({ name: "everything__simple-prompt" });
    expect(prompt.messages.length).toBeGreaterThan(0);
    const uri = direct.everything!.resources[0]!;
    expect((await client.readResource({ uri })).contents[0]!.uri).toBe(uri);

    // One run for the session; each call under the name the agent used, reads and prompts with the server's configured name.
    expect(warden.listRuns()).toHaveLength(1);
    expect((await recorded(warden)).map((call) => [call.toolName, (call.input as { server?: string }).server])).toEqual([
      ["files__read_text_file", undefined],
      ["everything__echo", undefined],
      ["prompt.get", "everything"],
      ["resource.read", "everything"],
    ]);
  });

  it("blocks the files server's writes by a glob policy: nothing written, reads allowed", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "keep.txt"), "original");
    const warden = newWarden({
      version: 1,
      default: "allow",
      policies: [{ id: "files-read-only", reason: "the files server is read-only here", when: { tool: ["files__write_*", "files__edit_*", "files__move_*", "files__create_*"] }, action: "block" }],
    });
    const { client } = await throughGateway(warden, {
      everything: new StdioClientTransport({ command: EVERYTHING, args: ["stdio"], stderr: "ignore" }),
      files: new StdioClientTransport({ command: FILESYSTEM, args: [dir], stderr: "ignore" }),
    });
    const write = (await client.callTool({ name: "files__write_file", arguments: { path: join(dir, "keep.txt"), content: "overwritten" } })) as CallToolResult;
    expect(write.isError).toBe(true);
    expect(textOf(write)).toContain("the files server is read-only here");
    const edit = (await client.callTool({ name: "files__edit_file", arguments: { path: join(dir, "keep.txt"), edits: [{ oldText: "original", newText: "changed" }] } })) as CallToolResult;
    expect(edit.isError).toBe(true);
    expect(readFileSync(join(dir, "keep.txt"), "utf8")).toBe("original");
    expect(textOf(await client.callTool({ name: "files__read_text_file", arguments: { path: join(dir, "keep.txt") } }))).toBe("original");
    expect((await recorded(warden)).map((call) => [call.toolName, call.status])).toEqual([
      ["files__write_file", "blocked"],
      ["files__edit_file", "blocked"],
      ["files__read_text_file", "completed"],
    ]);
  });
});

describe("createMcpGateway with several upstreams: routing", () => {
  it("routes reads by the URIs and templates each server listed, and governs them with the server's configured name", async () => {
    const rich = richServer();
    const notes = notesServer();
    const warden = newWarden({ version: 1, default: "allow", policies: [{ id: "no-memos", when: { tool: "resource.read", "args.server": "notes", "args.uri": { matches: "^memo://item/" } }, action: "block", reason: "memos are private" }] });
    const { client } = await throughGateway(warden, { rich: await inMemory(rich.server), notes: await inMemory(notes.server) });

    expect(client.getInstructions()).toBe('## rich (tools and prompts named "rich__…")\nUse echo to test; read file:///docs/readme.md first.\n\n## notes (tools and prompts named "notes__…")\nNotes live under memo://.');
    // Same tool name on both servers, told apart by the prefix.
    expect(textOf(await client.callTool({ name: "rich__echo", arguments: { text: "a" } }))).toBe("echo: a");
    expect(textOf(await client.callTool({ name: "notes__echo", arguments: { text: "b" } }))).toBe("notes echo: b");

    // Before any list: the gateway reads the servers' lists to find the owner.
    expect((await client.readResource({ uri: "memo://index" })).contents[0]).toMatchObject({ text: "memo index" });
    expect((await client.readResource({ uri: "file:///docs/readme.md" })).contents[0]).toMatchObject({ text: "# Readme\nhello" });
    // A template match: rich's note://{id}.
    expect((await client.readResource({ uri: "note://42" })).contents[0]).toMatchObject({ text: "note 42" });
    const blocked = await client.readResource({ uri: "memo://item/alpha" }).catch((error: unknown) => error);
    expect((blocked as McpError).code).toBe(BLOCKED_ERROR_CODE);
    expect((blocked as McpError).message).toContain("memos are private");
    expect(notes.ran["read memo"]).toBeUndefined();
    const missing = await client.readResource({ uri: "nowhere://x" }).catch((error: unknown) => error);
    expect((missing as McpError).code).toBe(-32002);

    // Completion routed by the prompt's prefix, and by the template's owner.
    expect((await client.complete({ ref: { type: "ref/prompt", name: "rich__review" }, argument: { name: "language", value: "py" } })).completion.values).toEqual(["python"]);
    expect((await client.complete({ ref: { type: "ref/resource", uri: "memo://item/{id}" }, argument: { name: "id", value: "a" } })).completion.values).toEqual(["alpha"]);
    expect((await client.getPrompt({ name: "notes__summary", arguments: { topic: "MCP" } })).messages[0]!.content).toEqual({ type: "text", text: "Summarize MCP" });

    expect(notes.ran["read index"]).toBe(1);
    expect(rich.ran["read readme"]).toBe(1);
    expect((await recorded(warden)).filter((call) => call.toolName !== "rich__echo" && call.toolName !== "notes__echo").map((call) => [call.toolName, call.status, (call.input as { server: string }).server])).toEqual([
      ["resource.read", "completed", "notes"],
      ["resource.read", "completed", "rich"],
      ["resource.read", "completed", "rich"],
      ["resource.read", "blocked", "notes"],
      ["prompt.get", "completed", "notes"],
    ]);
  });

  it("finds a resource a server added after its list changed", async () => {
    const notes = notesServer();
    const { client, seen } = await throughGateway(newWarden(), { rich: await inMemory(richServer().server), notes: await inMemory(notes.server) });
    expect((await client.readResource({ uri: "memo://index" })).contents).toHaveLength(1);
    await client.callTool({ name: "notes__add_note", arguments: { id: "7" } });
    await waitFor(() => seen.resourceListChanged >= 1, "resources/list_changed");
    expect((await client.readResource({ uri: "memo://added/7" })).contents[0]).toMatchObject({ text: "added 7" });
  });

  it("relays each server's notifications and records a server's sampling request with its name and the call that caused it", async () => {
    const warden = newWarden();
    const { client, seen } = await throughGateway(warden, { rich: await inMemory(richServer().server), notes: await inMemory(notesServer().server) });
    await client.subscribeResource({ uri: "file:///docs/readme.md" });
    await waitFor(() => seen.updated.length === 1, "resources/updated");
    expect(seen.updated).toEqual(["file:///docs/readme.md"]);
    await client.callTool({ name: "rich__add_tool", arguments: { name: "later" } });
    await waitFor(() => seen.toolListChanged >= 1, "tools/list_changed");
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain("rich__later");

    expect(textOf(await client.callTool({ name: "rich__ask_model", arguments: { question: "2+2?" } }))).toBe("the model said: 4 (offline-model)");
    expect(seen.sampled).toEqual(["2+2?"]);
    const calls = await recorded(warden);
    const cause = calls.find((call) => call.toolName === "rich__ask_model")!;
    expect(calls.find((call) => call.toolName === "sampling.create_message")?.input).toMatchObject({ server: "rich", causedBy: { tool: "rich__ask_model", toolCallId: cause.toolCallId } });
  });

  it("passes progress, cancellation, logging and ping through to the servers", async () => {
    const rich = richServer();
    const { client } = await throughGateway(newWarden(), { rich: await inMemory(rich.server), notes: await inMemory(notesServer().server) });
    expect(await client.ping()).toEqual({});
    const progress: number[] = [];
    expect(textOf(await client.callTool({ name: "rich__progress" }, undefined, { onprogress: (p) => void progress.push(p.progress) }))).toBe("done in 3 steps");
    expect(progress).toEqual([1, 2, 3]);

    const logs: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => void logs.push(notification.params.level));
    // Only the rich server logs: setLevel goes to every server that does.
    expect(await client.setLoggingLevel("warning")).toEqual({});
    await client.callTool({ name: "rich__log" });
    await waitFor(() => logs.length === 2, "two log messages at warning and above");
    expect(logs).toEqual(["warning", "error"]);

    const controller = new AbortController();
    const pending = client.callTool({ name: "rich__slow" }, undefined, { signal: controller.signal }).catch((error: unknown) => error);
    await waitFor(() => rich.ran.slow === 1, "the slow call to start");
    controller.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => rich.ran["slow.aborted"] === 1, "the server to see the cancellation");
  });

  it("refuses a URI two servers both list, or both templates match: the gateway cannot tell which to ask", async () => {
    const twin = () => {
      const server = new McpServer({ name: "twin", version: "1.0.0" });
      server.registerResource("shared", "shared://readme", {}, (uri) => ({ contents: [{ uri: uri.href, text: "twin" }] }));
      server.registerResource("item", new ResourceTemplate("shared://item/{id}", { list: undefined }), {}, (uri) => ({ contents: [{ uri: uri.href, text: "twin item" }] }));
      return server;
    };
    const { client } = await throughGateway(newWarden(), { left: await inMemory(twin()), right: await inMemory(twin()) });
    expect((await client.listResources()).resources.map((resource) => resource.uri)).toEqual(["shared://readme", "shared://readme"]);
    const error = await client.readResource({ uri: "shared://readme" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).message).toContain("offered by several servers (left, right)");
    const templated = await client.readResource({ uri: "shared://item/1" }).catch((e: unknown) => e);
    expect((templated as McpError).message).toContain("Resource shared://item/1 is offered by several servers (left, right)");
  });

  it("pages merged lists with one cursor that carries each server's own", async () => {
    /** A low-level server that pages its tools and resources two at a time. */
    const paged = (prefix: string, count: number, seenCursors: Array<string | undefined>) => {
      const server = new Server({ name: prefix, version: "1.0.0" }, { capabilities: { tools: {}, resources: {} } });
      const page = (cursor: string | undefined) => {
        seenCursors.push(cursor);
        const start = cursor === undefined ? 0 : Number(cursor.slice(prefix.length + 1));
        return { start, next: start + 2 < count ? `${prefix}:${start + 2}` : undefined };
      };
      server.setRequestHandler(ListToolsRequestSchema, (request) => {
        const { start, next } = page(request.params?.cursor);
        const tools = Array.from({ length: Math.min(2, count - start) }, (_, i) => ({ name: `t${start + i}`, inputSchema: { type: "object" as const } }));
        return { tools, ...(next !== undefined && { nextCursor: next }) };
      });
      server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [] }));
      return server;
    };
    const aCursors: Array<string | undefined> = [];
    const bCursors: Array<string | undefined> = [];
    const { client } = await throughGateway(newWarden(), { a: await inMemory(paged("a", 5, aCursors)), b: await inMemory(paged("b", 3, bCursors)) });
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor === undefined ? undefined : { cursor });
      pages.push(page.tools.map((tool) => tool.name));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(pages).toEqual([["a__t0", "a__t1", "b__t0", "b__t1"], ["a__t2", "a__t3", "b__t2"], ["a__t4"]]);
    expect(aCursors).toEqual([undefined, "a:2", "a:4"]);
    expect(bCursors).toEqual([undefined, "b:2"]);
    const bad = await client.listTools({ cursor: "not-a-gateway-cursor" }).catch((e: unknown) => e);
    expect((bad as McpError).code).toBe(-32602);
  });
});

describe("createMcpGateway with several upstreams: names", () => {
  it("refuses at startup a server name that is not a valid prefix, names that collide, or both upstream and upstreams", () => {
    const warden = newWarden();
    const transport = () => InMemoryTransport.createLinkedPair()[0];
    const refusal = (make: () => unknown) => {
      try {
        make();
      } catch (error) {
        return error;
      }
      throw new Error("expected a refusal");
    };
    for (const name of ["my files", "a__b", "_files", "files_", "", "fïles"]) {
      const error = refusal(() => createMcpGateway({ warden, upstreams: { [name]: transport() } }));
      expect(WardenError.isInstance(error) && error.code).toBe("config_invalid");
      expect((error as Error).message).toContain(`"${name}" is not valid as a tool-name prefix`);
    }
    const collision = refusal(() => createMcpGateway({ warden, upstreams: { github: transport(), GitHub: transport() } }));
    expect(WardenError.isInstance(collision) && collision.code).toBe("config_invalid");
    expect((collision as Error).message).toContain('"github" and "GitHub" collide');
    expect((refusal(() => createMcpGateway({ warden, upstreams: {} })) as WardenError).code).toBe("config_invalid");
    expect((refusal(() => createMcpGateway({ warden, upstream: transport(), upstreams: { a: transport() } } as never)) as WardenError).code).toBe("config_invalid");
    expect(UPSTREAM_SEPARATOR).toBe("__");
    // Valid: single underscores and dashes inside.
    expect(() => createMcpGateway({ warden, upstreams: { my_files: transport(), "github-issues": transport(), s3: transport() } })).not.toThrow();
  });
});

describe("MCP config files", () => {
  it("reads the shape hosts use: stdio and HTTP servers, ${VAR} expanded, disabled ones left out, cwd from the file", async () => {
    const dir = tempDir();
    const file = join(dir, "mcp.json");
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          files: { command: "mcp-server-filesystem", args: ["${DOCS:-./docs}"], env: { LOG: "${LOG_LEVEL}" }, cwd: "servers" },
          github: { type: "http", url: "https://${HOST}/mcp", headers: { Authorization: "Bearer ${TOKEN}" } },
          old: { command: "old-server", disabled: true },
        },
      }),
    );
    const config = await loadMcpConfig(file, { env: { LOG_LEVEL: "debug", HOST: "mcp.example.com", TOKEN: "t0k3n" } });
    expect(config.servers).toEqual({
      files: { command: "mcp-server-filesystem", args: ["./docs"], env: { LOG: "debug" }, cwd: join(dir, "servers") },
      github: { type: "http", url: "https://mcp.example.com/mcp", headers: { Authorization: "Bearer t0k3n" } },
    });
    const transports = config.transports();
    expect(Object.keys(transports)).toEqual(["files", "github"]);
    expect(transports.files).toBeInstanceOf(StdioClientTransport);
    expect(transports.github).toBeInstanceOf(StreamableHTTPClientTransport);
  });

  it("names the file and the field of a mistake", async () => {
    const dir = tempDir();
    const cases: Array<[unknown, string]> = [
      [{ servers: {} }, 'mcpServers: '],
      [{ mcpServers: { files: { args: ["x"] } } }, 'mcpServers.files: expected "command"'],
      [{ mcpServers: { files: { command: "x", args: "not a list" } } }, "mcpServers.files.args: "],
      [{ mcpServers: { github: { url: "ftp://example.com" } } }, "mcpServers.github.url: "],
      [{ mcpServers: { github: { url: "https://example.com", headers: { Authorization: "Bearer ${NO_SUCH_TOKEN}" } } } }, "mcpServers.github.headers.Authorization: environment variable NO_SUCH_TOKEN is not set"],
      [{ mcpServers: { legacy: { type: "sse", url: "https://example.com/sse" } } }, "mcpServers.legacy.type: the SSE transport is deprecated"],
      [{ mcpServers: { "my files": { command: "x" } } }, 'mcpServers: MCP server name "my files" is not valid'],
    ];
    for (const [content, field] of cases) {
      const file = join(dir, "mcp.json");
      writeFileSync(file, JSON.stringify(content));
      const error = await loadMcpConfig(file, { env: {} }).catch((e: unknown) => e);
      expect(WardenError.isInstance(error) && error.code).toBe("config_invalid");
      expect((error as Error).message).toContain(`invalid MCP config ${file}: ${field}`);
    }
    writeFileSync(join(dir, "broken.json"), 'secret-token-123 { "mcpServers": {} }');
    const broken = (await loadMcpConfig(join(dir, "broken.json")).catch((e: unknown) => e)) as Error;
    expect(broken.message).toContain(`MCP config ${join(dir, "broken.json")} is not JSON`);
    expect(broken.message).not.toContain("secret-token-123");
    expect(() => parseMcpConfig({ mcpServers: { old: { command: "x", disabled: true } } })).toThrow(/at least one upstream/);
  });

  it("`warden mcp-gateway --config mcp.json` serves several stdio servers on stdio", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "hello.txt"), "hi from the config");
    const file = join(dir, "mcp.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { everything: { command: EVERYTHING, args: ["stdio"] }, files: { command: FILESYSTEM, args: ["${DOCS_DIR}"] } } }));
    const { client } = await agent(
      new StdioClientTransport({ command: process.execPath, args: [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--config", file], cwd: REPO, env: { ...cleanEnv(), DOCS_DIR: dir }, stderr: "ignore" }),
      {},
    );
    const tools = (await client.listTools()).tools.map((tool) => tool.name);
    expect(tools).toContain("everything__echo");
    expect(tools).toContain("files__read_text_file");
    expect(textOf(await client.callTool({ name: "files__read_text_file", arguments: { path: join(dir, "hello.txt") } }))).toBe("hi from the config");
  });

  it("`warden mcp-gateway --config` with a mistake exits before serving, naming the file and field", async () => {
    const dir = tempDir();
    const file = join(dir, "mcp.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { github: { url: "not a url" } } }));
    const child = spawn(process.execPath, [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--config", file], { cwd: REPO, env: cleanEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain(`invalid MCP config ${file}: mcpServers.github.url: Invalid URL`);
  });

  it("`warden mcp-gateway --http --config mcp.json` serves them over Streamable HTTP, each session its own servers", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "hello.txt"), "hi over HTTP");
    const file = join(dir, "mcp.json");
    writeFileSync(file, JSON.stringify({ mcpServers: { everything: { command: EVERYTHING, args: ["stdio"] }, files: { command: FILESYSTEM, args: [dir] } } }));
    const child = spawn(process.execPath, [...TS_NODE, "src/cli/bin.ts", "--store", ":memory:", "mcp-gateway", "--http", "127.0.0.1:0", "--config", file], { cwd: REPO, env: cleanEnv(), stdio: ["ignore", "ignore", "pipe"] });
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
    const { client } = await agent(new StreamableHTTPClientTransport(url), {});
    expect(textOf(await client.callTool({ name: "files__read_text_file", arguments: { path: join(dir, "hello.txt") } }))).toBe("hi over HTTP");
    const resources = (await client.listResources()).resources;
    expect((await client.readResource({ uri: resources[0]!.uri })).contents[0]!.uri).toBe(resources[0]!.uri);
  });

  it("createMcpGatewayHttpHandler connects several upstreams per session", async () => {
    const warden = newWarden();
    const started: string[] = [];
    const handler = createMcpGatewayHttpHandler({
      warden,
      upstreams: () => {
        started.push("session");
        const connect = (server: McpServer) => {
          const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
          void server.connect(serverSide);
          return clientSide;
        };
        return { rich: connect(richServer().server), notes: connect(notesServer().server) };
      },
    });
    const { createServer } = await import("node:http");
    const http = createServer((request, response) => void handler(request, response));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      await handler.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    });
    const url = new URL(`http://127.0.0.1:${(http.address() as { port: number }).port}/mcp`);
    const sessions = await Promise.all([agent(new StreamableHTTPClientTransport(url), {}), agent(new StreamableHTTPClientTransport(url), {})]);
    for (const [index, { client }] of sessions.entries()) {
      expect(textOf(await client.callTool({ name: "notes__echo", arguments: { text: String(index) } }))).toBe(`notes echo: ${index}`);
      expect((await client.readResource({ uri: "memo://index" })).contents[0]).toMatchObject({ text: "memo index" });
    }
    expect(started).toEqual(["session", "session"]);
    expect(warden.listRuns()).toHaveLength(2);
    expect(() => createMcpGatewayHttpHandler({ warden } as never)).toThrow(/either `upstream` or `upstreams`/);
  });
});
