// The control plane and an agent in remote mode, offline: a server on a loopback port, an agent
// that decides locally on the policies it syncs, a policy update pushed to it over the stream, an
// approval given through the API, a halt that stops its next tool call, and an event the server
// would refuse set aside as a dead letter.
// Run: npx tsx examples/remote.ts
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HaltedError, Warden } from "agent-warden";
import { createWardenServer } from "agent-warden/server";

const dir = mkdtempSync(join(tmpdir(), "warden-remote-example-"));
const server = createWardenServer({ db: join(dir, "warden.db"), console: false });
// `warden keys create --role admin|agent --org acme` does the same from a shell.
const admin = (await server.store.createKey({ org: "acme", role: "admin", name: "ops" })).key;
const agentKey = (await server.store.createKey({ org: "acme", role: "agent", name: "billing-agent" })).key;
const { url } = await server.listen(0);
console.log(`control plane on ${url}`);

/** What an operator (or the console) does over HTTP. */
async function api(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(url + path, { method, headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return response.json();
}
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

const warden = new Warden({ agentId: "billing-agent", url, apiKey: agentKey, store: ":memory:", remote: { cacheDir: join(dir, "cache") } });
console.log(`agent synced: ${await warden.ready()}`);

const refund = (amount: number) => warden.run({ task: `refund ${amount}` }, (run) => run.tool("payments.refund", { amount, currency: "EUR" }, () => `refunded ${amount}`));
console.log(`before any policy: ${await refund(80_000)}`);

// 1. A policy update on the server reaches the agent over the stream; it still decides locally.
await api("PUT", "/v1/policies", {
  policies: { policies: [{ id: "large-refunds", when: { tool: "payments.*", "args.amount": { gt: 50_000 } }, action: "require_approval", reason: "large refunds need a human" }] },
  comment: "large refunds need approval",
});
await settle();
console.log(`after the update, a large refund: ${warden.check({ tool: "payments.refund", args: { amount: 80_000 } }).action}`);

// 2. The agent waits; a reviewer approves through the API; the agent carries on.
const waiting = refund(80_000);
await settle();
const [pending] = (await api("GET", "/v1/approvals?status=pending")).items;
console.log(`pending approval ${pending.approvalId}: ${pending.toolName} ${JSON.stringify(pending.payload)}`);
await api("POST", `/v1/approvals/${pending.approvalId}/approve`, { reviewer: "alice", reason: "customer charged twice" });
console.log(`approved: ${await waiting}`);

// 3. A halt through the API reaches the agent at once: its next tool call is refused.
await api("POST", "/v1/halts", { agentId: "billing-agent", reason: "runaway refunds" });
await settle();
try {
  await refund(10);
} catch (error) {
  if (error instanceof HaltedError) console.log(`halted: ${error.message}`);
  else throw error;
}
await api("POST", "/v1/halts/resume", { agentId: "billing-agent" });
await settle();
console.log(`resumed: ${await refund(10)}`);

// 4. An event the server would refuse (here a run id longer than the wire's 256 characters) is set
//    aside with its reason, before it is sent; the rest of its batch is delivered.
const runId = await warden.startRun(`run_${"x".repeat(300)}`);
await warden.completeRun(runId, { ok: true });
await warden.flush();
for (const letter of warden.remote?.deadLetters() ?? []) console.log(`set aside: ${letter.event.type} (${letter.reason})`);

// Everything the agent did is on the server, hash-chained.
await warden.shutdown();
const runs = await api("GET", "/v1/runs?agentId=billing-agent");
const ledger = await api("GET", "/v1/ledger/verify");
console.log(`server: ${runs.total} runs, ledger ${ledger.ok ? "verified" : "BROKEN"} (${ledger.entries} entries)`);
await server.close();
rmSync(dir, { recursive: true, force: true });
