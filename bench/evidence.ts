// Evidence: RFC 9162 proofs over a ledger of 100,000 entries (inclusion and consistency, generated and
// verified), an evidence bundle for a run of 100 tool calls (size, verification), and a witness
// cosigning a checkpoint: in process, and the round trip over loopback HTTP with its consistency proof.
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { MerkleFrontier, MerkleTree, verifyConsistency, verifyInclusion } from "../src/ledger/merkle.js";
import { GENESIS_HASH, hashEntry } from "../src/ledger/chain.js";
import { checkpointText, ledgerOrigin, signNote, verifierKey } from "../src/ledger/note.js";
import { Witness } from "../src/ledger/witness.js";
import { startWitness } from "../src/ledger/witness-server.js";
import { bundleVerifier } from "../src/console/verify-asset.js";
import { verifyBundle } from "../src/verify/index.js";
import { requestCosignature, storeWitnessedLog } from "../src/ledger/witnessing.js";
import { canonicalJson } from "../src/internal/canonical.js";
import { newId } from "../src/internal/ids.js";
import { loadOrCreateKey } from "../src/ledger/keys.js";
import { SqliteStore } from "../src/store/sqlite-store.js";
import { Warden } from "../src/warden.js";
import { measureAsync, measureSync, type BenchRow } from "./harness.js";

const ENTRIES = 100_000;

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const leaves = Array.from({ length: ENTRIES }, (_, i) => createHash("sha256").update(`entry ${i}`).digest());
  rows.push(...appendRates());
  const t0 = performance.now();
  const tree = new MerkleTree(leaves);
  rows.push({ group: "evidence", name: `tree over ${ENTRIES.toLocaleString("en")} entries, built`, note: `${(performance.now() - t0).toFixed(0)} ms once (what a bundle or a witness round costs the log first)` });
  const root = tree.root();
  let i = 0;
  const index = () => (i = (i * 7919 + 104_729) % ENTRIES);
  rows.push({ group: "evidence", name: "inclusion proof, generate", ...measureSync(() => tree.inclusionProof(index()), { samples: 2000, warmup: 500 }), note: `${tree.inclusionProof(0).length} hashes` });
  const proofs = Array.from({ length: 256 }, (_, k) => ({ k: (k * 389) % ENTRIES, proof: tree.inclusionProof((k * 389) % ENTRIES) }));
  let p = 0;
  rows.push({ group: "evidence", name: "inclusion proof, verify", ...measureSync(() => {
    const { k, proof } = proofs[p++ % proofs.length]!;
    if (!verifyInclusion(leaves[k]!, k, ENTRIES, proof, root)) throw new Error("inclusion failed");
  }, { samples: 2000, warmup: 500 }) });
  const sizes = Array.from({ length: 256 }, (_, k) => 1 + ((k * 15_485) % (ENTRIES - 1)));
  const consistency = sizes.map((m) => ({ m, proof: tree.consistencyProof(m), first: tree.root(m) }));
  let c = 0;
  rows.push({ group: "evidence", name: "consistency proof, generate", ...measureSync(() => tree.consistencyProof(sizes[c++ % sizes.length]!), { samples: 2000, warmup: 500 }) });
  rows.push({ group: "evidence", name: "consistency proof, verify", ...measureSync(() => {
    const { m, proof, first } = consistency[c++ % consistency.length]!;
    if (!verifyConsistency(m, ENTRIES, first, root, proof)) throw new Error("consistency failed");
  }, { samples: 2000, warmup: 500 }) });

  // A bundle for a run of 100 tool calls.
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-evidence-"));
  try {
    const warden = new Warden({ agentId: "billing-agent", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [] }, logger: { warn: () => {} } });
    let runId = "";
    await warden.run({ task: "100 calls" }, async (run) => {
      runId = run.runId;
      for (let k = 0; k < 100; k++) await run.tool("read_order", { id: k }, () => ({ id: k, total: 1000 + k }));
    });
    warden.close();
    const reopened = new Warden({ agentId: "billing-agent", store: join(dir, "warden.db"), policies: { version: 1, default: "allow", policies: [] }, logger: { warn: () => {} } });
    const bundle = JSON.parse(JSON.stringify(reopened.ledger.evidence(runId))) as unknown;
    reopened.close();
    const bytes = Buffer.byteLength(JSON.stringify(bundle, null, 2));
    rows.push({ group: "evidence", name: "bundle for a run of 100 tool calls, verify (WebCrypto, agent-warden/verify)", ...(await measureAsync(async () => {
      if (!(await verifyBundle(bundle)).ok) throw new Error("bundle failed");
    }, { samples: 200, warmup: 20 })), note: `${(bytes / 1024).toFixed(0)} KiB of JSON, ${(bundle as { entries: unknown[] }).entries.length} entries; the same code runs in a browser (console asset: ${(Buffer.byteLength((await bundleVerifier()).text) / 1024).toFixed(0)} KiB minified)` });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // A witness cosigning a checkpoint that extends the last one by 10 entries.
  const log = generateKeyPairSync("ed25519");
  const origin = ledgerOrigin(log.publicKey);
  const checkpoint = (n: number) => signNote(checkpointText({ origin, size: n, root: tree.root(n) }), origin, log.privateKey);
  const STEP = 10;
  const notes = new Map<number, string>();
  const noteOf = (n: number) => notes.get(n) ?? (notes.set(n, checkpoint(n)), notes.get(n)!);
  const witness = new Witness({ name: "bench.witness/w1", logs: [verifierKey(origin, log.publicKey)] });
  let size = 0;
  const submission = () => {
    const next = size + STEP;
    const s = { oldSize: size, proof: size === 0 ? [] : tree.consistencyProof(size, next), checkpoint: noteOf(next) };
    size = next;
    return s;
  };
  rows.push({ group: "evidence", name: "witness cosigns a checkpoint, in process", ...measureSync(() => {
    if (witness.addCheckpoint(submission()).status !== 200) throw new Error("refused");
  }, { samples: 1000, warmup: 100 }), note: "signature + consistency check + cosignature + state write (in-memory SQLite)" });
  witness.close();
  const running = await startWitness({ name: "bench.witness/w2", logs: [verifierKey(origin, log.publicKey)] });
  try {
    size = 0;
    rows.push({ group: "evidence", name: "cosign round trip over loopback HTTP", ...(await measureAsync(async () => {
      const answer = await requestCosignature(running.url, submission());
      if (answer.status !== 200) throw new Error("refused");
    }, { samples: 500, warmup: 50 })), note: "POST /add-checkpoint with a consistency proof" });
  } finally {
    await running.close();
  }
  rows.push(...witnessRounds());
  return rows;
}

