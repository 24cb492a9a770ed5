// Control plane and remote mode: events ingested per second (batched, loopback, SQLite in WAL on
// disk); halt propagation over the stream to 50 connected clients (time from the API call to each
// client's abort signal); client memory with 1M events queued while the server is down.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { RemoteLink } from "../src/remote/remote.js";
import { RemoteOptionsSchema } from "../src/remote/options.js";
import { createWardenServer } from "agent-warden/server";
import { agentEvents, haltRounds, postBatches, streamedClients } from "./fixtures/control-plane.js";
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

async function ingest(dir: string): Promise<BenchRow[]> {
  const server = createWardenServer({ db: join(dir, "ingest.db"), console: false, onError: () => {} });
  const key = (await server.store.createKey({ org: "bench", role: "agent" })).key;
  const { url } = await server.listen(0);
  const rows: BenchRow[] = [];
  for (const batch of [100, 500]) {
    const total = 100_000;
    const bodies = Array.from({ length: total / batch }, (_, i) => JSON.stringify({ events: agentEvents(batch, batch * 1_000_000 + i * batch) }));
    await postBatches([url], key, bodies.slice(0, 1), 1);
    // Two requests in flight, as two agents would send.
    const { latenciesUs, seconds, accepted } = await postBatches([url], key, bodies.slice(1), 2);
    const { median, p99 } = percentiles(latenciesUs);
    rows.push({ group: "server", name: `ingest, batches of ${batch}`, medianUs: median, p99Us: p99, opsPerSec: accepted / seconds, note: "events/s; µs per batch; SQLite WAL on disk, loopback" });
  }
  await server.close();
  return rows;
}

async function haltPropagation(dir: string): Promise<BenchRow[]> {
  const server = createWardenServer({ db: join(dir, "halt.db"), console: false, maxStreamsPerKey: CLIENTS, onError: () => {} });
  const admin = (await server.store.createKey({ org: "bench", role: "admin" })).key;
  const agentKey = (await server.store.createKey({ org: "bench", role: "agent" })).key;
  const { url } = await server.listen(0);
  const clients = await streamedClients([url], agentKey, dir, CLIENTS);
  const samples = await haltRounds(clients, [url], admin, ROUNDS);
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
    const event = agentEvents(1, 0)[0]!;
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
