// The PostgreSQL store's ingest as the database sees it: `store.ingest` of the ingest bench's batches
// (4 agents, 500 events each, 8 at once), then each statement's share per event from
// pg_stat_statements (execution and planning time, WAL bytes, buffers hit), and the parameter bytes
// sent per event. Waits on the ledger head's lock count as execution time.
// Usage: npx tsx bench/profile-postgres-ingest.ts [events per agent, default 20000]
// (it starts its own cluster with pg_stat_statements loaded; add --cpu-prof for this process's profile).
process.env.WARDEN_PG_OPTIONS = `${process.env.WARDEN_PG_OPTIONS ?? ""} -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on`.trim();
const pg = (await import("pg")).default;
const { startPostgres } = await import("../test/fixtures/postgres.js");
const { PostgresControlPlaneStore } = await import("agent-warden/server");
const { checkWireEvent } = await import("../src/wire/event.js");
const { event } = await import("./fixtures/ingest-agents-events.js");

const perAgent = Number(process.argv[2] ?? 20_000);
const sent = new Map<string, number>();
const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: unknown, ...args: unknown[]) {
  const config = args[0] as { text?: string; values?: unknown[] } | undefined;
  if (config !== undefined && typeof config === "object" && Array.isArray(config.values)) {
    const statement = String(config.text).replace(/\s+/g, " ").slice(0, 60);
    let bytes = 0;
    for (const value of config.values) bytes += typeof value === "string" ? Buffer.byteLength(value) : Array.isArray(value) ? value.reduce((n: number, v) => n + String(v).length + 3, 0) : 8;
    sent.set(statement, (sent.get(statement) ?? 0) + bytes);
  }
  return query.apply(this, args);
} as never;

const cluster = await startPostgres();
const url = cluster.createDatabase("profile_ingest");
const store = new PostgresControlPlaneStore({ url });
const client = new pg.Client({ connectionString: url });
await client.connect();
try {
  await client.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const principals: Array<NonNullable<Awaited<ReturnType<typeof store.authenticate>>>> = [];
  for (let a = 0; a < 4; a++) principals.push((await store.authenticate((await store.createKey({ org: "bench", role: "agent", name: `agent-${a}`, agentId: `agent-${a}` })).key))!);
  const bodies: Array<[number, string]> = [];
  for (let i = 0; i < perAgent; i += 500) for (let a = 0; a < 4; a++) bodies.push([a, JSON.stringify({ events: Array.from({ length: 500 }, (_, j) => event(a, i + j)) })]);
  await client.query("SELECT pg_stat_statements_reset()");
  sent.clear();
  let next = 0;
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < bodies.length) {
        const [a, body] = bodies[next++]!;
        const { events } = JSON.parse(body) as { events: unknown[] };
        for (const candidate of events) if (checkWireEvent(candidate) !== undefined) throw new Error("the bench's event does not fit the wire");
        const answer = await store.ingest(principals[a]!, events as never);
        if (answer.accepted !== events.length) throw new Error(`${answer.accepted} of ${events.length} accepted`);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const n = bodies.length * 500;
  console.log(`${n} events, ${(n / seconds).toFixed(0)} events/s; this process ${((used.user + used.system) / n).toFixed(1)} µs CPU per event`);
  console.log("parameter bytes per event, by statement:");
  for (const [statement, bytes] of [...sent].sort((x, y) => y[1] - x[1])) if (bytes > 0) console.log(`  ${(bytes / n).toFixed(0).padStart(5)} B  ${statement}`);
  const { rows } = await client.query<{ calls: string; total_exec_time: number; total_plan_time: number; wal_bytes: string; shared_blks_hit: string; query: string }>(
    "SELECT calls, total_exec_time, total_plan_time, wal_bytes, shared_blks_hit, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time + total_plan_time DESC LIMIT 12",
  );
  console.log("per event: execution µs, planning µs, WAL bytes, buffers hit; calls; statement");
  for (const r of rows) console.log(`  ${((r.total_exec_time * 1000) / n).toFixed(2).padStart(6)} ${((r.total_plan_time * 1000) / n).toFixed(2).padStart(5)} ${(Number(r.wal_bytes) / n).toFixed(0).padStart(5)} ${(Number(r.shared_blks_hit) / n).toFixed(1).padStart(5)}  ${r.calls.toString().padStart(5)}  ${r.query}`);
} finally {
  await client.end();
  await store.close();
  cluster.stop();
}
