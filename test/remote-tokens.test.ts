// Remote mode and delegation tokens: the control plane holds the organization key; agents verify
// tokens offline against the public key it publishes (JWKS), and never hold a key of their own.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError, inspectToken, TokenError, ToolBlockedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import type { ServerContext } from "../src/server/context.js";

let server: WardenServer;
let url: string;
let admin: string;
let agentKey: string;
const agents: Warden[] = [];
const dirs: string[] = [];

/** A cache directory of its own: what an agent knows comes from the server, not from another test's cache. */
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "warden-remote-tokens-"));
  dirs.push(dir);
  return dir;
}

function rejection(fn: () => unknown): TokenError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    return error as TokenError;
  }
  throw new Error("expected a TokenError");
}

async function revoke(tokenId: string, reason: string): Promise<void> {
  const response = await fetch(`${url}/v1/tokens/revoke`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ tokenId, reason }) });
  expect(response.status).toBe(200);
}

async function mint(body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${url}/v1/tokens`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

beforeAll(async () => {
  server = createWardenServer({ db: ":memory:", console: false, onError: () => {} });
  admin = (await server.store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
  agentKey = (await server.store.createKey({ org: "acme", role: "agent", name: "travel" })).key;
  url = (await server.listen(0)).url;
});

afterAll(async () => {
  for (const agent of agents) await agent.shutdown();
  await server?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function remoteAgent(options: { token?: string; remote?: { cacheDir: string; stream?: boolean } } = {}): Warden {
  const agent = new Warden({ agentId: "travel-agent", url, apiKey: agentKey, store: ":memory:", policies: { default: "allow" }, ...options });
  agents.push(agent);
  return agent;
}

describe("delegation tokens in remote mode", () => {
  it("verifies a token the control plane minted, against the published key, and enforces its scopes", async () => {
    const agent = remoteAgent();
    expect(await agent.ready()).toBe(true);
    const token = await mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h", maxAmount: { amount: 50000, currency: "EUR" } });
    expect(agent.tokens.publicJwk()).toMatchObject({ kty: "OKP", crv: "Ed25519" });
    const task = agent.beginDelegatedTask(token);
    expect(task.hasPermission("flights:book")).toBe(true);
    await task.run({}, async (run) => {
      await expect(run.tool("flights.book", { amount: 20000, currency: "EUR" }, () => "booked")).resolves.toBe("booked");
      await expect(run.tool("hotels.book", {}, () => "never")).rejects.toBeInstanceOf(ToolBlockedError);
    });
  });

  it("has no organization key of its own: minting is the control plane's", async () => {
    const agent = remoteAgent();
    await agent.ready();
    expect(() => agent.tokens.mint({ agentId: "x", scopes: ["a:*"], ttl: "1h" })).toThrow(ConfigError);
  });

  it("refuses a token signed by any other key", async () => {
    const agent = remoteAgent();
    await agent.ready();
    const foreign = new Warden({ agentId: "elsewhere", store: ":memory:" });
    const token = foreign.tokens.mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
    foreign.close();
    expect(() => agent.beginDelegatedTask(token)).toThrow(TokenError);
    try {
      agent.beginDelegatedTask(token);
    } catch (error) {
      expect((error as TokenError).reason).toBe("wrong_root_key");
    }
  });

  it("acts under a `token` option once the organization key is synced", async () => {
    const token = await mint({ agentId: "travel-agent", scopes: ["flights:search"], ttl: "1h" });
    const agent = remoteAgent({ token });
    await agent.ready();
    await expect(agent.run({}, (run) => run.tool("flights.search", {}, () => "results"))).resolves.toBe("results");
    await expect(agent.run({}, (run) => run.tool("flights.book", {}, () => "never"))).rejects.toBeInstanceOf(ToolBlockedError);
  });
  it("learns of a revocation on the control plane over the stream: the token stops verifying", async () => {
    const agent = remoteAgent();
    await agent.ready();
    const token = await mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
    expect(agent.beginDelegatedTask(token).hasPermission("flights:book")).toBe(true);
    const tokenId = agent.tokens.inspect(token).id;
    const response = await fetch(`${url}/v1/tokens/revoke`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ tokenId, reason: "leaked" }) });
    expect(response.status).toBe(200);
    await vi.waitFor(() => expect(agent.tokens.isRevoked(tokenId)).toBe(true), { timeout: 5000 });
    expect(() => agent.beginDelegatedTask(token)).toThrow(/revoked/);
  });

  it("learns of a revocation made while it was not running: a fresh agent catches up on start", async () => {
    const token = await mint({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" });
    const tokenId = inspectToken(token).id;
    await revoke(tokenId, "revoked while no agent ran");
    // Without the stream: only the catch-up on start can have told it.
    const dir = freshDir();
    const agent = remoteAgent({ remote: { cacheDir: dir, stream: false } });
    expect(await agent.ready()).toBe(true);
    expect(rejection(() => agent.beginDelegatedTask(token)).reason).toBe("revoked");
    await agent.shutdown();

    // Cached beside the policies: a restart that cannot reach the server (an in-memory store) still refuses the token.
    const cached = JSON.parse(readFileSync(join(dir, readdirOne(dir), "revocations.json"), "utf8")) as { items: Array<{ tokenId: string; reason?: string }> };
    expect(cached.items).toContainEqual(expect.objectContaining({ tokenId, reason: "revoked while no agent ran" }));
    const restarted = remoteAgent({ remote: { cacheDir: dir, stream: false } });
    // Checked before any answer from the server can have arrived: the cache alone knows it.
    expect(restarted.tokens.isRevoked(tokenId)).toBe(true);
  });

  it("reads revocations since a time, in pages, for agents, reviewers and admins of the organization only", async () => {
    const reviewer = (await server.store.createKey({ org: "acme", role: "reviewer", name: "auditor" })).key;
    const other = (await server.store.createKey({ org: "globex", role: "admin", name: "globex" })).key;
    const list = async (key: string, query: string) => {
      const response = await fetch(`${url}/v1/tokens/revoked${query}`, { headers: { authorization: `Bearer ${key}` } });
      return { status: response.status, body: (await response.json()) as { items: Array<{ tokenId: string; reason?: string; revokedAt: number }>; next: { since: number; afterTokenId: string } | null } };
    };
    const before = Date.now();
    for (const id of ["page-a", "page-b", "page-c"]) await server.store.revokeToken("acme", id, { reason: "paging" });
    const all = await list(agentKey, `?since=${before}`);
    expect(all.status).toBe(200);
    expect(all.body.items.map((item) => item.tokenId)).toEqual(["page-a", "page-b", "page-c"]);
    expect(all.body.next).toBeNull();
    // Page by page, the cursor of one page is the query of the next; nothing is skipped or repeated.
    const paged: string[] = [];
    let query = `?since=${before}&limit=1`;
    for (;;) {
      const page = await list(reviewer, query);
      expect(page.status).toBe(200);
      paged.push(...page.body.items.map((item) => item.tokenId));
      if (page.body.next === null) break;
      query = `?since=${page.body.next.since}&afterTokenId=${encodeURIComponent(page.body.next.afterTokenId)}&limit=1`;
    }
    expect(paged).toEqual(["page-a", "page-b", "page-c"]);
    expect((await list(admin, `?since=${Date.now() + 60_000}`)).body.items).toEqual([]);
    // Another organization sees none of acme's.
    expect((await list(other, "?since=0")).body.items).toEqual([]);
    for (const query of ["?since=-1", "?since=soon", "?limit=0", "?limit=1001", "?colour=red"]) expect((await list(admin, query)).status, query).toBe(400);
  });
});

/** The one control-plane directory under a cache dir. */
function readdirOne(dir: string): string {
  const entries = readdirSync(dir);
  expect(entries).toHaveLength(1);
  return entries[0]!;
}

describe("revocations missed by the stream (reset)", () => {
  let resetServer: WardenServer;
  let context: ServerContext;
  let resetUrl: string;
  let resetAdmin: string;
  let resetAgentKey: string;

  beforeAll(async () => {
    resetServer = createWardenServer({ db: ":memory:", console: false, onError: () => {}, extend: (_app, ctx) => (context = ctx) });
    resetAdmin = (await resetServer.store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
    resetAgentKey = (await resetServer.store.createKey({ org: "acme", role: "agent", name: "travel" })).key;
    resetUrl = (await resetServer.listen(0)).url;
  });

  afterAll(async () => {
    await resetServer?.close();
  });

  it("catches up after a reset: a revocation no longer kept by the stream still reaches the agent", async () => {
    // Polling (the stream's backstop, which also catches up) slowed down to minutes: only the reset can tell it in time.
    const agent = new Warden({ agentId: "travel-agent", url: resetUrl, apiKey: resetAgentKey, store: ":memory:", policies: { default: "allow" }, halt: { staleAfter: 600_000 }, remote: { cacheDir: freshDir(), pollInterval: 300_000 }, onError: () => {} });
    agents.push(agent);
    expect(await agent.ready()).toBe(true);
    await vi.waitFor(() => expect(agent.remote?.status.streamConnected).toBe(true), { timeout: 5000 });
    const response = await fetch(`${resetUrl}/v1/tokens`, { method: "POST", headers: { authorization: `Bearer ${resetAdmin}`, "content-type": "application/json" }, body: JSON.stringify({ agentId: "travel-agent", scopes: ["flights:*"], ttl: "1h" }) });
    const { token, tokenId } = (await response.json()) as { token: string; tokenId: string };
    expect(agent.beginDelegatedTask(token).hasPermission("flights:book")).toBe(true);
    // Revoked without telling the open stream, then pruned from what the stream keeps: only a catch-up can find it.
    await resetServer.store.revokeToken("acme", tokenId, { reason: "missed" });
    await resetServer.store.revokeToken("acme", "another-one", { reason: "newest message, kept" });
    await resetServer.store.pruneStream(Date.now() + 1000);
    expect(agent.tokens.isRevoked(tokenId)).toBe(false);
    // The stream drops; the agent reconnects with its Last-Event-ID, older than what is kept: reset.
    context.hub.drop("acme", () => true);
    await vi.waitFor(() => expect(agent.tokens.isRevoked(tokenId)).toBe(true), { timeout: 5000 });
    expect(rejection(() => agent.beginDelegatedTask(token)).reason).toBe("revoked");
    await agent.shutdown();
  });
});
