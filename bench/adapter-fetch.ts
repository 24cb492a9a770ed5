// Outbound HTTP: one GET and one JSON POST to a loopback server with ofetch, and the same through
// createGovernedFetch (decided and recorded as http.get / http.post, a run per request, file store)
// and createTrackedFetch (recorded, not enforced).
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ofetch } from "ofetch";
import { Warden } from "agent-warden";
import { createGovernedFetch, createTrackedFetch } from "agent-warden/fetch";
import { measureAsync, type BenchRow, type Timing } from "./harness.js";

const GROUP = "adapters";

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-fetch-"));
  const rows: BenchRow[] = [];
  const row = (name: string, timing: Timing, note?: string) => rows.push({ group: GROUP, name, medianUs: timing.medianUs, p99Us: timing.p99Us, opsPerSec: timing.opsPerSec, note });
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      response.setHeader("content-type", "application/json");
      response.end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const warden = new Warden({
    agentId: "bench-fetch",
    store: join(dir, "warden.db"),
    policies: { version: 1, default: "allow", policies: [{ id: "no-admin", when: { tool: "http.*", "args.path": { matches: "^/admin" } }, action: "block" }] },
  });
  try {
    const options = { samples: 300, batch: 5, warmup: 200 };
    const plain = ofetch.create({ baseURL });
    const governed = createGovernedFetch(warden, { defaults: { baseURL } });
    const tracked = createTrackedFetch(warden, { defaults: { baseURL } });
    let n = 0;
    const bareGet = await measureAsync(() => plain(`/orders/${n++}`), options);
    row("http GET, ofetch", bareGet, "loopback, keep-alive");
    const governedGet = await measureAsync(() => governed(`/orders/${n++}`), options);
    row("http GET + createGovernedFetch", governedGet, `check + run + record + ledger; +${(governedGet.medianUs - bareGet.medianUs).toFixed(0)} µs`);
    const trackedGet = await measureAsync(() => tracked(`/orders/${n++}`), options);
    row("http GET + createTrackedFetch", trackedGet, `+${(trackedGet.medianUs - bareGet.medianUs).toFixed(0)} µs`);
    const body = { customer: 7, items: [{ sku: "A1", quantity: 2 }], password: "not recorded" };
    const barePost = await measureAsync(() => plain("/orders", { method: "POST", body }), options);
    row("http POST json, ofetch", barePost);
    const governedPost = await measureAsync(() => governed("/orders", { method: "POST", body }), options);
    row("http POST json + createGovernedFetch", governedPost, `body redacted in the record; +${(governedPost.medianUs - barePost.medianUs).toFixed(0)} µs`);
  } finally {
    warden.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { printTable } = await import("./harness.js");
  printTable(await run());
}
