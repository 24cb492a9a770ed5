import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { McpError, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ApprovalRejectedError, HaltedError, ToolBlockedError, Warden, type PolicySetInput, type ToolCallRecord, type WardenOptions } from "agent-warden";
import { createMcpGateway, governMcpClient, governMcpServer, HALTED_ERROR_CODE, REFUSAL_META_KEY, TOKEN_META_KEY } from "agent-warden/mcp";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const UPSTREAM = fileURLToPath(new URL("../fixtures/mcp-upstream.ts", import.meta.url));

const policies: PolicySetInput = {
  version: 1,
  default: "allow",
  policies: [
    { id: "no-repo-deletes", reason: "deleting repositories is not allowed", when: { tool: "delete_repo" }, action: "block" },
    { id: "flag-writes", when: { tool: "write_file" }, action: "warn" },
    { id: "prod-deploys", when: { tool: "deploy", "args.environment": "production" }, action: "require_approval", approval: { timeout: "10m" } },
    { id: "intern-no-deploy", when: { tool: "deploy", agent: "intern-agent" }, action: "block" },
  ],
};

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function newWarden(options: Partial<WardenOptions> = {}): Warden {
  const warden = new Warden({ agentId: "mcp-server", store: ":memory:", policies, ...options });
  cleanups.push(() => warden.close());
  return warden;
}

const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] });
const textOf = (result: unknown) => ((result as CallToolResult).content[0] as { text: string }).text;

/** An McpServer whose tools count what actually ran; some tools are registered before governing, some after. Without a warden it stays ungoverned. */
function opsServer(warden: Warden | undefined, governOptions: Parameters<typeof governMcpServer>[2] = {}) {
  const ran: Record<string, unknown[]> = {};
  const signals: AbortSignal[] = [];
  const record = (name: string, args: unknown) => (ran[name] ??= []).push(args);
  const server = new McpServer({ name: "ops", version: "1.0.0" });
  server.registerTool("read_file", { inputSchema: { path: z.string() } }, ({ path }) => {
    record("read_file", { path });
    return text(`contents of ${path}`);
  });
  if (warden) governMcpServer(server, warden, governOptions);
  server.registerTool("delete_repo", { inputSchema: { repo: z.string() } }, ({ repo }) => {
    record("delete_repo", { repo });
    return text(`deleted ${repo}`);
  });
  server.registerTool("write_file", { inputSchema: { path: z.string() } }, ({ path }) => {
    record("write_file", { path });
    return text(`wrote ${path}`);
  });
  server.registerTool("deploy", { inputSchema: { environment: z.string() } }, ({ environment }) => {
    record("deploy", { environment });
    return text(`deployed to ${environment}`);
  });
  server.registerTool("login", { inputSchema: { user: z.string(), password: z.string() } }, ({ user, password }) => {
    record("login", { user, password });
    return text(`welcome ${user}`);
  });
  server.registerTool("files.read", { inputSchema: { path: z.string() } }, ({ path }) => {
    record("files.read", { path });
    return text(`read ${path}`);
  });
  server.registerTool("files.delete", { inputSchema: { path: z.string() } }, ({ path }) => {
    record("files.delete", { path });
    return text(`deleted ${path}`);
  });
  server.registerTool("slow", {}, (extra) => {
    record("slow", {});
    signals.push(extra.signal);
    return new Promise<CallToolResult>(() => {
      // Never answers: only a halt or a cancellation ends it.
    });
  });
  return { server, ran, signals };
}

/** Connects a client over linked in-memory transports; `authInfo` is attached to every message the client sends. */
async function connect(server: McpServer, authInfo?: AuthInfo) {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const sent: string[] = [];
  const send = clientTransport.send.bind(clientTransport);
  clientTransport.send = (message, options) => {
    if ("method" in message) sent.push(message.method);
    return send(message, { ...options, ...(authInfo && { authInfo }) });
  };
  const client = new Client({ name: "agent", version: "1.0.0" });
  await server.connect(serverTransport);
  await client.connect(clientTransport);
  cleanups.push(() => client.close());
  return { client, sent };
}

