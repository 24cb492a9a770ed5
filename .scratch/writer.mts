// Writer-side cost per call: the ops one governed call hands over, committed by an inline store in groups as the worker would.
import { rmSync, mkdirSync, statSync } from "node:fs";
import { SqliteStore } from "../src/store/sqlite-store.ts";
import { loadOrCreateKey } from "../src/ledger/keys.ts";
import { newId } from "../src/internal/ids.ts";
const dir = "/tmp/durable/w-" + process.pid; rmSync(dir, { recursive: true, force: true }); mkdirSync(dir);
const path = dir + "/w.db";
const signer = loadOrCreateKey(dir + "/keys/ledger.pem");
const store = new SqliteStore({ path, signer, checkpointEvery: 1000, checkpointIntervalMs: 10_000, maxBatch: Number.MAX_SAFE_INTEGER, writer: "inline", onError: (e) => console.error(e) });
if (process.env.WAL_AUTO) store.db.exec(`PRAGMA wal_autocheckpoint = ${process.env.WAL_AUTO}`);
const COLS = ["id", "external_id", "run_id", "step_id", "org", "agent_id", "kind", "tool_name", "action_type", "status", "input", "output", "error", "blocked_reason", "decision", "agent_context", "reason", "usage", "started_at", "ended_at", "duration_ms"];
const SQL = `INSERT INTO tool_calls (${COLS.join(", ")}) VALUES (${COLS.map(() => "?").join(",")})`;
const runId = newId("run");
const N = Number(process.argv[2] ?? 50000), GROUP = 600;
const cpu0 = process.cpuUsage(); const t0 = performance.now();
for (let i = 0; i < N; i++) {
  const tc = newId("tc"); const now = Date.now();
  store.write(SQL, [tc, null, runId, null, "default", "bench", "tool", `read_order_${i % 500}`, "unknown", "completed", `{"id":${i},"customer":"c_${i % 977}"}`, `{"ok":true,"id":${i}}`, null, null, '"allow"', null, null, null, now, now, 0.015]);
  store.append({ id: newId("evt"), ts: now, type: "tool.called", org: "default", agentId: "bench", runId, stepId: null, toolCallId: tc, actor: null, dataJson: `{"actionType":"unknown","decision":"allow","input":{"customer":"c_${i % 977}","id":${i}},"toolName":"read_order_${i % 500}"}` });
  store.append({ id: newId("evt"), ts: now, type: "tool.completed", org: "default", agentId: "bench", runId, stepId: null, toolCallId: tc, actor: null, dataJson: `{"durationMs":0.015,"output":{"id":${i},"ok":true},"status":"completed","toolName":"read_order_${i % 500}"}` });
  if (i % GROUP === GROUP - 1) store.flush();
}
store.close();
const cpu = process.cpuUsage(cpu0); const wall = performance.now() - t0;
console.log(`cpu/call ${((cpu.user + cpu.system) / N).toFixed(1)} µs  wall/call ${(wall * 1000 / N).toFixed(1)} µs  bytes/call ${Math.round(statSync(path).size / N)}`);
rmSync(dir, { recursive: true, force: true });
