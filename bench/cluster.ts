// The control plane as a cluster: replicas on one PostgreSQL database (a throwaway cluster, as the
// tests start it). Ingest events/s with 1 and 3 replicas; appends/s to one organization's ledger chain
// from 3 replicas; a halt posted on one replica reaching 50 agents whose streams are spread over 3
// replicas; an approval asked through one replica and decided on another. Replicas and agents share
// this process and the machine with the database. Senders and clients: bench/fixtures/control-plane.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createWardenServer, type PostgresControlPlaneStore, type WardenServer } from "agent-warden/server";
import { POSTGRES_SKIP, startPostgres, type PostgresCluster } from "../test/fixtures/postgres.js";
import { agentEvents, haltRounds, postBatches, streamedClients } from "./fixtures/control-plane.js";
import { percentiles, type BenchRow } from "./harness.js";

const CLIENTS = 50;
const ROUNDS = 20;
const APPROVALS = 50;

export async function run(): Promise<BenchRow[]> {
  if (POSTGRES_SKIP !== undefined) return [{ group: "cluster", name: "skipped", note: POSTGRES_SKIP }];
  const cluster = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-cluster-"));
  try {
    return [...(await ingest(cluster, 1)), ...(await ingest(cluster, 3)), ...(await ledgerAppends(cluster)), ...(await haltFanOut(cluster, dir)), ...(await approvalRoundTrip(cluster))];
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

async function ingest(cluster: PostgresCluster, n: number): Promise<BenchRow[]> {
  const database = cluster.createDatabase(`bench_ingest_${n}`);
  const nodes = await replicas(database, n);
  const key = (await nodes[0]!.server.store.createKey({ org: "bench", role: "agent" })).key;
  const batch = 500;
  const total = 40_000;
  const bodies = Array.from({ length: total / batch }, (_, i) => JSON.stringify({ events: agentEvents(batch, i * batch, "c") }));
  const urls = nodes.map((node) => node.url);
  await postBatches(urls, key, bodies.slice(0, 1), 1);
  // Two agents per replica, each with one batch in flight.
  const { latenciesUs, seconds, accepted } = await postBatches(urls, key, bodies.slice(1), 2 * n);
  for (const { server } of nodes) await server.close();
  const { median, p99 } = percentiles(latenciesUs);
  return [{ group: "cluster", name: `ingest, ${n} replica${n > 1 ? "s" : ""}, batches of ${batch}`, medianUs: median, p99Us: p99, opsPerSec: accepted / seconds, note: `events/s; µs per batch; ${2 * n} senders, PostgreSQL 15 on loopback` }];
}

/**
 * One organization's chain extended from 3 replicas at once, one entry per transaction (an event
 * posted alone): the head row is taken by each append, so this is the chain's serial rate.
 */
async function ledgerAppends(cluster: PostgresCluster): Promise<BenchRow[]> {
  const nodes = await replicas(cluster.createDatabase("bench_chain"), 3);
  const key = (await nodes[0]!.server.store.createKey({ org: "bench", role: "agent" })).key;
  const admin = (await nodes[0]!.server.store.createKey({ org: "bench", role: "admin" })).key;
  const appends = 3000;
  const bodies = agentEvents(appends, 0, "l").map((event) => JSON.stringify({ events: [event] }));
  const { latenciesUs, seconds, accepted } = await postBatches(
    nodes.map((node) => node.url),
    key,
    bodies,
    12,
  );
  const report = (await (await fetch(`${nodes[2]!.url}/v1/ledger/verify`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { ok: boolean; entries: number };
  for (const { server } of nodes) await server.close();
  // The two keys' creations are entries too.
  if (!report.ok || report.entries !== accepted + 2) throw new Error(`the chain does not verify after the bench (${accepted} accepted): ${JSON.stringify(report)}`);
  const { median, p99 } = percentiles(latenciesUs);
  return [{ group: "cluster", name: "ledger appends to one organization's chain, 3 replicas", medianUs: median, p99Us: p99, opsPerSec: accepted / seconds, note: `appends/s; µs per append (one event per request); 12 senders over 3 replicas; chain verified (${report.entries} entries)` }];
}

async function haltFanOut(cluster: PostgresCluster, dir: string): Promise<BenchRow[]> {
  const nodes = await replicas(cluster.createDatabase("bench_halt"), 3);
  const store = nodes[0]!.server.store;
  const admin = (await store.createKey({ org: "bench", role: "admin" })).key;
  const agentKey = (await store.createKey({ org: "bench", role: "agent" })).key;
  const urls = nodes.map((node) => node.url);
  const clients = await streamedClients(urls, agentKey, dir, CLIENTS);
  const samples = await haltRounds(clients, urls, admin, ROUNDS);
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
