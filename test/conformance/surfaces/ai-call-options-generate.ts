import type { Surface } from "../harness.js";
import { driveAi } from "../drivers/ai.js";

/** AI SDK: `wardenCallOptions + generateText` (approval: "wait"); a refusal reaches the model, a halt aborts the call. */
export const surface: Surface = {
  name: "ai: wardenCallOptions + generateText",
  drive: (call) => driveAi(call, "wardenCallOptions + generateText"),
};
