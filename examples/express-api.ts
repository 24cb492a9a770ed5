// A payments API that trusts agents by their delegation token alone, offline: the organization mints a
// token for a planner agent, the planner attenuates it for a refund agent (refunds only, at most
// 50.00 EUR), and the API, which holds only the organization's public key, lets the refund agent do
// exactly that: a refund within the cap passes, a larger one or a payout gets 403, and after a halt
// even the small refund gets 403 agent_halted.
// Run: npx tsx examples/express-api.ts
import type { AddressInfo } from "node:net";
import express from "express";
import { Warden } from "agent-warden";
import { requireAgentPermission } from "agent-warden/express";

// The organization's side: mints and attenuates tokens, records halts.
const org = new Warden({ agentId: "org-admin", store: ":memory:" });
const plannerToken = org.tokens.mint({ agentId: "planner", scopes: ["payments:*"], maxAmount: { amount: 500_00, currency: "EUR" }, ttl: "1h" });
const refundToken = org.tokens.attenuate(plannerToken, { audience: "planner/refund-agent", scopes: ["payments:refund"], maxAmount: { amount: 50_00, currency: "EUR" }, ttl: "15m" });

// The API's side: the public key, plus where to look up revocations and halts.
const verifier = {
  publicKey: org.tokens.publicJwk(),
  isRevoked: (id: string) => org.tokens.isRevoked(id),
  isHalted: ({ agentId }: { agentId: string | undefined }) => agentId !== undefined && org.haltedFor({ agentId }) !== undefined,
};
const app = express();
app.use(express.json());
app.post("/refunds", requireAgentPermission("payments:refund", { ...verifier, amount: (request) => request.body.amount, currency: "EUR" }), (request, response) => {
  response.json({ refunded: request.body.amount, by: request.agent?.agentId, delegatedBy: request.agent?.chain[0]?.audience });
});
app.post("/payouts", requireAgentPermission("payments:payout", verifier), (_request, response) => {
  response.json({ paidOut: true });
});
// Refusals need no error handler: the guard answers them as application/problem+json (RFC 9457).

const server = app.listen(0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// The refund agent's side: it holds only its attenuated token.
async function agentCalls(path: string, body: object): Promise<void> {
  const response = await fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${refundToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  console.log(`POST ${path} ${JSON.stringify(body)} → ${response.status} ${await response.text()}`);
}

await agentCalls("/refunds", { order: 1042, amount: 28_00 });
await agentCalls("/refunds", { order: 1043, amount: 90_00 });
await agentCalls("/payouts", { amount: 10_00 });
org.halt({ reason: "refund loop detected", agentId: "planner/refund-agent" });
await agentCalls("/refunds", { order: 1044, amount: 10_00 });

server.close();
org.close();
