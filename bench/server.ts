// Control plane and remote mode: events ingested per second (batched, loopback, SQLite in WAL on
// disk); halt propagation over the stream to 50 connected clients (time from the API call to each
// client's abort signal); client memory with 1M events queued while the server is down.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { Warden, type WardenEvent } from "../src/index.js";
import { RemoteLink } from "../src/remote/remote.js";
import { RemoteOptionsSchema } from "../src/remote/options.js";
import { createWardenServer } from "agent-warden/server";
import { percentiles, type BenchRow } from "./harness.js";

const CLIENTS = 50;
const ROUNDS = 20;

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-server-"));
  try {
    return [...(await ingest(dir)), ...(await haltPropagation(dir)), ...(await queuedWhileDown(dir))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function events(count: number, offset: number): WardenEvent[] {
  const out: WardenEvent[] = [];
  for (let i = offset; i < offset + count; i++) {
    const run = `run_b${Math.floor(i / 4)}`;
    const kind = i % 4;
    out.push({
      id: `evt_b${i}`,
      type: kind === 0 ? "run.started" : kind === 1 ? "tool.called" : kind === 2 ? "tool.completed" : "run.completed",
      ts: Date.now(),
      org: "default",
      agentId: `agent-${i % 10}`,
      runId: run,
      stepId: null,
      toolCallId: kind === 1 || kind === 2 ? `tc_b${Math.floor(i / 4)}` : null,
      actor: null,
      data: kind === 1 ? { toolName: "read_order", actionType: "unknown", input: { id: i }, decision: "allow" } : kind === 2 ? { toolName: "read_order", status: "completed", output: { total: i }, durationMs: 1 } : { traceId: `trace_${run}` },
    });
  }
  return out;
}

async function ingest(dir: string): Promise<BenchRow[]> {
  const server = createWardenServer({ db: join(dir, "ingest.db"), console: false, onError: () => {} });
  const key = (await server.store.createKey({ org: "bench", role: "agent" })).key;
  const { url } = await server.listen(0);
  const rows: BenchRow[] = [];
  for (const batch of [100, 500]) {
    const total = 100_000;
    const bodies = Array.from({ length: total / batch }, (_, i) => JSON.stringify({ events: events(batch, batch * 1_000_000 + i * batch) }));
    const post = (body: string) => fetch(`${url}/v1/events`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body }).then((r) => r.text());
    await post(bodies[0]!);
    const latencies: number[] = [];
    const started = performance.now();
    // Two requests in flight, as two agents would send.
    let next = 1;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < bodies.length) {
          const body = bodies[next++]!;
          const t0 = performance.now();
          await post(body);
          latencies.push((performance.now() - t0) * 1000);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const { median, p99 } = percentiles(latencies);
    rows.push({ group: "server", name: `ingest, batches of ${batch}`, medianUs: median, p99Us: p99, opsPerSec: ((bodies.length - 1) * batch) / seconds, note: "events/s; µs per batch; SQLite WAL on disk, loopback" });
  }
  await server.close();
  return rows;
}

async function haltPropagation(dir: string): Promise<BenchRow[]> {
  const server = createWardenServer({ db: join(dir, "halt.db"), console: false, onError: () => {} });
  const admin = (await server.store.createKey({ org: "bench", role: "admin" })).key;
  const agentKey = (await server.store.createKey({ org: "bench", role: "agent" })).key;
  const { url } = await server.listen(0);
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => new Warden({ agentId: `agent-${i}`, group: "fleet", url, apiKey: agentKey, store: ":memory:", remote: { cacheDir: join(dir, "cache"), spool: false }, halt: { staleAfter: 60_000 }, onError: () => {} }),
  );
  await Promise.all(clients.map((c) => c.ready()));
  while (!clients.every((c) => c.remote!.status.streamConnected)) await new Promise((resolve) => setTimeout(resolve, 10));
  const api = (path: string, body: unknown) => fetch(url + path, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.text());
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const arrived = clients.map(
      (client) =>
        new Promise<number>((resolve) => {
          if (client.signal.aborted) return resolve(performance.now());
          client.signal.addEventListener("abort", () => resolve(performance.now()), { once: true });
        }),
    );
    const t0 = performance.now();
    await api("/v1/halts", { group: "fleet", reason: `bench round ${round}` });
    for (const at of await Promise.all(arrived)) samples.push((at - t0) * 1000);
    await api("/v1/halts/resume", { group: "fleet" });
    while (clients.some((c) => c.signal.aborted)) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  for (const client of clients) await client.shutdown();
  await server.close();
  const { median, p99 } = percentiles(samples);
  return [{ group: "server", name: `halt → ${CLIENTS} streamed clients`, medianUs: median, p99Us: p99, note: `${ROUNDS} rounds; API call to each client's abort signal; server and clients in one process` }];
}

async function queuedWhileDown(dir: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const spool of [true, false]) {
    const total = 1_000_000;
    const link = new RemoteLink({
      url: "http://127.0.0.1:9",
      apiKey: `wdn_${"b".repeat(43)}`,
      agentId: "bench",
      group: undefined,
      settings: RemoteOptionsSchema.parse({ spool, stream: false, flushInterval: 50, maxSpoolBytes: 2 * 1024 * 1024 * 1024 }),
      dir: join(dir, `down-${spool}`),
      staleAfter: 60_000,
      hasLocalPolicies: true,
      host: { applyPolicies: () => {}, applyHalts: () => {}, applyApproval: () => {}, applyOrganizationKey: () => {}, applyRevocation: () => {}, reportError: () => {} },
    });
    const event = events(1, 0)[0]!;
    globalThis.gc?.();
    const before = process.memoryUsage();
    let peakHeap = before.heapUsed;
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      link.send({ ...event, id: `evt_down${i}` });
      if (i % 10_000 === 9_999) {
        peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
        await yieldToLoop();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    await link.flush();
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    // What the client still holds once the garbage of a million short-lived events is collected.
    globalThis.gc?.();
    const retained = process.memoryUsage().heapUsed - before.heapUsed;
    const status = link.status;
    link.close();
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
    rows.push({
      group: "server",
      name: `1M events, server down, ${spool ? "spool" : "no spool"}`,
      opsPerSec: total / seconds,
      note: `${globalThis.gc ? `heap retained +${mb(retained)}, ` : ""}peak +${mb(peakHeap - before.heapUsed)}; queue ${status.queued}; ${spool ? `spool ${mb(status.spooledBytes)} on disk` : `${status.dropped} dropped`}`,
    });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
