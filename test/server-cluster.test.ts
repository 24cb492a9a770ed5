// Replicas of the control plane on one PostgreSQL database. They share what they count (the
// per-organization and per-key stream limits hold across replicas), and they survive the database
// going away and coming back under load (503 with Retry-After and /readyz false meanwhile; LISTEN
// resumes, spools drain, nothing is lost). `kill -9` of a replica process is in
// cluster-replicas.test.ts, with three `warden serve` processes.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warden } from "agent-warden";
import { createWardenServer, PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "./fixtures/postgres.js";
import { tempDir } from "./fixtures/proc.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How many times each event id is in the organization's ledger, read from `url`. */
async function ledgerCounts(url: string, admin: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${admin}` } });
  const counts = new Map<string, number>();
  for (const line of (await response.text()).split("\n").filter(Boolean)) {
    const id = (JSON.parse(line) as { id: string }).id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** An agent in remote mode that records every event id it makes. */
function agent(dir: string, name: string, urls: string[], apiKey: string) {
  const warden = new Warden({ agentId: name, url: urls, apiKey, store: join(dir, `${name}.db`), remote: { cacheDir: join(dir, `cache-${name}`), flushInterval: 20, maxBatch: 100, pollInterval: 200 }, halt: { staleAfter: 30_000 }, onError: () => {} });
  const made: string[] = [];
  warden.on("*", (event) => made.push(event.id));
  let working = false;
  let done: Promise<void> = Promise.resolve();
  return {
    warden,
    made,
    /** Keeps working in the background until `stop()`. */
    start() {
      working = true;
      done = (async () => {
        for (let i = 0; working; i++) {
          await warden.run({ task: `${name} loop ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
          await sleep(2);
        }
      })();
    },
    async stop() {
      working = false;
      await done;
    },
  };
}

/** Every id made is in the ledger exactly once. */
function missingOrTwice(made: readonly string[], counts: Map<string, number>): string[] {
  return made.filter((id) => counts.get(id) !== 1);
}

/** Opens a stream; resolves with its status and a way to close it. */
async function openStream(url: string, key: string): Promise<{ status: number; retryAfter: string | null; close: () => void }> {
  const controller = new AbortController();
  const response = await fetch(`${url}/v1/stream`, { headers: { authorization: `Bearer ${key}` }, signal: controller.signal });
  if (response.status !== 200) await response.text();
  return { status: response.status, retryAfter: response.headers.get("retry-after"), close: () => controller.abort() };
}