/**
 * A witness round's consistency proof on an embedded store of 10,000 and 100,000 entries, 100 written since
 * the head the witness cosigned: before, the whole tree rebuilt from every entry hash; after, from the tree's
 * right edge kept with that checkpoint and the 100 hashes since.
 */
function witnessRounds(): BenchRow[] {
  const rows: BenchRow[] = [];
  const SINCE = 100;
  for (const total of [10_000, 100_000]) {
    const dir = mkdtempSync(join(tmpdir(), "warden-bench-rounds-"));
    try {
      const store = new SqliteStore({ path: join(dir, "warden.db"), signer: loadOrCreateKey(join(dir, "keys", "ledger.pem")), checkpointEvery: 1000, checkpointIntervalMs: Number.MAX_SAFE_INTEGER, maxBatch: 1 << 30, onError: (error) => console.error(error) });
      const data = canonicalJson({ toolName: "read_order", input: { id: 1042 } });
      for (let i = 0; i < total + SINCE; i++) {
        store.append({ id: newId("evt"), ts: Date.now(), type: "tool.called", org: "default", agentId: "bench", runId: "run_bench", stepId: null, toolCallId: newId("tc"), actor: null, dataJson: data });
        if (i % 10_000 === 9_999) store.flush();
      }
      store.flush();
      store.checkpointNow();
      const size = total + SINCE;
      const log = storeWitnessedLog(store);
      const before = () => new MerkleTree(store.all<{ hash: string }>("SELECT hash FROM ledger WHERE seq <= ? ORDER BY seq", size).map((r) => Buffer.from(r.hash, "hex"))).consistencyProof(total, size);
      const after = () => log.proof(total, size) as Uint8Array[];
      const same = (a: Uint8Array[], b: Uint8Array[]) => a.length === b.length && a.every((h, k) => Buffer.from(h).equals(Buffer.from(b[k]!)));
      if (!same(before(), after())) throw new Error("the proofs differ");
      const label = `witness round at ${total.toLocaleString("en")} entries (${SINCE} new), consistency proof`;
      rows.push({ group: "evidence", name: `${label}, before: tree rebuilt`, ...measureSync(before, { samples: total > 10_000 ? 5 : 20, warmup: 2 }), note: `reads ${size.toLocaleString("en")} hashes` });
      rows.push({ group: "evidence", name: `${label}, after: from the kept frontier`, ...measureSync(after, { samples: 200, warmup: 20 }), note: `reads ${SINCE} hashes + the frontier` });
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}

/**
 * The writer's hashing per appended entry: the hash chain alone, and the chain with the Merkle tree's
 * frontier kept (what every append now pays), rounds alternated so both meet the same machine.
 */
function appendRates(): BenchRow[] {
  const N = 50_000;
  const ROUNDS = 6;
  const dataJson = canonicalJson({ tool: "refund", args: { orderId: "ord_1042", amount: 120 }, decision: { action: "allow" } });
  const chain = (withTree: boolean): number => {
    const frontier = withTree ? new MerkleFrontier() : undefined;
    let prevHash = GENESIS_HASH;
    const started = performance.now();
    for (let seq = 1; seq <= N; seq++) {
      prevHash = hashEntry({ seq, id: `led_${seq}`, ts: 1_700_000_000_000 + seq, type: "tool.completed", org: "acme", agentId: "billing-agent", runId: "run_1", stepId: null, toolCallId: `tc_${seq}`, actor: null, prevHash }, dataJson);
      frontier?.push(Buffer.from(prevHash, "hex"));
    }
    return N / ((performance.now() - started) / 1000);
  };
  const rates: Record<"chain" | "tree", number[]> = { chain: [], tree: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? (["chain", "tree"] as const) : (["tree", "chain"] as const);
    for (const kind of order) rates[kind].push(chain(kind === "tree"));
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  return [
    { group: "evidence", name: "append, hash chain alone", opsPerSec: median(rates.chain), note: `entries/s, median of ${ROUNDS} rounds of ${N.toLocaleString("en")}, alternated` },
    { group: "evidence", name: "append, hash chain + Merkle frontier", opsPerSec: median(rates.tree), note: "entries/s, the tree kept as entries are appended (target ≥ 150,000)" },
  ];
}
