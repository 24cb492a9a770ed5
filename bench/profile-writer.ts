// Profiling driver, not part of `npm run bench`: the store writer's own work for N governed calls, in this
// thread and nothing else (no policy check, no client thread): batches as the client hands them over (the
// hand-over's parts, encodeBatch), read back, queued, chained, hashed and committed G calls per transaction,
// as the writer thread does. Reports the CPU per call of that work and the file's bytes per call. Rows are shaped like
// bench/core.ts's: a folded `tool.call` entry per call, which is the call's record (store schema 8); ROWS=1 adds
// the `tool_calls` row each call had before, to compare the two in one sitting.
//   N=60000 npx tsx bench/profile-writer.ts
//   N=60000 ROWS=1 npx tsx bench/profile-writer.ts
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { decodeBatch, encodeBatch, type BatchParts } from "../src/store/commit-link.js";
import { SqliteStore, type LedgerDraft, type QueuedWrite } from "../src/store/sqlite-store.js";

const N = Number(process.env.N ?? 60_000);
const G = Number(process.env.G ?? 290);
const ROWS = process.env.ROWS === "1";
const dir = mkdtempSync(join(tmpdir(), "warden-writer-"));
const path = join(dir, "w.db");
const store = new SqliteStore({ path, signer: loadOrCreateKey(undefined), checkpointEvery: 1000, checkpointIntervalMs: 5000, maxBatch: Number.MAX_SAFE_INTEGER, writer: "inline", fold: false, onError: (error) => console.error(error) });
const COLUMNS = ["id", "external_id", "run_id", "step_id", "org", "agent_id", "kind", "tool_name", "action_type", "status", "input", "output", "error", "blocked_reason", "decision", "agent_context", "reason", "usage", "started_at", "ended_at", "duration_ms"];
const INSERT = `INSERT INTO tool_calls (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map(() => "?").join(",")})`;
const hex = () => randomBytes(16).toString("hex");
const runId = `run_${hex()}`;
const t = Date.now();
const batches: BatchParts[] = [];
for (let g = 0; g < N; g += G) {
  const writes: QueuedWrite[] = [];
  const drafts: LedgerDraft[] = [];
  for (let i = g; i < Math.min(N, g + G); i++) {
    const id = `tc_0${(t + i).toString(16)}${hex().slice(11)}`;
    const tool = `read_order_${i % 500}`;
    if (ROWS) writes.push({ sql: INSERT, params: [id, null, runId, null, "default", "bench", "tool", tool, "unknown", "completed", `{"id":${i},"customer":"c_${i % 977}"}`, null, null, null, '"allow"', null, null, null, t + i, t + i, 0.003] });
    const end = `{"data":{"durationMs":0.01,"output":{"id":${i},"ok":true},"status":"completed","toolName":"${tool}"},"id":"evt_${hex()}","ts":${t + i},"type":"tool.completed"}`;
    drafts.push({ id: `evt_${hex()}`, ts: t + i, type: "tool.call", org: "default", agentId: "bench", runId, stepId: null, toolCallId: id, actor: null, dataJson: `{"called":{"actionType":"unknown","decision":"allow","input":{"customer":"c_${i % 977}","id":${i}},"toolName":"${tool}"},"end":${end}}` });
  }
  // A copy, as the message port delivers it (one flat string, not the concatenation's rope, and two arrays).
  batches.push(structuredClone(encodeBatch(writes.map(() => 0), writes, drafts)!));
}
store.flush();
const cpu0 = process.threadCpuUsage();
for (const json of batches) {
  const [writes, drafts] = decodeBatch(json);
  for (const [, params] of writes) store.write(INSERT, params);
  for (const draft of drafts) store.append(draft);
  store.flush();
}
const cpu = process.threadCpuUsage(cpu0);
store.close();
console.log(`${ROWS ? "entry + row" : "entry alone"}: writer CPU ${((cpu.user + cpu.system) / N).toFixed(1)} µs per call (${G} calls per commit), file ${Math.round(statSync(path).size / N)} bytes per call`);
rmSync(dir, { recursive: true, force: true });
