// The control plane as a cluster: replicas on one PostgreSQL database (a throwaway cluster, as the
// tests start it). Ingest events/s with 1 and 3 replicas; a halt posted on one replica reaching 50
// agents whose streams are spread over 3 replicas; an approval asked through one replica and decided
// on another. Replicas and agents share this process and the machine with the database.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Warden, type WardenEvent } from "../src/index.js";
import { createWardenServer, type PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "../test/fixtures/postgres.js";
import { percentiles, type BenchRow } from "./harness.js";

const CLIENTS = 50;
const ROUNDS = 20;
const APPROVALS = 50;

export async function run(): Promise<BenchRow[]> {
  if (POSTGRES_SKIP !== undefined) return [{ group: "cluster", name: "skipped", note: POSTGRES_SKIP }];
  const cluster = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-cluster-"));
  try {
    return [...(await ingest(cluster, 1)), ...(await ingest(cluster, 3)), ...(await haltFanOut(cluster, dir)), ...(await approvalRoundTrip(cluster))];
  } finally {
    cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function replicas(database: string, n: number): Promise<Array<{ server: WardenServer; url: string }>> {
  const out: Array<{ server: WardenServer; url: string }> = [];
  for (let i = 0; i < n; i++) {
    // One agent key for all 50 clients: the per-key stream limit is raised for it.
    const server = createWardenServer({ database, console: false, maxStreamsPerKey: 100, onError: () => {} });
    await (server.store as PostgresControlPlaneStore).ready();
    out.push({ server, url: (await server.listen(0)).url });
  }
  return out;
}

function events(count: number, offset: number): WardenEvent[] {
  const out: WardenEvent[] = [];
  for (let i = offset; i < offset + count; i++) {
    const run = `run_c${Math.floor(i / 4)}`;
    const kind = i % 4;
    out.push({
      id: `evt_c${i}`,
      type: kind === 0 ? "run.started" : kind === 1 ? "tool.called" : kind === 2 ? "tool.completed" : "run.completed",
      ts: Date.now(),
      org: "default",
      agentId: `agent-${i % 10}`,
      runId: run,
      stepId: null,
      toolCallId: kind === 1 || kind === 2 ? `tc_c${Math.floor(i / 4)}` : null,
      actor: null,
      data: kind === 1 ? { toolName: "read_order", actionType: "unknown", input: { id: i }, decision: "allow" } : kind === 2 ? { toolName: "read_order", status: "completed", output: { total: i }, durationMs: 1 } : { traceId: `trace_${run}` },
    });
  }
  return out;
}

async function ingest(cluster: PostgresCluster, n: number): Promise<BenchRow[]> {
  const database = cluster.createDatabase(`bench_ingest_${n}`);
  const nodes = await replicas(database, n);
  const key = (await nodes[0]!.server.store.createKey({ org: "bench", role: "agent" })).key;
  const batch = 500;
  const total = 40_000;
  const bodies = Array.from({ length: total / batch }, (_, i) => JSON.stringify({ events: events(batch, i * batch) }));
  const post = (url: string, body: string) => fetch(`${url}/v1/events`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body }).then((r) => r.text());
  await post(nodes[0]!.url, bodies[0]!);
  const latencies: number[] = [];
  let next = 1;
  const started = performance.now();
  // Two agents per replica, each with one batch in flight.
  await Promise.all(
    Array.from({ length: 2 * n }, async (_, agent) => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        await post(nodes[agent % n]!.url, body);
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const { server } of nodes) await server.close();
  const { median, p99 } = percentiles(latencies);
  return [{ group: "cluster", name: `ingest, ${n} replica${n > 1 ? "s" : ""}, batches of ${batch}`, medianUs: median, p99Us: p99, opsPerSec: ((bodies.length - 1) * batch) / seconds, note: `events/s; µs per batch; ${2 * n} senders, PostgreSQL 15 on loopback` }];
}

async function haltFanOut(cluster: PostgresCluster, dir: string): Promise<BenchRow[]> {
  const nodes = await replicas(cluster.createDatabase("bench_halt"), 3);
  const store = nodes[0]!.server.store;
  const admin = (await store.createKey({ org: "bench", role: "admin" })).key;
  const agentKey = (await store.createKey({ org: "bench", role: "agent" })).key;
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => new Warden({ agentId: `agent-${i}`, group: "fleet", url: nodes[i % 3]!.url, apiKey: agentKey, store: ":memory:", remote: { cacheDir: join(dir, "cache"), spool: false }, halt: { staleAfter: 60_000 }, onError: () => {} }),
  );
  await Promise.all(clients.map((c) => c.ready()));
  while (!clients.every((c) => c.remote!.status.streamConnected)) await new Promise((resolve) => setTimeout(resolve, 10));
  const api = (url: string, path: string, body: unknown) => fetch(url + path, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.text());
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const arrived = clients.map(
      (client) =>
        new Promise<number>((resolve) => {
          if (client.signal.aborted) return resolve(performance.now());
          client.signal.addEventListener("abort", () => resolve(performance.now()), { once: true });
        }),
    );
    const on = nodes[round % 3]!.url;
    const t0 = performance.now();
    await api(on, "/v1/halts", { group: "fleet", reason: `bench round ${round}` });
    for (const at of await Promise.all(arrived)) samples.push((at - t0) * 1000);
    await api(on, "/v1/halts/resume", { group: "fleet" });
    while (clients.some((c) => c.signal.aborted)) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  for (const client of clients) await client.shutdown();
  for (const { server } of nodes) await server.close();
  const { median, p99 } = percentiles(samples);
  return [{ group: "cluster", name: `halt → ${CLIENTS} streamed clients over 3 replicas`, medianUs: median, p99Us: p99, note: `${ROUNDS} rounds; API call on one replica to each client's abort signal` }];
}

async function approvalRoundTrip(cluster: PostgresCluster): Promise<BenchRow[]> {
  const nodes = await replicas(cluster.createDatabase("bench_approval"), 3);
  const store = nodes[0]!.server.store;
  const reviewer = (await store.createKey({ org: "bench", role: "reviewer", name: "alice" })).key;
  const agentKey = (await store.createKey({ org: "bench", role: "agent", name: "bot" })).key;
  // The agent's stream on replica 1; requests through replica 1, decisions on replica 3.
  const controller = new AbortController();
  const response = await fetch(`${nodes[0]!.url}/v1/stream?topics=approvals`, { headers: { authorization: `Bearer ${agentKey}` }, signal: controller.signal });
  const waiting = new Map<string, (at: number) => void>();
  void (async () => {
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      buffer += value;
      let end: number;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.includes("event: approval.resolved")) continue;
        const data = JSON.parse(block.slice(block.indexOf("data: ") + 6).split("\n")[0]!) as { approvalId: string };
        waiting.get(data.approvalId)?.(performance.now());
      }
    }
  })();
  const call = (url: string, key: string, path: string, body: unknown) => fetch(url + path, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.text());
  const samples: number[] = [];
  for (let i = 0; i < APPROVALS; i++) {
    const approvalId = `apr_bench${String(i).padStart(8, "0")}`;
    const heard = new Promise<number>((resolve) => waiting.set(approvalId, resolve));
    const t0 = performance.now();
    await call(nodes[0]!.url, agentKey, "/v1/approvals", { approvalId, toolCallId: `tc_bench${i}`, runId: "run_bench", agentId: "bot", toolName: "refund", payload: { amount: i }, expiresAt: Date.now() + 3_600_000 });
    await call(nodes[2]!.url, reviewer, `/v1/approvals/${approvalId}/approve`, { reason: "bench" });
    samples.push(((await heard) - t0) * 1000);
  }
  controller.abort();
  for (const { server } of nodes) await server.close();
  const { median, p99 } = percentiles(samples);
  return [{ group: "cluster", name: "approval round trip across replicas", medianUs: median, p99Us: p99, note: `${APPROVALS} requests: asked on replica 1, approved on replica 3, heard on replica 1's stream` }];
}