/** Every tool call the warden recorded, oldest first. */
async function recorded(warden: Warden): Promise<ToolCallRecord[]> {
  const runs = warden.listRuns({ limit: 500 }).reverse();
  const calls: ToolCallRecord[] = [];
  for (const run of runs) calls.push(...(await warden.getRun(run.runId)).toolCalls);
  return calls;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("governMcpServer", () => {
  it("runs an allowed tool and records input and output, for tools registered before and after governing", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const first = await client.callTool({ name: "read_file", arguments: { path: "/etc/motd" } });
    const second = await client.callTool({ name: "deploy", arguments: { environment: "staging" } });
    expect(textOf(first)).toBe("contents of /etc/motd");
    expect(textOf(second)).toBe("deployed to staging");
    expect(ran.read_file).toEqual([{ path: "/etc/motd" }]);
    expect(ran.deploy).toEqual([{ environment: "staging" }]);
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status, c.decision?.action])).toEqual([
      ["read_file", "completed", "allow"],
      ["deploy", "completed", "allow"],
    ]);
    expect(calls[0]!.input).toEqual({ path: "/etc/motd" });
    expect(calls[0]!.output).toMatchObject({ content: [{ type: "text", text: "contents of /etc/motd" }] });
    expect(calls[0]!.externalId).toMatch(/\d+$/);
  });

  it("answers a blocked call with an isError result and never runs the tool", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const result = (await client.callTool({ name: "delete_repo", arguments: { repo: "core" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('blocked by policy "no-repo-deletes"');
    expect(textOf(result)).toContain("deleting repositories is not allowed");
    expect(ran.delete_repo).toBeUndefined();
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "delete_repo", status: "blocked", blockedReason: "deleting repositories is not allowed" });
  });

  it("runs a warned call and records the warning", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const result = (await client.callTool({ name: "write_file", arguments: { path: "notes.md" } })) as CallToolResult;
    expect(result.isError).toBeFalsy();
    expect(ran.write_file).toHaveLength(1);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "completed", decision: { action: "warn", policyId: "flag-writes" } });
  });

  it("holds a call that needs approval until a reviewer approves it", async () => {
    const warden = newWarden({ onApprovalRequest: (_request, decide) => setTimeout(() => decide.approve({ reviewer: "alice", reason: "change window" }), 20) });
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const result = await client.callTool({ name: "deploy", arguments: { environment: "production" } });
    expect(textOf(result)).toBe("deployed to production");
    expect(ran.deploy).toEqual([{ environment: "production" }]);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "completed", approval: { status: "approved", reviewer: "alice" } });
  });

  it("refuses a call whose approval is rejected, without running the tool", async () => {
    const warden = newWarden({ onApprovalRequest: (_request, decide) => decide.reject({ reviewer: "bob", reason: "freeze" }) });
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const result = (await client.callTool({ name: "deploy", arguments: { environment: "production" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("rejected by bob: freeze");
    expect(ran.deploy).toBeUndefined();
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "rejected", approval: { status: "rejected" } });
  });

  it("rejects calls with an McpError once the agent is halted", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    warden.halt({ reason: "incident 42" });
    const error = await client.callTool({ name: "read_file", arguments: { path: "a" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    expect((error as McpError).message).toContain("incident 42");
    expect((error as McpError).data).toMatchObject({ warden: "halted" });
    expect(ran.read_file).toBeUndefined();
  });

  it("aborts the handler's signal and rejects the call in flight on a halt", async () => {
    const warden = newWarden();
    const { server, signals } = opsServer(warden);
    const { client } = await connect(server);
    const pending = client.callTool({ name: "slow" }).catch((e: unknown) => e);
    await waitFor(() => signals.length === 1, "the slow tool to start");
    expect(signals[0]!.aborted).toBe(false);
    warden.halt({ reason: "runaway", agentId: "mcp-server" });
    const error = await pending;
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    expect(signals[0]!.aborted).toBe(true);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "slow", status: "failed" });
  });

  it("records redacted input while the tool receives the real arguments", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    await client.callTool({ name: "login", arguments: { user: "ada", password: "hunter2-hunter2" } });
    expect(ran.login).toEqual([{ user: "ada", password: "hunter2-hunter2" }]);
    const [call] = await recorded(warden);
    expect(call!.input).toEqual({ user: "ada", password: "[REDACTED]" });
  });

  it("acts as the agent named by authInfo.clientId, so policies by agent apply", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server, { token: "opaque-oauth-token", clientId: "intern-agent", scopes: [] });
    const result = (await client.callTool({ name: "deploy", arguments: { environment: "staging" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("intern-no-deploy");
    expect(ran.deploy).toBeUndefined();
    const runs = warden.listRuns();
    expect(runs.map((r) => r.agentId)).toEqual(["intern-agent"]);
  });

  it("runs a call under the Warden token the caller sends, within the token's scopes only", async () => {
    const warden = newWarden();
    const token = warden.tokens.mint({ agentId: "files-agent", scopes: ["files:read"], ttl: "1h" });
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    const meta = { [TOKEN_META_KEY]: token };
    const read = await client.callTool({ name: "files.read", arguments: { path: "a.txt" }, _meta: meta });
    const denied = (await client.callTool({ name: "files.delete", arguments: { path: "a.txt" }, _meta: meta })) as CallToolResult;
    expect(textOf(read)).toBe("read a.txt");
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toContain('does not grant "files:delete"');
    expect(ran["files.delete"]).toBeUndefined();
    const runs = warden.listRuns().reverse();
    expect(runs.map((r) => [r.agentId, r.tokenId])).toEqual([
      ["files-agent", expect.any(String)],
      ["files-agent", expect.any(String)],
    ]);
    const calls = await recorded(warden);
    expect(calls.map((c) => c.status)).toEqual(["completed", "blocked"]);
  });

  it("takes a Warden token from authInfo.token, and refuses a token that does not verify", async () => {
    const warden = newWarden();
    const token = warden.tokens.mint({ agentId: "files-agent", scopes: ["files:*"], ttl: "1h" });
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server, { token, clientId: "ignored-client", scopes: [] });
    await client.callTool({ name: "files.read", arguments: { path: "b.txt" } });
    expect(warden.listRuns().map((r) => r.agentId)).toEqual(["files-agent"]);

    const other = newWarden();
    const foreign = other.tokens.mint({ agentId: "files-agent", scopes: ["files:*"], ttl: "1h" });
    const refused = (await client.callTool({ name: "files.read", arguments: { path: "c.txt" }, _meta: { [TOKEN_META_KEY]: foreign } })) as CallToolResult;
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("token wrong_root_key");
    expect(ran["files.read"]).toEqual([{ path: "b.txt" }]);
  });

  it("marks a refusal's result with _meta[REFUSAL_META_KEY], which the tool's own error never carries", async () => {
    const warden = newWarden();
    const { server } = opsServer(warden);
    server.registerTool("broken", {}, () => {
      throw new Error("disk full");
    });
    const { client } = await connect(server);
    const refused = (await client.callTool({ name: "delete_repo", arguments: { repo: "core" } })) as CallToolResult;
    expect(refused._meta?.[REFUSAL_META_KEY]).toEqual({ reason: "deleting repositories is not allowed", cause: "policy" });
    const failed = (await client.callTool({ name: "broken" })) as CallToolResult;
    expect(failed).toMatchObject({ isError: true, content: [{ type: "text", text: "disk full" }] });
    expect(failed._meta?.[REFUSAL_META_KEY]).toBeUndefined();
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["delete_repo", "blocked"],
      ["broken", "failed"],
    ]);
  });

  it("ends a refused call's own run completed, and a run a halt stopped failed", async () => {
    const warden = newWarden({ onApprovalRequest: (_request, decide) => decide.reject({ reviewer: "bob", reason: "freeze" }) });
    const { server, signals } = opsServer(warden);
    const { client } = await connect(server);
    await client.callTool({ name: "delete_repo", arguments: { repo: "core" } });
    await client.callTool({ name: "deploy", arguments: { environment: "production" } });
    const pending = client.callTool({ name: "slow" }).catch((e: unknown) => e);
    await waitFor(() => signals.length === 1, "the slow tool to start");
    warden.halt({ reason: "runaway", agentId: "mcp-server" });
    expect(((await pending) as McpError).code).toBe(HALTED_ERROR_CODE);
    const runs = warden.listRuns().reverse();
    const calls = await Promise.all(runs.map(async (run) => [(await warden.getRun(run.runId)).toolCalls[0]!.toolName, run.status]));
    expect(calls).toEqual([
      ["delete_repo", "completed"],
      ["deploy", "completed"],
      ["slow", "failed"],
    ]);
  });

  it("refuses a token a halt of its delegating agent invalidated, and records the refusal", async () => {
    const warden = newWarden();
    const root = warden.tokens.mint({ agentId: "orchestrator", scopes: ["files:*"], ttl: "1h" });
    const token = warden.tokens.attenuate(root, { audience: "orchestrator/files-agent" });
    const { server, ran } = opsServer(warden);
    const { client } = await connect(server);
    warden.halt({ reason: "incident 12", agentId: "orchestrator" });
    const error = await client.callTool({ name: "files.read", arguments: { path: "a.txt" }, _meta: { [TOKEN_META_KEY]: token } }).catch((e: unknown) => e);
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    expect(ran["files.read"]).toBeUndefined();
    const entries = warden.ledger.entries({ limit: 100 });
    const refusal = entries.slice(entries.findIndex((entry) => entry.type === "agent.halted") + 1);
    expect(refusal.map((entry) => [entry.type, entry.agentId, (entry.data as { refused?: boolean }).refused])).toEqual([["run.failed", "orchestrator/files-agent", true]]);
    expect(refusal[0]!.data).toMatchObject({ tokenId: warden.tokens.inspect(token).id, error: { name: "TokenError" } });
  });

  it("is idempotent for the same Warden client", async () => {
    const warden = newWarden();
    const { server, ran } = opsServer(warden);
    governMcpServer(server, warden);
    const { client } = await connect(server);
    await client.callTool({ name: "read_file", arguments: { path: "x" } });
    expect(ran.read_file).toHaveLength(1);
    expect(await recorded(warden)).toHaveLength(1);
  });
});

