import type { Surface } from "../harness.js";
import { driveAi } from "../drivers/ai.js";

/** AI SDK: `governTools + streamText` (approval: "wait"); a refusal reaches the model, a halt aborts the call. */
export const surface: Surface = {
  name: "ai: governTools + streamText",
  drive: (call) => driveAi(call, "governTools + streamText"),
};
