// The governed call as an agent makes it: `run.tool` through the public API, file store, 1,000 rules
// (40% globs), varied tool names and arguments, the event loop given a turn between calls as an agent's
// I/O would give it. What is reported includes the commit: CPU per call is the process's CPU over the
// whole run and `close()`, durable throughput counts the rows SQLite holds after `close()`, and the
// event-loop delay shows how long commits hold the loop.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { DatabaseSync } from "node:sqlite";
import { Warden } from "agent-warden";
import { quick, summarize, timingRow, type BenchRow } from "./harness.js";
import { makeRules, wardenPolicySet } from "./peers.js";

const GROUP = "governed run.tool (file store, 1,000 rules)";
/**
 * Calls before the timed ones (see the warm-up). V8 grows the young generation in steps over a process's
 * first ~35,000–45,000 calls at this rate (`--trace-gc`: committed heap 20 → 29 → 49 → 88 MB), each step a
 * scavenge of 6–21 ms; 60,000 puts the last one in the warm-up with room to spare.
 */
const WARM = 60_000;

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-"));
  const rows: BenchRow[] = [];
  const calls = quick ? 20_000 : 100_000;
  try {
    const path = join(dir, "warden.db");
    const warden = new Warden({ agentId: "bench", store: path, policies: wardenPolicySet(makeRules(1000, 0.4)) as never });
    const tool = (input: { id: number }) => ({ ok: true, id: input.id });
    const bareTool = async (name: string, args: { id: number }) => (name.length > 0 ? tool(args) : undefined);
    const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
    // Warm-up in a run of its own, outside the counts, made as the timed calls are (the same names, the
    // loop given a turn between calls): the writer thread starts and warms up here, as it would in an
    // agent's first calls, and the warm-up's writes are committed as they go rather than all held until
    // a flush. Long enough for V8's one-time growth of the young generation (three scavenges of 6–21 ms
    // that resize it, the last one 35,000–45,000 calls in) to happen here too. Its own event-loop delay is reported: it
    // holds those one-time costs.
    const warm = monitorEventLoopDelay({ resolution: 1 });
    warm.enable();
    await warden.run({ warmup: true }, async (r) => {
      for (let i = 0; i < WARM; i++) {
        const args = { id: i, customer: `c_${i % 977}` };
        await r.tool(`read_order_${i % 500}`, args, () => tool(args));
        await yieldToLoop();
      }
    });
    warden.flush();
    warm.disable();

    const bare = new Float64Array(calls);
    const governed = new Float64Array(calls);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    const cpu0 = process.cpuUsage();
    const main0 = process.threadCpuUsage();
    const started = performance.now();
    delay.enable();
    let runId = "";
    await warden.run({ bench: true }, async (r) => {
      runId = r.runId;
      for (let i = 0; i < calls; i++) {
        const name = `read_order_${i % 500}`;
        const args = { id: i, customer: `c_${i % 977}` };
        // Interleaved, order alternating: the ungoverned call and the governed one see the same load.
        for (let j = 0; j < 2; j++) {
          const t0 = performance.now();
          if ((i + j) % 2 === 0) {
            await bareTool(name, args);
            bare[i] = (performance.now() - t0) * 1000;
          } else {
            await r.tool(name, args, () => tool(args));
            governed[i] = (performance.now() - t0) * 1000;
          }
        }
        await yieldToLoop();
      }
    });
    warden.close();
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    const cpu = process.cpuUsage(cpu0);
    const main = process.threadCpuUsage(main0);

    const db = new DatabaseSync(path, { readOnly: true });
    const count = (sql: string) => Number((db.prepare(sql).get(runId) as { n: number }).n);
    // A call is a row, or (a fast call allowed with nothing matched) its folded ledger entry alone.
    const toolRows = count("SELECT (SELECT count(*) FROM tool_calls WHERE run_id = ?1) + (SELECT count(*) FROM ledger WHERE run_id = ?1 AND type = 'tool.call' AND tool_call_id NOT IN (SELECT id FROM tool_calls WHERE run_id = ?1)) AS n");
    const ledgerRows = count("SELECT count(*) AS n FROM ledger WHERE run_id = ?");
    db.close();
    if (toolRows !== calls) throw new Error(`expected ${calls} tool calls in SQLite after close(), found ${toolRows}`);
    const bytes = statSync(path).size;

    rows.push(timingRow(GROUP, "ungoverned async call", summarize(bare), "same names and args, interleaved"));
    rows.push(timingRow(GROUP, "run.tool latency", summarize(governed), "check + record; the commit runs on the writer thread (inline: between calls)"));
    rows.push({ group: GROUP, name: "CPU per governed call", medianUs: ((cpu.user + cpu.system) / calls), note: `process CPU over the run and close(), ungoverned calls included; ${seconds.toFixed(1)} s wall` });
    rows.push({ group: GROUP, name: "main-thread CPU per governed call", medianUs: (main.user + main.system) / calls, note: "the agent's own thread (the writer thread's share is the difference)" });
    rows.push({ group: GROUP, name: "durable calls/s", opsPerSec: toolRows / seconds, note: `${toolRows.toLocaleString("en-US")} tool calls (rows or folded entries) + ${ledgerRows.toLocaleString("en-US")} ledger rows in SQLite after close()` });
    rows.push({ group: GROUP, name: "durable ledger entries/s", opsPerSec: ledgerRows / seconds, note: `${(ledgerRows / calls).toFixed(1)} entries per call` });
    rows.push({ group: GROUP, name: "storage per governed call", note: `${Math.round(bytes / (calls + WARM)).toLocaleString("en-US")} bytes (database file after close())` });
    rows.push({
      group: GROUP,
      name: "event-loop delay",
      samples: delay.count,
      medianUs: delay.percentile(50) / 1000,
      p99Us: delay.percentile(99) / 1000,
      p999Us: delay.percentile(99.9) / 1000,
      note: `sampled every 1 ms; max ${(delay.max / 1e6).toFixed(1)} ms while ${calls.toLocaleString("en-US")} calls ran`,
    });
    rows.push({ group: GROUP, name: "event-loop delay, warm-up", samples: warm.count, medianUs: warm.percentile(50) / 1000, p99Us: warm.percentile(99) / 1000, p999Us: warm.percentile(99.9) / 1000, note: `${WARM.toLocaleString("en-US")} calls before the timed ones: the writer thread's start, the young generation's growth; max ${(warm.max / 1e6).toFixed(1)} ms` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