describe("governMcpClient", () => {
  /** A plain, ungoverned server: the gate is on the calling side. */
  async function setup(options: Partial<WardenOptions> = {}) {
    const warden = newWarden({ agentId: "calling-agent", ...options });
    const { server, ran, signals } = opsServer(undefined);
    const { client, sent } = await connect(server);
    governMcpClient(client, warden);
    return { warden, client, ran, signals, sent };
  }

  it("sends an allowed call and records its result", async () => {
    const { warden, client, ran } = await setup();
    const result = await client.callTool({ name: "read_file", arguments: { path: "/tmp/x" } });
    expect(textOf(result)).toBe("contents of /tmp/x");
    expect(ran.read_file).toHaveLength(1);
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "read_file", status: "completed", input: { path: "/tmp/x" } });
  });

  it("throws ToolBlockedError before anything is sent", async () => {
    const { warden, client, ran, sent } = await setup();
    const before = sent.length;
    const error = await client.callTool({ name: "delete_repo", arguments: { repo: "core" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolBlockedError);
    expect((error as ToolBlockedError).policyId).toBe("no-repo-deletes");
    expect(sent.slice(before)).toEqual([]);
    expect(ran.delete_repo).toBeUndefined();
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ status: "blocked" });
  });

  it("waits for approval, then sends; a rejection throws and sends nothing", async () => {
    let verdict: "approve" | "reject" = "approve";
    const { client, ran, sent } = await setup({ onApprovalRequest: (_request, decide) => (verdict === "approve" ? decide.approve({ reviewer: "alice" }) : decide.reject({ reviewer: "bob", reason: "not now" })) });
    await client.callTool({ name: "deploy", arguments: { environment: "production" } });
    expect(ran.deploy).toHaveLength(1);
    verdict = "reject";
    const before = sent.length;
    const error = await client.callTool({ name: "deploy", arguments: { environment: "production" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApprovalRejectedError);
    expect(sent.slice(before)).toEqual([]);
    expect(ran.deploy).toHaveLength(1);
  });

  it("throws HaltedError when halted, and cancels a call in flight", async () => {
    const { warden, client, signals, sent } = await setup();
    const pending = client.callTool({ name: "slow" }).catch((e: unknown) => e);
    await waitFor(() => signals.length === 1, "the slow tool to start");
    warden.halt({ reason: "stop everything" });
    expect(await pending).toBeInstanceOf(HaltedError);
    await waitFor(() => signals[0]!.aborted, "the server to see the cancellation");
    expect(sent).toContain("notifications/cancelled");
    const error = await client.callTool({ name: "read_file", arguments: { path: "x" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HaltedError);
  });

  it("rejects a call its caller cancels as the plain SDK client does (McpError -32001), and records it failed", async () => {
    const { warden, client, signals } = await setup();
    const controller = new AbortController();
    const pending = client.callTool({ name: "slow" }, undefined, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => signals.length === 1, "the slow tool to start");
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(-32001);
    await waitFor(() => signals[0]!.aborted, "the server to see the cancellation");

    // The same cancellation without Warden, for comparison.
    const plain = opsServer(undefined);
    const { client: ungoverned } = await connect(plain.server);
    const plainController = new AbortController();
    const plainPending = ungoverned.callTool({ name: "slow" }, undefined, { signal: plainController.signal }).catch((e: unknown) => e);
    await waitFor(() => plain.signals.length === 1, "the plain slow tool to start");
    plainController.abort();
    const plainError = await plainPending;
    expect({ code: (error as McpError).code, message: (error as McpError).message }).toEqual({ code: (plainError as McpError).code, message: (plainError as McpError).message });
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "slow", status: "failed" });
  });

  it("rejects with McpError -32001 when the caller cancels while the call waits for approval, and sends nothing", async () => {
    const { warden, client, ran, sent } = await setup();
    const controller = new AbortController();
    const before = sent.length;
    const pending = client.callTool({ name: "deploy", arguments: { environment: "production" } }, undefined, { signal: controller.signal }).catch((e: unknown) => e);
    await waitFor(() => warden.approvals.list({ status: "pending" }).length === 1, "the approval request");
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(-32001);
    expect(sent.slice(before)).toEqual([]);
    expect(ran.deploy).toBeUndefined();
    const [call] = await recorded(warden);
    expect(call).toMatchObject({ toolName: "deploy", status: "rejected" });
  });

  it("rejects a call whose signal is already aborted with the signal's reason, as the plain SDK client does, deciding nothing", async () => {
    const { warden, client, sent } = await setup();
    const reason = new Error("gave up before asking");
    const before = sent.length;
    const error = await client.callTool({ name: "deploy", arguments: { environment: "production" } }, undefined, { signal: AbortSignal.abort(reason) }).catch((e: unknown) => e);
    const plain = opsServer(undefined);
    const { client: ungoverned } = await connect(plain.server);
    const plainError = await ungoverned.callTool({ name: "deploy", arguments: { environment: "production" } }, undefined, { signal: AbortSignal.abort(reason) }).catch((e: unknown) => e);
    expect(error).toBe(reason);
    expect(plainError).toBe(reason);
    expect(sent.slice(before)).toEqual([]);
    expect(warden.approvals.list({ limit: -1 })).toEqual([]);
    expect(await recorded(warden)).toEqual([]);
  });

  it("delivers the result when recording it fails, and reports the failure to the client's error sink", async () => {
    const errors: unknown[] = [];
    const warden = new Warden({ agentId: "calling-agent", store: ":memory:", policies, onError: (error) => errors.push(error) });
    const { server } = opsServer(undefined);
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    server.registerTool("later", {}, async () => {
      await released;
      return text("done");
    });
    const { client } = await connect(server);
    governMcpClient(client, warden);
    const pending = client.callTool({ name: "later" });
    await waitFor(() => warden.listRuns().length === 1, "the call to be decided");
    // The client closes while the call is in flight: its result can no longer be recorded.
    warden.close();
    release();
    expect(textOf(await pending)).toBe("done");
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((error) => (error as { code?: string }).code === "store_error")).toBe(true);
  });

  it("sends its delegation token in _meta for a governed server to act under", async () => {
    const warden = newWarden();
    const token = warden.tokens.mint({ agentId: "files-agent", scopes: ["files:read"], ttl: "1h" });
    const { server } = opsServer(warden);
    const { client } = await connect(server);
    const calling = newWarden({ agentId: "files-agent" });
    governMcpClient(client, calling, { token });
    expect(textOf(await client.callTool({ name: "files.read", arguments: { path: "t" } }))).toBe("read t");
    expect(warden.listRuns().map((r) => [r.agentId, r.tokenId !== undefined])).toEqual([["files-agent", true]]);
  });
});

