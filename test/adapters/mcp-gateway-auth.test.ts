import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { Warden } from "agent-warden";
import { createMcpGatewayHttpHandler, type McpGatewayAuthOptions, type McpGatewayHttpHandler } from "agent-warden/mcp";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: HttpServer }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** A stand-in authorization server: serves a JWKS with an Ed25519 and an ES256 key and mints JWTs with them. */
async function authorizationServer() {
  const ed = generateKeyPairSync("ed25519");
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwks = { keys: [{ ...ed.publicKey.export({ format: "jwk" }), kid: "ed-1", use: "sig" }, { ...ec.publicKey.export({ format: "jwk" }), kid: "ec-1", use: "sig" }] };
  let jwksFetches = 0;
  const { url } = await listen((request, response) => {
    if (request.url === "/.well-known/jwks.json") {
      jwksFetches += 1;
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
    } else response.writeHead(404).end();
  });
  const mint = (claims: Record<string, unknown>, alg: "EdDSA" | "ES256" = "EdDSA", key: KeyObject = alg === "EdDSA" ? ed.privateKey : ec.privateKey) => {
    const header = Buffer.from(JSON.stringify({ alg, kid: alg === "EdDSA" ? "ed-1" : "ec-1", typ: "at+jwt" })).toString("base64url");
    const payload = Buffer.from(JSON.stringify({ iss: url, exp: Math.floor(Date.now() / 1000) + 600, ...claims })).toString("base64url");
    const signature = alg === "EdDSA" ? sign(null, Buffer.from(`${header}.${payload}`), key) : sign("sha256", Buffer.from(`${header}.${payload}`), { key, dsaEncoding: "ieee-p1363" });
    return `${header}.${payload}.${signature.toString("base64url")}`;
  };
  return { issuer: url, jwksUri: `${url}/.well-known/jwks.json`, mint, jwksFetches: () => jwksFetches };
}

/** An upstream MCP server over HTTP that remembers every header and body it received. */
async function recordingUpstream() {
  const received: string[] = [];
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const { url } = await listen(async (request: IncomingMessage, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString();
    received.push(JSON.stringify(request.headers), body);
    const id = request.headers["mcp-session-id"];
    let transport = typeof id === "string" ? sessions.get(id) : undefined;
    if (transport === undefined) {
      const server = new McpServer({ name: "crm", version: "1.0.0" });
      server.registerTool("crm.read", { inputSchema: { id: z.string() } }, ({ id: customer }) => ({ content: [{ type: "text", text: `customer ${customer}` }] }));
      server.registerTool("crm.update", { inputSchema: { id: z.string() } }, ({ id: customer }) => ({ content: [{ type: "text", text: `updated ${customer}` }] }));
      const created = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sessionId) => void sessions.set(sessionId, created) });
      await server.connect(created);
      cleanups.push(() => server.close());
      transport = created;
    }
    await transport.handleRequest(request, response, body.length > 0 ? JSON.parse(body) : undefined);
  });
  return { url: new URL(`${url}/mcp`), received };
}

async function setup(overrides: Partial<McpGatewayAuthOptions> = {}) {
  const warden = new Warden({ agentId: "gateway", store: ":memory:", policies: { version: 1, default: "allow", policies: [] } });
  cleanups.push(() => warden.close());
  const as = await authorizationServer();
  const upstream = await recordingUpstream();
  let handler: McpGatewayHttpHandler | undefined;
  const { url } = await listen((request, response) => void handler!(request, response));
  const resource = `${url}/mcp`;
  handler = createMcpGatewayHttpHandler({
    warden,
    upstream: () => new StreamableHTTPClientTransport(upstream.url),
    auth: { resource, authorizationServers: [as.issuer], jwt: { issuer: as.issuer, jwksUri: as.jwksUri }, scopes: { "crm.read": "crm:read", "crm.*": "crm:write" }, ...overrides },
  });
  cleanups.push(() => handler!.close());
  return { warden, as, upstream, handler, url, resource };
}

