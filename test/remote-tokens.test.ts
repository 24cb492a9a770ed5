// Remote mode and delegation tokens: the control plane holds the organization key; agents verify
// tokens offline against the public key it publishes (JWKS), and never hold a key of their own.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError, TokenError, ToolBlockedError, Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";

let server: WardenServer;
let url: string;
let admin: string;
let agentKey: string;
const agents: Warden[] = [];

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
});

function remoteAgent(options: { token?: string } = {}): Warden {
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
});
