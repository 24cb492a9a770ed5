// The README quick start: govern two tool calls of a billing agent.
// Run: npx tsx examples/quickstart.ts
import { Warden, ToolBlockedError } from "agent-warden";

const warden = new Warden({
  agentId: "billing-agent",
  policies: new URL("./warden.yaml", import.meta.url).pathname,
  store: ":memory:", // default: ./.warden/warden.db
  // A reviewer stands in for a person here; in production they answer with `warden approve <id>` or the console.
  onApprovalRequest: (request, decide) => decide.approve({ reviewer: "alice", reason: `checked ${request.toolName}` }),
});

const orders = new Map([[1042, { id: 1042, total: 68000, currency: "EUR" }]]);

await warden.run({ task: "refund order 1042" }, async (run) => {
  const order = await run.tool("read_order", { id: 1042 }, () => orders.get(1042)!);
  // Over 500.00: the `large-refunds` policy asks a human first; this line waits for the answer.
  const refund = await run.tool("payments.refund", { amount: order.total, currency: order.currency }, () => ({ refunded: order.total }));
  console.log("refunded", refund.refunded);
  try {
    await run.tool("get_secret", { name: "stripe_key" }, () => "sk_live_…");
  } catch (error) {
    if (error instanceof ToolBlockedError) console.log("blocked:", error.reason);
  }
});

console.log("ledger:", warden.ledger.verify().ok ? "verified" : "BROKEN");
warden.close();
