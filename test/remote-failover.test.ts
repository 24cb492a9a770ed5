// Remote mode with several control-plane URLs: a request that cannot reach one replica (or that it
// answers 502/503/504) goes to the next, a 4xx never does. Two real replicas on one PostgreSQL
// database: the first is closed in the middle of an agent's ingest, and every event the agent made
// ends on the server exactly once.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warden, RemoteError } from "agent-warden";
import { createWardenServer, type PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { RemoteHttp } from "../src/remote/http.js";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { tempDir } from "./fixtures/proc.js";

/** A loopback server that answers every request with `status` and counts them. */
async function answering(status: number): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((_request, response) => {
    hits++;
    response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(status < 300 ? { ok: true } : { error: { code: "x", message: `answered ${status}` } }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe("RemoteHttp with several URLs", () => {
  it("moves to the next URL on a connection error or a 503, never on a 4xx; the URL that answered stays current", async () => {
    const refusing = await answering(403);
    const unavailable = await answering(503);
    const healthy = await answering(200);
    const dead = await answering(200);
    await dead.close();
    try {
      const forbidden = new RemoteHttp([refusing.url, healthy.url], "wdn_test", 5000);
      const error = await forbidden.request("GET", "/v1/me").catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RemoteError);
      expect((error as RemoteError).status).toBe(403);
      expect(healthy.hits()).toBe(0);
      expect(forbidden.baseUrl).toBe(refusing.url);

      const http = new RemoteHttp([dead.url, unavailable.url, healthy.url], "wdn_test", 5000);
      expect((await http.request("GET", "/v1/me")).body).toEqual({ ok: true });
      expect(unavailable.hits()).toBe(1);
      expect(healthy.hits()).toBe(1);
      expect(http.baseUrl).toBe(healthy.url);
      await http.request("GET", "/v1/me");
      expect(unavailable.hits()).toBe(1);

      // Every URL down: the last failure, retryable, for the dispatcher to spool and back off on.
      const none = new RemoteHttp([dead.url, unavailable.url], "wdn_test", 5000);
      const down = await none.request("POST", "/v1/events", { body: { events: [] } }).catch((e: unknown) => e);
      expect(down).toMatchObject({ retryable: true });
    } finally {
      await Promise.all([refusing.close(), unavailable.close(), healthy.close()]);
    }
  });

  it("the options take one URL or a non-empty list of them", () => {
    expect(() => new Warden({ agentId: "a", url: [], apiKey: "wdn_x", store: ":memory:" })).toThrow(/at least one control plane URL/);
    expect(() => new Warden({ agentId: "a", url: ["http://127.0.0.1:1", "ftp://x"], apiKey: "wdn_x", store: ":memory:" })).toThrow(/url/);
  });
});

describe.skipIf(POSTGRES_SKIP !== undefined)(`an agent given two replicas fails over when the first goes away mid-ingest${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  const { dir, cleanup } = tempDir("warden-failover-");
  let cluster: PostgresCluster;
  const replicas: Array<{ server: WardenServer; url: string }> = [];
  let admin = "";
  let agentKey = "";

  beforeAll(async () => {
    cluster = await startPostgres();
    const database = cluster.createDatabase("warden_failover");
    for (let i = 0; i < 2; i++) {
      const server = createWardenServer({ database, console: false, onError: () => {} });
      await (server.store as PostgresControlPlaneStore).ready();
      replicas.push({ server, url: (await server.listen(0)).url });
    }
    admin = (await replicas[0]!.server.store.createKey({ org: "acme", role: "admin" })).key;
    agentKey = (await replicas[0]!.server.store.createKey({ org: "acme", role: "agent", name: "fleet" })).key;
  }, 120_000);

  afterAll(async () => {
    for (const { server } of replicas) await server.close();
    cluster?.stop();
    cleanup();
  });

  // The batch in flight when A closes may still commit on A while the agent resends it to B: B's claim
  // of each id waits for A's transaction and then finds the id taken, so the event counts once.
  it("every event reaches the database exactly once, through the second replica after the first is closed", { timeout: 60_000 }, async () => {
    const warden = new Warden({
      agentId: "billing-bot",
      url: replicas.map((replica) => replica.url),
      apiKey: agentKey,
      store: join(dir, "agent.db"),
      remote: { cacheDir: join(dir, "cache"), flushInterval: 10, maxBatch: 40 },
      // Halts are not this case's subject: on a loaded machine the halt stream's move to B can outlast
      // the default 5 s of staleness, and the calls would be refused as "halt state unknown".
      halt: { staleAfter: 60_000 },
      onError: () => {},
    });
    const made: string[] = [];
    warden.on("*", (event) => made.push(event.id));
    expect(await warden.ready()).toBe(true);
    for (let i = 0; i < 300; i++) {
      await warden.run({ task: `refund ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
      // Let the dispatcher's timer send batches while the agent works.
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
      if (i === 150) {
        // Replica A goes away with batches in flight; the agent carries on through B.
        while (warden.remote!.status.sent === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        void replicas[0]!.server.close();
      }
    }
    await warden.shutdown();

    const response = await fetch(`${replicas[1]!.url}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${admin}` } });
    const counts = new Map<string, number>();
    for (const line of (await response.text()).split("\n").filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    expect(made.length).toBeGreaterThan(1000);
    expect(warden.remote!.status).toMatchObject({ deadLettered: 0, dropped: 0 });
    const missing = made.filter((id) => counts.get(id) !== 1);
    expect(missing).toEqual([]);
    const runs = await fetch(`${replicas[1]!.url}/v1/runs?agentId=billing-bot&limit=1`, { headers: { authorization: `Bearer ${admin}` } });
    expect(((await runs.json()) as { total: number }).total).toBe(300);
  });
});
