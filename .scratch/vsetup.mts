import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { openLedger } from "../src/index.ts";
import { canonicalJson } from "../src/internal/canonical.ts";
import { newId } from "../src/internal/ids.ts";
import { loadOrCreateKey } from "../src/ledger/keys.ts";
import { SqliteStore } from "../src/store/sqlite-store.ts";
export function append(path: string, count: number): void {
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
const [mode, dir] = process.argv.slice(2) as [string, string];
const path = join(dir, "warden.db");
if (mode === "make") {
  rmSync(dir, { recursive: true, force: true }); mkdirSync(dir, { recursive: true });
  append(path, 1_000_000);
  const { ledger, close } = openLedger(path); const t0 = performance.now(); const r = ledger.verify({ full: true }); console.log("full", r.ok, (performance.now() - t0).toFixed(0), "ms"); close();
} else if (mode === "append") {
  append(path, 10_000);
} else if (mode === "verify") {
  for (let i = 0; i < 3; i++) { const { ledger, close } = openLedger(path); const t0 = performance.now(); const r = ledger.verify(); console.log("resumed", r.ok, r.entries, (performance.now() - t0).toFixed(0), "ms"); close(); }
} else {
  append(path, 10_000);
  const { ledger, close } = openLedger(path); const t0 = performance.now(); const r = ledger.verify(); console.log("resumed", r.ok, r.entries, (performance.now() - t0).toFixed(0), "ms"); close();
}
