// The cost Warden adds to one tool call, and the ledger's append throughput.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Warden } from "agent-warden";
import { GENESIS_HASH } from "../src/ledger/chain.js";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { measureAsync, measureSync, type BenchRow } from "./harness.js";
import { makeRules, wardenPolicySet } from "./peers.js";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-"));
  const rows: BenchRow[] = [];
  try {
    const warden = new Warden({ agentId: "bench", store: join(dir, "warden.db"), policies: wardenPolicySet(makeRules(1000)) as never });
    const runId = await warden.startRun(undefined, { bench: true });
    const tool = (input: { id: number }) => ({ ok: true, id: input.id });
    let n = 0;

    const bare = measureSync(() => tool({ id: n++ }), { samples: 5000, batch: 20 });
    rows.push({ group: "governed call", name: "bare function call", medianUs: bare.medianUs, p99Us: bare.p99Us, opsPerSec: bare.opsPerSec });

    const check = measureSync(() => warden.check({ tool: "read_order", args: { id: n++ }, runId }), { samples: 5000, batch: 20 });
    rows.push({ group: "governed call", name: "check() only", medianUs: check.medianUs, p99Us: check.p99Us, opsPerSec: check.opsPerSec });

    const governed = measureSync(
      () => {
        const call = warden.beginToolCall({ tool: "read_order", args: { id: n }, runId });
        call.complete(tool({ id: n++ }));
      },
      { samples: 5000, batch: 20, warmup: 5000 },
    );
    warden.flush();
    rows.push({ group: "governed call", name: "check + record + ledger (file store)", medianUs: governed.medianUs, p99Us: governed.p99Us, opsPerSec: governed.opsPerSec, note: "beginToolCall + complete; group commit included" });

    const scoped = await measureAsync(() => warden.run({}, (r) => r.tool("read_order", { id: n }, () => tool({ id: n++ }))), { samples: 2000, batch: 5 });
    rows.push({ group: "governed call", name: "warden.run + run.tool (async)", medianUs: scoped.medianUs, p99Us: scoped.p99Us, opsPerSec: scoped.opsPerSec, note: "a whole run per call" });
    await warden.completeRun(runId);
    warden.close();

    const store = new SqliteStore({ path: join(dir, "ledger.db"), signer: loadOrCreateKey(undefined), checkpointEvery: 1000, checkpointIntervalMs: 10_000, onError: (e) => console.error(e) });
    const count = 200_000;
    const data = { toolName: "read_order", input: { id: 1042, customer: "c_381" }, decision: "allow" };
    const draft = (i: number, dataJson: string) => ({ id: `evt_${i}`, ts: Date.now(), type: "tool.called", org: "default", agentId: "bench", runId: "run_1", stepId: null, toolCallId: `tc_${i}`, actor: null, dataJson });
    // Append: events already serialized (as `#record` hands them over), then chained, hashed and committed.
    const drafts = Array.from({ length: count }, (_, i) => draft(i, canonicalJson({ ...data, seq: i })));
    let started = performance.now();
    for (const d of drafts) store.append(d);
    store.flush();
    let seconds = (performance.now() - started) / 1000;
    rows.push({ group: "ledger", name: "append (hash chain + group commit, WAL file)", opsPerSec: count / seconds, note: `${count.toLocaleString("en-US")} serialized events, signed checkpoint every 1000` });
    // Record: the same, with each event's canonical serialization inside the timed loop.
    started = performance.now();
    for (let i = 0; i < count; i++) store.append(draft(count + i, canonicalJson({ ...data, seq: i })));
    store.flush();
    seconds = (performance.now() - started) / 1000;
    rows.push({ group: "ledger", name: "serialize + append", opsPerSec: count / seconds, note: "canonical JSON of each event included" });
    const head = store.get<{ seq: number; hash: string }>("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1");
    if (head?.seq !== 2 * count || head.hash === GENESIS_HASH) throw new Error("ledger bench wrote the wrong number of entries");
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
