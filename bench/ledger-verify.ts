// Ledger verification on a large store: a full re-hash of 1,000,000 entries, then 10,000 more appended
// and verified again from the last verified checkpoint (what `warden ledger verify` does by default).
// The entries are written through the store's own append path (chained, checkpoints signed every 1,000),
// not through tool calls, so the million entries take seconds to write rather than minutes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openLedger } from "../src/index.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { newId } from "../src/internal/ids.js";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { quick, type BenchRow } from "./harness.js";

const GROUP = "ledger verify (file store, checkpoint every 1,000)";

function append(path: string, count: number): void {
  const signer = loadOrCreateKey(join(path, "..", "keys", "ledger.pem"));
  const store = new SqliteStore({ path, signer, checkpointEvery: 1000, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, maxBatch: 1 << 30, onError: (error) => console.error(error) });
  const runId = newId("run");
  for (let i = 0; i < count; i++) {
    const data = canonicalJson({ toolName: `read_order_${i % 500}`, actionType: "unknown", decision: "allow", input: { id: i, customer: `c_${i % 977}` } });
    store.append({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "bench", runId, stepId: null, toolCallId: newId("tc"), actor: null, dataJson: data });
    if (i % 10_000 === 9_999) store.flush();
  }
  store.close();
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

function verify(path: string, full: boolean) {
  const { ledger, close } = openLedger(path);
  try {
    return timed(() => ledger.verify({ full }));
  } finally {
    close();
  }
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-verify-"));
  const total = quick ? 100_000 : 1_000_000;
  const more = 10_000;
  const rows: BenchRow[] = [];
  try {
    const path = join(dir, "warden.db");
    const written = timed(() => append(path, total));
    const first = verify(path, true);
    if (!first.value.ok) throw new Error(`the written ledger does not verify: ${JSON.stringify(first.value)}`);
    timed(() => append(path, more));
    const resumed = verify(path, false);
    const full = verify(path, true);
    if (!resumed.value.ok || !full.value.ok || resumed.value.entries !== total + more || full.value.entries !== total + more) throw new Error(`verification disagrees: ${JSON.stringify([resumed.value, full.value])}`);
    const n = (x: number) => x.toLocaleString("en-US");
    rows.push({ group: GROUP, name: `append ${n(total)} entries`, medianUs: written.ms * 1000, opsPerSec: total / (written.ms / 1000), note: `${(written.ms / 1000).toFixed(1)} s; store append path: chained, checkpoints signed` });
    rows.push({ group: GROUP, name: `full verify, ${n(total)} entries`, medianUs: first.ms * 1000, opsPerSec: total / (first.ms / 1000), note: `${(first.ms / 1000).toFixed(1)} s; every hash recomputed, every checkpoint checked` });
    rows.push({ group: GROUP, name: `verify after ${n(more)} more (resumed)`, medianUs: resumed.ms * 1000, note: `${resumed.ms.toFixed(0)} ms; from the last verified checkpoint, ${n(total + more)} entries in all` });
    rows.push({ group: GROUP, name: `verify --full after ${n(more)} more`, medianUs: full.ms * 1000, opsPerSec: (total + more) / (full.ms / 1000), note: `${(full.ms / 1000).toFixed(1)} s` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
