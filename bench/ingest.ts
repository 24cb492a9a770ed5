// End-to-end ingest: agents in remote mode (the real client, `RemoteLink`, in a process of their
// own) sending to one control plane (`createWardenServer`, as `warden serve` runs it, in another),
// on SQLite (WAL on disk) and on PostgreSQL (a throwaway cluster on loopback). Events/s from the
// first event handed to a client to the last batch acknowledged; every event must be in the
// organization's ledger afterwards, and the chain must verify, or the bench fails. CPU time per event
// of each process is given beside the rate: on a loaded machine the rate is the scheduler's, the CPU
// time is still the work done.
// `WARDEN_BENCH_PROFILE=<dir>` writes a CPU profile of the server and of the agents there.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { POSTGRES_SKIP, startPostgres } from "../test/fixtures/postgres.js";
import { quick, type BenchRow } from "./harness.js";
import type { Principal } from "agent-warden/server";

/** Agents sending at once (`WARDEN_BENCH_AGENTS` overrides). */
const AGENTS = Number(process.env.WARDEN_BENCH_AGENTS ?? 4);
/** Which stores (`WARDEN_BENCH_STORES=sqlite` or `postgres`, or `postgres-alone` / `postgres-e2e` for one PostgreSQL row; default both). */
const STORES = process.env.WARDEN_BENCH_STORES ?? "sqlite,postgres";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-ingest-"));
  const perAgent = quick ? 10_000 : 40_000;
  const rows: BenchRow[] = [];
  try {
    if (STORES.includes("sqlite")) rows.push(await storeAlone(join(dir, "alone.db"), perAgent / 2));
    if (STORES.includes("sqlite")) rows.push(await endToEnd("SQLite, WAL on disk", { db: join(dir, "ingest.db") }, dir, perAgent));
    if (!STORES.includes("postgres")) return rows;
    if (POSTGRES_SKIP !== undefined) rows.push({ group: "ingest", name: "PostgreSQL: skipped", note: POSTGRES_SKIP });
    else {
      // A cluster for each row: the autovacuum of one row's tables does not land on the other's figures.
      for (const alone of [false, true]) {
        if (!alone && STORES.includes("postgres-alone")) continue;
        if (alone && STORES.includes("postgres-e2e")) continue;
        const cluster = await startPostgres();
        try {
          rows.push(alone ? await postgresAlone(cluster.createDatabase("bench_ingest_alone"), perAgent / 2) : await endToEnd("PostgreSQL 15 on loopback", { database: cluster.createDatabase("bench_ingest") }, dir, perAgent));
        } finally {
          cluster.stop();
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * The SQLite store alone, in this process: `store.ingest` (on this thread) of the agents' batches of 500,
 * parsed from JSON and checked against the wire schema as the route does; the CPU time of each part per event.
 */
async function storeAlone(path: string, perAgent: number): Promise<BenchRow> {
  const { SqliteControlPlaneStore } = await import("agent-warden/server");
  const { checkWireEvent } = await import("../src/wire/event.js");
  const { event } = await import("./fixtures/ingest-agents-events.js");
  const store = new SqliteControlPlaneStore({ path });
  try {
    const principals = [];
    for (let a = 0; a < AGENTS; a++) {
      const { key } = await store.createKey({ org: "bench", role: "agent", name: `agent-${a}`, agentId: `agent-${a}` });
      principals.push((await store.authenticate(key))!);
    }
    const bodies: Array<[number, string]> = [];
    for (let i = 0; i < perAgent; i += 500) for (let a = 0; a < AGENTS; a++) bodies.push([a, JSON.stringify({ events: Array.from({ length: 500 }, (_, j) => event(a, i + j)) })]);
    let checkUs = 0;
    let ingestUs = 0;
    const load = loadavg()[0]!;
    for (const [a, body] of bodies) {
      let cpu = process.cpuUsage();
      const { events } = JSON.parse(body) as { events: unknown[] };
      for (const candidate of events) if (checkWireEvent(candidate) !== undefined) throw new Error("the bench's event does not fit the wire");
      let used = process.cpuUsage(cpu);
      checkUs += used.user + used.system;
      cpu = process.cpuUsage();
      const answer = await store.ingest(principals[a]!, events as never);
      used = process.cpuUsage(cpu);
      ingestUs += used.user + used.system;
      if (answer.accepted !== events.length) throw new Error(`${answer.accepted} of ${events.length} events accepted`);
    }
    const n = bodies.length * 500;
    const report = await store.verifyLedger("bench");
    if (!report.ok || report.entries !== n + AGENTS) throw new Error(`the ledger holds ${report.entries} entries (ok: ${report.ok}) after ${n} events`);
    return { group: "ingest", name: "the SQLite store alone, in one process: store.ingest of the same batches", opsPerSec: 1e6 / (checkUs / n + ingestUs / n), note: `events/s of CPU; per event: JSON.parse and wire check ${(checkUs / n).toFixed(1)} µs, the ingest transaction ${(ingestUs / n).toFixed(1)} µs; ${n} events, all in the verified ledger; load ${load.toFixed(1)}` };
  } finally {
    await store.close();
  }
}

/**
 * The PostgreSQL store alone, in this process: `store.ingest` of the agents' batches of 500 (parsed and
 * checked as the route does), 8 at once as 4 agents with 2 requests in flight each send them; the CPU
 * time per event of this process and of the database's processes.
 */
async function postgresAlone(url: string, perAgent: number): Promise<BenchRow> {
  const { PostgresControlPlaneStore } = await import("agent-warden/server");
  const { checkWireEvent } = await import("../src/wire/event.js");
  const { event } = await import("./fixtures/ingest-agents-events.js");
  const store = new PostgresControlPlaneStore({ url });
  const database = await postgresCpu(url);
  try {
    const principals: Principal[] = [];
    for (let a = 0; a < AGENTS; a++) {
      const { key } = await store.createKey({ org: "bench", role: "agent", name: `agent-${a}`, agentId: `agent-${a}` });
      principals.push((await store.authenticate(key))!);
    }
    const bodies: Array<[number, string]> = [];
    for (let i = 0; i < perAgent; i += 500) for (let a = 0; a < AGENTS; a++) bodies.push([a, JSON.stringify({ events: Array.from({ length: 500 }, (_, j) => event(a, i + j)) })]);
    const load = loadavg()[0]!;
    const cpu = process.cpuUsage();
    const databaseBefore = database.seconds();
    const backendsBefore = database.backends();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 2 * AGENTS }, async () => {
        while (next < bodies.length) {
          const [a, body] = bodies[next++]!;
          const { events } = JSON.parse(body) as { events: unknown[] };
          for (const candidate of events) if (checkWireEvent(candidate) !== undefined) throw new Error("the bench's event does not fit the wire");
          const answer = await store.ingest(principals[a]!, events as never);
          if (answer.accepted !== events.length) throw new Error(`${answer.accepted} of ${events.length} events accepted`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const n = bodies.length * 500;
    const databaseUs = ((database.seconds() - databaseBefore) * 1e6) / n;
    const backendsUs = ((database.backends() - backendsBefore) * 1e6) / n;
    const report = await store.verifyLedger("bench");
    if (!report.ok || report.entries !== n + AGENTS) throw new Error(`the ledger holds ${report.entries} entries (ok: ${report.ok}) after ${n} events`);
    return {
      group: "ingest",
      name: "the PostgreSQL store alone, in one process: store.ingest of the same batches, 8 at once",
      opsPerSec: n / seconds,
      note: `events/s; CPU per event: this process ${((used.user + used.system) / n).toFixed(1)} µs, PostgreSQL ${databaseUs.toFixed(1)} µs (its connections ${backendsUs.toFixed(1)} µs); ${n} events, all in the verified ledger; load ${load.toFixed(1)}`,
    };
  } finally {
    await store.close();
    await database.close();
  }
}

/**
 * CPU seconds the PostgreSQL server at `url` has used so far, all its processes (Linux, the server on
 * this machine): the postmaster with the children it has reaped, and its live children.
 */
async function postgresCpu(url: string): Promise<{ seconds(): number; backends(): number; close(): Promise<void> }> {
  const pg = (await import("pg")).default;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const backend = Number((await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid);
  const stat = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const postmaster = Number(stat(backend)[1]);
  const database = ` ${new URL(url).pathname.slice(1)} `;
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  /** Clock ticks of the postmaster's live children (those serving `database` only, with `only`). */
  const children = (only: boolean) => {
    let ticks = 0;
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const fields = stat(pid);
        if (Number(fields[1]) !== postmaster || (only && !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(database))) continue;
        ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        // Gone meanwhile: its time is the postmaster's now.
      }
    }
    return ticks;
  };
  return {
    seconds() {
      const own = stat(postmaster);
      // utime, stime, cutime, cstime: fields 14-17 of stat(5), in clock ticks of 1/100 s.
      return (Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]) + children(false)) / 100;
    },
    /** The connections' backends alone: the statements, without autovacuum, the WAL writer and checkpoints. */
    backends: () => children(true) / 100,
    close: () => client.end(),
  };
}

/** CPU time (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. With `system`, the kernel's part alone. */
function cpuSeconds(pid: number, system = false): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks of 1/100 s.
    return ((system ? 0 : Number(fields[11])) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of each thread of a process, by name (Linux). */
function threads(pid: number): string {
  const { readdirSync } = require("node:fs") as typeof import("node:fs");
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const fields = stat.split(") ")[1]!.split(" ");
    return `${stat.slice(stat.indexOf("(") + 1, stat.indexOf(")"))}:${((Number(fields[11]) + Number(fields[12])) / 100).toFixed(2)}`;
  }).join(" ");
}

function node(script: string, arg: unknown, name: string) {
  const profile = process.env.WARDEN_BENCH_PROFILE;
  const flags = profile === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profile, "--cpu-prof-name", `${name}.cpuprofile`];
  return spawn(process.execPath, [...flags, "--import", "tsx", new URL(script, import.meta.url).pathname, JSON.stringify(arg)], { stdio: ["ignore", "pipe", "inherit"] });
}

async function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) return line;
  throw new Error("the process ended without answering");
}