async function connect(resource: string, token: string) {
  const client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(resource), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  cleanups.push(() => client.close());
  return client;
}

const initialize = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } };
const post = (url: string, body: unknown, token?: string, extra: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(token && { authorization: `Bearer ${token}` }), ...extra }, body: JSON.stringify(body) });

describe("the HTTP gateway as an OAuth resource server", () => {
  it("serves its protected-resource metadata (RFC 9728)", async () => {
    const { url, resource, as } = await setup();
    for (const path of ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]) {
      const response = await fetch(`${url}${path}`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ resource, authorization_servers: [as.issuer], bearer_methods_supported: ["header"], scopes_supported: ["crm:read", "crm:write"] });
    }
  });

  it("answers a missing token with 401 and where to find the metadata", async () => {
    const { resource, url } = await setup();
    const response = await post(resource, initialize);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(`Bearer resource_metadata="${url}/.well-known/oauth-protected-resource/mcp"`);
  });

  it("accepts a JWT for this audience (Ed25519 or ES256), and the agent is its client", async () => {
    const { resource, as, warden } = await setup();
    for (const alg of ["EdDSA", "ES256"] as const) {
      const client = await connect(resource, as.mint({ aud: resource, client_id: `crm-agent-${alg}`, scope: "crm:read crm:write" }, alg));
      const result = (await client.callTool({ name: "crm.update", arguments: { id: "7" } })) as CallToolResult;
      expect(result.content).toEqual([{ type: "text", text: "updated 7" }]);
    }
    expect(warden.listRuns().map((run) => run.agentId).sort()).toEqual(["crm-agent-ES256", "crm-agent-EdDSA"]);
    expect(as.jwksFetches()).toBe(1);
  });

  it("refuses a wrong audience, an expired token, a wrong issuer, a bad signature with 401 invalid_token", async () => {
    const { resource, as } = await setup();
    const other = generateKeyPairSync("ed25519").privateKey;
    const cases: Array<[string, string]> = [
      ["wrong audience", as.mint({ aud: "https://other.example/mcp", scope: "crm:read" })],
      ["token expired", as.mint({ aud: resource, exp: Math.floor(Date.now() / 1000) - 5 })],
      ["wrong issuer", as.mint({ aud: resource, iss: "https://evil.example" })],
      ["bad signature", as.mint({ aud: resource }, "EdDSA", other)],
      ["malformed token", "not-a-jwt"],
    ];
    for (const [reason, token] of cases) {
      const response = await post(resource, initialize, token);
      expect(response.status, reason).toBe(401);
      expect(response.headers.get("www-authenticate"), reason).toContain(`error="invalid_token", error_description="${reason}"`);
      expect(response.headers.get("www-authenticate"), reason).toContain("resource_metadata=");
    }
  });

  it("answers a call whose token lacks the tool's scope with 403 insufficient_scope naming it; the upstream never sees the call", async () => {
    const { resource, as, upstream } = await setup();
    const token = as.mint({ aud: resource, client_id: "reader", scope: "crm:read" });
    const client = await connect(resource, token);
    expect(((await client.callTool({ name: "crm.read", arguments: { id: "1" } })) as CallToolResult).content).toEqual([{ type: "text", text: "customer 1" }]);
    const error = await client.callTool({ name: "crm.update", arguments: { id: "1" } }).catch((e: unknown) => e);
    expect(String(error)).toContain("insufficient_scope: crm:write");
    expect((error as { code?: number }).code).toBe(403);

    // The same, on the wire, to see the challenge.
    const opened = await post(resource, initialize, token);
    const sessionId = opened.headers.get("mcp-session-id")!;
    const response = await post(resource, { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "crm.update", arguments: { id: "1" } } }, token, { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" });
    expect(response.status).toBe(403);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer error="insufficient_scope", scope="crm:write", resource_metadata="[^"]+"/);
    expect(upstream.received.join("\n")).not.toContain("crm.update");
  });

  it("asks the scope a policy names (`scope:`) of the tools it names, beside the gateway's own map", async () => {
    const { warden, resource, as, upstream } = await setup({ scopes: {} });
    warden.setPolicies({ version: 1, default: "allow", policies: [{ id: "crm-writes", when: { tool: "crm.update*" }, scope: "crm:write", action: "warn" }] });
    expect(warden.requiredScopes("crm.update")).toEqual(["crm:write"]);
    expect(warden.requiredScopes("crm.read")).toEqual([]);
    const reader = await connect(resource, as.mint({ aud: resource, client_id: "reader", scope: "crm:read" }));
    expect(((await reader.callTool({ name: "crm.read", arguments: { id: "1" } })) as CallToolResult).content).toEqual([{ type: "text", text: "customer 1" }]);
    const error = await reader.callTool({ name: "crm.update", arguments: { id: "2" } }).catch((e: unknown) => e);
    expect(String(error)).toContain("insufficient_scope: crm:write");
    expect((error as { code?: number }).code).toBe(403);
    expect(upstream.received.join("\n")).not.toContain('"crm.update"');
    const writer = await connect(resource, as.mint({ aud: resource, client_id: "writer", scope: "crm:write" }));
    expect(((await writer.callTool({ name: "crm.update", arguments: { id: "2" } })) as CallToolResult).content).toEqual([{ type: "text", text: "updated 2" }]);
    // A scope that is not one OAuth scope token is refused when the policy loads.
    expect(() => warden.setPolicies({ version: 1, policies: [{ id: "bad", when: { tool: "x" }, scope: "crm write", action: "allow" }] })).toThrow(/scope/);
  });

  it("never passes the agent's token to the upstream", async () => {
    const { resource, as, upstream } = await setup();
    const token = as.mint({ aud: resource, client_id: "crm-agent", scope: "crm:read crm:write" });
    const client = await connect(resource, token);
    await client.callTool({ name: "crm.update", arguments: { id: "9" } });
    expect(upstream.received.join("\n")).toContain("crm.update");
    expect(upstream.received.join("\n")).not.toContain(token);
    expect(upstream.received.join("\n").toLowerCase()).not.toContain("authorization");
  });

  it("accepts a Warden delegation token as the bearer: calls run under it, its scopes are the permissions", async () => {
    const { resource, warden } = await setup();
    const token = warden.tokens.mint({ agentId: "crm-subagent", scopes: ["crm:read"], ttl: "1h" });
    const client = await connect(resource, token);
    expect(((await client.callTool({ name: "crm.read", arguments: { id: "3" } })) as CallToolResult).isError).toBeFalsy();
    expect(String(await client.callTool({ name: "crm.update", arguments: { id: "3" } }).catch((e: unknown) => e))).toContain("insufficient_scope: crm:write");
    expect(warden.listRuns().map((run) => [run.agentId, run.tokenId !== undefined])).toEqual([["crm-subagent", true]]);
    const foreign = new Warden({ agentId: "x", store: ":memory:" });
    cleanups.push(() => foreign.close());
    const response = await post(resource, initialize, foreign.tokens.mint({ agentId: "crm-subagent", scopes: ["crm:*"], ttl: "1h" }));
    expect(response.status).toBe(401);
  });

  it("binds a session to the client that opened it: another valid token cannot use its id", async () => {
    const { resource, as } = await setup();
    const alice = as.mint({ aud: resource, client_id: "alice", scope: "crm:read" });
    const mallory = as.mint({ aud: resource, client_id: "mallory", scope: "crm:read" });
    const opened = await post(resource, initialize, alice);
    const sessionId = opened.headers.get("mcp-session-id")!;
    const hijack = await post(resource, { jsonrpc: "2.0", id: 2, method: "tools/list" }, mallory, { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" });
    expect(hijack.status).toBe(404);
  });
});
