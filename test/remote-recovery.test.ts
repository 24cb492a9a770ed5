// An agent in remote mode killed with `kill -9` while events were still in its memory: the next
// client started on its store sends what the control plane never acknowledged, read back from the
// local ledger after the "acknowledged up to" watermark. A real control plane on loopback ends with
// every event of both lives, none twice.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Warden } from "agent-warden";
import { createWardenServer, type WardenServer } from "agent-warden/server";
import { tempDir } from "./fixtures/proc.js";
import { startRemoteAgent } from "./fixtures/remote-proc.js";

describe("remote mode: a client killed with kill -9 loses no event", () => {
  const { dir, cleanup } = tempDir("warden-recovery-");
  let server: WardenServer;
  let url: string;
  let admin: string;
  let agentKey: string;

  beforeAll(async () => {
    server = createWardenServer({ db: join(dir, "server.db"), console: false, heartbeatInterval: 60_000, onError: () => {} });
    admin = (await server.store.createKey({ org: "acme", role: "admin" })).key;
    agentKey = (await server.store.createKey({ org: "acme", role: "agent", name: "fleet" })).key;
    url = (await server.listen(0)).url;
  });
  afterAll(async () => {
    await server.close();
    cleanup();
  });

  const serverCounts = async (): Promise<Map<string, number>> => {
    const response = await fetch(`${url}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${admin}` } });
    const counts = new Map<string, number>();
    for (const line of (await response.text()).split("\n").filter(Boolean)) {
      const id = (JSON.parse(line) as { id: string }).id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  };

  it("ingest is idempotent by event id: the same batch twice is written once", async () => {
    const events = Array.from({ length: 3 }, (_, n) => ({ id: `evt_idem${n}`, type: "tool.called", ts: Date.now(), agentId: "bot", runId: "run_idem", stepId: null, toolCallId: `tc_idem${n}`, actor: null, data: { toolName: "t" } }));
    const post = async () => (await fetch(`${url}/v1/events`, { method: "POST", headers: { authorization: `Bearer ${agentKey}`, "content-type": "application/json" }, body: JSON.stringify({ events }) })).json();
    expect(await post()).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(await post()).toMatchObject({ accepted: 0, duplicates: 3 });
    const counts = await serverCounts();
    for (const event of events) expect(counts.get(event.id)).toBe(1);
  });

  it("the next start on the store sends what the killed client held in memory; the server has every event once", async () => {
    const config = { url, apiKey: agentKey, agentId: "billing-bot", store: join(dir, "agent.db"), cacheDir: join(dir, "cache") };
    // An interval of an hour: nothing is sent unless asked, so the second burst is in memory only.
    const first = startRemoteAgent({ ...config, flushInterval: 3_600_000, maxBatch: 1000 });
    try {
      expect((await first.ask({ cmd: "ready" }, "ready")).synced).toBe(true);
      const sent = (await first.ask({ cmd: "burst", n: 50 }, "burst")).eventIds as string[];
      const flushed = await first.ask({ cmd: "flush" }, "flushed");
      expect((flushed.remote as { sent: number }).sent).toBeGreaterThanOrEqual(sent.length);
      // Let the watermark pass what was acknowledged, so the restart has less to send again.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const burst = await first.ask({ cmd: "burst", n: 150 }, "burst");
      const unsent = burst.eventIds as string[];
      expect((burst.remote as { queued: number; spooledBytes: number }).queued).toBe(unsent.length);
      expect((burst.remote as { spooledBytes: number }).spooledBytes).toBe(0);
      expect(unsent.length).toBeGreaterThan(500);

      const before = await serverCounts();
      expect(sent.filter((id) => !before.has(id))).toEqual([]);
      expect(unsent.filter((id) => before.has(id))).toEqual([]);

      first.kill("SIGKILL");
      await first.exited;
      expect(first.child.signalCode).toBe("SIGKILL");
      expect(readdirSync(config.cacheDir).flatMap((d) => readdirSync(join(config.cacheDir, d))).some((name) => name.startsWith("acked-"))).toBe(true);

      const second = startRemoteAgent({ ...config, flushInterval: 50 });
      try {
        expect((await second.ask({ cmd: "ready" }, "ready")).synced).toBe(true);
        const own = (await second.ask({ cmd: "burst", n: 5 }, "burst")).eventIds as string[];
        const done = await second.ask({ cmd: "shutdown" }, "shutdown", {}, 30_000);
        expect(done.remote).toMatchObject({ queued: 0, spooledBytes: 0, dropped: 0, deadLettered: 0 });
        // Everything after the watermark went out again: the burst held in memory at least.
        expect((done.remote as { recovered: number }).recovered).toBeGreaterThanOrEqual(unsent.length);

        const after = await serverCounts();
        const everything = [...sent, ...unsent, ...own];
        expect(everything.filter((id) => !after.has(id))).toEqual([]);
        expect([...after].filter(([, n]) => n > 1)).toEqual([]);
        const verified = (await (await fetch(`${url}/v1/ledger/verify`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { ok: boolean };
        expect(verified.ok).toBe(true);
      } finally {
        second.kill();
      }
    } finally {
      first.kill();
    }
  }, 60_000);

  describe("in one process", () => {
    const client = (name: string) => new Warden({ agentId: "billing-bot", url, apiKey: agentKey, store: join(dir, `${name}.db`), remote: { cacheDir: join(dir, `cache-${name}`), stream: false }, onError: () => {} });
    const work = async (warden: Warden, runs: number) => {
      const ids: string[] = [];
      const off = warden.on("*", (event) => ids.push(event.id));
      for (let i = 0; i < runs; i++) await warden.run({ task: `work ${i}` }, (run) => run.tool("read_order", { i }, () => ({ order: i })));
      off();
      return ids;
    };

    it("a client that shut down cleanly leaves nothing to send again", async () => {
      const first = client("clean");
      expect(await first.ready()).toBe(true);
      const ids = await work(first, 20);
      await first.shutdown();
      const second = client("clean");
      expect(await second.ready()).toBe(true);
      await second.shutdown();
      expect(second.remote!.status.recovered).toBe(0);
      const counts = await serverCounts();
      expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
    });

    it("without a spool, events dropped while the server was away are sent by the next client on the store", async () => {
      // A control plane of its own, stopped while the first client works and started again on the same port.
      const db = join(dir, "later.db");
      let later = createWardenServer({ db, console: false, heartbeatInterval: 60_000, onError: () => {} });
      const key = (await later.store.createKey({ org: "acme", role: "agent" })).key;
      const reader = (await later.store.createKey({ org: "acme", role: "admin" })).key;
      const { url: laterUrl } = await later.listen(0);
      await later.close();
      const options = (remote: Record<string, unknown>, offline: boolean) =>
        new Warden({
          agentId: "billing-bot",
          url: laterUrl,
          apiKey: key,
          store: join(dir, "nospool.db"),
          remote: { cacheDir: join(dir, "cache-nospool"), stream: false, ...remote },
          // Without the server: its own policies, and calls allowed while the halt state is unknown.
          ...(offline && { policies: { version: 1, default: "allow", policies: [] }, halt: { whenUnknown: "allow" } }),
          onError: () => {},
        });
      const first = options({ spool: false, maxQueue: 10 }, true);
      const ids = await work(first, 20);
      await first.shutdown();
      expect(first.remote!.status.dropped).toBeGreaterThan(0);

      later = createWardenServer({ db, console: false, heartbeatInterval: 60_000, onError: () => {} });
      await later.listen(Number(new URL(laterUrl).port));
      try {
        const second = options({ spool: false }, false);
        expect(await second.ready()).toBe(true);
        await second.shutdown();
        expect(second.remote!.status.recovered).toBeGreaterThanOrEqual(ids.length);
        const exported = await (await fetch(`${laterUrl}/v1/ledger/export?limit=1000000`, { headers: { authorization: `Bearer ${reader}` } })).text();
        const counts = new Map<string, number>();
        for (const line of exported.split("\n").filter(Boolean)) {
          const id = (JSON.parse(line) as { id: string }).id;
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
        expect(ids.filter((id) => counts.get(id) !== 1)).toEqual([]);
      } finally {
        await later.close();
      }
    });
  });
});