describe("createMcpGateway with a real child-process upstream", () => {
  function upstreamTransport() {
    return new StdioClientTransport({ command: process.execPath, args: ["--import", "tsx", UPSTREAM], cwd: REPO, env: cleanEnv(), stderr: "ignore" });
  }

  async function gatewaySetup(options: Partial<WardenOptions> = {}) {
    const warden = newWarden({ agentId: "gateway-agent", ...options });
    const gateway = createMcpGateway({ warden, upstream: upstreamTransport() });
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
    await gateway.connect(serverTransport);
    const client = new Client({ name: "agent", version: "1.0.0" });
    await client.connect(clientTransport);
    cleanups.push(() => client.close());
    cleanups.push(() => gateway.close());
    const stats = async () => JSON.parse(textOf(await client.callTool({ name: "stats" }))) as Record<string, number>;
    return { warden, client, stats };
  }

  it("lists the upstream's tools and forwards allowed calls", async () => {
    const { warden, client, stats } = await gatewaySetup();
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["delete_repo", "deploy", "echo", "slow", "stats"]);
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "hi" } }))).toBe("echo: hi");
    expect(await stats()).toEqual({ echo: 1 });
    const calls = await recorded(warden);
    expect(calls.map((c) => [c.toolName, c.status])).toEqual([
      ["echo", "completed"],
      ["stats", "completed"],
    ]);
  });

  it("answers a blocked call itself: the upstream never sees it", async () => {
    const { client, stats } = await gatewaySetup();
    const result = (await client.callTool({ name: "delete_repo", arguments: { repo: "core" } })) as CallToolResult;
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain("no-repo-deletes");
    expect(await stats()).toEqual({});
  });

  it("waits for approval before forwarding, and forwards nothing on rejection", async () => {
    let verdict: "approve" | "reject" = "reject";
    const { client, stats } = await gatewaySetup({ onApprovalRequest: (_request, decide) => (verdict === "approve" ? decide.approve({ reviewer: "alice" }) : decide.reject({ reviewer: "bob" })) });
    const rejected = (await client.callTool({ name: "deploy", arguments: { environment: "production" } })) as CallToolResult;
    expect(rejected.isError).toBe(true);
    expect(await stats()).toEqual({});
    verdict = "approve";
    expect(textOf(await client.callTool({ name: "deploy", arguments: { environment: "production" } }))).toBe("deployed to production");
    expect(await stats()).toEqual({ deploy: 1 });
  });

  it("cancels the upstream call on a halt and rejects with McpError", async () => {
    const { warden, client, stats } = await gatewaySetup();
    const pending = client.callTool({ name: "slow" }).catch((e: unknown) => e);
    await waitFor(async () => (await stats()).slow === 1, "the slow call to reach the upstream");
    warden.halt({ reason: "maintenance", agentId: "gateway-agent" });
    const error = await pending;
    expect(error).toBeInstanceOf(McpError);
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    warden.resume({ agentId: "gateway-agent" });
    await waitFor(async () => (await stats())["slow.aborted"] === 1, "the upstream to see the cancellation");
  });
});

