// scratch: store.ingest CPU per event in-process (not committed)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteControlPlaneStore } from "../src/server/sqlite-store.js";
import { checkWireEvent } from "../src/wire/event.js";
import type { Principal } from "../src/server/store.js";

const dir = mkdtempSync(join(tmpdir(), "micro-"));
const store = new SqliteControlPlaneStore({ path: join(dir, "x.db"), ingestThread: process.env.THREAD === "1" });
if (process.env.PRAGMA) store.store.db.exec(process.env.PRAGMA);
const keys = [];
for (let a = 0; a < 4; a++) keys.push((await store.createKey({ org: "bench", role: "agent", name: `agent-${a}`, agentId: `agent-${a}` })).key);
const principals = [] as Principal[];
for (const k of keys) principals.push((await store.authenticate(k))!);
function event(a: number, i: number) {
  const n = Math.floor(i / 4); const run = `run_a${a}_${n}`; const kind = i % 4;
  return { id: `evt_a${a}_${i}`, type: kind === 0 ? "run.started" : kind === 1 ? "tool.called" : kind === 2 ? "tool.completed" : "run.completed", ts: Date.now(), org: "default", agentId: `agent-${a}`, runId: run, stepId: null, toolCallId: kind === 1 || kind === 2 ? `tc_a${a}_${n}` : null, actor: null,
    data: kind === 0 ? { traceId: `trace_${run}` } : kind === 1 ? { toolName: "read_order", actionType: "read", input: { orderId: `ord_${i}` }, decision: "allow", policyId: "reads" } : kind === 2 ? { toolName: "read_order", status: "completed", output: { total: i, currency: "EUR" }, durationMs: 1.5 } : {} };
}
await (store as { startIngestThread?: () => Promise<void> }).startIngestThread?.();
const PER = Number(process.env.PER ?? 20000), BATCH = 500;
const bodies: Array<[number, string]> = [];
for (let i = 0; i < PER; i += BATCH) for (let a = 0; a < 4; a++) bodies.push([a, JSON.stringify({ events: Array.from({ length: BATCH }, (_, j) => event(a, i + j)) })]);
let parseUs = 0, ingestUs = 0;
const all0 = process.cpuUsage(); const t0 = performance.now();
for (const [a, body] of bodies) {
  let c = process.cpuUsage();
  const { events } = JSON.parse(body);
  for (const e of events) if (checkWireEvent(e) !== undefined) throw new Error("bad");
  let d = process.cpuUsage(c); parseUs += d.user + d.system;
  c = process.cpuUsage();
  const r = await store.ingest(principals[a]!, events);
  d = process.cpuUsage(c); ingestUs += d.user + d.system;
  if (r.accepted !== BATCH) throw new Error(JSON.stringify(r).slice(0, 300));
}
const n = PER * 4;
const allD = process.cpuUsage(all0); console.log(`process CPU ${((allD.user + allD.system) / n).toFixed(2)} µs/event, wall ${((performance.now() - t0) * 1000 / n).toFixed(2)} µs/event`);
console.log(`parse+check ${(parseUs / n).toFixed(2)} µs/event, ingest ${(ingestUs / n).toFixed(2)} µs/event`);
const v = await store.verifyLedger("bench");
if (!v.ok || v.entries !== n + 4) throw new Error(JSON.stringify(v));
await store.close();
rmSync(dir, { recursive: true, force: true });
const { SQL_TIMES } = await import("../src/server/sqlite-store.js");
if (SQL_TIMES) for (const [sql, [us, c]] of [...SQL_TIMES].sort((a, b) => b[1][0] - a[1][0]).slice(0, 12)) console.log(`${(us / n).toFixed(2)} µs/event  ${c} calls  ${sql.replace(/\s+/g, " ").slice(0, 110)}`);
