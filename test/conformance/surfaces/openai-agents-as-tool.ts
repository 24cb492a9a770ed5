import type { Surface } from "../harness.js";
import { driveAgents } from "../drivers/openai-agents.js";

/** OpenAI Agents: `governAgent` (approval: "wait"), agent as tool; a refusal is the model's tool result (rejectContent), a halt stops the run (throwException). */
export const surface: Surface = {
  name: "openai-agents: agent as tool",
  drive: (call) => driveAgents(call, "agent as tool"),
  // The agent tool that reaches the inner tool is itself a governed call, outside the token's scopes: refused there.
  cannot: (scenario) => (scenario === "token-scope" ? "the agent tool that reaches the tool is refused first, by the same token" : undefined),
};