describe.skipIf(POSTGRES_SKIP !== undefined)(`replicas on one PostgreSQL database share their counters${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  let cluster: PostgresCluster;
  const replicas: Array<{ server: WardenServer; url: string }> = [];
  const keys: string[] = [];

  beforeAll(async () => {
    cluster = await startPostgres();
    const database = cluster.createDatabase("warden_counters");
    for (let i = 0; i < 2; i++) {
      const server = createWardenServer({ database, console: false, maxStreams: 3, maxStreamsPerKey: 2, onError: () => {} });
      await (server.store as PostgresControlPlaneStore).ready();
      replicas.push({ server, url: (await server.listen(0)).url });
    }
    for (const name of ["one", "two", "three"]) keys.push((await replicas[0]!.server.store.createKey({ org: "acme", role: "agent", name })).key);
  }, 120_000);

  afterAll(async () => {
    for (const { server } of replicas) await server.close();
    cluster?.stop();
  });

  it("one key's streams on replica A count on replica B; the organization's limit spans both; a closed stream frees its slot", async () => {
    const [A, B] = replicas.map((replica) => replica.url) as [string, string];
    const first = await openStream(A, keys[0]!);
    const second = await openStream(B, keys[0]!);
    expect([first.status, second.status]).toEqual([200, 200]);
    // The key holds two streams, one on each replica: a third is refused on either.
    const third = await openStream(A, keys[0]!);
    expect(third).toMatchObject({ status: 503, retryAfter: "5" });
    expect((await openStream(B, keys[0]!)).status).toBe(503);
    // Another key takes the organization's third slot on B; a fourth stream is refused on A.
    const other = await openStream(B, keys[1]!);
    expect(other.status).toBe(200);
    expect((await openStream(A, keys[2]!)).status).toBe(503);
    // Closing a stream on B frees a slot that A sees.
    other.close();
    let reopened = 503;
    for (let i = 0; i < 50 && reopened !== 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const attempt = await openStream(A, keys[2]!);
      reopened = attempt.status;
      if (attempt.status === 200) attempt.close();
    }
    expect(reopened).toBe(200);
    first.close();
    second.close();
  }, 30_000);
});

describe.skipIf(POSTGRES_SKIP !== undefined)(`faults of a cluster on PostgreSQL${POSTGRES_SKIP ? ` (skipped: ${POSTGRES_SKIP})` : ""}`, () => {
  const { dir, cleanup } = tempDir("warden-faults-");
  let cluster: PostgresCluster;
  let database: string;
  let admin = "";
  let agentKey = "";

  beforeAll(async () => {
    // Its own cluster: these cases stop the server under the replicas.
    cluster = await startPostgres({ private: true });
    database = cluster.createDatabase("warden_faults");
    const store = new PostgresControlPlaneStore({ url: database });
    admin = (await store.createKey({ org: "default", role: "admin" })).key;
    agentKey = (await store.createKey({ org: "default", role: "agent", name: "fleet" })).key;
    await store.close();
  }, 120_000);

  afterAll(() => {
    cluster?.stop();
    cleanup();
  });

  it("the database goes away under load: 503 with Retry-After and /readyz false; once back, LISTEN resumes and the agents' spools drain", async () => {
    const replicas: Array<{ server: WardenServer; url: string }> = [];
    for (let i = 0; i < 2; i++) {
      const server = createWardenServer({ database, console: false, heartbeatInterval: 500, onError: () => {} });
      await (server.store as PostgresControlPlaneStore).ready();
      replicas.push({ server, url: (await server.listen(0)).url });
    }
    const [A, B] = replicas.map((replica) => replica.url) as [string, string];
    // A stream client of replica B.
    const controller = new AbortController();
    let heard = "";
    const stream = await fetch(`${B}/v1/stream?topics=halts`, { headers: { authorization: `Bearer ${admin}` }, signal: controller.signal });
    void (async () => {
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        heard += value;
      }
    })();
    const worker = agent(dir, "restart-bot", [A, B], agentKey);
    try {
      expect(await worker.warden.ready()).toBe(true);
      worker.start();
      await sleep(300);

      cluster.halt();
      const write = await fetch(`${A}/v1/halts`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ agentId: "someone-else", reason: "while down" }) });
      expect(write.status).toBe(503);
      expect(write.headers.get("retry-after")).not.toBeNull();
      expect(((await write.json()) as { error: { code: string } }).error.code).toBe("unavailable");
      const ready = await fetch(`${B}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get("retry-after")).not.toBeNull();
      await sleep(500);
      cluster.start();

      for (let i = 0; i < 100 && (await fetch(`${B}/readyz`)).status !== 200; i++) await sleep(100);
      expect((await fetch(`${A}/readyz`)).status).toBe(200);
      // A halt posted on A after the restart reaches B's stream client: B listens again.
      let posted = 0;
      for (let i = 0; i < 50 && posted !== 201; i++) {
        posted = (await fetch(`${A}/v1/halts`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ agentId: "someone-else", reason: "after the restart" }) })).status;
        if (posted !== 201) await sleep(100);
      }
      expect(posted).toBe(201);
      for (let i = 0; i < 200 && !heard.includes("after the restart"); i++) await sleep(50);
      expect(heard).toContain("after the restart");

      await worker.stop();
      for (let i = 0; i < 100; i++) {
        await worker.warden.flush();
        const status = worker.warden.remote!.status;
        if (status.queued === 0 && status.spooledBytes === 0 && !status.offline) break;
        await sleep(100);
      }
      await worker.warden.shutdown();
      const counts = await ledgerCounts(B, admin);
      expect(worker.made.length).toBeGreaterThan(0);
      expect(worker.warden.remote!.deadLetters().map((letter) => `${letter.code}: ${letter.reason}`)).toEqual([]);
      expect(missingOrTwice(worker.made, counts)).toEqual([]);
    } finally {
      controller.abort();
      await worker.stop();
      for (const { server } of replicas) await server.close();
    }
  }, 60_000);
});