async function endToEnd(label: string, target: { db?: string; database?: string }, dir: string, perAgent: number): Promise<BenchRow> {
  const dbUrl = target.database;
  const server = node("./fixtures/ingest-server.ts", { ...target, agents: AGENTS }, `server-${target.db ? "sqlite" : "postgres"}`);
  try {
    const { url, admin, keys } = JSON.parse(await firstLine(server)) as { url: string; admin: string; keys: string[] };
    const load = loadavg()[0]!;
    const database = dbUrl === undefined ? undefined : await postgresCpu(dbUrl);
    const databaseCpu = database?.seconds() ?? 0;
    const backendsCpu = database?.backends() ?? 0;
    const serverCpu = cpuSeconds(server.pid!);
    const serverSystem = cpuSeconds(server.pid!, true);
    const agents = node("./fixtures/ingest-agents.ts", { url, keys, perAgent, dir: join(dir, `agents-${label.split(",")[0]}`) }, `agents-${target.db ? "sqlite" : "postgres"}`);
    const result = JSON.parse(await firstLine(agents)) as { events: number; seconds: number; cpuSeconds: number; sent: number; deadLettered: number; dropped: number; queued: number; errors: string[] };
    const serverUs = ((cpuSeconds(server.pid!) - serverCpu) * 1e6) / result.events;
    const serverSystemUs = ((cpuSeconds(server.pid!, true) - serverSystem) * 1e6) / result.events;
    const databaseUs = database === undefined ? undefined : ((database.seconds() - databaseCpu) * 1e6) / result.events;
    const backendsUs = database === undefined ? undefined : ((database.backends() - backendsCpu) * 1e6) / result.events;
    await database?.close();
    if (process.env.WARDEN_BENCH_THREADS) console.error(threads(server.pid!));
    const agentsUs = (result.cpuSeconds * 1e6) / result.events;
    if (result.sent !== result.events || result.deadLettered + result.dropped + result.queued > 0) throw new Error(`not every event was delivered: ${JSON.stringify(result)}`);
    const report = (await (await fetch(`${url}/v1/ledger/verify`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { ok: boolean; entries: number };
    // Each key's creation is an entry too.
    if (!report.ok || report.entries !== result.events + AGENTS + 1) throw new Error(`the ledger holds ${report.entries} entries (ok: ${report.ok}) after ${result.events} events`);
    return {
      group: "ingest",
      name: `end to end, ${AGENTS} remote agents → one server, ${label}`,
      opsPerSec: result.events / result.seconds,
      note: `events/s; CPU per event: server ${serverUs.toFixed(0)} µs (${serverSystemUs.toFixed(0)} in the kernel),${databaseUs === undefined ? "" : ` PostgreSQL ${databaseUs.toFixed(0)} µs (its connections ${backendsUs!.toFixed(0)} µs),`} agents ${agentsUs.toFixed(0)} µs; ${result.events} events, all in the verified ledger; load ${load.toFixed(1)}`,
    };
  } finally {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
