// An orchestrator hands sub-agents attenuated tokens; one sub-agent's attempt beyond its scope is
// blocked; the trace tree shows who delegated what.
// Run: npx tsx examples/delegation.ts
import { formatRunTree, ToolBlockedError, Warden } from "agent-warden";

const warden = new Warden({ agentId: "travel-orchestrator", store: ":memory:" });

// The organization grants the orchestrator travel authority up to 1,000.00 EUR for an hour.
const token = warden.tokens.mint({ agentId: "travel-orchestrator", scopes: ["flights:*", "hotels:*"], maxAmount: { amount: 100000, currency: "EUR" }, ttl: "1h" });
const orchestrator = warden.beginDelegatedTask(token);

const rootRunId = await orchestrator.run({ task: "plan a trip to Lisbon" }, async (run) => {
  // Each sub-agent gets only what its job needs, for ten minutes.
  const flightsToken = orchestrator.attenuateForCall("flight-agent", ["flights:search", "flights:book"], { maxAmount: { amount: 40000, currency: "EUR" }, ttl: "10m" });
  const hotelsToken = orchestrator.attenuateForCall("hotel-agent", ["hotels:search"], { ttl: "10m" });

  await warden.beginDelegatedTask(flightsToken).run({ task: "book the flight" }, async (sub) => {
    await sub.tool("flights.search", { to: "LIS" }, () => ["TP 1351"]);
    await sub.tool("flights.book", { flight: "TP 1351", amount: 21000, currency: "EUR" }, () => ({ pnr: "X7K2QP" }));
  });

  await warden.beginDelegatedTask(hotelsToken).run({ task: "find a hotel" }, async (sub) => {
    await sub.tool("hotels.search", { city: "Lisbon" }, () => ["Hotel Avenida"]);
    try {
      // Beyond its token: the hotel agent may search, not book. Blocked before any policy runs.
      await sub.tool("hotels.book", { hotel: "Hotel Avenida", amount: 30000, currency: "EUR" }, () => ({ booked: true }));
    } catch (error) {
      if (!(error instanceof ToolBlockedError)) throw error;
      console.log(`hotel-agent was refused: ${error.reason}\n`);
    }
  });

  // A sub-agent cannot widen what it was given: this child would exceed the flight agent's cap.
  try {
    warden.tokens.attenuate(flightsToken, { maxAmount: { amount: 90000, currency: "EUR" } });
  } catch (error) {
    console.log(`widening refused: ${(error as Error).message}\n`);
  }
  return run.runId;
});

console.log(await formatRunTree(await warden.getRun(rootRunId), (id) => warden.getRun(id)));
warden.close();