describe("warden mcp-gateway (CLI)", () => {
  it("governs a server started as a child, from its own process, recording into the shared store", async () => {
    const dir = mkdtempSync(join(tmpdir(), "warden-mcp-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = join(dir, "warden.db");
    const policyFile = join(dir, "warden.json");
    writeFileSync(policyFile, JSON.stringify(policies));
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ["--import", "tsx", join(REPO, "src/cli/bin.ts"), "--store", store, "mcp-gateway", "--policies", policyFile, "--agent", "cli-agent", "--", process.execPath, "--import", "tsx", UPSTREAM],
      cwd: REPO,
      env: cleanEnv(),
      stderr: "pipe",
    });
    const client = new Client({ name: "agent", version: "1.0.0" });
    await client.connect(transport);
    cleanups.push(() => client.close());
    expect((await client.listTools()).tools.map((t) => t.name)).toContain("echo");
    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "via cli" } }))).toBe("echo: via cli");
    const blocked = (await client.callTool({ name: "delete_repo", arguments: { repo: "core" } })) as CallToolResult;
    expect(blocked.isError).toBe(true);
    expect(JSON.parse(textOf(await client.callTool({ name: "stats" })))).toEqual({ echo: 1 });

    // A halt from another process reaches the gateway through the shared store.
    const admin = new Warden({ agentId: "admin", store });
    cleanups.push(() => admin.close());
    admin.halt({ reason: "pulled the plug", agentId: "cli-agent" });
    // The gateway polls the store for halts: until it sees this one, a blocked tool keeps answering isError.
    let error: unknown;
    await waitFor(async () => {
      error = await client.callTool({ name: "delete_repo", arguments: { repo: "core" } }).catch((e: unknown) => e);
      return error instanceof McpError;
    }, "the halt to reach the gateway");
    expect((error as McpError).code).toBe(HALTED_ERROR_CODE);
    expect((error as McpError).message).toContain("pulled the plug");

    const calls: ToolCallRecord[] = [];
    for (const run of admin.listRuns({ agentId: "cli-agent" }).reverse()) calls.push(...(await admin.getRun(run.runId)).toolCalls);
    expect(calls.slice(0, 3).map((c) => [c.toolName, c.status])).toEqual([
      ["echo", "completed"],
      ["delete_repo", "blocked"],
      ["stats", "completed"],
    ]);
    expect(calls.slice(3).every((c) => c.toolName === "delete_repo" && c.status === "blocked")).toBe(true);
  });
});

/** The environment children get: nothing Warden- or vitest-specific from the outside. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith("WARDEN_") && key !== "NODE_OPTIONS" && !key.startsWith("VITEST")) env[key] = value;
  return env;
}
