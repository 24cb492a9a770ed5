import type { Surface } from "../harness.js";
import { driveAgents } from "../drivers/openai-agents.js";

/** OpenAI Agents: `governAgent` (approval: "wait"), run; a refusal is the model's tool result (rejectContent), a halt stops the run (throwException). */
export const surface: Surface = {
  name: "openai-agents: run",
  drive: (call) => driveAgents(call, "run"),
};
