// Profiling driver, not part of `npm run bench`: bytes per governed call in the file store and where they
// go (SQLite's dbstat per table and index). N calls of `run.tool` without policies, as bench/core.ts makes them.
//   N=20000 npx tsx bench/storage-breakdown.ts
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Warden } from "agent-warden";

const N = Number(process.env.N ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), "warden-bytes-"));
const path = join(dir, "warden.db");
try {
  const warden = new Warden({ agentId: "bench", store: path });
  const tool = (input: { id: number }) => ({ ok: true, id: input.id });
  await warden.run({ bench: true }, async (r) => {
    for (let i = 0; i < N; i++) {
      const args = { id: i, customer: `c_${i % 977}` };
      await r.tool(`read_order_${i % 500}`, args, () => tool(args));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  });
  warden.close();
  const db = new DatabaseSync(path, { readOnly: true });
  const rows = db.prepare("SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload FROM dbstat GROUP BY name ORDER BY bytes DESC").all() as Array<{ name: string; bytes: number; payload: number }>;
  db.close();
  console.log(`${Math.round(statSync(path).size / N)} bytes per call (file after close(), ${N} calls)`);
  for (const row of rows) if (row.bytes / N >= 1) console.log(`  ${row.name.padEnd(32)} ${(row.bytes / N).toFixed(0).padStart(5)} B  (payload ${(row.payload / N).toFixed(0)})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
